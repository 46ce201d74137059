/**
 * Which tokens of a vocabulary a grammar allows next. The vocabulary's byte strings go into a
 * trie once (laid out in preorder with each node's subtree end, so the walk is one flat loop and a
 * rejected prefix skips its whole subtree); a mask is the trie walked through the grammar's byte
 * automaton, and is kept per automaton state, so a state met again (inside a JSON string, after
 * each comma, ...) costs a map lookup.
 */
import { charRanges, GrammarError, JSON_PLAIN_CHARS, rangesContain, type Grammar } from './grammar.ts';
import { GrammarAutomaton, MIN_CODE_POINT, NOT_UNIFORM, REJECT } from './automaton.ts';

/** A vocabulary's token byte strings in a preorder trie. Node 0 is the root (the empty prefix). */
export class TokenTrie {
  private constructor(
    /** Tokens in the vocabulary. */
    readonly vocabSize: number,
    /** Node -> the byte on the edge into it. */
    readonly bytes: Uint8Array,
    /** Node -> its depth (the root is 0). */
    readonly depth: Uint16Array,
    /** Node -> the first node after its subtree. */
    readonly subtreeEnd: Int32Array,
    /** Node -> its tokens: tokenIds[tokenStart[node] .. tokenStart[node + 1]). */
    readonly tokenStart: Int32Array,
    readonly tokenIds: Int32Array,
    readonly maxDepth: number,
  ) {}

  /**
   * `pieces[id]` is the token's bytes; null or empty for tokens a grammar never allows (special and
   * control tokens, whose text is not the model writing).
   */
  static build(pieces: ReadonlyArray<Uint8Array | null>): TokenTrie {
    const order = pieces.flatMap((p, id) => (p && p.length > 0 ? [id] : []));
    order.sort((a, b) => compareBytes(pieces[a]!, pieces[b]!) || a - b);
    const bytes: number[] = [0];
    const depth: number[] = [0];
    const subtreeEnd: number[] = [0];
    const tokenNode: number[] = [];
    const path: number[] = [0];
    let previous: Uint8Array = new Uint8Array(0);
    let maxDepth = 0;
    for (const id of order) {
      const piece = pieces[id]!;
      let common = 0;
      while (common < piece.length && common < previous.length && piece[common] === previous[common]) common++;
      while (path.length - 1 > common) subtreeEnd[path.pop()!] = bytes.length;
      for (let d = common; d < piece.length; d++) {
        path.push(bytes.length);
        bytes.push(piece[d]!);
        depth.push(d + 1);
        subtreeEnd.push(0);
      }
      tokenNode.push(path[path.length - 1]!);
      maxDepth = Math.max(maxDepth, piece.length);
      previous = piece;
    }
    while (path.length > 0) subtreeEnd[path.pop()!] = bytes.length;
    const tokenStart = new Int32Array(bytes.length + 1);
    for (const node of tokenNode) tokenStart[node + 1]!++;
    for (let i = 0; i < bytes.length; i++) tokenStart[i + 1]! += tokenStart[i]!;
    // Sorted order puts a node's tokens together and nodes in preorder, so `order` is already grouped.
    return new TokenTrie(pieces.length, Uint8Array.from(bytes), Uint16Array.from(depth), Int32Array.from(subtreeEnd), tokenStart, Int32Array.from(order), maxDepth);
  }

  get nodes(): number {
    return this.bytes.length;
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Allowed tokens as a bitset: bit (id & 31) of word (id >> 5). */
export type TokenMask = Uint32Array<ArrayBuffer>;

export function maskHas(mask: TokenMask, id: number): boolean {
  return ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
}

/** The tokens a trie walk from `state` allows (end-of-generation tokens not included), added to `mask`. */
export function grammarMask(automaton: GrammarAutomaton, state: number, trie: TokenTrie, mask: TokenMask = new Uint32Array(Math.ceil(trie.vocabSize / 32))): TokenMask {
  const { bytes, depth, subtreeEnd, tokenStart, tokenIds } = trie;
  const stateAt = new Int32Array(trie.maxDepth + 1);
  stateAt[0] = state;
  const n = trie.nodes;
  for (let node = 1; node < n; ) {
    const d = depth[node]!;
    const next = automaton.step(stateAt[d - 1]!, bytes[node]!);
    if (next === REJECT) {
      node = subtreeEnd[node]!;
      continue;
    }
    stateAt[d] = next;
    for (let t = tokenStart[node]!; t < tokenStart[node + 1]!; t++) {
      const id = tokenIds[t]!;
      mask[id >>> 5]! |= 1 << (id & 31);
    }
    node++;
  }
  return mask;
}

/** JSON_PLAIN_CHARS as a character class: most of a vocabulary is made of them. */
export const PLAIN_CLASS = charRanges(JSON_PLAIN_CHARS);
/** Longer plain tokens are rare and are walked with the rest (this bounds the per-length masks). */
const MAX_PLAIN_CHARS = 48;

/**
 * A vocabulary split for grammars that spend most tokens in strings: the "plain" tokens (UTF-8
 * characters of {@link PLAIN_CLASS}, at most MAX_PLAIN_CHARS of them, the last maybe partial) by
 * their number of characters, and a trie of the others. In a state where every character of the class leads to the
 * same next state, and so on for k characters, the plain tokens allowed are exactly those of at most
 * k characters (a bitset per k, kept), and only the other tokens are walked: a string with a
 * maxLength, whose every position is a state of its own, no longer walks 150k tokens per position.
 */
export class PlainTokens {
  /** Tokens of the trie that are not plain. */
  readonly rest: TokenTrie;
  /** Plain token ids by character count: byCount[countStart[k] .. countStart[k + 1]) have k characters. */
  private readonly byCount: Int32Array;
  private readonly countStart: Int32Array;
  readonly maxChars: number;
  private readonly upTo: TokenMask[] = [];

  constructor(pieces: ReadonlyArray<Uint8Array | null>) {
    const counts = pieces.map((p) => (p && p.length > 0 ? plainChars(p) : -1));
    this.rest = TokenTrie.build(pieces.map((p, id) => (counts[id]! < 0 ? p : null)));
    this.maxChars = counts.reduce((a, b) => Math.max(a, b), 0);
    this.countStart = new Int32Array(this.maxChars + 2);
    for (const c of counts) if (c >= 0) this.countStart[c + 1]!++;
    for (let k = 0; k <= this.maxChars; k++) this.countStart[k + 1]! += this.countStart[k]!;
    this.byCount = new Int32Array(this.countStart[this.maxChars + 1]!);
    const at = this.countStart.slice(0, -1);
    counts.forEach((c, id) => {
      if (c >= 0) this.byCount[at[c]!++] = id;
    });
  }

  /** The plain tokens of at most `k` characters (shared: copy before changing). */
  maskUpTo(k: number): TokenMask {
    k = Math.min(k, this.maxChars);
    for (let j = this.upTo.length; j <= k; j++) {
      const mask = j === 0 ? new Uint32Array(Math.ceil(this.rest.vocabSize / 32)) : this.upTo[j - 1]!.slice();
      for (let t = this.countStart[j]!; t < this.countStart[j + 1]!; t++) {
        const id = this.byCount[t]!;
        mask[id >>> 5]! |= 1 << (id & 31);
      }
      this.upTo.push(mask);
    }
    return this.upTo[k]!;
  }
}

/**
 * The number of characters of a plain token, or -1 (not of the class, or too long). A token may end
 * partway through a character (byte-level vocabularies split multi-byte characters): every
 * character that can complete it is of the class (all of them are past U+007F), so it counts as one
 * more character, allowed exactly where one more plain character is.
 */
function plainChars(bytes: Uint8Array): number {
  let chars = 0;
  for (let i = 0; i < bytes.length; chars++) {
    const b = bytes[i]!;
    let cp: number;
    let n: number;
    if (b < 0x80) [cp, n] = [b, 1];
    else if (b >= 0xc2 && b <= 0xdf) [cp, n] = [b & 0x1f, 2];
    else if (b >= 0xe0 && b <= 0xef) [cp, n] = [b & 0x0f, 3];
    else if (b >= 0xf0 && b <= 0xf4) [cp, n] = [b & 0x07, 4];
    else return -1;
    const have = Math.min(n, bytes.length - i);
    for (let j = 1; j < have; j++) {
      const c = bytes[i + j]!;
      if ((c & 0xc0) !== 0x80) return -1;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (have < n) {
      // The code points this prefix may still become: some must be a character (not overlong, not
      // past U+10FFFF, not all surrogates), as the automaton's partial-character rule requires.
      const shift = 6 * (n - have);
      const lo = Math.max(cp * 2 ** shift, MIN_CODE_POINT[n]!);
      const hi = Math.min(cp * 2 ** shift + 2 ** shift - 1, 0x10ffff);
      if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) return -1;
      chars++;
      break;
    }
    if (cp < MIN_CODE_POINT[n]! || cp > 0x10ffff || !rangesContain(PLAIN_CLASS, cp)) return -1;
    i += n;
  }
  return chars > MAX_PLAIN_CHARS ? -1 : chars;
}

const plainSplits = new WeakMap<TokenTrie, PlainTokens>();

/** The plain split of a vocabulary, built once per trie. */
export function plainTokens(vocabulary: ConstraintVocabulary): PlainTokens {
  let split = plainSplits.get(vocabulary.trie);
  if (!split) plainSplits.set(vocabulary.trie, (split = new PlainTokens(vocabulary.pieces)));
  return split;
}

/** What a constraint needs of the model's vocabulary. */
export interface ConstraintVocabulary {
  trie: TokenTrie;
  /** Token id -> its bytes (null for tokens never allowed). */
  pieces: ReadonlyArray<Uint8Array | null>;
  /** Tokens that end generation: allowed exactly when the grammar is complete. */
  endTokens: readonly number[];
}

/** A constrained generation that broke its grammar: a bug, never the model's fault. */
export class GrammarViolationError extends GrammarError {
  override name = 'GrammarViolationError';
}

/**
 * A grammar compiled for one vocabulary: its automaton (built lazily, byte by byte) and the mask of
 * each automaton state met so far. Shared by every generation under the same grammar (see
 * src/engine/generate/constraint.ts), so a schema sent again costs map lookups, not trie walks.
 */
export class CompiledGrammar {
  readonly automaton: GrammarAutomaton;
  private readonly masks = new Map<number, TokenMask>();

  constructor(
    grammar: Grammar,
    readonly vocabulary: ConstraintVocabulary,
    /** Masks kept at most (each is vocabulary / 8 bytes: 19 KB for 152k tokens); then the cache starts over. */
    private readonly maxMasks = Infinity,
  ) {
    this.automaton = new GrammarAutomaton(grammar, PLAIN_CLASS);
  }

  /**
   * How many plain characters in a row the grammar allows from `state` (at most `cap`) when each
   * of them leads to the same state whichever it is, so that exactly the plain tokens of at most
   * that many characters are allowed; -1 when that is not so (the mask then walks every token).
   */
  private plainRun(state: number, cap: number): number {
    let at = state;
    for (let k = 0; k < cap; k++) {
      const next = this.automaton.classStep(at);
      if (next === REJECT) return k;
      if (next === NOT_UNIFORM) return -1;
      // A state that stays itself (a string without a length bound) allows any number.
      if (next === at) return cap;
      at = next;
    }
    return cap;
  }

  /** The tokens allowed in `state` (end-of-generation tokens when it is accepting). Do not modify it. */
  mask(state: number): TokenMask {
    let mask = this.masks.get(state);
    if (!mask) {
      const plain = plainTokens(this.vocabulary);
      const run = this.plainRun(state, plain.maxChars);
      mask = run < 0 ? grammarMask(this.automaton, state, this.vocabulary.trie) : grammarMask(this.automaton, state, plain.rest, plain.maskUpTo(run).slice());
      if (this.automaton.accepting(state)) for (const id of this.vocabulary.endTokens) mask[id >>> 5]! |= 1 << (id & 31);
      if (this.masks.size >= this.maxMasks) this.masks.clear();
      this.masks.set(state, mask);
    }
    return mask;
  }
}

/**
 * One generation under a grammar: the allowed tokens now, and the matcher advanced by each token
 * taken. Masks come from the CompiledGrammar, which may be shared with other generations.
 */
export class GrammarConstraint {
  private readonly compiled: CompiledGrammar;
  private state: number;

  constructor(grammar: Grammar | CompiledGrammar, vocabulary?: ConstraintVocabulary) {
    if (grammar instanceof CompiledGrammar) this.compiled = grammar;
    else if (vocabulary) this.compiled = new CompiledGrammar(grammar, vocabulary);
    else throw new TypeError('GrammarConstraint: a Grammar needs its vocabulary');
    this.state = this.compiled.automaton.start;
  }

  /** True when the output so far is a whole sentence of the grammar. */
  get complete(): boolean {
    return this.compiled.automaton.accepting(this.state);
  }

  /** True when the grammar allows more text after the output so far. */
  get canContinue(): boolean {
    return this.compiled.automaton.canContinue(this.state);
  }

  /** The tokens allowed next (end-of-generation tokens when complete). Do not modify it. */
  allowed(): TokenMask {
    return this.compiled.mask(this.state);
  }

  /** Advances past `token`; throws GrammarViolationError when the grammar does not allow it. */
  accept(token: number): void {
    const { endTokens, pieces } = this.compiled.vocabulary;
    if (endTokens.includes(token)) {
      if (!this.complete) throw new GrammarViolationError(`token ${token} ends generation before the grammar is complete`, { token });
      return;
    }
    const piece = pieces[token];
    const next = piece && piece.length > 0 ? this.compiled.automaton.walk(this.state, piece) : REJECT;
    if (next === REJECT) throw new GrammarViolationError(`token ${token} is not allowed by the grammar here`, { token });
    this.state = next;
  }
}
