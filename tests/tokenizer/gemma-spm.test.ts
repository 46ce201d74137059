/**
 * Gemma 1 and 2 tokenizers are SentencePiece (`tokenizer.ggml.model = llama`) written with
 * `tokenizer.ggml.add_space_prefix = false` and many control and user-defined tokens
 * (`<start_of_turn>`, `<end_of_turn>`, `<unusedN>`, HTML tags). No vocab file in llama.cpp's
 * models/ has that flag off (llama-spm, phi-3 and baichuan all prepend a space), so this file
 * makes one: llama.cpp's llama-spm vocabulary with the flag off and a few tokens renamed into
 * Gemma's specials, and holds our tokenization and detokenization to llama.cpp's on it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { GgufValueType, type GgufValue } from '../../src/engine/gguf/types.ts';
import { writeGguf } from '../../src/engine/gguf/writer.ts';
import { Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { llamaRefDetokenizeBytes, llamaRefVocabInfo } from '../../src/testing/llama-ref.ts';
import { HARD_CASES, INVALID_UTF8, randomCases, specialCases } from './corpus.ts';
import { loadTokenizer, tokenizationMismatches, vocabPath } from './helpers.ts';

const CONTROL = 3;
const USER_DEFINED = 4;
/** Gemma's specials, given the ids of the last tokens of llama-spm's vocabulary (rare CJK pieces). */
const RENAMED: Array<[string, number]> = [
  ['<start_of_turn>', CONTROL],
  ['<end_of_turn>', CONTROL],
  ['<h1>', USER_DEFINED],
  ['</h1>', USER_DEFINED],
  ['<unused0>', USER_DEFINED],
  ['<table>', USER_DEFINED],
];

let dir: string;
let path: string;
let tok: Tokenizer;
let plain: Tokenizer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-gemma-spm-'));
  path = join(dir, 'gemma-style-spm.gguf');
  const source = await nodeFileSource(vocabPath('llama-spm'));
  const file = await readGguf(source).finally(() => source.close());
  const metadata = new Map<string, GgufValue>(file.metadata);
  const types = new Map(file.metadataTypes);
  const tokens = [...(metadata.get('tokenizer.ggml.tokens') as string[])];
  const tokenTypes = Int32Array.from(metadata.get('tokenizer.ggml.token_type') as ArrayLike<number>);
  RENAMED.forEach(([text, type], i) => {
    if (tokens.includes(text)) throw new Error(`test setup: llama-spm already has ${JSON.stringify(text)}`);
    const id = tokens.length - 1 - i;
    tokens[id] = text;
    tokenTypes[id] = type;
  });
  metadata.set('tokenizer.ggml.tokens', tokens);
  metadata.set('tokenizer.ggml.token_type', tokenTypes);
  metadata.set('tokenizer.ggml.add_space_prefix', false);
  types.set('tokenizer.ggml.add_space_prefix', { type: GgufValueType.BOOL });
  writeFileSync(path, writeGguf({ metadata, metadataTypes: types, tensors: [] }));
  tok = Tokenizer.fromGgufMetadata(metadata);
  plain = await loadTokenizer('llama-spm');
}, 120_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a Gemma-style SentencePiece vocabulary (no space prefix, Gemma specials) against llama.cpp', () => {
  it('reads the flag off, so text does not start with a space token', () => {
    expect(tok.flags.addSpacePrefix).toBe(false);
    expect(plain.flags.addSpacePrefix).toBe(true);
    // The same vocabulary with the flag on starts "Hello" with "▁Hello"; off, it must not.
    expect(tok.encode('Hello world')).not.toEqual(plain.encode('Hello world'));
    expect(tok.tokenText(tok.encode('Hello')[0]!).startsWith('\u2581')).toBe(false);
  });

  it('tokenizes a corpus of hard cases, with special tokens parsed and not, as llama.cpp does', () => {
    const specials = RENAMED.map(([text]) => text);
    const withSpecials = [...specialCases(specials, 71), ...randomCases({ seed: 72, count: 60, specials })];
    const corpus: (string | Uint8Array)[] = [
      ...HARD_CASES,
      ...randomCases({ seed: 70, count: 120 }),
      ...withSpecials,
      ...INVALID_UTF8,
      '<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n',
      HARD_CASES.join(' | '),
    ];
    const failures = tokenizationMismatches(tok, path, corpus, withSpecials);
    expect(failures.slice(0, 10), `${failures.length} mismatches:\n${failures.slice(0, 10).join('\n')}`).toEqual([]);
  }, 120_000);

  it('detokenizes without dropping a leading space, and ends generation on <end_of_turn>, as llama.cpp does', () => {
    const sequences = [
      tok.encode(' leading space kept', { addSpecial: true }),
      tok.encode('<start_of_turn>model\n  two spaces<end_of_turn>', { parseSpecial: true }),
      tok.encode(HARD_CASES.slice(0, 40).join(' ')),
    ];
    for (const ids of sequences) {
      for (const opts of [{ removeSpecial: false, unparseSpecial: false }, { removeSpecial: true, unparseSpecial: true }]) {
        const want = Buffer.from(llamaRefDetokenizeBytes(path, ids, opts)).toString('hex');
        expect(Buffer.from(tok.decodeBytes(ids, opts)).toString('hex'), JSON.stringify({ ids: ids.slice(0, 8), ...opts })).toBe(want);
      }
    }
    const info = llamaRefVocabInfo(path);
    const endOfTurn = tok.encode('<end_of_turn>', { parseSpecial: true });
    expect(endOfTurn).toHaveLength(1);
    expect(info.eog).toContain(endOfTurn[0]);
    expect(tok.isEog(endOfTurn[0]!)).toBe(true);
    expect([...Array(tok.size).keys()].filter((id) => tok.isEog(id))).toEqual([...info.eog].sort((a, b) => a - b));
  }, 120_000);
});
