/**
 * A generated corpus of hard cases for tokenizers: many scripts, emoji sequences, combining marks,
 * whitespace of every kind, numbers, code, contractions, the vocab's own special-token texts, and
 * (as raw bytes) invalid UTF-8. Deterministic for a seed.
 */
import { rng } from './helpers.ts';

/** Hand-picked cases, each aimed at one rule of some pre-tokenizer or of the SPM/BPE merge loops. */
export const HARD_CASES: readonly string[] = [
  '',
  ' ',
  '  ',
  '   ',
  '\t',
  '\n',
  '\r\n',
  '\n\n\n',
  '\t\n',
  ' \n ',
  'a\r\nb\r\n\r\nc',
  'trailing   ',
  '   leading',
  ' '.repeat(200) + 'x',
  'x' + ' '.repeat(37),
  '\t\t\tindent\n\t\t\tmore',
  'nbsp\u00A0here \u2003em\u3000ideographic\u0085nel\u2028ls\u2029ps',
  'zero\u200Bwidth\u200Cjoiner\u200D\uFEFFbom',
  "I'm, you're, he'll, she'd, it's, they've, we'LL, DON'T, 'S, ''s",
  "a ' b ' c",
  " 's 'm 're 've 't 'd 'll",
  "can ' t won 't shouldn' t",
  "'",
  "''",
  "rock 'n' roll",
  'Hello, world! How are you ? Fine . Thanks , bye !',
  '0',
  '12',
  '123',
  '1234',
  '1234567890123456789',
  '3.14159 2.71828 -42 +7 1e10 0x1F',
  '1,000,000.00 and 10\u00A0000',
  '\u0663\u0664\u0665 \u0967\u0968\u0969 \uFF11\uFF12\uFF13',
  '\u00BD \u00B2 \u2167 \u2460 \u00B9\u2070',
  'function f(x) {\n  return x * 2; // double\n}\n',
  'def g(a, b=None):\n    if a != b:\n        return a -> b\n',
  '<div class="x">&amp;</div> === !== => ?? ?. || && ::',
  'https://example.com/path?q=1&r=2#frag',
  "SELECT * FROM t WHERE a = 'x' AND b <> 3;",
  '    Hello\n    Hello',
  '\u4F60\u597D\uFF0C\u4E16\u754C\uFF01\u6211\u60F3\u5728apple\u5DE5\u4F5C1314151\u5929\uFF5E',
  '\u3053\u3093\u306B\u3061\u306F\u4E16\u754C \u30AB\u30BF\u30AB\u30CA \uFF76\uFF80\uFF76\uFF85',
  '\uC548\uB155\uD558\uC138\uC694 \uC138\uACC4 \u1100\u1161\u11A8',
  '\u0645\u0631\u062D\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u0628\u0650\u0633\u0652\u0645\u0650 \u0627\u0644\u0644\u0651\u064E\u0647\u0650',
  '\u05E9\u05B8\u05C1\u05DC\u05D5\u05B9\u05DD \u05E2\u05D5\u05DC\u05DD',
  '\u0928\u092E\u0938\u094D\u0924\u0947 \u0926\u0941\u0928\u093F\u092F\u093E \u0915\u094D\u0937\u0924\u094D\u0930\u093F\u092F',
  '\u0E2A\u0E27\u0E31\u0E2A\u0E14\u0E35\u0E0A\u0E32\u0E27\u0E42\u0E25\u0E01',
  '\u041F\u0440\u0438\u0432\u0435\u0442, \u043C\u0438\u0440! \u041D\u0415\u0429\u041E \u043D\u0430 \u0411\u044A\u043B\u0433\u0430\u0440\u0441\u043A\u0438',
  '\u039A\u03B1\u03BB\u03B7\u03BC\u03AD\u03C1\u03B1 \u03BA\u03CC\u03C3\u03BC\u03B5 \u1F00\u1F04\u1FB6 \u0390',
  '\u10D2\u10D0\u10DB\u10D0\u10E0\u10EF\u10DD\u10D1\u10D0 \u0532\u0561\u0580\u0587 \u0BB5\u0BA3\u0B95\u0BCD\u0B95\u0BAE\u0BCD \u09A8\u09AE\u09B8\u09CD\u0995\u09BE\u09B0',
  '\u1780\u17B6\u1793\u17CB\u178F\u17C2\u1796\u17B7\u179F\u17C1\u179F \u0F56\u0F40\u0FB2\u0F0B\u0F64\u0F72\u0F66\u0F0B \u1828\u1823\u1829\u1826\u182D',
  '\u{1F680} (normal) \u{1F636}\u200D\u{1F32B}\uFE0F (multiple emojis concatenated) \u2705 (only emoji that has its own token)',
  '\u{1F469}\u{1F3FD}\u200D\u{1F4BB} \u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466} \u{1F3F3}\uFE0F\u200D\u{1F308} \u{1F1EF}\u{1F1F5} 1\uFE0F\u20E3 \u{1F44D}\u{1F3FF}',
  '\u{1F999}\u{1F999}\u{1F999}.cpp',
  'e\u0301 a\u0308\u0301 n\u0303 \u0041\u030A\u0323 Z\u0351\u0352\u0353\u0354\u0355\u0356alg\u0357\u0358o',
  '\uFFFD \uFFFE\uFFFF \uE000\uF8FF \u{F0000} \u{10FFFF}',
  '\u0000\u0001\u0007\u001B[31mred\u001B[0m\u007F\u0080\u009F',
  '\u{1D518}\u{1D52B}\u{1D526}\u{1D520}\u{1D52C}\u{1D521}\u{1D522} \u{13000} \u{20000}\u{2A6D6} \u{1F600}',
  'a\uD800b',
  '\uDC00 alone',
  'ends high \uD83D',
  '\uD83D\uDE00\uD83D',
  '\u2581leading lower-one-eighth block \u2581\u2581 and \u2581x',
  '\u0120\u010A GPT-2 alphabet chars \u0100\u0143',
  '<0x41> <s> </s> <unk> [UNK] <|endoftext|> <|im_start|>user',
  'w048 7tuijk dsdfhu',
  '\u00C4pfel 4 \u00BD months',
];

/** Pieces the random cases are stitched from. */
const POOL: readonly string[] = [
  'the', 'The', ' quick', 'brown', ' FOX', 'jumps', "'s", "n't", "'ll", "'Re", ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r',
  '\u00A0', '\u3000', '\u2009', '0', '7', '42', '123', '99999', '3.5', ',', '.', '!', '?', '...', '--', '"', "'", '(', ')', '[', ']', '{', '}',
  '<', '>', '/', '\\', '|', '_', '=', '+', '-', '*', '&', '^', '%', '$', '#', '@', '`', '~', ';', ':',
  '\u4E2D\u6587', '\u65E5\u672C\u8A9E', '\u3072\u3089\u304C\u306A', '\uD55C\uAD6D\uC5B4', '\u0627\u0644\u0639\u0631\u0628\u064A\u0629', '\u05E2\u05D1\u05E8\u05D9\u05EA',
  '\u0939\u093F\u0928\u094D\u0926\u0940', '\u0E44\u0E17\u0E22', '\u0440\u0443\u0441\u0441\u043A\u0438\u0439', '\u0395\u03BB\u03BB\u03B7\u03BD\u03B9\u03BA\u03AC',
  '\u0301', '\u0308', '\u093F', '\u0E31', '\u200D', '\uFE0F', '\u{1F3FD}', '\u{1F469}', '\u{1F4BB}', '\u{1F600}', '\u{1F1FA}\u{1F1F8}', '\u2764',
  '\u00E9', '\u00DF', '\u0130', '\u212A', '\u00BD', '\u2460', '\u{1D400}', '\u{20BB7}', '\uFFFD', '\u2581', '\u0120',
];

/** Special-token texts of a vocab worth embedding: control, user-defined and unknown tokens. */
export function specialTexts(texts: readonly string[]): string[] {
  return texts.filter((t) => t.length > 0);
}

export interface CorpusOptions {
  seed: number;
  /** Number of random cases. */
  count: number;
  /** Texts of the vocab's special tokens, embedded in some cases. */
  specials?: readonly string[];
}

/** Random cases plus, when specials are given, cases built around them. */
export function randomCases({ seed, count, specials = [] }: CorpusOptions): string[] {
  const next = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]!;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(next() * 24);
    let s = '';
    for (let j = 0; j < n; j++) {
      const r = next();
      if (specials.length > 0 && r < 0.06) s += pick(specials);
      else if (r < 0.1) s += pick(HARD_CASES).slice(0, 12);
      else s += pick(POOL);
    }
    out.push(s);
  }
  return out;
}

/** Cases around special-token texts: alone, spaced (lstrip/rstrip), glued, doubled, cut short. */
export function specialCases(specials: readonly string[], seed: number, max = 40): string[] {
  const next = rng(seed);
  const chosen = specials.length <= max ? specials : Array.from({ length: max }, () => specials[Math.floor(next() * specials.length)]!);
  const out: string[] = [];
  for (const t of chosen) {
    out.push(t, ` ${t} `, `x${t}y`, `${t}${t}`, `\n${t}\nHello`, `  ${t}  world`, t.slice(0, -1), `${t.slice(0, 1)}${t}`);
  }
  return out;
}

/** Raw byte inputs: invalid UTF-8 that llama.cpp receives as is. */
export const INVALID_UTF8: readonly Uint8Array[] = [
  [0xff],
  [0x41, 0xc3],
  [0xc3, 0x28, 0x41],
  [0xe2, 0x82],
  [0xe2, 0x82, 0x41, 0x20, 0x42],
  [0xed, 0xa0, 0x80, 0x20, 0x61],
  [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80],
  [0xc0, 0x80, 0x20, 0xe0, 0x80, 0x80],
  [0x80, 0x81, 0xbf, 0x20, 0x68, 0x69],
  [0xf0, 0x9f, 0x98],
  [0x20, 0xf8, 0x88, 0x80, 0x80, 0x80, 0x20],
  [0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0xfe, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64],
].map((b) => Uint8Array.from(b));
