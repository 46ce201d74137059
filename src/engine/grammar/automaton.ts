/**
 * The grammar as a lazily built byte automaton. A state is llama.cpp's matcher state (the set of
 * parse stacks, each a list of grammar positions whose top is the next character set to match)
 * plus a partly read UTF-8 character. States are interned to small integers and every (state,
 * byte) transition is computed once and kept in a table, so walking a token trie (token-mask.ts)
 * costs one array read per byte once the states it meets have been seen.
 *
 * Semantics: a byte string is accepted from a state when it is a prefix of the UTF-8 encoding of
 * some continuation the grammar allows. A partial character is accepted when some code point that
 * starts with those bytes would be (llama.cpp's partial-UTF-8 rule). Overlong forms, bytes that can
 * never appear in UTF-8 (C0, C1, F5..FF) and code points above U+10FFFF are rejected.
 */
import { GrammarError, rangesContain, rangesIntersect, type CharRanges, type Element, type Grammar } from './grammar.ts';

/** The transition to no state: the byte is not allowed. */
export const REJECT = -1;
const UNKNOWN = -2;
/** {@link GrammarAutomaton.classStep}'s answer when characters of the class lead to different states. */
export const NOT_UNIFORM = -3;
/** The smallest code point a UTF-8 sequence of each length may encode (shorter ones are overlong). */
export const MIN_CODE_POINT: readonly number[] = [0, 0, 0x80, 0x800, 0x10000];
/**
 * Parse stacks one state may hold. A very ambiguous grammar (`x ::= [^a]{1,2} root{1,2} x+`) has a number of
 * distinct parses that grows exponentially with the text, as it does in llama.cpp's matcher; past
 * this bound the grammar is refused with a GrammarError rather than stalling generation.
 */
export const MAX_PARSE_STACKS = 4096;

type Stack = readonly number[];

/** True when `ranges` holds every code point of [lo, hi] (ranges are disjoint and non-adjacent). */
function rangesCover(ranges: CharRanges, lo: number, hi: number): boolean {
  for (let i = 0; i < ranges.length; i += 2) if (ranges[i]! <= lo) { if (ranges[i + 1]! >= hi) return true; } else break;
  return false;
}

function isSurrogate(cp: number): boolean {
  return cp >= 0xd800 && cp <= 0xdfff;
}

export class GrammarAutomaton {
  /** The grammar's alternatives laid end to end; `null` ends an alternative. A stack holds indices into it. */
  private readonly elements: Array<Element | null> = [];
  /** Rule id -> the index of each alternative's first element. */
  private readonly altStarts: number[][] = [];

  private readonly ids = new Map<string, number>();
  private readonly stacks: Stack[][] = [];
  /** Per state: the partial character's value so far, bytes still to come, and its full length. */
  private readonly partialValue: number[] = [];
  private readonly partialLeft: number[] = [];
  private readonly partialLength: number[] = [];
  private readonly table: Int32Array[] = [];
  /** Per state: {@link classStep}'s answer, UNKNOWN until asked. */
  private readonly classNext: number[] = [];
  /** Per partial state: the whole-character state it continues (whose stacks it shares). */
  private readonly base: number[] = [];
  readonly start: number;

  /**
   * `uniformClass` (no surrogates; may be empty): a set of characters that often all lead to the
   * same state, such as a JSON string's plain characters. Such a state's next state is computed
   * once for all of them, not once per character met (see classStep).
   */
  constructor(
    grammar: Grammar,
    private readonly uniformClass: CharRanges = new Uint32Array(0),
  ) {
    for (const alts of grammar.rules) {
      this.altStarts.push(
        alts.map((alt) => {
          const at = this.elements.length;
          this.elements.push(...alt, null);
          return at;
        }),
      );
    }
    const initial = new Map<string, Stack>();
    for (const at of this.altStarts[grammar.root]!) this.expand(this.elements[at] === null ? [] : [at], initial);
    this.start = this.intern([...initial.values()], 0, 0, 0);
  }

  /** States interned so far (the cache's size). */
  get size(): number {
    return this.stacks.length;
  }

  /** The state after `byte`, or REJECT. */
  step(state: number, byte: number): number {
    const row = this.table[state]!;
    let next = row[byte]!;
    if (next === UNKNOWN) row[byte] = next = this.compute(state, byte);
    return next;
  }

  /** The state after `bytes`, or REJECT. */
  walk(state: number, bytes: ArrayLike<number>): number {
    for (let i = 0; i < bytes.length && state !== REJECT; i++) state = this.step(state, bytes[i]!);
    return state;
  }

  /** True when the text so far is a whole sentence of the grammar (it may also go on). */
  accepting(state: number): boolean {
    return this.partialLeft[state] === 0 && this.stacks[state]!.some((s) => s.length === 0);
  }

  /** True when some continuation is allowed (false: the grammar is complete and nothing may follow). */
  canContinue(state: number): boolean {
    return this.partialLeft[state]! > 0 || this.stacks[state]!.some((s) => s.length > 0);
  }

  /**
   * The state after any one character of the automaton's uniform class (see the constructor), when
   * they all lead to the same state (REJECT when none is allowed), or NOT_UNIFORM. They do when
   * every parse stack's next character set holds either all of the class or none of it: the stacks
   * that survive, and so the state, are then the same whichever character it was. Kept per state.
   */
  classStep(state: number): number {
    let next = this.classNext[state]!;
    if (next === UNKNOWN) this.classNext[state] = next = this.computeClassStep(state);
    return next;
  }

  private computeClassStep(state: number): number {
    const cls = this.uniformClass;
    if (this.partialLeft[state]! > 0 || cls.length === 0) return NOT_UNIFORM;
    for (const stack of this.stacks[state]!) {
      if (stack.length === 0) continue;
      const ranges = (this.elements[stack[stack.length - 1]!] as Element & { kind: 'char' }).ranges;
      let all = true;
      let some = false;
      for (let i = 0; i < cls.length; i += 2) {
        if (rangesIntersect(ranges, cls[i]!, cls[i + 1]!)) some = true;
        if (all && !rangesCover(ranges, cls[i]!, cls[i + 1]!)) all = false;
        if (some && !all) return NOT_UNIFORM;
      }
      if (some !== all) return NOT_UNIFORM;
    }
    return this.advanceChar(state, cls[0]!);
  }

  private compute(state: number, byte: number): number {
    const left = this.partialLeft[state]!;
    if (left === 0) {
      if (byte < 0x80) return this.advance(state, byte);
      let length: number;
      let value: number;
      if (byte >= 0xc2 && byte <= 0xdf) [length, value] = [2, byte & 0x1f];
      else if (byte >= 0xe0 && byte <= 0xef) [length, value] = [3, byte & 0x0f];
      else if (byte >= 0xf0 && byte <= 0xf4) [length, value] = [4, byte & 0x07];
      else return REJECT;
      return this.partial(state, value, length - 1, length);
    }
    if ((byte & 0xc0) !== 0x80) return REJECT;
    const value = (this.partialValue[state]! << 6) | (byte & 0x3f);
    const length = this.partialLength[state]!;
    if (left > 1) return this.partial(state, value, left - 1, length);
    if (value < MIN_CODE_POINT[length]! || value > 0x10ffff || isSurrogate(value)) return REJECT;
    return this.advance(this.base[state]!, value);
  }

  /** The state partway through a character, if some code point it may become is allowed. */
  private partial(state: number, value: number, left: number, length: number): number {
    const shift = 6 * left;
    const lo = Math.max(value * 2 ** shift, MIN_CODE_POINT[length]!);
    const hi = Math.min(value * 2 ** shift + 2 ** shift - 1, 0x10ffff);
    if (lo > hi) return REJECT;
    const stacks = this.stacks[state]!;
    // Surrogates are not characters: only the parts of [lo, hi] outside them count.
    const allows = (ranges: Uint32Array) =>
      (lo <= 0xd7ff && rangesIntersect(ranges, lo, Math.min(hi, 0xd7ff))) || (hi >= 0xe000 && rangesIntersect(ranges, Math.max(lo, 0xe000), hi));
    const possible = stacks.some((s) => s.length > 0 && allows((this.elements[s[s.length - 1]!] as Element & { kind: 'char' }).ranges));
    if (!possible) return REJECT;
    // A partial state's stacks are its base state's, so the base's id keys it (no stack text to build).
    const base = this.partialLeft[state]! > 0 ? this.base[state]! : state;
    const key = `${base}#${value},${left},${length}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.add(key, stacks, value, left, length);
      this.base[id] = base;
    }
    return id;
  }

  /** The state after a whole code point. */
  private advance(state: number, cp: number): number {
    if (rangesContain(this.uniformClass, cp)) {
      const next = this.classStep(state);
      if (next !== NOT_UNIFORM) return next;
    }
    return this.advanceChar(state, cp);
  }

  private advanceChar(state: number, cp: number): number {
    const out = new Map<string, Stack>();
    const seen = new Set<string>();
    for (const stack of this.stacks[state]!) {
      if (stack.length === 0) continue;
      const top = stack[stack.length - 1]!;
      if (!rangesContain((this.elements[top] as Element & { kind: 'char' }).ranges, cp)) continue;
      const rest = stack.slice(0, -1);
      if (this.elements[top + 1] !== null) rest.push(top + 1);
      this.expand(rest, out, seen);
    }
    if (out.size > MAX_PARSE_STACKS) {
      throw new GrammarError(`grammar: too ambiguous (more than ${MAX_PARSE_STACKS} ways to parse the text so far); rewrite it so each text has few parses`, { stacks: out.size });
    }
    return out.size === 0 ? REJECT : this.intern([...out.values()], 0, 0, 0);
  }

  /**
   * Expands rule references at the top until every stack's top is a character set (or it is empty).
   * `seen` holds the intermediate stacks already expanded in this step: ambiguous grammars reach
   * the same one along many paths, which would otherwise multiply the work exponentially.
   */
  private expand(start: number[], out: Map<string, Stack>, seen = new Set<string>()): void {
    // A worklist, not recursion: a long chain of rules must not overflow the call stack.
    const todo = [start];
    while (todo.length > 0) {
      const stack = todo.pop()!;
      if (stack.length === 0) {
        out.set('', stack);
        continue;
      }
      const key = stack.join(',');
      const top = stack[stack.length - 1]!;
      const element = this.elements[top]!;
      if (element.kind === 'char') {
        out.set(key, stack);
        continue;
      }
      if (seen.has(key)) continue;
      seen.add(key);
      const rest = stack.slice(0, -1);
      if (this.elements[top + 1] !== null) rest.push(top + 1);
      // Pushed last to first, so they are expanded in the grammar's order (the order of `out`).
      const alts = this.altStarts[element.rule]!;
      for (let i = alts.length - 1; i >= 0; i--) todo.push(this.elements[alts[i]!] === null ? rest.slice() : [...rest, alts[i]!]);
    }
  }

  private intern(stacks: Stack[], value: number, left: number, length: number): number {
    const key = `${stacks.map((s) => s.join(',')).sort().join('|')}#${value},${left},${length}`;
    return this.ids.get(key) ?? this.add(key, stacks, value, left, length);
  }

  private add(key: string, stacks: Stack[], value: number, left: number, length: number): number {
    const id = this.stacks.length;
    this.ids.set(key, id);
    this.stacks.push(stacks);
    this.partialValue.push(value);
    this.partialLeft.push(left);
    this.partialLength.push(length);
    this.table.push(new Int32Array(256).fill(UNKNOWN));
    this.classNext.push(UNKNOWN);
    this.base.push(id);
    return id;
  }
}
