/**
 * Byte-level BPE by merge ranks (llama.cpp's llm_tokenizer_bpe_session), applied to one pre-token
 * ("word") at a time: start from the word's characters, repeatedly merge the adjacent pair with
 * the lowest merge rank (the leftmost on ties), then spell each symbol as its token or as byte
 * tokens.
 *
 * Words and merges are spelled as the vocab is: for GPT-2-style vocabs, in the byte-to-character
 * alphabet (one char per byte: each char is a symbol); for SentencePiece-style BPE (Gemma 4), as
 * text, either well-formed JS strings (symbols are code points) or UTF-8 byte strings (symbols cut
 * at lead bytes, as llama.cpp does, for words that are not valid UTF-8).
 *
 * Speed: whole words are cached, and inside a word symbols are small integers: each distinct
 * symbol text is interned once, and each pair of symbols is looked up in the merge table once and
 * remembered (rank and the merged symbol), so the merge loops do no string work on text they have
 * seen before. The memo is per tokenizer and bounded.
 */
import { utf8ByteString } from './bytes.ts';
import { utf8SeqLen } from './unicode.ts';

export interface BpeOptions {
  /** Token text (in the spelling below) -> id. */
  textToId: ReadonlyMap<string, number>;
  /** Merges as stored in `tokenizer.ggml.merges`, already in the spelling below. */
  merges: readonly string[];
  /** How words are spelled: GPT-2 byte characters, JS text, or UTF-8 byte strings. */
  spelling: 'byte-chars' | 'unicode' | 'bytes';
  /** llama.cpp's ignore_merges: a word that is a token is that token. */
  ignoreMerges: boolean;
  /** Gemma 4: a word of newlines that is a token is that token. */
  newlineWordsWhole: boolean;
  /** Token for a byte a symbol falls back to; undefined when the vocab has none (it is then dropped). */
  byteFallback(byte: number): number | undefined;
  /** Words with more symbols than this merge with a heap instead of by scanning (default 24). */
  longWordThreshold?: number;
}

const WORD_CACHE_LIMIT = 1 << 16;
const SYMBOL_LIMIT = 1 << 18;
const UNKNOWN = -2;

export class BpeModel {
  /** "left right" -> rank. The first of duplicate merges wins, as with std::unordered_map::emplace. */
  private readonly ranks = new Map<string, number>();
  private cache = new Map<string, readonly number[]>();

  // Interned symbols: text, and the token it is (UNKNOWN until asked, -1 for none).
  private symText: string[] = [];
  private symToken: number[] = [];
  private symIndex = new Map<string, number>();
  // Memoized pairs: for a left symbol, right symbol -> index into pairRank / pairMerged.
  private pairIndex: Array<Map<number, number> | undefined> = [];
  private pairRank: number[] = [];
  private pairMerged: number[] = [];

  constructor(private readonly opts: BpeOptions) {
    const { merges } = opts;
    // Backwards, so that the first of duplicates is the one left. llama.cpp splits at the first
    // space after the first byte; a merge without one keys the empty pair, which no lookup asks for.
    for (let i = merges.length - 1; i >= 0; i--) {
      const merge = merges[i]!;
      if (merge.indexOf(' ', 1) >= 0) this.ranks.set(merge, i);
    }
  }

  /** Appends the ids of one word. */
  encodeWord(word: string, out: number[]): void {
    if (word.length === 0) return;
    const cached = this.cache.get(word);
    if (cached) {
      for (const id of cached) out.push(id);
      return;
    }
    const ids: number[] = [];
    this.encodeUncached(word, ids);
    if (this.cache.size >= WORD_CACHE_LIMIT) this.cache = new Map();
    this.cache.set(word, ids);
    for (const id of ids) out.push(id);
  }

  private encodeUncached(word: string, out: number[]): void {
    const { textToId } = this.opts;
    if (this.opts.ignoreMerges || this.opts.newlineWordsWhole) {
      const whole = textToId.get(word);
      if (whole !== undefined && (this.opts.ignoreMerges || /^\n+$/.test(word))) {
        out.push(whole);
        return;
      }
    }
    if (this.symText.length > SYMBOL_LIMIT) this.resetSymbols();
    const symbols = this.symbolsOf(word);
    const merged = symbols.length > (this.opts.longWordThreshold ?? 24) ? this.mergeLong(symbols) : this.mergeShort(symbols);
    for (const sym of merged) {
      let id = this.symToken[sym]!;
      if (id === UNKNOWN) {
        id = textToId.get(this.symText[sym]!) ?? -1;
        this.symToken[sym] = id;
      }
      if (id >= 0) out.push(id);
      else this.spellBytes(this.symText[sym]!, out);
    }
  }

  private resetSymbols(): void {
    this.symText = [];
    this.symToken = [];
    this.symIndex = new Map();
    this.pairIndex = [];
    this.pairRank = [];
    this.pairMerged = [];
  }

  private intern(text: string): number {
    let id = this.symIndex.get(text);
    if (id === undefined) {
      id = this.symText.length;
      this.symText.push(text);
      this.symToken.push(UNKNOWN);
      this.symIndex.set(text, id);
    }
    return id;
  }

  /** Index of the memoized pair (left, right): its rank (-1: no merge) and merged symbol. */
  private pair(left: number, right: number): number {
    let byRight = this.pairIndex[left];
    if (!byRight) {
      byRight = new Map();
      this.pairIndex[left] = byRight;
    }
    let index = byRight.get(right);
    if (index === undefined) {
      const l = this.symText[left]!;
      const r = this.symText[right]!;
      const rank = this.ranks.get(l + ' ' + r) ?? -1;
      index = this.pairRank.length;
      this.pairRank.push(rank);
      this.pairMerged.push(rank >= 0 ? this.intern(l + r) : -1);
      byRight.set(right, index);
    }
    return index;
  }

  /** A symbol that is not a token becomes its bytes' tokens (llama.cpp drops bytes it finds none for). */
  private spellBytes(sym: string, out: number[]): void {
    if (this.opts.spelling === 'byte-chars') {
      // llama.cpp looks each UTF-8 byte of the encoded symbol up as a one-byte string: only ASCII
      // chars can match a token that way; the others (encoded as two bytes) find nothing.
      for (let j = 0; j < sym.length; j++) {
        const c = sym.charCodeAt(j);
        if (c < 0x80) {
          const id = this.opts.textToId.get(sym[j]!);
          if (id !== undefined) out.push(id);
        }
      }
    } else {
      const bytes = this.opts.spelling === 'unicode' ? utf8ByteString(sym) : sym;
      for (let j = 0; j < bytes.length; j++) {
        const id = this.opts.byteFallback(bytes.charCodeAt(j));
        if (id !== undefined) out.push(id);
      }
    }
  }

  private symbolsOf(word: string): number[] {
    const { spelling } = this.opts;
    const out: number[] = [];
    for (let i = 0; i < word.length; ) {
      const c = word.charCodeAt(i);
      // Every char of a GPT-2-encoded word is in U+0021..U+0143: one UTF-8 character each.
      const l =
        spelling === 'byte-chars'
          ? 1
          : spelling === 'unicode'
            ? c >= 0xd800 && c <= 0xdbff && i + 1 < word.length
              ? 2
              : 1
            : Math.min(utf8SeqLen(c), word.length - i);
      out.push(this.intern(l === 1 ? word[i]! : word.substr(i, l)));
      i += l;
    }
    return out;
  }

  /** Quadratic but allocation-light: for the short words that are nearly all of them. */
  private mergeShort(symbols: number[]): number[] {
    const pairs: number[] = new Array(Math.max(symbols.length - 1, 0));
    for (let i = 0; i + 1 < symbols.length; i++) pairs[i] = this.pair(symbols[i]!, symbols[i + 1]!);
    const { pairRank, pairMerged } = this;
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < pairs.length; i++) {
        const r = pairRank[pairs[i]!]!;
        if (r >= 0 && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) return symbols;
      symbols[best] = pairMerged[pairs[best]!]!;
      symbols.splice(best + 1, 1);
      pairs.splice(best, 1);
      if (best > 0) pairs[best - 1] = this.pair(symbols[best - 1]!, symbols[best]!);
      if (best < pairs.length) pairs[best] = this.pair(symbols[best]!, symbols[best + 1]!);
    }
  }

  /** Linked symbols and a heap of candidate pairs, as llama.cpp does: for long words. */
  private mergeLong(symbols: number[]): number[] {
    const n = symbols.length;
    const sym = Int32Array.from(symbols);
    const alive = new Uint8Array(n).fill(1);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // Heap of candidate pairs ordered by (rank, left position). A pair is stale once either side
    // has changed symbol; symbols identify texts, so this is llama.cpp's text comparison.
    let cap = 2 * n + 16;
    let hRank = new Int32Array(cap);
    let hLeft = new Int32Array(cap);
    let hRight = new Int32Array(cap);
    let hSymL = new Int32Array(cap);
    let hSymR = new Int32Array(cap);
    let size = 0;
    const before = (a: number, b: number) => hRank[a]! < hRank[b]! || (hRank[a] === hRank[b] && hLeft[a]! < hLeft[b]!);
    const swap = (a: number, b: number) => {
      let t = hRank[a]!;
      hRank[a] = hRank[b]!;
      hRank[b] = t;
      t = hLeft[a]!;
      hLeft[a] = hLeft[b]!;
      hLeft[b] = t;
      t = hRight[a]!;
      hRight[a] = hRight[b]!;
      hRight[b] = t;
      t = hSymL[a]!;
      hSymL[a] = hSymL[b]!;
      hSymL[b] = t;
      t = hSymR[a]!;
      hSymR[a] = hSymR[b]!;
      hSymR[b] = t;
    };
    const add = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const p = this.pair(sym[left]!, sym[right]!);
      const rank = this.pairRank[p]!;
      if (rank < 0) return;
      if (size === cap) {
        cap *= 2;
        const grow = (a: Int32Array) => {
          const b = new Int32Array(cap);
          b.set(a);
          return b;
        };
        hRank = grow(hRank);
        hLeft = grow(hLeft);
        hRight = grow(hRight);
        hSymL = grow(hSymL);
        hSymR = grow(hSymR);
      }
      let i = size++;
      hRank[i] = rank;
      hLeft[i] = left;
      hRight[i] = right;
      hSymL[i] = sym[left]!;
      hSymR[i] = sym[right]!;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!before(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    };
    for (let i = 1; i < n; i++) add(i - 1, i);
    while (size > 0) {
      const left = hLeft[0]!;
      const right = hRight[0]!;
      const symL = hSymL[0]!;
      const symR = hSymR[0]!;
      swap(0, --size);
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < size && before(l, best)) best = l;
        if (r < size && before(r, best)) best = r;
        if (best === i) break;
        swap(i, best);
        i = best;
      }
      if (!alive[left] || !alive[right] || sym[left] !== symL || sym[right] !== symR) continue;
      sym[left] = this.pairMerged[this.pair(symL, symR)]!;
      alive[right] = 0;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      add(prev[left]!, left);
      add(left, next[left]!);
    }
    const out: number[] = [];
    for (let i = 0; i !== -1; i = next[i]!) out.push(sym[i]!);
    return out;
  }
}
