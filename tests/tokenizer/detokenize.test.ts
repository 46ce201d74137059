/**
 * Detokenization: every token's piece and whole-sequence detokenization against llama.cpp
 * (llama_token_to_piece, llama_detokenize), round trips where tokenization is lossless, and the
 * streaming decoder against the full decode.
 */
import { describe, expect, it } from 'vitest';
import { ATTR, type Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { llamaRefDetokenizeBytes, llamaRefPieces } from '../../src/testing/llama-ref.ts';
import { HARD_CASES, INVALID_UTF8, randomCases } from './corpus.ts';
import { loadTokenizer, rng, vocabPath } from './helpers.ts';
import { byteStringToBytes, bytesToByteString, cptUtf8 } from '../../src/engine/tokenizer/bytes.ts';
import { decodeUtf8Lenient } from '../../src/engine/tokenizer/unicode.ts';

/** One vocab per decoding behaviour: SPM, BPE with and without clean-up, SPM-style BPE, heavy user-defined tokens. */
const DETOKENIZE_VOCABS = ['llama-spm', 'phi-3', 'llama-bpe', 'qwen2', 'gemma-4', 'gpt-2', 'command-r', 'deepseek-llm'];
const ALL_VOCABS = [
  'llama-spm', 'phi-3', 'baichuan', 'llama-bpe', 'qwen2', 'qwen35', 'gemma-4', 'gpt-2', 'deepseek-llm',
  'deepseek-coder', 'falcon', 'command-r', 'mpt', 'starcoder', 'refact', 'aquila', 'gpt-neox',
];

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

/** Text that exercises llama.cpp's clean_spaces passes and the leading-space rules. */
const CLEANUP_TEXT = " ?  !  .  , x ' y  's 'm 're 've 't 'd 'll  ' ' ' 's ' 're x '  ''s end .";

/** A sequence with a bit of everything: BOS, text, special tokens, random ids (bytes, controls), EOS. */
function mixedSequence(tok: Tokenizer, seed: number): number[] {
  const next = rng(seed);
  const ids: number[] = [];
  const { bos, eos } = tok.special;
  if (bos !== null) ids.push(bos);
  ids.push(...tok.encode(CLEANUP_TEXT));
  ids.push(...tok.encode(HARD_CASES.slice(30, 60).join(' '), { parseSpecial: true }));
  for (let i = 0; i < 300; i++) ids.push(Math.floor(next() * tok.size));
  ids.push(...tok.encode(CLEANUP_TEXT));
  if (eos !== null) ids.push(eos);
  return ids;
}

describe('detokenization equals llama.cpp', () => {
  for (const name of DETOKENIZE_VOCABS) {
    it(`${name}: every token's piece, and whole sequences`, async () => {
      const tok = await loadTokenizer(name);
      const path = vocabPath(name);

      // Pieces with special = true for every token of the vocab.
      const all = Array.from({ length: tok.size }, (_, i) => i);
      const refPieces = llamaRefPieces(path, all, { special: true });
      const bad: string[] = [];
      for (const id of all) {
        const ours = hex(tok.tokenToPiece(id, { special: true }));
        if (ours !== hex(refPieces[id]!)) bad.push(`${id} ${JSON.stringify(tok.tokenText(id))}: llama.cpp ${hex(refPieces[id]!)} ours ${ours}`);
      }
      expect(bad.slice(0, 10), `${bad.length} pieces differ`).toEqual([]);

      // special = false (control and unknown tokens render empty), with lstrip: special tokens and a sample of others.
      const some = all.filter((id) => tok.tokenAttr(id) & (ATTR.CONTROL | ATTR.UNKNOWN | ATTR.USER_DEFINED) || id % 997 === 0);
      const refPlain = llamaRefPieces(path, some, { special: false, lstrip: 1 });
      some.forEach((id, i) => {
        expect(hex(tok.tokenToPiece(id, { special: false, lstrip: 1 })), `token ${id}`).toBe(hex(refPlain[i]!));
      });

      // Whole sequences, compared as bytes (random ids can end inside a UTF-8 character).
      const ids = mixedSequence(tok, 7);
      for (const opts of [{ removeSpecial: false, unparseSpecial: false }, { removeSpecial: true, unparseSpecial: true }]) {
        expect(hex(tok.decodeBytes(ids, opts)), JSON.stringify(opts)).toBe(hex(llamaRefDetokenizeBytes(path, ids, opts)));
      }
    }, 120_000);
  }
});

describe('round trip: decode(encode(x)) == x where tokenization is lossless', () => {
  for (const name of ALL_VOCABS) {
    it(name, async () => {
      const tok = await loadTokenizer(name);
      // U+2581 decodes to a space in SentencePiece-style vocabs: leave it out of this corpus.
      const texts = [...HARD_CASES, ...randomCases({ seed: 11, count: 150 })]
        .map((t) => t.replaceAll('\u2581', '_'))
        .map((t) => t.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'));
      const cleanup = tok.flags.cleanSpaces;
      for (const text of texts) {
        const ids = tok.encode(text);
        const back = tok.decode(ids);
        if (cleanup) {
          // clean_spaces changes " ?" and " 's" on purpose: decoding the same text's ids twice agrees,
          // and the text comes back wherever none of its patterns occur.
          if (!/ [?!.,']/.test(text)) expect(back, JSON.stringify(text)).toBe(text);
        } else {
          expect(back, JSON.stringify(text)).toBe(text);
        }
      }
      if (tok.type === 'spm') {
        // SentencePiece keeps invalid UTF-8 as byte tokens, so the bytes come back; except that a
        // lead byte takes the bytes after it into its "character" whatever they are, so an escaped
        // space right after one comes back as the bytes of U+2581 (llama.cpp does the same).
        for (const bytes of INVALID_UTF8.filter((b) => !b.includes(0x20))) {
          expect(hex(tok.decodeBytes(tok.encode(bytes)))).toBe(hex(bytes));
        }
        const swallowed = Uint8Array.from([0x61, 0x20, 0xfe, 0x20, 0x62]);
        expect(hex(tok.decodeBytes(tok.encode(swallowed)))).toBe('6120fee2968162');
      } else {
        // Byte-level BPE first decodes the bytes to code points as llama.cpp does (U+FFFD for each
        // byte that starts no sequence; surrogates and overlong forms pass) and spells those.
        for (const bytes of INVALID_UTF8) {
          const cpts = decodeUtf8Lenient(bytesToByteString(bytes));
          const expected = [...cpts].map((c) => cptUtf8(c)).join('');
          expect(hex(tok.decodeBytes(tok.encode(bytes))), hex(bytes)).toBe(hex(byteStringToBytes(expected)));
        }
      }
    }, 60_000);
  }
});

describe('streaming decode equals full decode', () => {
  for (const [index, name] of ALL_VOCABS.entries()) {
    it(name, async () => {
      const tok = await loadTokenizer(name);
      const next = rng(1000 + index);
      const texts = [...HARD_CASES, ...randomCases({ seed: 21 + index, count: 60 })];
      const sequences = texts.map((t) => tok.encode(t, { addSpecial: true, parseSpecial: true }));
      // Also random ids: byte tokens and pieces that end inside characters.
      for (let s = 0; s < 20; s++) sequences.push(Array.from({ length: 50 }, () => Math.floor(next() * tok.size)));
      for (const ids of sequences) {
        for (const opts of [{}, { removeSpecial: true, unparseSpecial: true }]) {
          const full = tok.decode(ids, opts);
          const stream = tok.createStreamDecoder(opts);
          const chunks: string[] = [];
          for (const id of ids) chunks.push(stream.push(id));
          chunks.push(stream.flush());
          expect(chunks.join(''), `${name} ${JSON.stringify(ids)}`).toBe(full);
          for (const chunk of chunks) {
            // Never half a character: no lone surrogates, and no U+FFFD the full text does not have.
            expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(chunk)).toBe(false);
            if (!full.includes('\uFFFD')) expect(chunk.includes('\uFFFD')).toBe(false);
          }
        }
      }
    }, 60_000);
  }

  it('holds back a partial UTF-8 character until it is complete', async () => {
    const tok = await loadTokenizer('llama-spm');
    // "🦙" has no token in Llama 2's vocab: it is four byte tokens.
    const ids = tok.encode('\u{1F999}');
    expect(ids.length).toBeGreaterThanOrEqual(4);
    const stream = tok.createStreamDecoder();
    const out = ids.map((id) => stream.push(id));
    expect(out.slice(0, -1).join('')).toBe('');
    expect(out.join('') + stream.flush()).toBe('\u{1F999}');
  });
});
