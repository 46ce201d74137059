/**
 * Which tokens of a vocabulary a grammar allows next. The vocabulary's byte strings go into a
 * trie once (laid out in preorder with each node's subtree end, so the walk is one flat loop and a
 * rejected prefix skips its whole subtree); a mask is the trie walked through the grammar's byte
 * automaton, and is kept per automaton state, so a state met again (inside a JSON string, after
 * each comma, ...) costs a map lookup.
 */
import { GrammarError, type Grammar } from './grammar.ts';
import { GrammarAutomaton, REJECT } from './automaton.ts';

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

/** The tokens a trie walk from `state` allows (end-of-generation tokens not included). */
export function grammarMask(automaton: GrammarAutomaton, state: number, trie: TokenTrie): TokenMask {
  const mask = new Uint32Array(Math.ceil(trie.vocabSize / 32));
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

/** What a constraint needs of the model's vocabulary. */
export interface ConstraintVocabulary {
  trie: TokenTrie;
  /** Token id -> its bytes (null for tokens never allowed). */
  pieces: ReadonlyArray<Uint8Array | null>;
  /** Tokens that end generation: allowed exactly when the grammar is complete. */
  endTokens: readonly number[];
}

/** A constrained generation that broke its grammar: a bug, never the model's fault. */
export class GrammarViolationError extends GrammarError {}

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
    this.automaton = new GrammarAutomaton(grammar);
  }

  /** The tokens allowed in `state` (end-of-generation tokens when it is accepting). Do not modify it. */
  mask(state: number): TokenMask {
    let mask = this.masks.get(state);
    if (!mask) {
      mask = grammarMask(this.automaton, state, this.vocabulary.trie);
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
