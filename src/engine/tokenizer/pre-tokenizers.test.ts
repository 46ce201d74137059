import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { TokenizerLoadError } from './errors.ts';
import { PRE_TOKENIZER_REGEXES, PreTokenizer, collapseRegex, stdRegexToJs } from './pre-tokenizers.ts';
import { KNOWN_PRE_TOKENIZERS, loadVocab } from './vocab.ts';

/** Reads C++ string literals ("..." with \\ \" \r \n \t escapes) out of a piece of source. */
function cppStrings(code: string): string[] {
  const out: string[] = [];
  for (const line of code.split('\n')) {
    const t = line.trim();
    if (t.startsWith('//')) continue;
    for (const m of t.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
      out.push(m[1]!.replace(/\\(.)/g, (_, c: string) => ({ r: '\r', n: '\n', t: '\t' })[c] ?? c));
    }
  }
  return out;
}

function vocabSource(): string {
  return readFileSync(join(llamaCppSourceDir(), 'src/llama-vocab.cpp'), 'utf8');
}

describe("pre-tokenizer regexes are llama.cpp's", () => {
  it('for every LLAMA_VOCAB_PRE_TYPE the BPE tokenizer knows', () => {
    const src = vocabSource();
    const start = src.indexOf('llm_tokenizer_bpe(const llama_vocab & vocab)');
    const body = src.slice(start, src.indexOf('std::vector<std::string> regex_exprs;', start));
    // Blocks of "case A: case B: regex_exprs = {...}; [byte_encode = false;] break;" and "default:".
    const blocks = body.split(/break;/).filter((b) => b.includes('regex_exprs'));
    expect(blocks.length).toBeGreaterThan(25);
    let checked = 0;
    for (const block of blocks) {
      const kinds = [...block.matchAll(/case LLAMA_VOCAB_PRE_TYPE_(\w+):/g)].map((m) => m[1]!.toLowerCase().replaceAll('_', '-'));
      if (block.includes('default:')) kinds.push('default');
      const regexes = cppStrings(block.slice(block.indexOf('regex_exprs = {'), block.indexOf('};', block.indexOf('regex_exprs = {'))));
      const byteEncode = !/byte_encode\s*=\s*false/.test(block);
      for (const kind of kinds) {
        const spec = PRE_TOKENIZER_REGEXES[kind];
        expect(spec, `pre-tokenizer kind ${kind}`).toBeDefined();
        expect(spec!.regexes, kind).toEqual(regexes);
        expect(spec!.byteEncode, kind).toBe(byteEncode);
        checked++;
      }
    }
    expect(checked).toBe(Object.keys(PRE_TOKENIZER_REGEXES).length);
  });

  it('with the names and flags llama.cpp gives tokenizer.ggml.pre values', () => {
    const src = vocabSource();
    const start = src.indexOf('if (tokenizer_pre.empty())');
    const chain = src.slice(start, src.indexOf('} else if (type == LLAMA_VOCAB_TYPE_SPM)', start));
    const branches = chain.split(/\} else if \(/).slice(2); // the empty and "default" branches are tested below
    const seen: string[] = [];
    for (const branch of branches) {
      const names = [...branch.matchAll(/tokenizer_pre == "([^"]+)"/g)].map((m) => m[1]!);
      const kind = /pre_type = LLAMA_VOCAB_PRE_TYPE_(\w+);/.exec(branch)![1]!.toLowerCase().replaceAll('_', '-');
      const tokens = Array.from({ length: 20 }, (_, i) => `t${i}`);
      for (const name of names) {
        seen.push(name);
        const vocab = loadVocab(
          new Map<string, unknown>([
            ['tokenizer.ggml.model', 'gpt2'],
            ['tokenizer.ggml.pre', name],
            ['tokenizer.ggml.tokens', tokens],
            ['tokenizer.ggml.merges', ['a b']],
          ]),
        );
        expect(vocab.preKind, name).toBe(kind);
        expect(vocab.flags.cleanSpaces, `${name} clean_spaces`).toBe(!/clean_spaces = false;/.test(branch));
        expect(vocab.flags.ignoreMerges, `${name} ignore_merges`).toBe(/ignore_merges = true;/.test(branch));
        // Gemma 4 gets add_bos forced on later in llama.cpp's loader.
        expect(vocab.flags.addBos, `${name} add_bos`).toBe(/add_bos = true;/.test(branch) || kind === 'gemma4');
        expect(vocab.flags.escapeWhitespaces, `${name} escape_whitespaces`).toBe(/escape_whitespaces = true;/.test(branch));
        expect(vocab.flags.addSep, `${name} add_sep`).toBe(/add_sep = true;/.test(branch));
        expect(vocab.special.bos === null, `${name} bos`).toBe(/special_bos_id = LLAMA_TOKEN_NULL;/.test(branch));
      }
    }
    expect(seen.length).toBeGreaterThan(80);
    expect([...seen, 'default'].sort()).toEqual([...KNOWN_PRE_TOKENIZERS].sort());
  });
});

describe('pre-tokenizer construction', () => {
  it('compiles every kind but Kimi-K2, which is refused by name', () => {
    for (const [kind, spec] of Object.entries(PRE_TOKENIZER_REGEXES)) {
      if (kind === 'kimi-k2') {
        expect(() => new PreTokenizer(kind, spec)).toThrow(TokenizerLoadError);
        continue;
      }
      const pre = new PreTokenizer(kind, spec);
      const cpts = Uint32Array.from('Hello world 12345 \u4E16\u754C!\n', (c) => c.codePointAt(0)!);
      const lengths = pre.split(cpts);
      expect(lengths.reduce((a, b) => a + b, 0), kind).toBe(cpts.length);
    }
  });

  it('unknown and missing pre-tokenizer names behave as in llama.cpp', () => {
    const md = (pre?: string) =>
      new Map<string, unknown>([
        ['tokenizer.ggml.model', 'gpt2'],
        ...(pre === undefined ? [] : [['tokenizer.ggml.pre', pre] as [string, unknown]]),
        ['tokenizer.ggml.tokens', ['a', 'b']],
        ['tokenizer.ggml.merges', ['a b']],
      ]);
    expect(() => loadVocab(md('no-such-pre'))).toThrow(/unknown pre-tokenizer type: 'no-such-pre'/);
    const fallback = loadVocab(md());
    expect(fallback.preKind).toBe('default');
    expect(fallback.warnings.join('\n')).toMatch(/missing pre-tokenizer type/);
  });
});

describe('std::regex -> JS RegExp', () => {
  it("collapses Unicode categories the way llama.cpp does", () => {
    expect(collapseRegex('[^\\r\\n\\p{L}\\p{N}]?\\p{L}+')).toBe('[^\\r\\n\xD2A-Za-z\xD10-9]?[\xD2A-Za-z]+');
    expect(collapseRegex('\\p{M}')).toBe('[\xD4]');
    expect(() => collapseRegex('[\u4E00]\\p{L}')).toThrow(TokenizerLoadError);
  });

  it('spells \\s, \\d and . as the C locale reads them', () => {
    expect(stdRegexToJs('\\s+(?!\\S)', false).source).toBe('[\\t-\\r ]+(?![^\\t-\\r ])');
    expect(stdRegexToJs('[^\\s\\d]', false).source).toBe('[^\\t-\\r 0-9]');
    expect(stdRegexToJs('a.b', true).source).toBe('a[^\\n\\r]b');
    // JS's own \s would take U+FEFF and U+00A0; llama.cpp's \s does not.
    expect(stdRegexToJs('\\s', true).test('\uFEFF')).toBe(false);
    expect(stdRegexToJs('\\s', true).test('\u000B')).toBe(true);
    // Identity escapes that u-mode JS rejects are spelled as code points.
    expect(stdRegexToJs('[\\~\\-]', true).test('~')).toBe(true);
  });
});

describe('hand-written splitters', () => {
  const split = (kind: string, text: string): string[] => {
    const pre = new PreTokenizer(kind, PRE_TOKENIZER_REGEXES[kind]!);
    const cpts = Uint32Array.from(Array.from(text), (c) => c.codePointAt(0)!);
    const out: string[] = [];
    let k = 0;
    for (const n of pre.split(cpts)) {
      out.push(String.fromCodePoint(...cpts.subarray(k, k + n)));
      k += n;
    }
    return out;
  };

  it('llama3: digits in threes, contractions any case, newline runs', () => {
    expect(split('llama3', "I'M here  1234567 ok!!\n\n  x")).toEqual(['I', "'M", ' here', ' ', ' ', '123', '456', '7', ' ok', '!!\n\n', ' ', ' x']);
    expect(split('llama3', '1234567')).toEqual(['123', '456', '7']);
    expect(split('llama3', "we'RE")).toEqual(['we', "'RE"]);
    expect(split('llama3', 'a  b')).toEqual(['a', ' ', ' b']);
    expect(split('llama3', 'x\n\n y')).toEqual(['x', '\n\n', ' y']);
  });

  it('qwen2: one digit at a time; qwen35: letters keep their marks', () => {
    expect(split('qwen2', '2024')).toEqual(['2', '0', '2', '4']);
    expect(split('qwen2', 'e\u0301t\u00E9')).toEqual(['e', '\u0301t\u00E9']);
    expect(split('qwen35', 'e\u0301t\u00E9')).toEqual(['e\u0301t\u00E9']);
  });

  it('gpt2: contractions in lower case only, spaces before words', () => {
    expect(split('gpt2', "it's IT'S  x")).toEqual(['it', "'s", ' IT', "'", 'S', ' ', ' x']);
  });
});
