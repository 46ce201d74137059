/**
 * An independent recognizer for the grammar tests: memoized sets of end positions per (rule,
 * start) over code points, a different algorithm from the engine's stack matcher
 * (src/engine/grammar/automaton.ts), so the two check each other. Slow; for tests only.
 */
import { rangesIntersect, type Grammar } from '../engine/grammar/grammar.ts';
import { GrammarAutomaton, REJECT } from '../engine/grammar/automaton.ts';
import { parseGbnf } from '../engine/grammar/gbnf.ts';

export type Verdict = 'reject' | 'prefix' | 'complete';

/**
 * How `bytes` stands against the grammar: 'complete' (a whole sentence), 'prefix' (it can be
 * continued into one), or 'reject'. Bytes that end inside a UTF-8 character stand for any code
 * point they could start.
 */
export function recognizeBytes(grammar: Grammar, bytes: Uint8Array): Verdict {
  const decoded = decodeUtf8Prefix(bytes);
  if (!decoded) return 'reject';
  return recognize(grammar, decoded.cps, decoded.tail);
}

/** Code points of `bytes`, plus the range of code points an unfinished last character may become. */
export function decodeUtf8Prefix(bytes: Uint8Array): { cps: number[]; tail?: [number, number] } | undefined {
  const cps: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0) return undefined;
    let value = length === 1 ? b : b & (0xff >> (length + 1));
    const have = Math.min(length, bytes.length - i);
    for (let k = 1; k < have; k++) {
      const c = bytes[i + k]!;
      if (c >> 6 !== 2) return undefined;
      value = value * 64 + (c & 0x3f);
    }
    const min = [0, 0, 0x80, 0x800, 0x10000][length]!;
    if (have < length) {
      const span = 64 ** (length - have);
      let lo = Math.max(value * span, min);
      let hi = Math.min(value * span + span - 1, 0x10ffff);
      // Surrogates (U+D800..DFFF) are not characters; a tail range lies on one side of them.
      if (lo >= 0xd800 && lo <= 0xdfff) lo = 0xe000;
      if (hi >= 0xd800 && hi <= 0xdfff) hi = 0xd7ff;
      return lo <= hi ? { cps, tail: [lo, hi] } : undefined;
    }
    if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return undefined;
    cps.push(value);
    i += length;
  }
  return { cps };
}

export function recognize(grammar: Grammar, cps: readonly number[], tail?: [number, number]): Verdict {
  const n = cps.length + (tail ? 1 : 0);
  const OPEN = n + 1; // the input ended inside a derivation that wants more
  const memo = new Map<number, Set<number>>();
  const matches = (ranges: Uint32Array, i: number) => (i < cps.length ? rangesIntersect(ranges, cps[i]!, cps[i]!) : rangesIntersect(ranges, tail![0], tail![1]));

  const ruleEnds = (rule: number, i: number): Set<number> => {
    const key = rule * (n + 2) + i;
    let ends = memo.get(key);
    if (ends) return ends;
    ends = new Set();
    memo.set(key, ends);
    for (const alt of grammar.rules[rule]!) seqEnds(alt, 0, i, ends);
    return ends;
  };
  const seqEnds = (alt: Grammar['rules'][number][number], k: number, i: number, out: Set<number>): void => {
    if (k === alt.length) {
      out.add(i);
      return;
    }
    const element = alt[k]!;
    if (element.kind === 'char') {
      if (i === n) out.add(OPEN);
      else if (matches(element.ranges, i)) seqEnds(alt, k + 1, i + 1, out);
      return;
    }
    for (const j of [...ruleEnds(element.rule, i)]) {
      if (j === OPEN) out.add(OPEN);
      else seqEnds(alt, k + 1, j, out);
    }
  };
  const ends = ruleEnds(grammar.root, 0);
  if (ends.has(n) && !tail) return 'complete';
  return ends.has(n) || ends.has(OPEN) ? 'prefix' : 'reject';
}

/** How the engine's automaton stands after `text` (the same verdicts as `recognize`), for hand-checked cases. */
export function automatonVerdict(grammar: Grammar | string, text: string): Verdict {
  const automaton = new GrammarAutomaton(typeof grammar === 'string' ? parseGbnf(grammar) : grammar);
  const state = automaton.walk(automaton.start, new TextEncoder().encode(text));
  return state === REJECT ? 'reject' : automaton.accepting(state) ? 'complete' : 'prefix';
}
