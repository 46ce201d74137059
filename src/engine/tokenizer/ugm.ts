/**
 * SentencePiece unigram tokenization (T5, Flan-T5: `tokenizer.ggml.model` = "t5"), as llama.cpp's
 * llm_tokenizer_ugm does it, on UTF-8 byte strings (bytes.ts):
 *
 * 1. Normalization, one prefix at a time: a prefix along the user-defined tokens' trie is kept as it
 *    is; else the longest prefix found in the precompiled charsmap (SentencePiece's
 *    XOR-compressed double array, with NUL-terminated replacements after it) is replaced; else one
 *    UTF-8 character is kept (a byte that starts no valid one becomes U+FFFD). Spaces become U+2581;
 *    with remove_extra_whitespaces runs of spaces collapse and every word gets one in front (none at
 *    the end), with add_space_prefix the text gets one in front (or at the end, when whitespace is a
 *    suffix).
 * 2. The unigram Viterbi over the normalized bytes: at each character start, every vocabulary token
 *    (normal, user-defined at score 0, unused) that matches from there extends the best path; a
 *    character no token covers whole costs the unknown token at (lowest normal score - 10). Then
 *    back from the end, runs of unknown tokens merged into one.
 * There is no byte fallback: llama.cpp's UGM maps what no token covers to <unk>.
 */
import { TokenizeError, TokenizerLoadError } from './errors.ts';
import { ATTR } from './vocab.ts';

const ESCAPED_SPACE = '\xE2\x96\x81'; // U+2581 as UTF-8 bytes
const REPLACEMENT = '\xEF\xBF\xBD'; // U+FFFD as UTF-8 bytes
/** Bytes in a UTF-8 sequence by its first byte's high nibble (continuation bytes count as 1). */
const UTF8_LEN = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
const UNKNOWN_PENALTY = 10;

/** A byte trie: children by byte, and the token ending here. */
class ByteTrie {
  readonly children = new Map<number, ByteTrie>();
  value = -1;

  insert(key: string, value: number): void {
    let node: ByteTrie = this;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      let next = node.children.get(c);
      if (!next) node.children.set(c, (next = new ByteTrie()));
      node = next;
    }
    node.value = value;
  }

  /** Length of the longest path from the root that `text` follows from `start` (a key or not, as llama.cpp's naive_trie). */
  longestPath(text: string, start: number): number {
    let node: ByteTrie | undefined = this;
    let i = start;
    while (i < text.length && (node = node.children.get(text.charCodeAt(i)))) i++;
    return i - start;
  }
}

/**
 * A read-only view of the precompiled charsmap: u32 LE blob size, the XCDA entries (each a u32:
 * BASE in bits 10-30, shifted left by 8 when bit 9 is set; LEAF in bit 8; LCHECK in bits 0-7 and
 * 31; a value node's index into the replacements in bits 0-30), then the replacement strings.
 */
export class Charsmap {
  private readonly nodes: Uint32Array;
  private readonly replacements: string;

  constructor(bytes: Uint8Array) {
    if (bytes.length < 4) throw new TokenizerLoadError('precompiled_charsmap too small for xcda_blob_size header!', { key: 'tokenizer.ggml.precompiled_charsmap' });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const blob = view.getUint32(0, true);
    if (blob + 4 >= bytes.length) throw new TokenizerLoadError('Index out of array bounds in precompiled charsmap!', { key: 'tokenizer.ggml.precompiled_charsmap' });
    this.nodes = new Uint32Array(blob >>> 2);
    for (let i = 0; i < this.nodes.length; i++) this.nodes[i] = view.getUint32(4 + 4 * i, true);
    let r = '';
    for (let i = 4 + blob; i < bytes.length; i++) r += String.fromCharCode(bytes[i]!);
    this.replacements = r;
  }

  private node(i: number): number {
    if (i >= this.nodes.length) throw new TokenizeError('Index out of array bounds in XCDA array!', { index: i });
    return this.nodes[i]!;
  }

  private base(i: number): number {
    const n = this.node(i);
    return ((n >>> 10) << ((n & (1 << 9)) >>> 6)) >>> 0;
  }

  /** The longest prefix of `text` from `start` with a replacement: [length, replacement], or undefined. */
  match(text: string, start: number): [number, string] | undefined {
    if (this.nodes.length === 0) return undefined;
    let length = 0;
    let offset = 0;
    let index = this.base(0);
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0) break;
      index = (index ^ c) >>> 0;
      const n = this.node(index);
      if ((n & 0x800000ff) >>> 0 !== c) break;
      const leaf = ((n >>> 8) & 1) === 1;
      index = (index ^ this.base(index)) >>> 0;
      if (leaf) {
        length = i - start + 1;
        offset = this.node(index) & 0x7fffffff;
      }
    }
    if (length === 0) return undefined;
    if (offset >= this.replacements.length) throw new TokenizeError('Index out of array bounds in precompiled charsmap!', { offset });
    const end = this.replacements.indexOf('\0', offset);
    if (end < 0) throw new TokenizeError('Unterminated string in precompiled charsmap!', { offset });
    return [length, this.replacements.slice(offset, end)];
  }
}

export interface UgmVocab {
  /** Token texts as UTF-8 byte strings. */
  tokenBytes: readonly string[];
  scores: Float32Array;
  attrs: Uint16Array;
  unk: number | null;
  charsmap: Uint8Array | undefined;
  addSpacePrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  treatWhitespaceAsSuffix: boolean;
}

/** The length in bytes of the valid UTF-8 sequence at `i` by llama.cpp's lenient rules, or 0. */
function utf8SequenceLength(text: string, i: number): number {
  const b = text.charCodeAt(i);
  if ((b & 0x80) === 0) return 1;
  const n = (b & 0x40) === 0 ? 0 : (b & 0x20) === 0 ? 2 : (b & 0x10) === 0 ? 3 : (b & 0x08) === 0 ? 4 : 0;
  if (n === 0 || i + n > text.length) return 0;
  for (let k = 1; k < n; k++) if ((text.charCodeAt(i + k) & 0xc0) !== 0x80) return 0;
  return n;
}

export class UgmModel {
  private readonly tokens = new ByteTrie();
  private readonly userDefined = new ByteTrie();
  private readonly charsmap: Charsmap | undefined;
  private readonly unknownScore: number;
  private readonly scores: Float32Array;
  private readonly isUserDefined: Uint8Array;

  constructor(private readonly v: UgmVocab) {
    this.charsmap = v.charsmap && v.charsmap.length > 0 ? new Charsmap(v.charsmap) : undefined;
    this.scores = v.scores;
    this.isUserDefined = new Uint8Array(v.attrs.length);
    let minScore = 3.4028234663852886e38;
    v.attrs.forEach((attr, id) => {
      if (attr & ATTR.NORMAL) minScore = Math.min(minScore, v.scores[id]!);
      if (attr & (ATTR.NORMAL | ATTR.USER_DEFINED | ATTR.UNUSED)) this.tokens.insert(v.tokenBytes[id]!, id);
      if (attr & ATTR.USER_DEFINED) {
        this.userDefined.insert(v.tokenBytes[id]!, id);
        this.isUserDefined[id] = 1;
      }
    });
    this.unknownScore = Math.fround(minScore - UNKNOWN_PENALTY);
  }

  /** Normalized form of a byte string (step 1). */
  normalize(input: string): string {
    const v = this.v;
    const space = v.escapeWhitespaces ? ESCAPED_SPACE : ' ';
    const prepend = !v.treatWhitespaceAsSuffix && v.addSpacePrefix;
    const append = v.treatWhitespaceAsSuffix && v.addSpacePrefix;
    const merge = v.removeExtraWhitespaces;
    let out = '';
    let prepended = false;
    let inWord = false;
    for (let i = 0; i < input.length; ) {
      let piece: string;
      let consumed: number;
      const user = this.userDefined.longestPath(input, i);
      const mapped = user > 0 ? undefined : this.charsmap?.match(input, i);
      if (user > 0) {
        piece = input.slice(i, i + user);
        consumed = user;
      } else if (mapped) {
        [consumed, piece] = mapped;
      } else {
        consumed = utf8SequenceLength(input, i);
        piece = consumed > 0 ? input.slice(i, i + consumed) : REPLACEMENT;
        if (consumed === 0) consumed = 1;
      }
      for (let k = 0; k < piece.length; k++) {
        const c = piece[k]!;
        if (c !== ' ') {
          if (!inWord) {
            inWord = true;
            if ((prepend && !prepended) || merge) {
              out += space;
              prepended = true;
            }
          }
          out += c;
        } else {
          inWord = false;
          if (!merge) out += space;
        }
      }
      i += consumed;
    }
    if (append) out += space;
    return out;
  }

  /** Appends the tokens of a byte string (llm_tokenizer_ugm_session::tokenize). */
  tokenize(input: string, out: number[]): void {
    const text = this.normalize(input);
    const n = text.length;
    if (n === 0) return;
    const unk = this.v.unk;
    if (unk === null) throw new TokenizeError('the vocab has no unknown token, which UGM tokenization needs', {});
    const best = new Float64Array(n + 1).fill(-Number.MAX_VALUE);
    const bestToken = new Int32Array(n + 1).fill(unk);
    const bestFrom = new Int32Array(n + 1);
    best[0] = 0;
    for (let i = 0; i < n; ) {
      const charLen = Math.min(UTF8_LEN[text.charCodeAt(i) >> 4]!, n - i);
      const base = best[i]!;
      let wholeChar = false;
      let node = this.tokens.children.get(text.charCodeAt(i));
      let end = i + 1;
      while (node) {
        if (node.value >= 0) {
          if (end - i === charLen) wholeChar = true;
          const id = node.value;
          const score = base + (this.isUserDefined[id] ? 0 : this.scores[id]!);
          if (score > best[end]!) {
            best[end] = score;
            bestToken[end] = id;
            bestFrom[end] = i;
          }
        }
        if (end >= n) break;
        node = node.children.get(text.charCodeAt(end++));
      }
      if (!wholeChar) {
        const score = base + this.unknownScore;
        const e = i + charLen;
        if (score > best[e]!) {
          best[e] = score;
          bestToken[e] = unk;
          bestFrom[e] = i;
        }
      }
      i += charLen;
    }
    const reversed: number[] = [];
    let prevUnknown = false;
    for (let at = n; ; at = bestFrom[at]!) {
      const id = bestToken[at]!;
      const isUnknown = id === unk;
      if (!(prevUnknown && isUnknown)) reversed.push(id);
      if (bestFrom[at] === 0) break;
      prevUnknown = isUnknown;
    }
    for (let k = reversed.length - 1; k >= 0; k--) out.push(reversed[k]!);
  }
}
