/**
 * SentencePiece unigram ("t5", UGM) tokenization against llama.cpp's on the same GGUF: generated
 * T5 files (src/testing/make-model.ts) whose vocabularies come from syntheticUgmVocab, with the
 * normalizer's switches (add_space_prefix, remove_extra_whitespaces) both ways, over the shared hard
 * cases, random text with user-defined and control token texts, and invalid UTF-8; llama.cpp's
 * vocab files hold no UGM vocabulary. Detokenization is compared too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { llamaRefDetokenizeBytes } from '../../src/testing/llama-ref.ts';
import { buildCharsmap } from '../../src/testing/charsmap.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { syntheticUgmVocab } from '../../src/testing/make-model-t5.ts';
import { HARD_CASES, INVALID_UTF8, randomCases, specialCases } from './corpus.ts';
import { rng, tokenizationMismatches } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hearth-ugm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SPECIALS = ['<extra_id_0>', '<extra_id_1>', '</s>', '<pad>', '<unk>'];

/** A small t5 file around `vocab` (llama-ref loads the vocabulary from it) and our tokenizer of it, read back as the engine reads it. */
async function modelWith(name: string, vocab: ReturnType<typeof syntheticUgmVocab>): Promise<{ path: string; tok: Tokenizer }> {
  const path = join(tmp, `${name}.gguf`);
  const bytes = makeTestModel({ arch: 't5', embd: 8, layers: 1, heads: 2, ff: 8, vocab });
  writeFileSync(path, bytes);
  return { path, tok: Tokenizer.fromGgufMetadata((await readGguf(bytesSource(bytes))).metadata) };
}

/**
 * A charsmap in the spirit of T5's NFKC one: full-width and compatibility characters to ASCII, tab,
 * newline and odd spaces to a space, a deleted zero-width space, a ligature, and keys that are
 * prefixes of other keys (longest wins; 'Th' beside 'T').
 */
const CHARSMAP = buildCharsmap([
  ['\uFF21', 'A'], ['\uFF42', 'b'], ['\t', ' '], ['\n', ' '], ['\r\n', ' '], ['\u00A0', ' '], ['\u3000', ' '], ['\u200B', ''],
  ['\uFB01', 'fi'], ['\u2460', '1'], ['\u216B', 'XII'], ['T', 't'], ['Th', 'TH'], ['ab', 'Q'], ['abc', 'the'], ['\u00DF', 'ss'], ['e\u0301', '\u00E9'],
]);

const VARIANTS = [
  { name: 'T5 defaults (space prefix, extra whitespace removed)', options: {} },
  { name: 'no space prefix', options: { addSpacePrefix: false } },
  { name: 'whitespace kept', options: { removeExtraWhitespaces: false } },
  { name: 'neither', options: { addSpacePrefix: false, removeExtraWhitespaces: false } },
  { name: 'a precompiled charsmap', options: { charsmap: CHARSMAP } },
  { name: 'a precompiled charsmap, whitespace kept', options: { charsmap: CHARSMAP, removeExtraWhitespaces: false } },
];

describe('UGM (T5) tokenizer', () => {
  it.each(VARIANTS.map((v, i) => [v.name, i] as const))('%s: equals llama.cpp on hard, random, special and invalid-UTF-8 inputs', { timeout: 120_000 }, async (_, i) => {
    const { path, tok } = await modelWith(`v${i}`, syntheticUgmVocab(VARIANTS[i]!.options));
    expect(tok.type).toBe('ugm');
    const words = ['the', 'quick', 'brown', 'fox', 'über', 'café', 'naïve', 'Straße', 'x1', 'end.', 'Hello,', "don't", 'zzz', 'qj', 'The', 'abcd', 'Ｆ\uFB01ne', '\u2460\u216B', 'cafe\u0301', 'zero\u200Bwidth', 'tab\there'];
    const next = rng(77 + i);
    const sentences = Array.from({ length: 60 }, () => Array.from({ length: 1 + Math.floor(next() * 10) }, () => words[Math.floor(next() * words.length)]).join(next() < 0.3 ? '  ' : ' '));
    const corpus = [...HARD_CASES, ...sentences, ...randomCases({ seed: 11 + i, count: 150, specials: SPECIALS }), ...INVALID_UTF8];
    const failures = tokenizationMismatches(tok, path, corpus, specialCases(SPECIALS, 5));
    expect(failures.slice(0, 5).join('\n')).toBe('');
    expect(failures).toHaveLength(0);
  });

  it('the charsmap normalizes before the Viterbi: longest key first, deletions, multi-byte keys', () => {
    const plain = Tokenizer.fromGgufMetadata(syntheticUgmVocab().metadata);
    const mapped = Tokenizer.fromGgufMetadata(syntheticUgmVocab({ charsmap: CHARSMAP }).metadata);
    for (const [input, same] of [['\uFB01ne', 'fine'], ['abc', 'the'], ['abd', 'Qd'], ['zero\u200Bwidth', 'zerowidth'], ['Tea', 'tea'], ['a\tb\u3000c', 'a b c']]) {
      expect(mapped.encode(input!), input).toEqual(mapped.encode(same!));
      expect(plain.encode(input!), input).not.toEqual(plain.encode(same!));
    }
  });

  it('adds </s> and no BOS, maps what no piece covers to one <unk> per run, and detokenizes as llama.cpp', { timeout: 120_000 }, async () => {
    const { path, tok } = await modelWith('special', syntheticUgmVocab());
    expect(tok.special.eos).toBe(1);
    expect(tok.special.unk).toBe(2);
    expect(tok.special.bos).toBeNull();
    const ids = tok.encode('the fox', { addSpecial: true });
    expect(ids[ids.length - 1]).toBe(1);
    // Upper case is not in the vocabulary: "ABC" is one unknown token, not three.
    expect(tok.encode('ABC').filter((id) => id === 2)).toHaveLength(1);
    const samples = [ids, tok.encode('Hello <extra_id_0> wörld', { parseSpecial: true }), [0, 1, 2, 3, 40, 300, 1], tok.encode('  a  b  ')];
    for (const s of samples) {
      for (const opts of [{}, { removeSpecial: true, unparseSpecial: true }]) {
        expect(Buffer.from(tok.decodeBytes(s, opts)).toString('hex')).toBe(Buffer.from(llamaRefDetokenizeBytes(path, s, opts)).toString('hex'));
      }
    }
  });
});
