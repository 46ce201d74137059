import { describe, expect, it } from 'vitest';
import { SpaceCleaner, cleanSpaces } from './decode.ts';

/**
 * llama.cpp's clean_spaces as it is written there: three in-place passes over one buffer, each
 * writing at `total` while reading at `i` (and the second one overwriting a byte ahead with NUL).
 * Kept literal on purpose, as the oracle for the streaming transducers in decode.ts.
 */
function inPlaceReference(input: Uint8Array): Uint8Array {
  const text = Uint8Array.from(input);
  let total = text.length;
  const at = (i: number) => text[i]!;
  // pass 1: " ?", " !", " .", " ,"
  const total1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total1; i++) {
    const x = at(i);
    if (at(i - 1) === 0x20 && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    text[total++] = x;
  }
  // pass 2: " ' "
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; i++) {
    const x = at(i);
    if (x === 0x27 && i + 1 < total2 && at(i - 1) === 0x20 && at(i + 1) === 0x20) {
      total--;
      text[++i] = 0;
    }
    text[total++] = x;
  }
  // pass 3: " 's", " 'm", " 're", " 've"
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; i++) {
    const x = at(i);
    if (at(i - 1) === 0x20 && x === 0x27 && i + 1 < total3) {
      const x1 = at(i + 1);
      if (x1 === 0x73 || x1 === 0x6d) total--;
      else if (x1 !== 0x74 && x1 !== 0x64 && i + 2 < total3) {
        const x2 = at(i + 2);
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) total--;
      }
    }
    text[total++] = x;
  }
  return text.slice(0, total);
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('clean_spaces', () => {
  it('drops the spaces llama.cpp drops', () => {
    expect(dec(cleanSpaces(enc('Hello , world ! ok ? yes .')))).toBe('Hello, world! ok? yes.');
    expect(dec(cleanSpaces(enc("a ' b")))).toBe("a'b");
    expect(dec(cleanSpaces(enc("it 's I 'm we 're they 've don 't he 'd we 'll")))).toBe("it's I'm we're they've don 't he 'd we 'll");
    expect(dec(cleanSpaces(enc(' ?')))).toBe('?');
    expect(dec(cleanSpaces(enc(" '")))).toBe(" '");
  });

  it('equals the in-place passes on random text, however it is fed', () => {
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const alphabet = [" ", " ", " ", "'", "'", 's', 'm', 't', 'd', 'r', 'e', 'v', 'l', '?', '!', '.', ',', 'x', '\u00E9'];
    for (let n = 0; n < 3000; n++) {
      let s = '';
      const len = Math.floor(rand() * 14);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      const bytes = enc(s);
      const expected = [...inPlaceReference(bytes)];
      expect([...cleanSpaces(bytes)], JSON.stringify(s)).toEqual(expected);
      // Fed in random pieces, the output is the same.
      const cleaner = new SpaceCleaner();
      const out: number[] = [];
      for (let i = 0; i < bytes.length; ) {
        const step = 1 + Math.floor(rand() * 3);
        out.push(...cleaner.push(bytes.subarray(i, i + step)));
        i += step;
      }
      out.push(...cleaner.end());
      expect(out, JSON.stringify(s)).toEqual(expected);
    }
  });
});
