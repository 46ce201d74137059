/**
 * SentencePiece-style BPE by scores (llama.cpp's llm_tokenizer_spm_session): start from UTF-8
 * characters, repeatedly merge the adjacent pair whose concatenation is the highest-scoring token
 * (the leftmost on ties), then spell each remaining symbol as its token or, failing that, as
 * `<0xXX>` byte tokens.
 *
 * Runs on a whole text fragment, not per word, so a fragment of 1 MB is 1M symbols: the symbol
 * list and the priority queue live in typed arrays.
 */
import { cptUtf8 } from './bytes.ts';
import { utf8SeqLen } from './unicode.ts';

/**
 * The vocab in one of two spellings: `unicode` (token texts as JS strings; the text must be well-
 * formed Unicode, and symbols are code points) or `bytes` (token texts as UTF-8 byte strings; any
 * bytes, symbols cut at UTF-8 lead bytes as llama.cpp does). For valid UTF-8 both give the same ids.
 */
export interface SpmVocab {
  readonly mode: 'unicode' | 'bytes';
  readonly textToId: ReadonlyMap<string, number>;
  readonly scores: Float32Array;
  /** Longest token text in this spelling's units: longer pairs cannot be tokens. */
  readonly maxTokenLength: number;
  /** Token for one byte (llama.cpp's byte_to_token); throws when the vocab has none. */
  byteToken(byte: number): number;
  /** Remembered lookups, shared by every call with this vocab. */
  readonly memo: SpmMemo;
  /**
   * True when no token has a U+2581 right after another character (unicode spelling only). Then
   * no merge can cross from a character into a following U+2581, so the text can be tokenized one
   * "▁word" at a time (and each cached) with exactly the ids of the whole-text algorithm.
   */
  readonly segmentable: boolean;
}

const PAIR_LIMIT = 1 << 21;

/**
 * What tokenizing has already looked up: the symbol of each character (its token id, or an id past
 * the vocab for a character without one) and, per pair of symbols, the token their concatenation is
 * (-1 for none). After warm-up, the merge loop does no string work.
 */
export class SpmMemo {
  private chars = new Map<number | string, number>();
  private foreign = new Map<string, number>();
  private pairs: Array<Map<number, number> | undefined> = [];
  private pairCount = 0;
  /** Ids of whole segments (see SpmVocab.segmentable). */
  segments = new Map<string, readonly number[]>();

  constructor(private readonly vocabSize: number) {}

  /** Symbol id of one character. */
  charSymbol(key: number | string, text: string, textToId: ReadonlyMap<string, number>): number {
    let id = this.chars.get(key);
    if (id === undefined) {
      id = textToId.get(text);
      if (id === undefined) {
        id = this.foreign.get(text) ?? this.vocabSize + this.foreign.size;
        this.foreign.set(text, id);
      }
      this.chars.set(key, id);
    }
    return id;
  }

  /** The token left + right is, -1 for none, undefined when not looked up yet. */
  pair(left: number, right: number): number | undefined {
    return this.pairs[left]?.get(right);
  }

  setPair(left: number, right: number, token: number): void {
    if (this.pairCount >= PAIR_LIMIT) {
      this.pairs = [];
      this.pairCount = 0;
    }
    let byRight = this.pairs[left];
    if (!byRight) {
      byRight = new Map();
      this.pairs[left] = byRight;
    }
    byRight.set(right, token);
    this.pairCount++;
  }
}

/** A max-heap of (score, left) with the pair's right index and combined size alongside. */
class BigramQueue {
  private score = new Float64Array(256);
  private left = new Int32Array(256);
  private right = new Int32Array(256);
  private size = new Int32Array(256);
  length = 0;

  clear(): void {
    this.length = 0;
  }

  /** True when entry a comes out before entry b: higher score first, then the leftmost pair. */
  private before(a: number, b: number): boolean {
    const sa = this.score[a]!;
    const sb = this.score[b]!;
    return sa > sb || (sa === sb && this.left[a]! < this.left[b]!);
  }

  private swap(a: number, b: number): void {
    const s = this.score[a]!;
    this.score[a] = this.score[b]!;
    this.score[b] = s;
    const l = this.left[a]!;
    this.left[a] = this.left[b]!;
    this.left[b] = l;
    const r = this.right[a]!;
    this.right[a] = this.right[b]!;
    this.right[b] = r;
    const z = this.size[a]!;
    this.size[a] = this.size[b]!;
    this.size[b] = z;
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.length === this.score.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.score = grow(this.score, (k) => new Float64Array(k));
      this.left = grow(this.left, (k) => new Int32Array(k));
      this.right = grow(this.right, (k) => new Int32Array(k));
      this.size = grow(this.size, (k) => new Int32Array(k));
    }
    let i = this.length++;
    this.score[i] = score;
    this.left[i] = left;
    this.right[i] = right;
    this.size[i] = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top entry, leaving it readable at index `length` (one past the heap). */
  pop(): number {
    const last = --this.length;
    this.swap(0, last);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return last;
  }

  leftAt(i: number): number {
    return this.left[i]!;
  }
  rightAt(i: number): number {
    return this.right[i]!;
  }
  sizeAt(i: number): number {
    return this.size[i]!;
  }
}

const SEGMENT_CACHE_LIMIT = 1 << 16;

// Scratch space reused by every call (tokenization is synchronous, so calls never overlap).
const queue = new BigramQueue();
let scratch = { start: new Int32Array(64), len: new Int32Array(64), prev: new Int32Array(64), next: new Int32Array(64), sym: new Int32Array(64) };
const ESCAPED_SPACE = 0x2581;

/**
 * Tokenizes one text (already space-prefixed and with spaces escaped to U+2581) and appends the
 * ids to `out`.
 */
export function spmTokenize(vocab: SpmVocab, text: string, out: number[]): void {
  if (!vocab.segmentable) {
    spmTokenizeWhole(vocab, text, out);
    return;
  }
  const { memo } = vocab;
  const segment = (from: number, to: number) => {
    const piece = text.slice(from, to);
    let ids = memo.segments.get(piece);
    if (!ids) {
      const fresh: number[] = [];
      spmTokenizeWhole(vocab, piece, fresh);
      if (memo.segments.size >= SEGMENT_CACHE_LIMIT) memo.segments = new Map();
      memo.segments.set(piece, fresh);
      ids = fresh;
    }
    for (const id of ids) out.push(id);
  };
  let from = 0;
  for (let i = 1; i < text.length; i++) {
    if (text.charCodeAt(i) === ESCAPED_SPACE && text.charCodeAt(i - 1) !== ESCAPED_SPACE) {
      segment(from, i);
      from = i;
    }
  }
  if (from < text.length) segment(from, text.length);
}

/** llama.cpp's algorithm on the whole text. */
export function spmTokenizeWhole(vocab: SpmVocab, text: string, out: number[]): void {
  const n = text.length;
  if (n === 0) return;
  // Symbols: one per character (llama.cpp cuts UTF-8 by lead byte, clipped at the end).
  const unicode = vocab.mode === 'unicode';
  // Long texts (a vocab that cannot be segmented) get their own arrays rather than growing the scratch for good.
  if (scratch.start.length < n) {
    const size = Math.max(n, 2 * scratch.start.length);
    const arrays = { start: new Int32Array(size), len: new Int32Array(size), prev: new Int32Array(size), next: new Int32Array(size), sym: new Int32Array(size) };
    if (size <= 1 << 16) scratch = arrays;
    else return tokenizeWith(arrays);
  }
  return tokenizeWith(scratch);

  function tokenizeWith({ start, len, prev, next, sym }: typeof scratch): void {
    const { textToId, scores, maxTokenLength, memo } = vocab;
    let count = 0;
    for (let offs = 0; offs < n; ) {
      const c = text.charCodeAt(offs);
      const l = unicode ? (c >= 0xd800 && c <= 0xdbff && offs + 1 < n ? 2 : 1) : Math.min(utf8SeqLen(c), n - offs);
      const piece = l === 1 ? text[offs]! : text.substr(offs, l);
      sym[count] = memo.charSymbol(unicode ? piece.codePointAt(0)! : piece, piece, textToId);
      start[count] = offs;
      len[count] = l;
      prev[count] = count - 1;
      offs += l;
      next[count] = offs === n ? -1 : count + 1;
      count++;
    }

    queue.clear();
    const tryAdd = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const size = len[left]! + len[right]!;
      if (size > maxTokenLength) return;
      let id = memo.pair(sym[left]!, sym[right]!);
      if (id === undefined) {
        id = textToId.get(text.substr(start[left]!, size)) ?? -1;
        memo.setPair(sym[left]!, sym[right]!, id);
      }
      if (id < 0) return;
      queue.push(scores[id]!, left, right, size);
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);

    while (queue.length > 0) {
      const top = queue.pop();
      const left = queue.leftAt(top);
      const right = queue.rightAt(top);
      // Stale when either side has merged since: sizes only grow, so the sum tells.
      if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== queue.sizeAt(top)) continue;
      sym[left] = memo.pair(sym[left]!, sym[right]!) ?? textToId.get(text.substr(start[left]!, queue.sizeAt(top)))!;
      len[left] = len[left]! + len[right]!;
      len[right] = 0;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      tryAdd(prev[left]!, left);
      tryAdd(left, next[left]!);
    }

    // Every merged symbol is a token (a pair is only queued when it is one), so what is left to
    // resegment are single characters without a token of their own: they become byte tokens.
    const vocabSize = scores.length;
    for (let i = 0; i !== -1; i = next[i]!) {
      const id = sym[i]!;
      if (id < vocabSize) {
        out.push(id);
      } else {
        const piece = text.substr(start[i]!, len[i]!);
        const bytes = unicode ? cptUtf8(piece.codePointAt(0)!) : piece;
        for (let j = 0; j < bytes.length; j++) out.push(vocab.byteToken(bytes.charCodeAt(j)));
      }
    }
  }
}
