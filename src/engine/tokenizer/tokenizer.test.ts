/**
 * Tokenizer behaviour on small hand-made vocabularies, where each rule can be seen in isolation.
 * (Real vocabularies against llama.cpp itself are in tests/tokenizer/.)
 */
import { describe, expect, it } from 'vitest';
import { BpeModel } from './bpe.ts';
import { TokenizeError, TokenizerLoadError } from './errors.ts';
import { Tokenizer } from './tokenizer.ts';
import { ATTR } from './vocab.ts';

const TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 };

/** A SentencePiece-style vocab: <unk> <s> </s>, all 256 byte tokens, then the given pieces. */
function spmVocab(pieces: Array<[string, number]>, extra: Array<[string, unknown]> = []): Tokenizer {
  const tokens = ['<unk>', '<s>', '</s>'];
  const scores = [0, 0, 0];
  const types = [TYPE.UNKNOWN, TYPE.CONTROL, TYPE.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    scores.push(0);
    types.push(TYPE.BYTE);
  }
  for (const [text, score] of pieces) {
    tokens.push(text);
    scores.push(score);
    types.push(text.startsWith('<|') ? TYPE.CONTROL : text.startsWith('<u') ? TYPE.USER_DEFINED : TYPE.NORMAL);
  }
  return Tokenizer.fromGgufMetadata(
    new Map<string, unknown>([
      ['tokenizer.ggml.model', 'llama'],
      ['tokenizer.ggml.tokens', tokens],
      ['tokenizer.ggml.scores', Float32Array.from(scores)],
      ['tokenizer.ggml.token_type', Int32Array.from(types)],
      ...extra,
    ]),
  );
}

const texts = (tok: Tokenizer, ids: number[]) => ids.map((id) => tok.tokenText(id));

describe('SentencePiece (llama) vocabs', () => {
  const tok = spmVocab([
    ['\u2581', -1],
    ['a', -2],
    ['b', -2],
    ['\u2581a', -3],
    ['ab', -1.5],
    ['\u2581ab', -0.5],
    ['<|ctl|>', 0],
    ['<user>', 0],
  ]);

  it('prefixes a space, escapes spaces, merges by score', () => {
    expect(texts(tok, tok.encode('ab'))).toEqual(['\u2581ab']);
    expect(texts(tok, tok.encode('ab ab'))).toEqual(['\u2581ab', '\u2581ab']);
    expect(texts(tok, tok.encode('a'))).toEqual(['\u2581a']);
  });

  it('falls back to byte tokens for characters without a token', () => {
    expect(texts(tok, tok.encode('\u00E9'))).toEqual(['\u2581', '<0xC3>', '<0xA9>']);
    expect(tok.decode(tok.encode('a\u00E9 b'))).toBe('a\u00E9 b');
  });

  it('adds BOS only with addSpecial, and parses control text only with parseSpecial', () => {
    expect(tok.encode('a', { addSpecial: true })[0]).toBe(1);
    expect(tok.encode('a')[0]).not.toBe(1);
    const plain = texts(tok, tok.encode('<|ctl|>a'));
    expect(plain).not.toContain('<|ctl|>');
    // After a special token the next text gets the space prefix again.
    expect(texts(tok, tok.encode('<|ctl|>a', { parseSpecial: true }))).toEqual(['<|ctl|>', '\u2581a']);
  });

  it('always splits out user-defined tokens', () => {
    expect(texts(tok, tok.encode('a<user>b'))).toEqual(['\u2581a', '<user>', '\u2581', 'b']);
  });

  it('decodes control tokens to nothing unless asked, and drops the leading space', () => {
    const ids = tok.encode('<|ctl|>ab', { parseSpecial: true, addSpecial: true });
    expect(tok.decode(ids)).toBe(' ab');
    expect(tok.decode(ids, { unparseSpecial: true })).toBe('<s><|ctl|> ab');
    expect(tok.decode(ids, { removeSpecial: true, unparseSpecial: true })).toBe('<|ctl|> ab');
    expect(tok.decode(tok.encode('ab'))).toBe('ab');
  });

  it('refuses to tokenize a byte the vocab has no token for, as llama.cpp does', () => {
    const noBytes = Tokenizer.fromGgufMetadata(
      new Map<string, unknown>([
        ['tokenizer.ggml.model', 'llama'],
        ['tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', '\u2581', 'a']],
      ]),
    );
    expect(noBytes.encode('a')).toEqual([3, 4]);
    expect(() => noBytes.encode('b')).toThrow(TokenizeError);
  });

  it("strips around special tokens with Phi-3's rstrip attribute", () => {
    const phi = spmVocab([['\u2581', -1], ['a', -2], ['<|end|>', 0], ['<|endoftext|>', 0]], [['general.name', 'Phi3 mini']]);
    const id = phi.encode('<|end|>', { parseSpecial: true })[0]!;
    expect(phi.tokenAttr(id) & ATTR.RSTRIP).toBeTruthy();
    expect(texts(phi, phi.encode('a <|end|>  \n a', { parseSpecial: true }))).toEqual(['\u2581', 'a', '\u2581', '<|end|>', '\u2581', 'a']);
  });
});

describe('string and byte input', () => {
  const tok = spmVocab([['\u2581', -1], ['a', -2]]);
  it('a lone surrogate is U+FFFD, as TextEncoder makes it', () => {
    expect(tok.encode('a\uD800a')).toEqual(tok.encode('a\uFFFDa'));
    expect(tok.encode('a\uDC00')).toEqual(tok.encode(new TextEncoder().encode('a\uDC00')));
  });
  it('valid UTF-8 bytes tokenize like the string', () => {
    const s = 'a \u{1F999} \u00E9a';
    expect(tok.encode(new TextEncoder().encode(s))).toEqual(tok.encode(s));
  });
});

describe('BPE merge loops', () => {
  it('scanning and heap merges agree on long words', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const letters = 'abcdef'.split('');
    const tokens = [...letters];
    const merges: string[] = [];
    for (let i = 0; i < 60; i++) {
      const l = tokens[Math.floor(rand() * tokens.length)]!;
      const r = tokens[Math.floor(rand() * tokens.length)]!;
      if (!tokens.includes(l + r)) {
        tokens.push(l + r);
        merges.push(`${l} ${r}`);
      }
    }
    const textToId = new Map(tokens.map((t, i) => [t, i]));
    const make = (longWordThreshold: number) =>
      new BpeModel({ textToId, merges, spelling: 'unicode', ignoreMerges: false, newlineWordsWhole: false, byteFallback: () => undefined, longWordThreshold });
    const short = make(1e9);
    const long = make(0);
    for (let n = 0; n < 300; n++) {
      let word = '';
      const len = 1 + Math.floor(rand() * 60);
      for (let i = 0; i < len; i++) word += letters[Math.floor(rand() * letters.length)];
      const a: number[] = [];
      const b: number[] = [];
      short.encodeWord(word, a);
      long.encodeWord(word, b);
      expect(b, word).toEqual(a);
    }
  });
});

describe('loading', () => {
  it('names the vocab types it does not implement', () => {
    const md = (model: string) => new Map<string, unknown>([['tokenizer.ggml.model', model], ['tokenizer.ggml.tokens', ['a']]]);
    expect(() => Tokenizer.fromGgufMetadata(md('bert'))).toThrow(/WPM \(BERT\)/);
    expect(() => Tokenizer.fromGgufMetadata(md('rwkv'))).toThrow(/RWKV/);
    expect(() => Tokenizer.fromGgufMetadata(md('nonsense'))).toThrow(TokenizerLoadError);
    expect(() => Tokenizer.fromGgufMetadata(new Map())).toThrow(/tokenizer.ggml.model is missing/);
  });

  it('names a vocabulary without tokens when it is loaded, for every vocab type', () => {
    for (const model of ['llama', 'gpt2']) {
      const md = new Map<string, unknown>([['tokenizer.ggml.model', model], ['tokenizer.ggml.tokens', []], ['tokenizer.ggml.merges', []]]);
      const e = (() => {
        try {
          Tokenizer.fromGgufMetadata(md);
        } catch (error) {
          return error;
        }
      })();
      expect(e, model).toBeInstanceOf(TokenizerLoadError);
      expect((e as Error).message, model).toMatch(/vocabulary is empty/);
    }
  });

  it('uses llama.cpp defaults for BOS/EOS per vocab type, overridden by the file', () => {
    const spm = spmVocab([]);
    expect(spm.flags.addBos).toBe(true);
    expect(spm.flags.addEos).toBe(false);
    const noBos = spmVocab([], [['tokenizer.ggml.add_bos_token', false]]);
    expect(noBos.encode('a', { addSpecial: true })[0]).not.toBe(1);
    const bpe = (pre: string) =>
      Tokenizer.fromGgufMetadata(
        new Map<string, unknown>([
          ['tokenizer.ggml.model', 'gpt2'],
          ['tokenizer.ggml.pre', pre],
          ['tokenizer.ggml.tokens', Array.from({ length: 20 }, (_, i) => String.fromCharCode(0x41 + i))],
          ['tokenizer.ggml.merges', ['A B']],
        ]),
      );
    expect(bpe('gpt-2').flags.addBos).toBe(false);
    expect(bpe('llama-bpe').flags.addBos).toBe(true);
    expect(bpe('gpt-2').special.bos).toBe(11);
    expect(bpe('qwen2').flags.cleanSpaces).toBe(false);
    expect(bpe('gpt-2').flags.cleanSpaces).toBe(true);
  });

  it('throws for BPE input llama.cpp cannot tokenize either (a code point past U+10FFFF)', () => {
    const tok = Tokenizer.fromGgufMetadata(
      new Map<string, unknown>([
        ['tokenizer.ggml.model', 'gpt2'],
        ['tokenizer.ggml.pre', 'gpt-2'],
        ['tokenizer.ggml.tokens', ['a', 'b']],
        ['tokenizer.ggml.merges', ['a b']],
      ]),
    );
    expect(() => tok.encode(Uint8Array.from([0x61, 0xf5, 0x80, 0x80, 0x80]))).toThrow(TokenizeError);
  });
});

describe('SentencePiece segmentation', () => {
  it('tokenizing "▁word" segments one at a time gives the whole-text ids', async () => {
    const { spmTokenize, spmTokenizeWhole, SpmMemo } = await import('./spm.ts');
    const pieces: Array<[string, number]> = [];
    const letters = 'abc\u2581';
    let seed = 3;
    const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (let i = 0; i < 80; i++) {
      let t = '';
      const n = 2 + Math.floor(rand() * 4);
      for (let j = 0; j < n; j++) t += letters[Math.floor(rand() * 3)];
      if (rand() < 0.5) t = '\u2581' + t; // leading U+2581 only: segmentable
      pieces.push([t, -rand() * 10]);
    }
    const tok = spmVocab([...pieces, ['a', -20], ['b', -20], ['c', -20], ['\u2581', -20], ['\u2581\u2581', -5]]);
    const textToId = new Map<string, number>();
    for (let id = 0; id < tok.size; id++) textToId.set(tok.tokenText(id), id);
    const base = { mode: 'unicode' as const, textToId, scores: tok.vocab.scores, maxTokenLength: 8, byteToken: () => 0 };
    const segmented = { ...base, memo: new SpmMemo(tok.size), segmentable: true };
    const whole = { ...base, memo: new SpmMemo(tok.size), segmentable: false };
    for (let n = 0; n < 500; n++) {
      let text = '';
      const len = 1 + Math.floor(rand() * 30);
      for (let j = 0; j < len; j++) text += letters[Math.floor(rand() * letters.length)];
      const a: number[] = [];
      const b: number[] = [];
      spmTokenize(segmented, text, a);
      spmTokenizeWhole(whole, text, b);
      expect(a, text).toEqual(b);
    }
  });

  it('a vocab with a token across "x▁" is tokenized whole, so that token is found', () => {
    const tok = spmVocab([['\u2581', -1], ['a', -2], ['b', -2], ['\u2581a', -1], ['\u2581b', -1], ['\u2581a\u2581b', 0]]);
    expect(texts(tok, tok.encode('a b'))).toEqual(['\u2581a\u2581b']);
  });
});
