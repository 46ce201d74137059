/**
 * llama.cpp's own tokenizer suites (models/ggml-vocab-*.gguf with .inp/.out, run there by
 * tests/test-tokenizer-0.cpp with add_special = false, parse_special = false): every case must
 * give exactly llama.cpp's ids. Vocab types we do not implement are asserted to be refused with a
 * clear error instead, by name.
 */
import { describe, expect, it } from 'vitest';
import { TokenizerLoadError } from '../../src/engine/tokenizer/index.ts';
import { loadTokenizer, readMetadata, readSuite, vocabNames, vocabPath } from './helpers.ts';

/** Vocab types (tokenizer.ggml.model) Hearth does not claim: none of its target models use them. */
const NOT_CLAIMED: Record<string, string> = {
  bert: 'WPM (BERT embedding models)',
  t5: 'UGM (T5 / XLM-R embedding models)',
};

const names = vocabNames().filter((name) => readSuite(name) !== undefined);

describe("llama.cpp's tokenizer suites", () => {
  it('finds the suites', () => {
    // llama.cpp ships 15 suites at the pinned version; fewer means the source extraction broke.
    expect(names.length).toBeGreaterThanOrEqual(15);
    for (const name of ['llama-spm', 'llama-bpe', 'qwen2', 'phi-3', 'gemma-4', 'gpt-2']) expect(names).toContain(name);
  });

  for (const name of names) {
    it(`${name}: every case matches llama.cpp, or the vocab type is one we do not claim`, async () => {
      const model = (await readMetadata(vocabPath(name))).get('tokenizer.ggml.model') as string;
      const notClaimed = NOT_CLAIMED[model];
      if (notClaimed !== undefined) {
        await expect(loadTokenizer(name), `${name} is ${notClaimed}, not claimed: it must be refused`).rejects.toThrow(TokenizerLoadError);
        return;
      }
      const tok = await loadTokenizer(name);
      const cases = readSuite(name)!;
      expect(cases.length).toBeGreaterThan(30);
      const failures: string[] = [];
      for (const { input, expected } of cases) {
        const got = tok.encode(input);
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          failures.push(`${JSON.stringify(new TextDecoder().decode(input))}\n  expected ${expected.join(' ')}\n  got      ${got.join(' ')}`);
        }
      }
      expect(failures, failures.join('\n')).toEqual([]);
    }, 60_000);
  }

  it('the suites we skip are exactly the vocab types we do not claim', async () => {
    const skipped: string[] = [];
    for (const name of names) {
      const model = (await readMetadata(vocabPath(name))).get('tokenizer.ggml.model') as string;
      if (NOT_CLAIMED[model] !== undefined) skipped.push(`${name} (${model})`);
    }
    expect(skipped).toEqual(['bert-bge (bert)']);
  });
});
