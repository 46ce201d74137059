import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { bytesToByteString } from './bytes.ts';
import { encodeRanges, parseLlamaUnicodeData } from './gen-unicode-data.ts';
import { CATEGORY_RANGES, WHITESPACE } from './unicode-data.ts';
import { BYTE_TO_UNICODE, CPT, UNICODE_TO_BYTE, cptFlags, decodeUtf8Lenient, utf8SeqLen } from './unicode.ts';

describe('unicode tables', () => {
  it("are llama.cpp's (regenerate with gen-unicode-data.ts when llama.cpp updates them)", () => {
    const source = readFileSync(join(llamaCppSourceDir(), 'src/unicode-data.cpp'), 'utf8');
    const tables = parseLlamaUnicodeData(source);
    expect(tables.ranges.length).toBeGreaterThan(2000);
    expect(encodeRanges(tables.ranges)).toBe(CATEGORY_RANGES);
    expect([...WHITESPACE]).toEqual(tables.whitespace);
    // Spot checks through the decoded table, against every range start of llama.cpp's table.
    for (const [start, flags] of tables.ranges) {
      if (start < 0x110000) expect(cptFlags(start) & CPT.CATEGORIES, `U+${start.toString(16)}`).toBe(flags);
    }
  });

  it('classify as llama.cpp does', () => {
    expect(cptFlags(0x41) & CPT.LETTER).toBeTruthy();
    expect(cptFlags(0x0663) & CPT.NUMBER).toBeTruthy(); // Arabic-Indic three
    expect(cptFlags(0x0301) & CPT.MARK).toBeTruthy();
    expect(cptFlags(0x3000) & CPT.WHITESPACE).toBeTruthy();
    expect(cptFlags(0xfeff) & CPT.WHITESPACE).toBe(0); // JS's \s has it, llama.cpp's table does not
    expect(cptFlags(0x1c) & CPT.WHITESPACE).toBe(0); // Python's isspace has it, llama.cpp does not
    expect(cptFlags(0xd800)).toBe(CPT.CONTROL); // surrogates are Cs
    expect(cptFlags(0x110000)).toBe(CPT.UNDEFINED);
  });
});

describe('lenient UTF-8 decoding (unicode_cpts_from_utf8)', () => {
  const decode = (bytes: number[]) => [...decodeUtf8Lenient(bytesToByteString(Uint8Array.from(bytes)))];
  it('decodes valid UTF-8', () => {
    expect(decode([0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0xa6, 0x99])).toEqual([0x61, 0xe9, 0x20ac, 0x1f999]);
  });
  it('accepts overlong forms and surrogates, and code points up to 0x1FFFFF', () => {
    expect(decode([0xc0, 0x80])).toEqual([0]);
    expect(decode([0xed, 0xa0, 0x80])).toEqual([0xd800]);
    expect(decode([0xf7, 0xbf, 0xbf, 0xbf])).toEqual([0x1fffff]);
  });
  it('turns each byte that starts no sequence into U+FFFD and moves on by one byte', () => {
    expect(decode([0xe2, 0x82])).toEqual([0xfffd, 0xfffd]);
    expect(decode([0x80, 0x41])).toEqual([0xfffd, 0x41]);
    expect(decode([0xf8, 0x88, 0x80, 0x80, 0x80])).toEqual([0xfffd, 0xfffd, 0xfffd, 0xfffd, 0xfffd]);
    expect(decode([0xc3, 0x28])).toEqual([0xfffd, 0x28]);
  });
  it('cuts sequences by lead byte', () => {
    expect([0x41, 0x80, 0xc3, 0xe2, 0xf0, 0xff].map(utf8SeqLen)).toEqual([1, 1, 2, 3, 4, 4]);
  });
});

describe('GPT-2 byte alphabet', () => {
  it('maps printable bytes to themselves and the rest from U+0100 on, reversibly', () => {
    expect(BYTE_TO_UNICODE[0x41]).toBe('A');
    expect(BYTE_TO_UNICODE[0x20]).toBe('\u0120'); // Ġ
    expect(BYTE_TO_UNICODE[0x0a]).toBe('\u010A'); // Ċ
    expect(BYTE_TO_UNICODE[0xad]).toBe('\u0143');
    expect(new Set(BYTE_TO_UNICODE).size).toBe(256);
    BYTE_TO_UNICODE.forEach((ch, b) => expect(UNICODE_TO_BYTE[ch.charCodeAt(0)]).toBe(b));
  });
});
