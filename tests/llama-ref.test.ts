/**
 * Sanity checks of the llama.cpp reference tool itself (src/testing/llama-ref.ts): if these
 * fail, every parity test built on it is meaningless.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbsDiff, normalizedMse } from '../src/testing/compare.ts';
import {
  LlamaRefError,
  ensureLlamaRef,
  llamaCppSourceDir,
  llamaRefDequantize,
  llamaRefDetokenize,
  llamaRefDetokenizeBytes,
  llamaRefInfo,
  llamaRefLogits,
  llamaRefMeta,
  llamaRefPieces,
  llamaRefQuantize,
  llamaRefTinyModel,
  llamaRefTokenize,
  llamaRefTokenizeMany,
  llamaRefTypes,
  llamaRefVocabInfo,
} from '../src/testing/llama-ref.ts';

// The first call compiles the tool (a few seconds); later ones reuse the stamped binary.
const BUILD_TIMEOUT = 300_000;

function vocab(name: string): string {
  return join(llamaCppSourceDir(), 'models', `ggml-vocab-${name}.gguf`);
}

/** llama.cpp's tokenizer suite, split exactly as tests/test-tokenizer-0.cpp does. */
function readSuite(name: string): { text: string; ids: number[] }[] {
  const inp = readFileSync(`${vocab(name)}.inp`, 'utf8');
  const out = readFileSync(`${vocab(name)}.out`, 'utf8').split('\n');
  const sep = '\n__ggml_vocab_test__\n';
  const texts: string[] = [];
  let pos = 0;
  while (pos < inp.length) {
    const next = inp.indexOf(sep, pos);
    if (next < 0) {
      texts.push(inp.slice(pos));
      break;
    }
    texts.push(inp.slice(pos, next));
    pos = next + sep.length;
  }
  // std::getline yields no entry for the newline that ends the file.
  if (out[out.length - 1] === '') out.pop();
  expect(out.length).toBe(texts.length);
  return texts.map((text, i) => {
    const line = out[i]!.trim();
    return { text, ids: line === '' ? [] : line.split(' ').map(Number) };
  });
}

function randomData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // mulberry32, then a rough normal from the sum of uniforms
    let acc = 0;
    for (let k = 0; k < 4; k++) {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      acc += ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }
    out[i] = (acc - 2) * 1.7;
  }
  return out;
}

function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

describe('llama-ref build', () => {
  it('builds once and reports the CPU backend it loads', { timeout: BUILD_TIMEOUT }, () => {
    const bin = ensureLlamaRef();
    expect(bin).toMatch(/\.cache\/llama-ref\/(?:[0-9a-f]+\/)?llama-ref$/);
    const info = llamaRefInfo();
    expect(info.cpuVariant).toMatch(/^libggml-cpu-[a-z0-9]+\.so$/);
    expect(info.backends.map((b) => b.name)).toContain('CPU');
  });
});

describe('llama-ref tokenizer', { timeout: BUILD_TIMEOUT }, () => {
  for (const name of ['llama-bpe', 'llama-spm']) {
    it(`reproduces llama.cpp's own ${name} suite`, () => {
      const suite = readSuite(name);
      expect(suite.length).toBeGreaterThan(20);
      const got = llamaRefTokenizeMany(vocab(name), suite.map((t) => t.text));
      for (let i = 0; i < suite.length; i++) {
        expect({ text: suite[i]!.text, ids: got[i] }).toEqual({ text: suite[i]!.text, ids: suite[i]!.ids });
      }
    });
  }

  it('adds BOS only when asked and parses special tokens only when asked', () => {
    const model = vocab('llama-bpe');
    const info = llamaRefVocabInfo(model);
    expect(info.bos).toBe(128000);
    expect(info.eog).toEqual(expect.arrayContaining([128001, 128009]));
    expect(llamaRefTokenize(model, 'Hello world')).toEqual([9906, 1917]);
    expect(llamaRefTokenize(model, 'Hello world', { addSpecial: true })).toEqual([128000, 9906, 1917]);
    const special = llamaRefTokenize(model, '<|eot_id|>', { parseSpecial: true });
    expect(special).toEqual([128009]);
    expect(llamaRefTokenize(model, '<|eot_id|>').length).toBeGreaterThan(1);
  });

  it('round-trips byte-level BPE text through detokenize and pieces', () => {
    const model = vocab('llama-bpe');
    const text = 'Hello, wörld! 🦙 naïve\n\tcode();';
    const ids = llamaRefTokenize(model, text);
    expect(llamaRefDetokenize(model, ids)).toBe(text);
    const pieces = llamaRefPieces(model, ids);
    expect(pieces.length).toBe(ids.length);
    expect(Buffer.concat(pieces).toString('utf8')).toBe(text);
    // The llama emoji is 4 bytes split over several byte-level tokens: some pieces are not UTF-8 alone.
    expect(pieces.some((p) => !isValidUtf8(p))).toBe(true);
    expect(Buffer.from(llamaRefDetokenizeBytes(model, ids)).toString('utf8')).toBe(text);
  });

  it('renders special tokens only with special / unparseSpecial', () => {
    const model = vocab('llama-spm');
    const ids = llamaRefTokenize(model, 'Hello', { addSpecial: true });
    expect(ids[0]).toBe(1);
    const [bos] = llamaRefPieces(model, [1]);
    expect(bos!.length).toBe(0);
    const [bosSpecial] = llamaRefPieces(model, [1], { special: true });
    expect(Buffer.from(bosSpecial!).toString()).toBe('<s>');
    expect(llamaRefDetokenize(model, ids, { unparseSpecial: true })).toBe('<s> Hello');
  });

  it('fails loudly on bad input', () => {
    expect(() => llamaRefDetokenize(vocab('llama-spm'), [1, 99999])).toThrow(/out of range/);
    expect(() => llamaRefTokenize(join(tmpdir(), 'no-such-model.gguf'), 'x')).toThrow(LlamaRefError);
  });
});

function isValidUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

describe('llama-ref quantization', { timeout: BUILD_TIMEOUT }, () => {
  const types = () => llamaRefTypes();

  it('lists the block geometry of the common types', () => {
    const byName = new Map(types().map((t) => [t.name, t]));
    expect(byName.get('q8_0')).toMatchObject({ id: 8, blockSize: 32, typeSize: 34, hasRefQuantizer: true });
    expect(byName.get('q4_K')).toMatchObject({ id: 12, blockSize: 256, typeSize: 144, hasRefQuantizer: true });
    expect(byName.get('iq2_xxs')).toMatchObject({ requiresImatrix: true, hasRefQuantizer: false });
  });

  it('q8_0: 34 bytes per 32 values, scale = absmax / 127, small error', () => {
    const x = randomData(4 * 96, 1);
    const q = llamaRefQuantize('Q8_0', x, 96);
    expect(q.length).toBe((x.length / 32) * 34);
    // Block 0: f16 scale then 32 int8; the largest |x| maps to +-127.
    let absmax = 0;
    for (let i = 0; i < 32; i++) absmax = Math.max(absmax, Math.abs(x[i]!));
    const d = f16ToNumber(q[0]! | (q[1]! << 8));
    expect(d).toBeCloseTo(absmax / 127, 4);
    const y = llamaRefDequantize('q8_0', q, x.length);
    expect(y.length).toBe(x.length);
    expect(normalizedMse(y, x)).toBeLessThan(1e-4);
    expect(normalizedMse(y, x)).toBeGreaterThan(0);
  });

  it('q4_K: 144 bytes per 256 values, small error, reference and chunk paths agree here', () => {
    const x = randomData(3 * 512, 2);
    const q = llamaRefQuantize('q4_k', x, 512);
    expect(q.length).toBe((x.length / 256) * 144);
    const y = llamaRefDequantize('q4_K', q, x.length);
    const err = normalizedMse(y, x);
    expect(err).toBeLessThan(0.01);
    expect(err).toBeGreaterThan(1e-5);
    expect(llamaRefQuantize('q4_K', x, 512, { chunk: true })).toEqual(q);
  });

  it('f16 and bf16 round to the nearest representable value', () => {
    const x = randomData(64, 3);
    const h = llamaRefDequantize('f16', llamaRefQuantize('f16', x, 64), 64);
    const b = llamaRefDequantize('bf16', llamaRefQuantize('bf16', x, 64), 64);
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(h[i]! - x[i]!)).toBeLessThanOrEqual(Math.abs(x[i]!) * 2 ** -11 + 2 ** -25);
      expect(Math.abs(b[i]! - x[i]!)).toBeLessThanOrEqual(Math.abs(x[i]!) * 2 ** -8);
    }
  });

  it('rejects unknown types and sizes off the block grid', () => {
    expect(() => llamaRefQuantize('q9_9', new Float32Array(32), 32)).toThrow(/unknown ggml type/);
    expect(() => llamaRefQuantize('q4_K', new Float32Array(128), 128)).toThrow(/block size 256/);
    expect(() => llamaRefDequantize('q8_0', new Uint8Array(33), 32)).toThrow(/bytes/);
    expect(() => llamaRefQuantize('iq2_xxs', new Float32Array(256), 256, { chunk: true })).toThrow(/importance matrix/);
  });
});

describe('llama-ref meta', { timeout: BUILD_TIMEOUT }, () => {
  it('lists the vocabulary keys of a vocab-only file', () => {
    const meta = llamaRefMeta(vocab('llama-spm'));
    expect(meta.version).toBe(3);
    expect(meta.alignment).toBe(32);
    expect(meta.tensors).toEqual([]);
    const tokens = meta.kv.find((kv) => kv.key === 'tokenizer.ggml.tokens');
    expect(tokens).toMatchObject({ type: 'arr', arrayType: 'str' });
    const list = tokens!.value as string[];
    expect(list.length).toBe(llamaRefVocabInfo(vocab('llama-spm')).nTokens);
    expect(list.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(meta.kv.find((kv) => kv.key === 'general.architecture')).toEqual({ key: 'general.architecture', type: 'str', value: 'llama' });
    expect(meta.kv.find((kv) => kv.key === 'tokenizer.ggml.add_bos_token')).toMatchObject({ type: 'bool', value: true });
  });

  it('rejects a file that is not GGUF, with ggml reason', () => {
    expect(() => llamaRefMeta(`${vocab('llama-spm')}.inp`)).toThrow(/invalid magic/);
  });
});

describe('llama-ref logits', { timeout: BUILD_TIMEOUT }, () => {
  let dir = '';
  let model = '';
  const ids = [1, 15043, 3186, 29892, 445, 338, 263, 1243, 310, 278, 11004, 29889];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'llama-ref-test-'));
    model = join(dir, 'tiny.gguf');
    llamaRefTinyModel(vocab('llama-spm'), model, { layers: 2, dim: 64, heads: 4, kvHeads: 2, ff: 128, seed: 7 });
  }, BUILD_TIMEOUT);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the tiny model has the tensors and shapes of a llama', () => {
    const meta = llamaRefMeta(model);
    expect(meta.tensors.length).toBe(3 + 2 * 9);
    const byName = new Map(meta.tensors.map((t) => [t.name, t]));
    expect(byName.get('token_embd.weight')).toMatchObject({ type: 'f32', ne: [64, 32000, 1, 1], nDims: 2 });
    expect(byName.get('blk.1.attn_k.weight')).toMatchObject({ ne: [64, 32, 1, 1] });
    expect(byName.get('blk.0.ffn_down.weight')).toMatchObject({ ne: [128, 64, 1, 1] });
    expect(byName.get('output_norm.weight')).toMatchObject({ ne: [64, 1, 1, 1], nDims: 1 });
    for (const t of meta.tensors) expect(t.offset % meta.alignment).toBe(0);
  });

  it('gives finite, non-constant logits of shape [tokens][vocab]', () => {
    const r = llamaRefLogits(model, ids);
    expect(r.nVocab).toBe(32000);
    expect(r.nTokens).toBe(ids.length);
    expect(r.logits.length).toBe(ids.length * 32000);
    expect(r.logits.every(Number.isFinite)).toBe(true);
    for (let t = 0; t < ids.length; t++) {
      const row = r.logits.subarray(t * 32000, (t + 1) * 32000);
      let min = Infinity;
      let max = -Infinity;
      for (const v of row) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(max - min).toBeGreaterThan(1);
    }
    // Different positions see different contexts, so their rows differ.
    expect(maxAbsDiff(r.logits.subarray(0, 32000), r.logits.subarray(32000, 64000))).toBeGreaterThan(0.1);
  });

  it('a prefix evaluates to the first rows of the full sequence, token by token or in one batch', () => {
    const full = llamaRefLogits(model, ids);
    const prefix = llamaRefLogits(model, ids.slice(0, 5));
    expect(maxAbsDiff(prefix.logits, full.logits.subarray(0, 5 * 32000))).toBeLessThan(1e-4);
    const oneByOne = llamaRefLogits(model, ids, { batch: 1 });
    expect(maxAbsDiff(oneByOne.logits, full.logits)).toBeLessThan(1e-4);
  });

  it('does not depend on the thread count; the KV cache type changes it a little', () => {
    const one = llamaRefLogits(model, ids, { threads: 1 });
    const two = llamaRefLogits(model, ids, { threads: 2 });
    expect(maxAbsDiff(one.logits, two.logits)).toBe(0);
    const kv32 = llamaRefLogits(model, ids, { kvType: 'f32' });
    const d = maxAbsDiff(kv32.logits, one.logits);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(0.05);
  });

  it('rejects token ids outside the vocabulary', () => {
    expect(() => llamaRefLogits(model, [1, 32000])).toThrow(/out of range/);
  });
});
