/**
 * Unicode facts as llama.cpp's tokenizer sees them (src/unicode.cpp): code point categories from its
 * own tables (unicode-data.ts), its lenient UTF-8 decoder, and GPT-2's byte <-> character table.
 */
import { CATEGORY_RANGES, WHITESPACE } from './unicode-data.ts';

/** Category and helper flags of one code point, bit for bit llama.cpp's `unicode_cpt_flags`. */
export const CPT = {
  UNDEFINED: 0x0001,
  NUMBER: 0x0002, // \p{N}
  LETTER: 0x0004, // \p{L}
  SEPARATOR: 0x0008, // \p{Z}
  MARK: 0x0010, // \p{M}
  PUNCTUATION: 0x0020, // \p{P}
  SYMBOL: 0x0040, // \p{S}
  CONTROL: 0x0080, // \p{C}
  CATEGORIES: 0x00ff,
  WHITESPACE: 0x0100, // \s
} as const;

export const MAX_CODEPOINT = 0x110000;

let flagTable: Uint16Array | undefined;

/**
 * Flags of every code point below 0x110000: 2.2 MB, built once on first use (a few ms) so that the
 * splitters' inner loops are one array read per character.
 */
export function cptFlagTable(): Uint16Array {
  if (flagTable) return flagTable;
  const table = new Uint16Array(MAX_CODEPOINT);
  let start = 0;
  let flags = 0;
  let i = 0;
  const text = CATEGORY_RANGES;
  while (i < text.length) {
    let delta = 0;
    let c = text.charCodeAt(i);
    while (c < 65 || c > 72) {
      delta = delta * 36 + (c <= 57 ? c - 48 : c - 87);
      c = text.charCodeAt(++i);
    }
    const next = start + delta;
    if (next > start) table.fill(flags, start, next);
    start = next;
    flags = 1 << (c - 65);
    i++;
  }
  table.fill(flags, start, MAX_CODEPOINT);
  for (const cpt of WHITESPACE) table[cpt]! |= CPT.WHITESPACE;
  flagTable = table;
  return table;
}

/** Flags of a code point; code points past U+10FFFF are "undefined", as in llama.cpp. */
export function cptFlags(cpt: number): number {
  return cpt < MAX_CODEPOINT ? cptFlagTable()[cpt]! : CPT.UNDEFINED;
}

/**
 * Decodes a byte string (one char per byte, 0..255) into code points the way llama.cpp's
 * `unicode_cpts_from_utf8` does: lead byte decides the length, continuation bytes must be 10xxxxxx,
 * but overlong forms, surrogates and values up to 0x1FFFFF are accepted; a byte that starts no valid
 * sequence becomes U+FFFD and decoding resumes at the next byte.
 */
export function decodeUtf8Lenient(bytes: string, from = 0, to = bytes.length): Uint32Array {
  const out = new Uint32Array(to - from);
  let n = 0;
  let i = from;
  while (i < to) {
    const b0 = bytes.charCodeAt(i);
    if (b0 < 0x80) {
      out[n++] = b0;
      i += 1;
      continue;
    }
    // llama.cpp checks "offset + k >= size" against the whole string, which for our slices is `to`.
    if ((b0 & 0x40) === 0) {
      out[n++] = 0xfffd;
      i += 1;
    } else if ((b0 & 0x20) === 0) {
      if (i + 1 < to && (bytes.charCodeAt(i + 1) & 0xc0) === 0x80) {
        out[n++] = ((b0 & 0x1f) << 6) | (bytes.charCodeAt(i + 1) & 0x3f);
        i += 2;
      } else {
        out[n++] = 0xfffd;
        i += 1;
      }
    } else if ((b0 & 0x10) === 0) {
      if (i + 2 < to && (bytes.charCodeAt(i + 1) & 0xc0) === 0x80 && (bytes.charCodeAt(i + 2) & 0xc0) === 0x80) {
        out[n++] = ((b0 & 0x0f) << 12) | ((bytes.charCodeAt(i + 1) & 0x3f) << 6) | (bytes.charCodeAt(i + 2) & 0x3f);
        i += 3;
      } else {
        out[n++] = 0xfffd;
        i += 1;
      }
    } else if ((b0 & 0x08) === 0) {
      if (
        i + 3 < to &&
        (bytes.charCodeAt(i + 1) & 0xc0) === 0x80 &&
        (bytes.charCodeAt(i + 2) & 0xc0) === 0x80 &&
        (bytes.charCodeAt(i + 3) & 0xc0) === 0x80
      ) {
        out[n++] =
          ((b0 & 0x07) << 18) |
          ((bytes.charCodeAt(i + 1) & 0x3f) << 12) |
          ((bytes.charCodeAt(i + 2) & 0x3f) << 6) |
          (bytes.charCodeAt(i + 3) & 0x3f);
        i += 4;
      } else {
        out[n++] = 0xfffd;
        i += 1;
      }
    } else {
      out[n++] = 0xfffd;
      i += 1;
    }
  }
  return n === out.length ? out : out.subarray(0, n);
}

/** Length of the UTF-8 sequence a byte starts, by its high nibble (llama.cpp's `unicode_len_utf8`). */
export function utf8SeqLen(byte: number): number {
  const hi = byte >> 4;
  return hi < 12 ? 1 : hi < 14 ? 2 : hi === 14 ? 3 : 4;
}

/**
 * GPT-2's reversible byte -> printable character map: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes map to U+0100.. in byte order.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const table = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return table;
})();

/** Inverse of {@link BYTE_TO_UNICODE}, indexed by char code (0..0x143); -1 where none. */
export const UNICODE_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x144).fill(-1);
  BYTE_TO_UNICODE.forEach((ch, b) => {
    table[ch.charCodeAt(0)] = b;
  });
  return table;
})();
