/**
 * Byte strings: a JS string with one char (0..255) per byte. llama.cpp tokenizes `std::string`s,
 * i.e. bytes, and some of its rules are byte rules (SentencePiece splits at UTF-8 lead bytes,
 * special tokens are found by byte search, invalid UTF-8 falls back to byte tokens). Byte strings
 * keep those rules exact for any input, including invalid UTF-8 read from a file, while staying
 * cheap: V8 stores them one byte per char, and they work as Map keys and with indexOf.
 */

const encoder = new TextEncoder();

/** True when every char is ASCII, so the string is its own UTF-8 byte string. */
export function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Bytes -> byte string. */
export function bytesToByteString(bytes: Uint8Array): string {
  let out = '';
  const CHUNK = 0x2000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return out;
}

/** Byte string -> bytes. */
export function byteStringToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * A JS string's UTF-8 as a byte string, encoded the WHATWG way (TextEncoder): a lone surrogate
 * becomes U+FFFD (EF BF BD). This is how text typed in a page reaches the tokenizer, and how
 * Node hands a JS string to llama.cpp, so a lone surrogate tokenizes as U+FFFD everywhere.
 */
export function utf8ByteString(text: string): string {
  if (isAscii(text)) return text;
  return bytesToByteString(encoder.encode(text));
}

/** UTF-8 bytes of one code point as a byte string; throws past U+10FFFF like llama.cpp. */
export function cptUtf8(cpt: number): string {
  if (cpt < 0x80) return String.fromCharCode(cpt);
  if (cpt < 0x800) return String.fromCharCode(0xc0 | (cpt >> 6), 0x80 | (cpt & 0x3f));
  if (cpt < 0x10000) return String.fromCharCode(0xe0 | (cpt >> 12), 0x80 | ((cpt >> 6) & 0x3f), 0x80 | (cpt & 0x3f));
  if (cpt < 0x110000) {
    return String.fromCharCode(
      0xf0 | (cpt >> 18),
      0x80 | ((cpt >> 12) & 0x3f),
      0x80 | ((cpt >> 6) & 0x3f),
      0x80 | (cpt & 0x3f),
    );
  }
  throw new RangeError(`invalid code point 0x${cpt.toString(16)}`);
}
