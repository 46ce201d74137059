/**
 * Text <-> token ids exactly as llama.cpp does it for the same GGUF file (llama_tokenize /
 * llama_detokenize): SentencePiece-style vocabs (`tokenizer.ggml.model` = "llama": Llama 2,
 * Mistral, Phi-3, Gemma 1-3) and byte-level BPE ("gpt2": Llama 3, Qwen2.5, Granite, ...; and
 * "gemma4", a BPE on raw UTF-8), with the pre-tokenizer that `tokenizer.ggml.pre` names, and
 * SentencePiece unigram vocabs ("t5": T5, Flan-T5; ugm.ts).
 *
 * Text is handled as UTF-8 bytes, as in llama.cpp. A JS string is encoded with TextEncoder, so a
 * lone surrogate becomes U+FFFD: `encode(s)` equals llama.cpp on `new TextEncoder().encode(s)`.
 * Raw bytes (a Uint8Array) are tokenized as they are, invalid UTF-8 included.
 */
import { BpeModel } from './bpe.ts';
import { bytesToByteString, byteStringToBytes, cptUtf8, isAscii, utf8ByteString } from './bytes.ts';
import { SpaceCleaner, cleanSpaces } from './decode.ts';
import { TokenizeError } from './errors.ts';
import { PRE_TOKENIZER_REGEXES, PreTokenizer } from './pre-tokenizers.ts';
import { SpecialPartitioner, type SpecialToken } from './special.ts';
import { SpmMemo, spmTokenize, type SpmVocab } from './spm.ts';
import { UgmModel } from './ugm.ts';
import { BYTE_TO_UNICODE, UNICODE_TO_BYTE, decodeUtf8Lenient } from './unicode.ts';
import { ATTR, loadVocab, type SpecialTokens, type TokenizerMetadata, type Vocab, type VocabFlags, type VocabType } from './vocab.ts';

export interface EncodeOptions {
  /** Add BOS/EOS as the vocab asks (`tokenizer.ggml.add_bos_token` / `add_eos_token`). Default false. */
  addSpecial?: boolean;
  /** Text of control tokens (e.g. "<|im_start|>") becomes those tokens. Default false: it is plain text. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop a leading BOS and a trailing EOS where the vocab adds them. Default false. */
  removeSpecial?: boolean;
  /** Render control and unknown tokens as their text. Default false: they decode to nothing. */
  unparseSpecial?: boolean;
  /**
   * Control tokens rendered as their text even without `unparseSpecial` (llama.cpp's preserved
   * tokens: a tool-call marker such as Mistral's `[TOOL_CALLS]` that the reply's parser must see).
   */
  unparseTokens?: ReadonlySet<number>;
}

const ESCAPED_SPACE = '\u2581';
const ESCAPED_SPACE_BYTES = '\xE2\x96\x81'; // U+2581 as UTF-8 bytes
const ATTR_SPECIAL = ATTR.UNKNOWN | ATTR.CONTROL;
const textDecoder = new TextDecoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A token text's UTF-8 as a byte string; fast for the short strings vocabularies are made of. */
function tokenBytes(text: string): string {
  if (isAscii(text)) return text;
  try {
    return unescape(encodeURIComponent(text));
  } catch {
    return utf8ByteString(text); // lone surrogates: encodeURIComponent refuses them
  }
}

/** Bytes -> text when they are valid UTF-8, else undefined. */
function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** Lone surrogates -> U+FFFD, which is what TextEncoder makes of them. */
function wellFormed(text: string): string {
  return LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATES, '\uFFFD') : text;
}

function codePoints(text: string): Uint32Array {
  const out = new Uint32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      out[n++] = text.codePointAt(i)!;
      i++;
    } else {
      out[n++] = c;
    }
  }
  return n === out.length ? out : out.subarray(0, n);
}

/**
 * Text is handled in one of two spellings: well-formed JS strings ("unicode": every string input,
 * and byte input that is valid UTF-8) and byte strings ("bytes": byte input with invalid UTF-8,
 * tokenized byte for byte as llama.cpp does). The byte spelling's tables are built only when first
 * needed.
 */
type Spelling = 'unicode' | 'bytes';

export class Tokenizer {
  readonly vocab: Vocab;
  private readonly pre: PreTokenizer | undefined;
  private readonly bpe: BpeModel | undefined;
  private bpeBytes: BpeModel | undefined;
  private readonly spm: SpmVocab | undefined;
  private spmBytes: SpmVocab | undefined;
  private readonly ugm: UgmModel | undefined;
  private readonly specials: Array<SpecialToken & { bytes: string }>;
  private readonly partitioner: SpecialPartitioner;
  private partitionerBytes: SpecialPartitioner | undefined;
  /** Detokenized piece of each token with special = true, as a byte string; filled on demand. */
  private readonly pieces: Array<string | undefined>;
  private readonly byteEncoded: boolean;

  private constructor(vocab: Vocab) {
    this.vocab = vocab;
    const { tokens, attrs, tokenToId } = vocab;
    const n = tokens.length;
    this.pieces = new Array(n);

    if (vocab.type === 'spm') {
      let maxTokenLength = 0;
      for (let i = 0; i < n; i++) if (tokens[i]!.length > maxTokenLength) maxTokenLength = tokens[i]!.length;
      this.spm = this.spmVocab('unicode', tokenToId, maxTokenLength);
      this.byteEncoded = false;
    } else if (vocab.type === 'ugm') {
      this.ugm = new UgmModel({
        tokenBytes: tokens.map(tokenBytes),
        scores: vocab.scores,
        attrs,
        unk: vocab.special.unk,
        charsmap: vocab.precompiledCharsmap,
        addSpacePrefix: vocab.flags.addSpacePrefix,
        removeExtraWhitespaces: vocab.flags.removeExtraWhitespaces,
        escapeWhitespaces: vocab.flags.escapeWhitespaces,
        // llama.cpp reads no key for it: always off.
        treatWhitespaceAsSuffix: false,
      });
      this.byteEncoded = false;
    } else {
      const spec = PRE_TOKENIZER_REGEXES[vocab.preKind];
      if (!spec) throw new Error(`no regexes for pre-tokenizer kind ${vocab.preKind}`);
      this.pre = new PreTokenizer(vocab.preKind, spec);
      this.byteEncoded = spec.byteEncode;
      this.bpe = this.bpeModel(this.byteEncoded ? 'byte-chars' : 'unicode', tokenToId, vocab.merges);
    }

    this.specials = [];
    for (let id = 0; id < n; id++) {
      if (attrs[id]! & (ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN)) {
        const text = tokens[id]!;
        this.specials.push({ id, text, bytes: tokenBytes(text), attr: attrs[id]! });
      }
    }
    // llama.cpp orders them by text length in bytes, longest first.
    this.specials.sort((a, b) => b.bytes.length - a.bytes.length || a.id - b.id);
    this.partitioner = new SpecialPartitioner(this.specials);
  }

  private spmVocab(mode: Spelling, textToId: ReadonlyMap<string, number>, maxTokenLength: number): SpmVocab {
    const byteTokens = byteTokenTable(textToId);
    return {
      mode,
      textToId,
      scores: this.vocab.scores,
      maxTokenLength,
      memo: new SpmMemo(this.vocab.tokens.length),
      segmentable: mode === 'unicode' && !this.vocab.tokens.some((t) => /[^\u2581]\u2581/.test(t)),
      byteToken: (byte) => {
        const id = byteTokens[byte]!;
        if (id < 0) {
          throw new TokenizeError(`the vocab has no token for byte 0x${byte.toString(16).padStart(2, '0')} (llama.cpp fails here too)`, { byte });
        }
        return id;
      },
    };
  }

  private bpeModel(spelling: 'byte-chars' | Spelling, textToId: ReadonlyMap<string, number>, merges: readonly string[]): BpeModel {
    const byteTokens = spelling === 'byte-chars' ? undefined : byteTokenTable(textToId);
    return new BpeModel({
      textToId,
      merges,
      spelling,
      ignoreMerges: this.vocab.flags.ignoreMerges,
      newlineWordsWhole: this.vocab.preKind === 'gemma4',
      byteFallback: (byte) => {
        const id = byteTokens?.[byte];
        return id === undefined || id < 0 ? undefined : id;
      },
    });
  }

  /** The vocab keyed by UTF-8 byte strings, for input that is not valid UTF-8. */
  private byteKeyedTokens(): { map: Map<string, number>; maxLength: number } {
    const map = new Map<string, number>();
    let maxLength = 0;
    this.vocab.tokens.forEach((text, id) => {
      const key = tokenBytes(text);
      map.set(key, id);
      if (key.length > maxLength) maxLength = key.length;
    });
    return { map, maxLength };
  }

  private spmForBytes(): SpmVocab {
    if (!this.spmBytes) {
      const { map, maxLength } = this.byteKeyedTokens();
      this.spmBytes = this.spmVocab('bytes', map, maxLength);
    }
    return this.spmBytes;
  }

  private bpeForBytes(): BpeModel {
    if (!this.bpeBytes) {
      const merges = this.vocab.merges.map((m) => {
        // Convert each side on its own, so the split point stays where llama.cpp puts it.
        const space = m.indexOf(' ', 1);
        return space < 0 ? m : tokenBytes(m.slice(0, space)) + ' ' + tokenBytes(m.slice(space + 1));
      });
      this.bpeBytes = this.bpeModel('bytes', this.byteKeyedTokens().map, merges);
    }
    return this.bpeBytes;
  }

  private partitionerFor(spelling: Spelling): SpecialPartitioner {
    if (spelling === 'unicode') return this.partitioner;
    this.partitionerBytes ??= new SpecialPartitioner(this.specials.map((t) => ({ ...t, text: t.bytes })));
    return this.partitionerBytes;
  }

  /** Builds the tokenizer llama.cpp would build from this GGUF metadata. */
  static fromGgufMetadata(metadata: TokenizerMetadata): Tokenizer {
    return new Tokenizer(loadVocab(metadata));
  }

  get type(): VocabType {
    return this.vocab.type;
  }

  /** Number of tokens in the vocabulary. */
  get size(): number {
    return this.vocab.tokens.length;
  }

  get special(): Readonly<SpecialTokens> {
    return this.vocab.special;
  }

  get flags(): Readonly<VocabFlags> {
    return this.vocab.flags;
  }

  /** What llama.cpp would have warned about while loading this vocab. */
  get warnings(): readonly string[] {
    return this.vocab.warnings;
  }

  /** The token's text as stored in the vocab (with U+2581 for spaces, GPT-2 byte characters, ...). */
  tokenText(id: number): string {
    this.checkId(id);
    return this.vocab.tokens[id]!;
  }

  tokenAttr(id: number): number {
    this.checkId(id);
    return this.vocab.attrs[id]!;
  }

  /** True for tokens that end generation (EOS, EOT, <|im_end|>, <end_of_turn>, ...). */
  isEog(id: number): boolean {
    return this.vocab.eog.has(id);
  }

  isControl(id: number): boolean {
    return (this.tokenAttr(id) & ATTR.CONTROL) !== 0;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.tokens.length) {
      throw new TokenizeError(`token id ${id} is outside the vocabulary (0..${this.vocab.tokens.length - 1})`, { id });
    }
  }

  // --- encode -----------------------------------------------------------------------------------

  /** llama_tokenize(text, add_special, parse_special). */
  encode(text: string | Uint8Array, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecial ?? false;
    const parseSpecial = options.parseSpecial ?? false;
    let input: string;
    let spelling: Spelling = 'unicode';
    if (typeof text === 'string') {
      input = wellFormed(text);
    } else {
      const decoded = strictUtf8(text);
      if (decoded !== undefined) {
        input = decoded;
      } else {
        input = bytesToByteString(text);
        spelling = 'bytes';
      }
    }
    const fragments = this.partitionerFor(spelling).partition(input, parseSpecial);
    const { special, flags } = this.vocab;
    const out: number[] = [];
    if (addSpecial && flags.addBos) out.push(this.required(special.bos, 'BOS'));

    if (this.vocab.type === 'spm') {
      let prevSpecial = true; // a text at the start gets the space prefix
      for (const fragment of fragments) {
        if (fragment.id !== undefined) {
          out.push(fragment.id);
          prevSpecial = true;
          continue;
        }
        let piece = input.slice(fragment.start, fragment.end);
        if (flags.addSpacePrefix && prevSpecial) piece = ' ' + piece;
        prevSpecial = false;
        if (spelling === 'bytes') {
          const decoded = strictUtf8(byteStringToBytes(piece));
          if (decoded === undefined) {
            spmTokenize(this.spmForBytes(), piece.replaceAll(' ', ESCAPED_SPACE_BYTES), out);
            continue;
          }
          piece = decoded;
        }
        spmTokenize(this.spm!, piece.replaceAll(' ', ESCAPED_SPACE), out);
      }
    } else if (this.ugm) {
      // Each text fragment is normalized on its own (so each gets its own space prefix), in bytes.
      for (const fragment of fragments) {
        if (fragment.id !== undefined) {
          out.push(fragment.id);
          continue;
        }
        const piece = input.slice(fragment.start, fragment.end);
        this.ugm.tokenize(spelling === 'unicode' ? utf8ByteString(piece) : piece, out);
      }
    } else {
      for (const fragment of fragments) {
        if (fragment.id !== undefined) {
          out.push(fragment.id);
          continue;
        }
        let piece = input.slice(fragment.start, fragment.end);
        if (flags.escapeWhitespaces) piece = piece.replaceAll(' ', spelling === 'unicode' ? ESCAPED_SPACE : ESCAPED_SPACE_BYTES);
        this.encodeBpeText(spelling === 'unicode' ? codePoints(piece) : decodeUtf8Lenient(piece), out);
      }
    }

    if (addSpecial && flags.addEos) out.push(this.required(special.eos, 'EOS'));
    return out;
  }

  private required(id: number | null, what: string): number {
    if (id === null) throw new TokenizeError(`the vocab asks for a ${what} token but has none`, { what });
    return id;
  }

  /** Pre-tokenizes code points into words and BPE-encodes each. */
  private encodeBpeText(cpts: Uint32Array, out: number[]): void {
    const lengths = this.pre!.split(cpts);
    const encoded = this.byteEncoded;
    let k = 0;
    for (const len of lengths) {
      if (len === 0) continue;
      const end = k + len;
      let word = '';
      if (encoded) {
        for (; k < end; k++) {
          const c = cpts[k]!;
          if (c < 0x80) {
            word += BYTE_TO_UNICODE[c]!;
          } else {
            const utf8 = this.utf8Of(c);
            for (let j = 0; j < utf8.length; j++) word += BYTE_TO_UNICODE[utf8.charCodeAt(j)]!;
          }
        }
        this.bpe!.encodeWord(word, out);
        continue;
      }
      // Raw UTF-8 words (Gemma 4): as JS text, unless a surrogate code point (decoded from invalid
      // input) makes the word's bytes something no JS string spells.
      let surrogate = false;
      for (let j = k; j < end; j++) {
        const c = cpts[j]!;
        if (c >= 0xd800 && c <= 0xdfff) surrogate = true;
        else if (c >= 0x110000) this.utf8Of(c);
      }
      if (!surrogate) {
        for (; k < end; k++) word += String.fromCodePoint(cpts[k]!);
        this.bpe!.encodeWord(word, out);
      } else {
        for (; k < end; k++) word += this.utf8Of(cpts[k]!);
        this.bpeForBytes().encodeWord(word, out);
      }
    }
  }

  private utf8Of(cpt: number): string {
    try {
      return cptUtf8(cpt);
    } catch {
      throw new TokenizeError(`input has a UTF-8 form of code point 0x${cpt.toString(16)}, past U+10FFFF, which llama.cpp cannot tokenize either`, { cpt });
    }
  }

  // --- decode -----------------------------------------------------------------------------------

  /** The piece a token detokenizes to with special = true, as a byte string (llama.cpp's cache). */
  private piece(id: number): string {
    const cached = this.pieces[id];
    if (cached !== undefined) return cached;
    const text = this.vocab.tokens[id]!;
    const attr = this.vocab.attrs[id]!;
    let piece = '';
    if (attr & (ATTR_SPECIAL | ATTR.USER_DEFINED)) {
      piece = tokenBytes(text);
    } else if (attr & ATTR.NORMAL) {
      if (this.vocab.type !== 'bpe' || this.vocab.flags.escapeWhitespaces) {
        piece = tokenBytes(text).replaceAll(ESCAPED_SPACE_BYTES, ' ');
      } else {
        piece = decodeGpt2Text(text);
      }
    } else if (attr & ATTR.BYTE) {
      // strtol(text.substr(3, 2), 16): hex digits until the first non-hex char, 0 if none.
      const hex = /^[0-9a-fA-F]*/.exec(text.slice(3, 5))![0];
      piece = String.fromCharCode(hex ? parseInt(hex, 16) : 0);
    }
    this.pieces[id] = piece;
    return piece;
  }

  /**
   * llama_token_to_piece: the bytes one token stands for. Control and unknown tokens are empty
   * unless `special`; `lstrip` removes up to that many leading spaces.
   */
  tokenToPiece(id: number, options: { special?: boolean; lstrip?: number } = {}): Uint8Array {
    return byteStringToBytes(this.pieceOf(id, options.special ?? false, options.lstrip ?? 0));
  }

  private pieceOf(id: number, special: boolean, lstrip: number): string {
    this.checkId(id);
    if (!special && this.vocab.attrs[id]! & ATTR_SPECIAL) return '';
    let piece = this.piece(id);
    let strip = 0;
    while (strip < lstrip && strip < piece.length && piece.charCodeAt(strip) === 0x20) strip++;
    if (strip) piece = piece.slice(strip);
    return piece;
  }

  /** llama_detokenize(ids, remove_special, unparse_special) as raw bytes. */
  decodeBytes(ids: ArrayLike<number>, options: DecodeOptions = {}): Uint8Array {
    const removeSpecial = options.removeSpecial ?? false;
    const special = options.unparseSpecial ?? false;
    const { flags } = this.vocab;
    let removeSpace = flags.addSpacePrefix;
    let first = 0;
    let last = ids.length;
    if (removeSpecial && flags.addBos && last > 0 && ids[0] === this.vocab.special.bos) {
      removeSpace = false;
      first++;
    }
    if (removeSpecial && flags.addEos && last > first && ids[last - 1] === this.vocab.special.eos) last--;
    let text = '';
    for (let i = first; i < last; i++) {
      text += this.pieceOf(ids[i]!, special || (options.unparseTokens?.has(ids[i]!) ?? false), removeSpace ? 1 : 0);
      removeSpace = false;
    }
    const bytes = byteStringToBytes(text);
    return flags.cleanSpaces ? cleanSpaces(bytes) : bytes;
  }

  /** {@link decodeBytes} as text (invalid UTF-8 becomes U+FFFD, the WHATWG way). */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return textDecoder.decode(this.decodeBytes(ids, options));
  }

  /**
   * A decoder for tokens as they are generated: `push(id)` returns the text that is now final,
   * `flush()` the rest. The concatenation equals `decode(allIds, options)`; a chunk never ends
   * inside a UTF-8 character (nor inside a space the clean-up may still remove).
   */
  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    return new StreamDecoder(this, this.vocab, options, (id, special, lstrip) => this.pieceOf(id, special, lstrip));
  }
}

/** Streaming form of {@link Tokenizer.decode}; see {@link Tokenizer.createStreamDecoder}. */
export class StreamDecoder {
  private readonly decoder = new TextDecoder();
  private readonly cleaner: SpaceCleaner | undefined;
  private readonly removeSpecial: boolean;
  private readonly special: boolean;
  private readonly unparseTokens: ReadonlySet<number> | undefined;
  private started = false;
  private removeSpace: boolean;
  /** The piece of an EOS that would be dropped if it turns out to be the last token. */
  private heldEos: string | undefined;

  /** @internal use Tokenizer.createStreamDecoder */
  constructor(
    readonly tokenizer: Tokenizer,
    private readonly vocab: Vocab,
    options: DecodeOptions,
    private readonly pieceOf: (id: number, special: boolean, lstrip: number) => string,
  ) {
    this.removeSpecial = options.removeSpecial ?? false;
    this.special = options.unparseSpecial ?? false;
    this.unparseTokens = options.unparseTokens;
    this.removeSpace = vocab.flags.addSpacePrefix;
    this.cleaner = vocab.flags.cleanSpaces ? new SpaceCleaner() : undefined;
  }

  /** Adds one token; returns the text that became final (often '', e.g. inside a character). */
  push(id: number): string {
    const { flags, special } = this.vocab;
    if (!this.started) {
      this.started = true;
      if (this.removeSpecial && flags.addBos && id === special.bos) {
        this.removeSpace = false;
        return '';
      }
    }
    const piece = this.pieceOf(id, this.special || (this.unparseTokens?.has(id) ?? false), this.removeSpace ? 1 : 0);
    this.removeSpace = false;
    let bytes = '';
    if (this.heldEos !== undefined) {
      bytes += this.heldEos;
      this.heldEos = undefined;
    }
    if (this.removeSpecial && flags.addEos && id === special.eos) this.heldEos = piece;
    else bytes += piece;
    return this.emit(bytes, false);
  }

  /** Ends the stream (a held trailing EOS is dropped); returns the remaining text. */
  flush(): string {
    this.heldEos = undefined;
    return this.emit('', true);
  }

  private emit(bytes: string, end: boolean): string {
    let data: ArrayLike<number> = byteStringToBytes(bytes);
    if (this.cleaner) {
      const head = this.cleaner.push(data);
      data = end ? head.concat(this.cleaner.end()) : head;
    }
    return this.decoder.decode(Uint8Array.from(data), { stream: !end });
  }
}

/** llama.cpp's byte_to_token for "<0xXX>"-style vocabs: the "<0xXX>" token, else the one-byte token. */
function byteTokenTable(textToId: ReadonlyMap<string, number>): Int32Array {
  const table = new Int32Array(256).fill(-1);
  for (let b = 0; b < 256; b++) {
    const hex = '<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>';
    // A one-byte token text exists only for ASCII (token texts are valid UTF-8).
    table[b] = textToId.get(hex) ?? (b < 0x80 ? textToId.get(String.fromCharCode(b)) : undefined) ?? -1;
  }
  return table;
}

/**
 * A GPT-2-encoded token text back to bytes (llama.cpp's llama_decode_text): each character maps to
 * its byte; one outside the table becomes "[UNK_BYTE_0x<hex>" + the whole text + "]".
 */
function decodeGpt2Text(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const b = cp < UNICODE_TO_BYTE.length ? UNICODE_TO_BYTE[cp]! : -1;
    if (b >= 0) {
      out += String.fromCharCode(b);
      continue;
    }
    const utf8 = tokenBytes(ch);
    let hex = '';
    for (let i = 0; i < utf8.length; i++) hex += utf8.charCodeAt(i).toString(16).padStart(2, '0');
    out += '[UNK_BYTE_0x' + hex + tokenBytes(text) + ']';
  }
  return out;
}
