/**
 * A context-free grammar over Unicode code points, in the shape llama.cpp's grammar parser
 * (src/llama-grammar.cpp) gives GBNF: each rule is a list of alternatives, each alternative a
 * sequence of elements, an element either a character set or a reference to another rule.
 * Repetitions (`*`, `+`, `?`, `{m,n}`) and groups are already rewritten into generated rules, so
 * the matcher only ever sees sets and references.
 */
import { HearthError } from '../errors.ts';

/** A GBNF text, a JSON schema or a grammar built from them cannot be used (the message says why). */
export class GrammarError extends HearthError {
  override name = 'GrammarError';
}

/**
 * How deeply a schema, a GBNF group or a pattern group may nest. The compilers recurse once per
 * level, so without a bound a deep input would overflow the stack (a RangeError that names nothing);
 * 100 levels is far past what real schemas and grammars use.
 */
export const MAX_NESTING = 100;

/** The largest Unicode code point. */
export const MAX_CODE_POINT = 0x10ffff;

/**
 * A set of code points as sorted, disjoint, non-adjacent inclusive ranges `[lo0, hi0, lo1, hi1, ...]`
 * (a negated class is stored as its complement, so matching never needs a flag).
 */
export type CharRanges = Uint32Array;

export type Element = { kind: 'char'; ranges: CharRanges } | { kind: 'ref'; rule: number };

/** One alternative: its elements in order (empty for the empty alternative). */
export type Alternative = readonly Element[];

export interface Grammar {
  /** Rule id -> its alternatives. */
  readonly rules: ReadonlyArray<readonly Alternative[]>;
  /** Rule id -> name (generated rules get `name-N`). */
  readonly names: readonly string[];
  /** The start rule's id. */
  readonly root: number;
}

/**
 * The characters of a JSON string's body written as themselves: anything but `"`, `\\` and control
 * characters (surrogates are not characters). The regex compiler and the token masks share it.
 */
export const JSON_PLAIN_CHARS: ReadonlyArray<readonly [number, number]> = [[0x20, 0x21], [0x23, 0x5b], [0x5d, 0xd7ff], [0xe000, 0x10ffff]];

/** Normalizes ranges: sorted, overlapping and adjacent ranges merged; `negate` takes the complement. */
export function charRanges(pairs: ReadonlyArray<readonly [number, number]>, negate = false): CharRanges {
  const sorted = pairs.map(([lo, hi]) => [Math.min(lo, hi), Math.max(lo, hi)] as [number, number]).sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = merged[merged.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  if (!negate) return Uint32Array.from(merged.flat());
  const out: number[] = [];
  let next = 0;
  for (const [lo, hi] of merged) {
    if (lo > next) out.push(next, lo - 1);
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push(next, MAX_CODE_POINT);
  return Uint32Array.from(out);
}

/** True when `cp` is in the set. */
export function rangesContain(ranges: CharRanges, cp: number): boolean {
  for (let i = 0; i < ranges.length; i += 2) {
    if (cp < ranges[i]!) return false;
    if (cp <= ranges[i + 1]!) return true;
  }
  return false;
}

/** True when the set holds some code point in [lo, hi]. */
export function rangesIntersect(ranges: CharRanges, lo: number, hi: number): boolean {
  for (let i = 0; i < ranges.length; i += 2) if (ranges[i]! <= hi && ranges[i + 1]! >= lo) return true;
  return false;
}

/**
 * Rules that can derive the empty string. A worklist (each alternative counts its references not yet
 * known nullable), so a long chain of rules costs linear time, not a pass per link.
 */
export function nullableRules(grammar: Grammar): boolean[] {
  const nullable = grammar.rules.map(() => false);
  const waiting: number[][] = []; // [rule][alt] -> references not yet known nullable
  const usedBy = grammar.rules.map(() => [] as Array<[number, number]>);
  const found: number[] = [];
  const mark = (id: number) => {
    if (nullable[id]) return;
    nullable[id] = true;
    found.push(id);
  };
  grammar.rules.forEach((alts, id) => {
    waiting[id] = alts.map((alt, a) => {
      if (alt.some((e) => e.kind === 'char')) return Infinity;
      for (const e of alt) usedBy[(e as Element & { kind: 'ref' }).rule]?.push([id, a]);
      return alt.length;
    });
    if (waiting[id]!.includes(0)) mark(id);
  });
  while (found.length > 0) {
    for (const [id, a] of usedBy[found.pop()!]!) if (--waiting[id]![a]! === 0) mark(id);
  }
  return nullable;
}

/**
 * Checks what the matcher relies on: every referenced rule exists, and no rule can reach itself
 * without consuming a character (left recursion, which a top-down matcher would expand forever;
 * llama.cpp rejects it the same way). Throws GrammarError.
 */
export function checkGrammar(grammar: Grammar): void {
  const { rules, names } = grammar;
  if (!rules[grammar.root]) throw new GrammarError('grammar: no root rule');
  rules.forEach((alts, id) => {
    for (const alt of alts) for (const e of alt) if (e.kind === 'ref' && !rules[e.rule]) throw new GrammarError(`grammar: rule ${names[id]} refers to an undefined rule`);
  });
  const nullable = nullableRules(grammar);
  // Rules each rule can start with (before consuming anything).
  const starts = rules.map((alts) => {
    const out = new Set<number>();
    for (const alt of alts) {
      for (const e of alt) {
        if (e.kind === 'char') break;
        out.add(e.rule);
        if (!nullable[e.rule]) break;
      }
    }
    return out;
  });
  // Depth-first search with an explicit stack: a long chain of rules must not overflow the call stack.
  const state = rules.map(() => 0); // 0 unvisited, 1 on the path, 2 done
  rules.forEach((_, start) => {
    if (state[start] !== 0) return;
    const path: number[] = [start];
    const pending: Array<Iterator<number>> = [starts[start]!.values()];
    state[start] = 1;
    while (path.length > 0) {
      const next = pending[pending.length - 1]!.next();
      if (next.done) {
        state[path.pop()!] = 2;
        pending.pop();
        continue;
      }
      const id = next.value;
      if (state[id] === 2) continue;
      if (state[id] === 1) {
        const cycle = [...path.slice(path.indexOf(id)), id].map((r) => names[r]);
        throw new GrammarError(`grammar: left recursion (${cycle.join(' -> ')}): a rule must consume a character before it can refer to itself`, { cycle });
      }
      state[id] = 1;
      path.push(id);
      pending.push(starts[id]!.values());
    }
  });
}
