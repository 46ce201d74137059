/**
 * BPE pre-tokenization: splitting text into words before merges, as llama.cpp does it
 * (llm_tokenizer_bpe's regex lists in src/llama-vocab.cpp, unicode_regex_split in src/unicode.cpp).
 *
 * llama.cpp runs each pre-tokenizer's regexes one after another, each splitting the pieces the
 * previous one left. A handful of common regexes have hand-written splitters there (GPT-2, Llama 3,
 * Qwen2, Qwen3.5, newline runs, digit groups); they are not quite the regex they replace, and the
 * splitters below reproduce them quirk for quirk. Every other regex runs on `std::regex`, with
 * Unicode categories "collapsed": each non-ASCII code point becomes one byte naming its category
 * (0xD1 number, 0xD2 letter, ...) and `\p{L}` becomes `[\xD2A-Za-z]`. We do the same collapse and run
 * the result on JS's RegExp, which is an ECMAScript engine like the one std::regex emulates, after
 * translating the classes whose meaning differs (`\s` is ASCII whitespace there).
 */
import { TokenizerLoadError, TokenizeError } from './errors.ts';
import { CPT, cptFlagTable, MAX_CODEPOINT } from './unicode.ts';

// The regexes are llama.cpp's strings verbatim (C++ and TS share these escapes): the hand-written
// splitters are chosen by comparing against these exact strings, as llama.cpp does.
const RE_GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const RE_LLAMA3_ORIGINAL =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const RE_LLAMA3 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const RE_QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const RE_QWEN35 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const RE_NEWLINES = '[^\\n]+|[\\n]+';
const RE_AFMOE_DIGITS = '\\p{AFMoE_digits}';
const RE_TINY_AYA_DIGITS = '\\d{1,3}(?=(?:\\d{3})*\\b)';
const RE_HAN = '\\p{Han}+';

const RE_GPT4O_STYLE_CONTRACTION = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const RE_DEEPSEEK3 =
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
const RE_BLOOM = " ?[^(\\s|.,!?\u{2026}\u{3002}\u{ff0c}\u{3001}\u{964}\u{6d4}\u{60c})]+";

/** What llama.cpp's `llm_tokenizer_bpe` constructor sets up for one pre-tokenizer kind. */
export interface PreTokenizerSpec {
  readonly regexes: readonly string[];
  /** GPT-2 byte-to-character encoding of words (false: merges run on raw UTF-8, e.g. Gemma 4). */
  readonly byteEncode: boolean;
}

/**
 * Regexes per pre-tokenizer kind (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*; names are our spelling of
 * them). The mapping from `tokenizer.ggml.pre` names to kinds is in vocab.ts.
 */
export const PRE_TOKENIZER_REGEXES: Readonly<Record<string, PreTokenizerSpec>> = (() => {
  const spec = (regexes: string[], byteEncode = true): PreTokenizerSpec => ({ regexes, byteEncode });
  const llama3 = spec([RE_LLAMA3]);
  const starcoder = spec(['\\p{N}', RE_GPT2]);
  const gpt2 = spec([RE_GPT2]);
  const qwen2 = spec([RE_QWEN2]);
  const bloom = spec([RE_BLOOM]);
  const deepseek3 = spec(['\\p{N}{1,3}', "[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+", RE_DEEPSEEK3]);
  const gpt4o = spec([
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" +
      RE_GPT4O_STYLE_CONTRACTION +
      "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" +
      RE_GPT4O_STYLE_CONTRACTION +
      '?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
  ]);
  const spmStyle = spec([RE_NEWLINES], false);
  return {
    default: spec(['[\\p{P}\\$\\+<=>\\^~\\|]+', RE_GPT2, '\\p{N}+', '[0-9][0-9][0-9]']),
    llama3,
    jais2: spec([
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
    ]),
    dbrx: llama3,
    smaug: llama3,
    'deepseek-llm': spec([
      '[\r\n]',
      "\\s?[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+",
      "\\s?[!-/:-~\u{ff01}-\u{ff0f}\u{ff1a}-\u{ff5e}\u{2018}-\u{201f}\u{3000}-\u{3002}]+",
      '\\s+$',
      "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
      '\\p{N}+',
    ]),
    'deepseek3-llm': deepseek3,
    'hunyuan-dense': deepseek3,
    'joyai-llm': deepseek3,
    youtu: spec([
      "[\u{ac00}-\u{d7a3}\u{3131}-\u{318e}]+|[\u{ff01}\u{2026}\u{201c}\u{201d}\u{2018}\u{2019}\u{2014}\u{ff1a}\u{ff1b}\u{ff0c}\u{3001}-\u{303f}\u{fe30}-\u{fe4f}]+|[\u{3105}-\u{312f}]+|[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+",
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" +
        RE_GPT4O_STYLE_CONTRACTION +
        "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" +
        RE_GPT4O_STYLE_CONTRACTION +
        '?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
    ]),
    'deepseek-coder': spec(['[\r\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+", '\\p{N}']),
    falcon: spec(['[\\p{P}\\$\\+<=>\\^~\\|`]+', RE_GPT2, '[0-9][0-9][0-9]']),
    starcoder,
    refact: starcoder,
    'command-r': starcoder,
    smollm: starcoder,
    codeshell: starcoder,
    exaone: starcoder,
    minerva: starcoder,
    mellum2: starcoder,
    gpt2,
    mpt: gpt2,
    olmo: gpt2,
    jais: gpt2,
    trillion: gpt2,
    'granite-docling': gpt2,
    stablelm2: qwen2,
    qwen2,
    hunyuan: qwen2,
    'solar-open': qwen2,
    qwen35: spec([RE_QWEN35]),
    poro: bloom,
    bloom,
    'gpt3-finnish': bloom,
    chatglm4: llama3,
    viking: spec([RE_BLOOM, '\\p{N}']),
    tekken: spec([
      '[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
    ]),
    chameleon: spec([
      '<sentinel:[0-9]+>',
      '(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z',
      '([\\t\\n]|    |  )',
      '\\p{N}',
      '[\\p{P}!-/:-@\\[-`{-~]',
      RE_GPT2,
    ]),
    gpt4o,
    'minimax-m2': gpt4o,
    'granite-emb-multi': spec([
      "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+" +
        RE_GPT4O_STYLE_CONTRACTION +
        "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*" +
        RE_GPT4O_STYLE_CONTRACTION +
        '?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
    ]),
    'tiny-aya': spec([
      RE_TINY_AYA_DIGITS,
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" +
        RE_GPT4O_STYLE_CONTRACTION +
        "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" +
        RE_GPT4O_STYLE_CONTRACTION +
        '?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
    ]),
    'kimi-k2': spec([RE_HAN]),
    superbpe: spec(['\\p{N}+', '(?=(\\d{3})+(?!\\d))']),
    bailingmoe: spec([
      "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    ]),
    'seed-coder': spec([
      RE_GPT4O_STYLE_CONTRACTION +
        '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
    ]),
    'grok-2': qwen2,
    afmoe: spec([
      RE_AFMOE_DIGITS,
      "[\u{4e00}-\u{9fff}\u{3400}-\u{4dbf}\u{8c48}-\u{faff}\u{3040}-\u{309f}\u{30a0}-\u{30ff}\u{ff65}-\u{ff9f}\u{2f00}-\u{2fdf}\u{e40}-\u{e7f}\u{e80}-\u{eff}\u{1780}-\u{17ff}\u{1000}-\u{109f}\u{aa60}-\u{aa7f}\u{a9e0}-\u{a9ff}\u{ac00}-\u{d7af}\u{1100}-\u{11ff}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ]),
    laguna: spec([RE_NEWLINES, RE_QWEN2]),
    'exaone-moe': spec([
      RE_GPT4O_STYLE_CONTRACTION +
        '|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+',
    ]),
    gemma4: spmStyle,
    'sarvam-moe': spmStyle,
    minicpm5: spec([
      '\\p{N}{1,3}',
      RE_GPT4O_STYLE_CONTRACTION +
        '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
    ]),
    whitespace: spec(['\\S+'], false),
  };
})();

/** A splitter: given the code points and the current pieces (lengths in code points), splits them further. */
type Splitter = (cpts: Uint32Array, offsets: number[], text: SplitText) => number[];

/** Lazily built views of the text that the regex splitters share. */
interface SplitText {
  collapsed(): string;
  wide(): WideText;
}

interface WideText {
  text: string;
  /** Code point index -> UTF-16 index and back; undefined when they are equal (no astral characters). */
  cptToU16: Uint32Array | undefined;
  u16ToCpt: Uint32Array | undefined;
}

/** Flags of cpts[pos], or 0 outside [ini, end) — llama.cpp's `_get_flags` in its custom splitters. */
function flagsAt(table: Uint16Array, cpts: Uint32Array, pos: number, ini: number, end: number): number {
  if (pos < ini || pos >= end) return 0;
  const c = cpts[pos]!;
  return c < MAX_CODEPOINT ? table[c]! : CPT.UNDEFINED;
}

const OUT_OF_RANGE = -1;
const APOSTROPHE = 0x27;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;

function asciiLower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

/** Length of a contraction ('s 't 'm 'd | 're 've 'll) at pos, 0 if none. */
function contractionAt(cpts: Uint32Array, pos: number, end: number, caseless: boolean): number {
  if (cpts[pos] !== APOSTROPHE || pos + 1 >= end) return 0;
  const lower = caseless ? asciiLower : (c: number) => c;
  const n = lower(cpts[pos + 1]!);
  if (n === 0x73 || n === 0x74 || n === 0x6d || n === 0x64) return 2; // s t m d
  if (pos + 2 < end) {
    const nn = lower(cpts[pos + 2]!);
    if ((n === 0x72 && nn === 0x65) || (n === 0x76 && nn === 0x65) || (n === 0x6c && nn === 0x6c)) return 3; // re ve ll
  }
  return 0;
}

/** `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` as llama.cpp hand-codes it. */
const splitGpt2: Splitter = (cpts, offsets) => {
  const table = cptFlagTable();
  const out: number[] = [];
  let start = 0;
  for (const offset of offsets) {
    const ini = start;
    const end = start + offset;
    start = end;
    const fl = (p: number) => flagsAt(table, cpts, p, ini, end);
    let prevEnd = ini;
    const add = (to: number) => {
      if (to > prevEnd) out.push(to - prevEnd);
      prevEnd = to;
    };
    let pos = ini;
    while (pos < end) {
      const cpt = cpts[pos]!;
      const flags = fl(pos);
      const contraction = contractionAt(cpts, pos, end, false);
      if (contraction) {
        pos += contraction;
        add(pos);
        continue;
      }
      let flags2 = cpt === SPACE ? fl(pos + 1) : flags;
      if (flags2 & CPT.LETTER) {
        if (cpt === SPACE) pos++;
        while (flags2 & CPT.LETTER) flags2 = fl(++pos);
        add(pos);
        continue;
      }
      if (flags2 & CPT.NUMBER) {
        if (cpt === SPACE) pos++;
        while (flags2 & CPT.NUMBER) flags2 = fl(++pos);
        add(pos);
        continue;
      }
      if (!(flags2 & (CPT.WHITESPACE | CPT.LETTER | CPT.NUMBER)) && flags2) {
        if (cpt === SPACE) pos++;
        while (!(flags2 & (CPT.WHITESPACE | CPT.LETTER | CPT.NUMBER)) && flags2) flags2 = fl(++pos);
        add(pos);
        continue;
      }
      let nws = 0;
      while (fl(pos + nws) & CPT.WHITESPACE) nws++;
      if (nws > 1 && pos + nws < end) {
        pos += nws - 1; // \s+(?!\S): leave the last space for the next word
        add(pos);
        continue;
      }
      if (nws > 0) {
        pos += nws;
        add(pos);
        continue;
      }
      add(++pos);
    }
  }
  return out;
};

type LlamaStyle = 'llama3' | 'qwen2' | 'qwen35';

/**
 * The Llama 3 family of regexes as llama.cpp hand-codes them:
 * `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
 * Qwen2 takes digits one at a time, Qwen3.5 also lets letter runs take combining marks.
 */
function llamaStyleSplitter(style: LlamaStyle): Splitter {
  const marks = style === 'qwen35';
  const wordFlags = marks ? CPT.LETTER | CPT.MARK : CPT.LETTER;
  const notPunct = CPT.WHITESPACE | CPT.LETTER | CPT.NUMBER | (marks ? CPT.MARK : 0);
  return (cpts, offsets) => {
    const table = cptFlagTable();
    const out: number[] = [];
    let start = 0;
    for (const offset of offsets) {
      const ini = start;
      const end = start + offset;
      start = end;
      const fl = (p: number) => flagsAt(table, cpts, p, ini, end);
      const cptAt = (p: number) => (p >= ini && p < end ? cpts[p]! : OUT_OF_RANGE);
      let prevEnd = ini;
      const add = (to: number) => {
        if (to > prevEnd) out.push(to - prevEnd);
        prevEnd = to;
      };
      let pos = ini;
      while (pos < end) {
        const cpt = cpts[pos]!;
        const flags = fl(pos);
        const contraction = contractionAt(cpts, pos, end, true);
        if (contraction) {
          pos += contraction;
          add(pos);
          continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+ : any one non-digit, non-newline char may lead a letter run
        if (!(cpt === CR || cpt === LF || flags & CPT.NUMBER)) {
          if (flags & wordFlags || fl(pos + 1) & wordFlags) {
            pos++;
            while (fl(pos) & wordFlags) pos++;
            add(pos);
            continue;
          }
        }
        if (flags & CPT.NUMBER) {
          if (style === 'llama3') {
            let ini3 = pos;
            while (fl(pos) & CPT.NUMBER) {
              if (++pos - ini3 >= 3) {
                add(pos);
                ini3 = pos;
              }
            }
            add(pos);
          } else {
            add(++pos);
          }
          continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*' — llama.cpp tests the first char's flags (always set inside the
        // piece) rather than the char after the space, so a lone space at the end lands here.
        let flags2 = cpt === SPACE ? fl(pos + 1) : flags;
        if (!(flags2 & notPunct) && flags) {
          if (cpt === SPACE) pos++;
          while (!(flags2 & notPunct) && flags2) flags2 = fl(++pos);
          let c2 = cptAt(pos);
          while (c2 === CR || c2 === LF) c2 = cptAt(++pos);
          add(pos);
          continue;
        }
        let nws = 0;
        let lastNewlineEnd = 0;
        while (fl(pos + nws) & CPT.WHITESPACE) {
          const c2 = cpts[pos + nws]!;
          if (c2 === CR || c2 === LF) lastNewlineEnd = pos + nws + 1;
          nws++;
        }
        if (lastNewlineEnd > 0) {
          pos = lastNewlineEnd; // \s*[\r\n]+
          add(pos);
          continue;
        }
        if (nws > 1 && pos + nws < end) {
          pos += nws - 1; // \s+(?!\S)
          add(pos);
          continue;
        }
        if (nws > 0) {
          pos += nws;
          add(pos);
          continue;
        }
        add(++pos);
      }
    }
    return out;
  };
}

/** `[^\n]+|[\n]+`: runs of newlines and runs of everything else. */
const splitNewlines: Splitter = (cpts, offsets) => {
  const out: number[] = [];
  let start = 0;
  for (const offset of offsets) {
    const end = start + offset;
    let pos = start;
    while (pos < end) {
      const isNewline = cpts[pos] === LF;
      const runStart = pos;
      while (pos < end && (cpts[pos] === LF) === isNewline) pos++;
      out.push(pos - runStart);
    }
    start = end;
  }
  return out;
};

/**
 * llama.cpp's digit grouping for AFMoE (and Tiny Aya's `\d{1,3}(?=(?:\d{3})*\b)`): a digit run is
 * cut into a leading 1-2 digits and then threes; the text before a run stays attached to its head.
 */
const splitDigitGroups: Splitter = (cpts, offsets) => {
  const table = cptFlagTable();
  const out: number[] = [];
  let start = 0;
  for (const offset of offsets) {
    const ini = start;
    const end = start + offset;
    start = end;
    let prevEnd = ini;
    const add = (to: number) => {
      if (to > prevEnd) out.push(to - prevEnd);
      prevEnd = to;
    };
    let pos = ini;
    while (pos < end) {
      if (flagsAt(table, cpts, pos, ini, end) & CPT.NUMBER) {
        const digitStart = pos;
        while (pos < end && flagsAt(table, cpts, pos, ini, end) & CPT.NUMBER) pos++;
        const count = pos - digitStart;
        let current = digitStart;
        if (count % 3 > 0) {
          current += count % 3;
          add(current);
        }
        while (current < digitStart + count) {
          current += 3;
          add(current);
        }
        continue;
      }
      pos++;
    }
    if (prevEnd < end) add(end);
  }
  return out;
};

const CUSTOM_SPLITTERS: ReadonlyMap<string, Splitter> = new Map([
  [RE_GPT2, splitGpt2],
  [RE_LLAMA3_ORIGINAL, llamaStyleSplitter('llama3')],
  [RE_LLAMA3, llamaStyleSplitter('llama3')],
  [RE_QWEN2, llamaStyleSplitter('qwen2')],
  [RE_QWEN35, llamaStyleSplitter('qwen35')],
  [RE_NEWLINES, splitNewlines],
  [RE_AFMOE_DIGITS, splitDigitGroups],
  [RE_TINY_AYA_DIGITS, splitDigitGroups],
]);

// --- the std::regex path --------------------------------------------------------------------

/** `\p{…}` names llama.cpp collapses, and the category each stands for. */
const UNICODE_CATEGORY_NAMES: ReadonlyMap<string, number> = new Map([
  ['\\p{N}', CPT.NUMBER],
  ['\\p{L}', CPT.LETTER],
  ['\\p{P}', CPT.PUNCTUATION],
  ['\\p{M}', CPT.MARK],
  ['\\p{S}', CPT.SYMBOL],
  ['\\p{Lu}', CPT.LETTER],
  ['\\p{Ll}', CPT.LETTER],
  ['\\p{Lt}', CPT.LETTER],
  ['\\p{Lm}', CPT.LETTER],
  ['\\p{Lo}', CPT.LETTER],
]);

/** The byte each collapsed category becomes, and the ASCII members its class keeps. */
const COLLAPSED: ReadonlyMap<number, { char: string; ascii: string }> = new Map([
  [CPT.NUMBER, { char: '\xD1', ascii: '0-9' }],
  [CPT.LETTER, { char: '\xD2', ascii: 'A-Za-z' }],
  [CPT.PUNCTUATION, { char: '\xD3', ascii: '!-#%-*,-/:-;?-@\\[-\\]_\\{\\}' }],
  [CPT.MARK, { char: '\xD4', ascii: '' }],
  [CPT.SYMBOL, { char: '\xD5', ascii: '\\$\\+<->^`\\|\\~' }],
]);
const COLLAPSED_WHITESPACE = 0x0b;
const COLLAPSED_OTHER = 0xd0;

function usesCategories(regex: string): boolean {
  for (const name of UNICODE_CATEGORY_NAMES.keys()) if (regex.includes(name)) return true;
  return false;
}

/** One char per code point: ASCII as is, others by category (llama.cpp's `text_collapsed`). */
function collapseText(cpts: Uint32Array): string {
  const table = cptFlagTable();
  const codes = new Uint16Array(cpts.length);
  for (let i = 0; i < cpts.length; i++) {
    const c = cpts[i]!;
    if (c < 0x80) {
      codes[i] = c;
      continue;
    }
    const flags = c < MAX_CODEPOINT ? table[c]! : CPT.UNDEFINED;
    if (flags & CPT.WHITESPACE) codes[i] = COLLAPSED_WHITESPACE;
    else codes[i] = COLLAPSED.get(flags & CPT.CATEGORIES)?.char.charCodeAt(0) ?? COLLAPSED_OTHER;
  }
  let out = '';
  for (let i = 0; i < codes.length; i += 0x2000) {
    out += String.fromCharCode.apply(null, codes.subarray(i, i + 0x2000) as unknown as number[]);
  }
  return out;
}

/** The code points as a JS string, non-ASCII whitespace as \v (llama.cpp's wide text for std::wregex). */
function wideText(cpts: Uint32Array): WideText {
  const table = cptFlagTable();
  let text = '';
  let astral = false;
  const parts: string[] = [];
  for (let i = 0; i < cpts.length; i++) {
    let c = cpts[i]!;
    if (c >= MAX_CODEPOINT) {
      throw new TokenizeError(`input has a UTF-8 form of code point 0x${c.toString(16)}, past U+10FFFF, which llama.cpp cannot tokenize either`);
    }
    if (c > 0x7f && table[c]! & CPT.WHITESPACE) c = COLLAPSED_WHITESPACE;
    if (c > 0xffff) astral = true;
    parts.push(String.fromCodePoint(c));
    if (parts.length === 4096) {
      text += parts.join('');
      parts.length = 0;
    }
  }
  text += parts.join('');
  if (!astral) return { text, cptToU16: undefined, u16ToCpt: undefined };
  const cptToU16 = new Uint32Array(cpts.length + 1);
  const u16ToCpt = new Uint32Array(text.length + 1);
  let u = 0;
  for (let k = 0; k < cpts.length; k++) {
    cptToU16[k] = u;
    u16ToCpt[u] = k;
    if (cpts[k]! > 0xffff) u16ToCpt[++u] = k;
    u++;
  }
  cptToU16[cpts.length] = u;
  u16ToCpt[u] = cpts.length;
  return { text, cptToU16, u16ToCpt };
}

/**
 * Rewrites a regex that uses `\p{…}` for the collapsed text: each category becomes its collapsed
 * byte plus its ASCII members, bracketed unless already inside a class (llama.cpp's own rewrite,
 * including how it tracks brackets).
 */
export function collapseRegex(regex: string): string {
  for (let i = 0; i < regex.length; i++) {
    if (regex.charCodeAt(i) >= 0x80) {
      throw new TokenizerLoadError('a pre-tokenizer regex mixes Unicode categories with non-ASCII characters (llama.cpp rejects this too)', { regex });
    }
  }
  let out = '';
  let inside = false;
  for (let i = 0; i < regex.length; i++) {
    const ch = regex[i]!;
    if (ch === '[' && (i === 0 || regex[i - 1] !== '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && ch === ']' && regex[i - 1] !== '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (ch === '\\' && i + 3 < regex.length && regex[i + 1] === 'p' && regex[i + 2] === '{') {
      const close = regex.indexOf('}', i + 3);
      if (close >= 0 && close <= i + 10) {
        const category = UNICODE_CATEGORY_NAMES.get(regex.slice(i, close + 1));
        if (category !== undefined) {
          const collapsed = COLLAPSED.get(category)!;
          out += (inside ? '' : '[') + collapsed.char + collapsed.ascii + (inside ? '' : ']');
          i = close;
          continue;
        }
      }
    }
    out += ch;
  }
  return out;
}

/**
 * Translates an ECMAScript regex as libstdc++'s std::regex reads it (in the "C" locale) into a JS
 * RegExp with the same matches: `\s` and `\d` become their ASCII classes (JS's `\s` also matches
 * U+FEFF, NBSP and others, which llama.cpp leaves to its own table), `.` excludes only \n and \r,
 * and identity escapes are spelled as code points so `u` mode accepts them.
 */
export function stdRegexToJs(source: string, unicode: boolean): RegExp {
  const literal = (cp: number) =>
    unicode ? `\\u{${cp.toString(16)}}` : cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  const chars = Array.from(source);
  let out = '';
  let inClass = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '\\') {
      const next = chars[++i];
      if (next === undefined) throw new TokenizerLoadError('pre-tokenizer regex ends with a backslash', { regex: source });
      switch (next) {
        case 's':
          out += inClass ? '\\t-\\r ' : '[\\t-\\r ]';
          break;
        case 'S':
          if (inClass) throw new TokenizerLoadError('\\S inside a class is not supported', { regex: source });
          out += '[^\\t-\\r ]';
          break;
        case 'd':
          out += inClass ? '0-9' : '[0-9]';
          break;
        case 'D':
          if (inClass) throw new TokenizerLoadError('\\D inside a class is not supported', { regex: source });
          out += '[^0-9]';
          break;
        case 'w':
        case 'W':
        case 'b':
        case 'B':
        case 'r':
        case 'n':
        case 't':
        case 'f':
        case 'v':
          out += '\\' + next;
          break;
        case 'x':
          out += '\\x' + chars[i + 1]! + chars[i + 2]!;
          i += 2;
          break;
        default:
          out += literal(next.codePointAt(0)!);
      }
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch === '[' ? '\\[' : ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += '[';
      if (chars[i + 1] === '^') {
        out += '^';
        i++;
      }
      // std::regex ECMAScript, like JS, reads a leading ']' as closing an empty class: nothing to do.
      continue;
    }
    out += ch === '.' ? '[^\\n\\r]' : ch;
  }
  return new RegExp(out, unicode ? 'gu' : 'g');
}

/**
 * Splits each piece with a JS RegExp the way llama.cpp iterates std::regex_iterator: unmatched text
 * between matches is a piece of its own, and so is every match, even an empty one.
 */
function regexSplitter(re: RegExp, collapsed: boolean): Splitter {
  return (_cpts, offsets, text) => {
    const out: number[] = [];
    let str: string;
    let cptToU16: Uint32Array | undefined;
    let u16ToCpt: Uint32Array | undefined;
    if (collapsed) {
      str = text.collapsed();
    } else {
      ({ text: str, cptToU16, u16ToCpt } = text.wide());
    }
    let cptStart = 0;
    for (const offset of offsets) {
      const cptEnd = cptStart + offset;
      const u16Start = cptToU16 ? cptToU16[cptStart]! : cptStart;
      const u16End = cptToU16 ? cptToU16[cptEnd]! : cptEnd;
      const piece = str.slice(u16Start, u16End);
      const cptOf = (u16: number) => (u16ToCpt ? u16ToCpt[u16Start + u16]! - cptStart : u16);
      re.lastIndex = 0;
      let done = 0; // UTF-16 index in piece where the previous match ended
      for (;;) {
        const m = re.exec(piece);
        if (!m) break;
        const at = m.index;
        const len = m[0].length;
        if (at > done) out.push(cptOf(at) - cptOf(done));
        out.push(cptOf(at + len) - cptOf(at));
        done = at + len;
        if (len === 0) {
          // std::regex_iterator retries a non-empty match here first; none of llama.cpp's regexes
          // can match both empty and non-empty at one place, so moving on by one character is the same.
          if (at >= piece.length) break;
          const u = piece.charCodeAt(at);
          re.lastIndex = at + (unicode(re) && u >= 0xd800 && u <= 0xdbff && at + 1 < piece.length ? 2 : 1);
        }
      }
      if (done < piece.length) out.push(cptOf(piece.length) - cptOf(done));
      cptStart = cptEnd;
    }
    return out;
  };
}

function unicode(re: RegExp): boolean {
  return re.flags.includes('u');
}

/**
 * A compiled pre-tokenizer: splits code points into words (as code point lengths), exactly where
 * llama.cpp's unicode_regex_split would.
 */
export class PreTokenizer {
  private readonly splitters: Splitter[];

  constructor(readonly kind: string, readonly spec: PreTokenizerSpec) {
    this.splitters = spec.regexes.map((regex) => {
      const custom = CUSTOM_SPLITTERS.get(regex);
      if (custom) return custom;
      if (regex === RE_HAN) {
        throw new TokenizerLoadError(`pre-tokenizer '${kind}' uses llama.cpp's Kimi-K2 splitter, which is not implemented here`, { kind });
      }
      if (usesCategories(regex)) return regexSplitter(stdRegexToJs(collapseRegex(regex), false), true);
      return regexSplitter(stdRegexToJs(regex, true), false);
    });
  }

  /** Word lengths in code points; they sum to cpts.length. Zero-length words can occur. */
  split(cpts: Uint32Array): number[] {
    let offsets = [cpts.length];
    let collapsed: string | undefined;
    let wide: WideText | undefined;
    const text: SplitText = {
      collapsed: () => (collapsed ??= collapseText(cpts)),
      wide: () => (wide ??= wideText(cpts)),
    };
    for (const splitter of this.splitters) {
      const next = splitter(cpts, offsets, text);
      // llama.cpp falls back to std::regex when a custom splitter returns nothing, which happens
      // only when there is nothing to split; the result is empty either way.
      offsets = next;
    }
    return offsets;
  }
}
