/**
 * Beyond llama.cpp's suites: our ids against llama.cpp's own (tools/llama-ref, through
 * src/testing/llama-ref.ts) on a generated corpus of hard cases, for every vocab file of
 * llama.cpp we can load, with add_special and parse_special on and off. One llama-ref process per
 * vocab and option set tokenizes the whole corpus.
 *
 * JS strings reach llama.cpp as TextEncoder's UTF-8 (a lone surrogate becomes U+FFFD), which is
 * what Tokenizer.encode documents for strings; invalid UTF-8 is passed to both as raw bytes.
 */
import { describe, expect, it } from 'vitest';
import { ATTR, type Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { llamaRefVocabInfo } from '../../src/testing/llama-ref.ts';
import { HARD_CASES, INVALID_UTF8, randomCases, specialCases } from './corpus.ts';
import { loadTokenizer, rng, tokenizationMismatches, vocabPath } from './helpers.ts';

/** Every vocab in llama.cpp's models/ whose type we implement (SPM and BPE), suite or not. */
const VOCABS = [
  'llama-spm', 'phi-3', 'baichuan', 'llama-bpe', 'qwen2', 'qwen35', 'gemma-4', 'gpt-2', 'deepseek-llm',
  'deepseek-coder', 'falcon', 'command-r', 'mpt', 'starcoder', 'refact', 'aquila', 'gpt-neox',
];

/** Up to `max` texts of the vocab's special tokens (control, user-defined, unknown), seeded. */
export function sampleSpecialTexts(tok: Tokenizer, max: number, seed: number): string[] {
  const all: string[] = [];
  for (let id = 0; id < tok.size; id++) {
    if (tok.tokenAttr(id) & (ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN)) all.push(tok.tokenText(id));
  }
  if (all.length <= max) return all;
  const next = rng(seed);
  // Always keep the first few (BOS/EOS/chat markers tend to be there), then a random sample.
  const out = all.slice(0, 8);
  while (out.length < max) out.push(all[Math.floor(next() * all.length)]!);
  return out;
}

describe('tokenization equals llama.cpp on a generated corpus', () => {
  for (const [index, name] of VOCABS.entries()) {
    it(`${name}`, async () => {
      const tok = await loadTokenizer(name);
      const specials = sampleSpecialTexts(tok, 24, 100 + index);
      const withSpecials = [...specialCases(specials, 200 + index), ...randomCases({ seed: 300 + index, count: 40, specials })];
      const corpus: (string | Uint8Array)[] = [
        ...HARD_CASES,
        ...randomCases({ seed: index, count: 120 }),
        ...withSpecials,
        ...INVALID_UTF8,
        HARD_CASES.join(' | '), // one long text through every rule at once
      ];
      const failures = tokenizationMismatches(tok, vocabPath(name), corpus, withSpecials);
      expect(failures.slice(0, 10), `${failures.length} mismatches:\n${failures.slice(0, 10).join('\n')}`).toEqual([]);

      // The special tokens the engine stops and starts on.
      const info = llamaRefVocabInfo(vocabPath(name));
      const { special, flags } = tok;
      expect({
        nTokens: tok.size,
        type: tok.type === 'spm' ? 1 : 2,
        bos: special.bos ?? -1,
        eos: special.eos ?? -1,
        eot: special.eot ?? -1,
        sep: special.sep ?? -1,
        pad: special.pad ?? -1,
        addBos: flags.addBos,
        addEos: flags.addEos,
        eog: [...Array(tok.size).keys()].filter((id) => tok.isEog(id)),
      }).toEqual({
        nTokens: info.nTokens,
        type: info.type,
        bos: info.bos,
        eos: info.eos,
        eot: info.eot,
        sep: info.sep,
        pad: info.pad,
        addBos: info.addBos,
        addEos: info.addEos,
        eog: [...info.eog].sort((a, b) => a - b),
      });
    }, 120_000);
  }
});
