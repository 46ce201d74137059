import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { preprocessWgsl } from '../preprocess.ts';
import { SHADERS } from '../../../../shaders/index.ts';
import { attentionReference, createDecodeDispatchBuffer, decodeScratchFloats, encodeAttention, encodeKvWrite, kvCacheBytes, type KvCacheLayout, type KvDtype } from './attention.ts';
import { dequantizeF16, quantizeF16 } from '../../../gguf/quants/f16.ts';
import { seededInts, useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

interface Case {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** New tokens; their positions follow `prefix` cached ones unless `scattered`. */
  tokens: number;
  prefix: number;
  variant: 'decode' | 'prefill';
  window?: number;
  softcap?: number;
  scale?: number;
  /** Query positions drawn at random below the cached length (all keys present). */
  scattered?: boolean;
  /** Multiplies q, to make softmax peaked. */
  qGain?: number;
  /** Cache positions past the new tokens, and kvLength = the whole cache (as a replayed decode step passes it). */
  wholeCache?: number;
  /** Every key below kvLength visible (T5's encoder, cross-attention). */
  causal?: false;
  /** A relative position bias with this many buckets (random bucket ids, random table). */
  buckets?: number;
  /** Heads, kv heads and head dim drawn from the seed (the listed ones are ignored). */
  randomDims?: boolean;
}

const cases: Case[] = [
  { name: 'decode MHA one chunk', heads: 4, kvHeads: 4, headDim: 64, tokens: 1, prefix: 37, variant: 'decode' },
  { name: 'decode GQA three chunks', heads: 8, kvHeads: 2, headDim: 128, tokens: 1, prefix: 700, variant: 'decode', qGain: 3 },
  { name: 'decode MQA odd head dim', heads: 6, kvHeads: 1, headDim: 80, tokens: 1, prefix: 513, variant: 'decode' },
  { name: 'decode 3 tokens', heads: 4, kvHeads: 2, headDim: 64, tokens: 3, prefix: 300, variant: 'decode' },
  { name: 'decode sliding window skips chunks', heads: 4, kvHeads: 2, headDim: 64, tokens: 2, prefix: 650, variant: 'decode', window: 100 },
  { name: 'decode softcap', heads: 2, kvHeads: 1, headDim: 256, tokens: 1, prefix: 260, variant: 'decode', softcap: 5, scale: 0.0625, qGain: 8 },
  { name: 'decode first token', heads: 2, kvHeads: 2, headDim: 32, tokens: 1, prefix: 0, variant: 'decode' },
  { name: 'prefill from empty', heads: 4, kvHeads: 2, headDim: 64, tokens: 37, prefix: 0, variant: 'prefill' },
  { name: 'prefill after prefix', heads: 6, kvHeads: 2, headDim: 128, tokens: 21, prefix: 45, variant: 'prefill', qGain: 3 },
  { name: 'prefill odd head dim MQA', heads: 3, kvHeads: 1, headDim: 96, tokens: 19, prefix: 7, variant: 'prefill' },
  { name: 'prefill sliding window', heads: 4, kvHeads: 4, headDim: 64, tokens: 50, prefix: 30, variant: 'prefill', window: 16 },
  { name: 'prefill softcap head 256', heads: 2, kvHeads: 1, headDim: 256, tokens: 13, prefix: 5, variant: 'prefill', softcap: 5, scale: 0.0625, qGain: 8 },
  { name: 'prefill scattered positions', heads: 4, kvHeads: 2, headDim: 64, tokens: 17, prefix: 60, variant: 'prefill', scattered: true },
  { name: 'decode scattered positions', heads: 4, kvHeads: 2, headDim: 64, tokens: 4, prefix: 600, variant: 'decode', scattered: true, window: 300 },
  { name: 'decode long context, 9 chunks', heads: 8, kvHeads: 2, headDim: 64, tokens: 1, prefix: 2100, variant: 'decode', qGain: 4 },
  { name: 'prefill long', heads: 2, kvHeads: 1, headDim: 64, tokens: 150, prefix: 20, variant: 'prefill', window: 64 },
  { name: 'prefill one token', heads: 2, kvHeads: 1, headDim: 64, tokens: 1, prefix: 9, variant: 'prefill' },
  { name: 'decode over the whole cache: chunks from positions', heads: 4, kvHeads: 2, headDim: 64, tokens: 1, prefix: 300, variant: 'decode', wholeCache: 900 },
  { name: 'decode 2 tokens over the whole cache, window', heads: 4, kvHeads: 1, headDim: 32, tokens: 2, prefix: 520, variant: 'decode', wholeCache: 300, window: 270 },
  { name: 'decode first token over the whole cache', heads: 2, kvHeads: 2, headDim: 32, tokens: 1, prefix: 0, variant: 'decode', wholeCache: 700 },
  { name: 'prefill over the whole cache', heads: 4, kvHeads: 2, headDim: 64, tokens: 9, prefix: 30, variant: 'prefill', wholeCache: 100 },
];

/** T5's modes: not causal, a relative position bias, or both (encoder self-attention). */
const t5Cases: Case[] = [
  { name: 'decode encoder: not causal, bias', heads: 4, kvHeads: 4, headDim: 64, tokens: 3, prefix: 0, variant: 'decode', causal: false, buckets: 32 },
  { name: 'decode cross-attention: not causal, three chunks', heads: 8, kvHeads: 2, headDim: 64, tokens: 2, prefix: 600, variant: 'decode', causal: false, scattered: true, qGain: 3 },
  { name: 'decode causal with bias, GQA', heads: 8, kvHeads: 2, headDim: 64, tokens: 1, prefix: 40, variant: 'decode', buckets: 32 },
  { name: 'decode not causal, bias, two chunks', heads: 6, kvHeads: 3, headDim: 48, tokens: 4, prefix: 300, variant: 'decode', causal: false, scattered: true, buckets: 16 },
  { name: 'decode causal bias, softcap, window', heads: 4, kvHeads: 1, headDim: 32, tokens: 2, prefix: 400, variant: 'decode', buckets: 8, softcap: 5, window: 290 },
  { name: 'prefill encoder: not causal, bias', heads: 6, kvHeads: 2, headDim: 64, tokens: 37, prefix: 0, variant: 'prefill', causal: false, buckets: 32 },
  { name: 'prefill cross-attention: not causal, odd head dim', heads: 3, kvHeads: 1, headDim: 96, tokens: 19, prefix: 50, variant: 'prefill', causal: false, scattered: true },
  { name: 'prefill causal with bias', heads: 4, kvHeads: 4, headDim: 64, tokens: 21, prefix: 10, variant: 'prefill', buckets: 32, qGain: 3 },
  { name: 'prefill not causal ignores the window', heads: 4, kvHeads: 2, headDim: 32, tokens: 30, prefix: 0, variant: 'prefill', causal: false, buckets: 32, window: 8 },
  { name: 'decode random dims: not causal, bias', heads: 0, kvHeads: 0, headDim: 0, tokens: 3, prefix: 0, variant: 'decode', causal: false, buckets: 32, randomDims: true },
  { name: 'decode random dims: causal, bias', heads: 0, kvHeads: 0, headDim: 0, tokens: 1, prefix: 77, variant: 'decode', buckets: 32, randomDims: true },
  { name: 'decode random dims: cross-attention', heads: 0, kvHeads: 0, headDim: 0, tokens: 1, prefix: 270, variant: 'decode', causal: false, scattered: true, randomDims: true },
  { name: 'prefill random dims: not causal, bias', heads: 0, kvHeads: 0, headDim: 0, tokens: 23, prefix: 0, variant: 'prefill', causal: false, buckets: 32, randomDims: true },
  { name: 'prefill random dims: causal, bias', heads: 0, kvHeads: 0, headDim: 0, tokens: 11, prefix: 6, variant: 'prefill', buckets: 32, randomDims: true },
];

/** Values as an f16 cache holds them. */
function roundF16(x: Float32Array<ArrayBuffer>): Float32Array<ArrayBuffer> {
  const out = new Float32Array(x.length);
  dequantizeF16(quantizeF16(x), out, x.length);
  return out;
}

/** A cache buffer holding `values` in the layout's element type. */
function uploadCache(values: Float32Array<ArrayBuffer>, dtype: KvDtype): GPUBuffer {
  if (dtype === 'f32') return h.upload(values);
  const padded = new Uint8Array(Math.ceil(values.length / 2) * 4);
  padded.set(quantizeF16(values));
  return h.upload(new Float32Array(padded.buffer));
}

async function runCase(c: Case, dtype: KvDtype): Promise<void> {
    const seed = freshSeed(`attention ${c.name} ${dtype}`);
    const rand = seededInts(seed);
    const { tokens } = c;
    let { heads, kvHeads, headDim } = c;
    if (c.randomDims) {
      kvHeads = rand(1, 3);
      heads = kvHeads * rand(1, 4);
      headDim = rand(8, 136);
    }
    const qDim = heads * headDim;
    const kvDim = kvHeads * headDim;
    const capacity = c.prefix + tokens + (c.wholeCache ?? rand(0, 40));
    const cache: KvCacheLayout = { capacity, kvHeads, headDim, dtype };
    const kvLength = c.wholeCache !== undefined ? capacity : c.scattered ? c.prefix : c.prefix + tokens;
    if (c.causal === false && c.wholeCache !== undefined) throw new Error('a non-causal case reads the whole cache: give it real keys');

    // The cache: earlier tokens' k/v, NaN beyond (never read), the new tokens written by kv_write.
    const kHost = new Float32Array(capacity * kvDim).fill(NaN);
    const vHost = new Float32Array(capacity * kvDim).fill(NaN);
    kHost.set(randomFloats(c.prefix * kvDim, seed + 1));
    vHost.set(randomFloats(c.prefix * kvDim, seed + 2));
    const positions = new Uint32Array(tokens);
    for (let t = 0; t < tokens; t++) positions[t] = c.scattered ? rand(0, c.prefix - 1) : c.prefix + t;

    // New tokens come as a fused [tokens][q | k | v] matmul output.
    const stride = qDim + 2 * kvDim;
    const fused = randomFloats(tokens * stride, seed + 3);
    const gain = c.qGain ?? 1;
    for (let t = 0; t < tokens; t++) for (let i = 0; i < qDim; i++) fused[t * stride + i]! *= gain;
    const q = new Float32Array(tokens * qDim);
    for (let t = 0; t < tokens; t++) {
      q.set(fused.subarray(t * stride, t * stride + qDim), t * qDim);
      if (!c.scattered) {
        kHost.set(fused.subarray(t * stride + qDim, t * stride + qDim + kvDim), positions[t]! * kvDim);
        vHost.set(fused.subarray(t * stride + qDim + kvDim, (t + 1) * stride), positions[t]! * kvDim);
      }
    }
    const kBuf = uploadCache(c.scattered ? kHost : kHost.map((x, i) => (i < c.prefix * kvDim ? x : NaN)), dtype);
    const vBuf = uploadCache(c.scattered ? vHost : vHost.map((x, i) => (i < c.prefix * kvDim ? x : NaN)), dtype);
    expect(kBuf.size).toBe(Math.max(4, kvCacheBytes(cache)));
    const fusedBuf = h.upload(fused);
    const posBuf = h.uploadU32(positions);
    if (!c.scattered) {
      encodeKvWrite(h.recorder, h.kernels, {
        cache,
        kCache: kBuf,
        vCache: vBuf,
        k: { buffer: fusedBuf, stride, offset: qDim },
        v: { buffer: fusedBuf, stride, offset: qDim + kvDim },
        positions: posBuf,
        tokens,
      });
    }
    // The bias: a random table and a random bucket for every relative position a query meets.
    let bias: { table: Float32Array<ArrayBuffer>; bucketIds: Uint32Array<ArrayBuffer>; offset: number } | undefined;
    if (c.buckets) {
      const offset = Math.max(...positions) + rand(0, 5);
      const bucketIds = Uint32Array.from({ length: offset + kvLength + rand(0, 5) }, () => rand(0, c.buckets! - 1));
      bias = { table: randomFloats(c.buckets * heads, seed + 4).map((x) => 4 * x), bucketIds, offset };
    }
    const outStride = qDim + 5;
    const out = h.poisoned(tokens * outStride);
    const sizes = decodeScratchFloats(tokens, heads, headDim, kvLength);
    encodeAttention(h.recorder, h.kernels, {
      cache,
      kCache: kBuf,
      vCache: vBuf,
      q: { buffer: fusedBuf, stride },
      out: { buffer: out, stride: outStride },
      positions: posBuf,
      tokens,
      heads,
      kvLength,
      ...(c.scale !== undefined ? { scale: c.scale } : {}),
      ...(c.softcap ? { softcap: c.softcap } : {}),
      ...(c.window ? { window: c.window } : {}),
      ...(c.causal === false ? { causal: false } : {}),
      ...(bias ? { bias: { table: h.upload(bias.table), bucketIds: h.uploadU32(bias.bucketIds), offset: bias.offset } } : {}),
      scratch: { partialO: h.poisoned(sizes.partialO), partialStats: h.poisoned(sizes.partialStats), dispatch: createDecodeDispatchBuffer(h.device) },
      variant: c.variant,
    });
    await h.submit();
    const all = await h.readF32(out, tokens * outStride);
    const actual = new Float32Array(tokens * qDim);
    for (let t = 0; t < tokens; t++) actual.set(all.subarray(t * outStride, t * outStride + qDim), t * qDim);
    const expected = attentionReference({
      q,
      kCache: dtype === 'f16' ? roundF16(kHost) : kHost,
      vCache: dtype === 'f16' ? roundF16(vHost) : vHost,
      positions,
      tokens,
      heads,
      kvHeads,
      headDim,
      kvLength,
      scale: c.scale ?? 1 / Math.sqrt(headDim),
      ...(c.softcap ? { softcap: c.softcap } : {}),
      ...(c.window ? { window: c.window } : {}),
      ...(c.causal === false ? { causal: false } : {}),
      ...(bias ? { bias } : {}),
    });
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
    // The padding between output rows is never written.
    for (let t = 0; t < tokens; t++) expect(Number.isNaN(all[t * outStride + qDim]!)).toBe(true);
}

describe('attention over the KV cache', () => {
  it.each(cases)('f32 cache: $name', async (c) => {
    await runCase(c, 'f32');
  });

  it.each(t5Cases)('f32 cache, T5 modes: $name', async (c) => {
    await runCase(c, 'f32');
  });

  // Needs shader-f16, which the CI adapter (SwiftShader) lacks: these report as skipped there and
  // run on a real GPU. The reference uses the f16-rounded k/v, so the tolerance is the same.
  it.for([...cases, ...t5Cases].filter((_, i) => i % 3 === 0))('f16 cache (shader-f16 only): $name', async (c, ctx) => {
    if (!h.device.features.has('shader-f16')) ctx.skip();
    await runCase(c, 'f16');
  });

  it('kv_write puts rows at their positions and ignores positions past capacity', async () => {
    const seed = freshSeed('kv_write');
    const cache: KvCacheLayout = { capacity: 11, kvHeads: 3, headDim: 20, dtype: 'f32' };
    const row = cache.kvHeads * cache.headDim;
    const tokens = 4;
    const positions = Uint32Array.from([7, 2, 11, 10]); // 11 is out of range
    const k = randomFloats(tokens * row, seed);
    const v = randomFloats(tokens * row, seed + 1);
    const kBuf = h.poisoned(cache.capacity * row);
    const vBuf = h.poisoned(cache.capacity * row);
    encodeKvWrite(h.recorder, h.kernels, {
      cache,
      kCache: kBuf,
      vCache: vBuf,
      k: { buffer: h.upload(k) },
      v: { buffer: h.upload(v) },
      positions: h.uploadU32(positions),
      tokens,
    });
    await h.submit();
    const kOut = await h.readF32(kBuf, cache.capacity * row);
    const vOut = await h.readF32(vBuf, cache.capacity * row);
    for (let p = 0; p < cache.capacity; p++) {
      const t = Array.from(positions).indexOf(p);
      const kRow = kOut.subarray(p * row, (p + 1) * row);
      const vRow = vOut.subarray(p * row, (p + 1) * row);
      if (t < 0) {
        expect(kRow.every(Number.isNaN)).toBe(true);
        expect(vRow.every(Number.isNaN)).toBe(true);
      } else {
        expect(Array.from(kRow)).toEqual(Array.from(k.subarray(t * row, (t + 1) * row)));
        expect(Array.from(vRow)).toEqual(Array.from(v.subarray(t * row, (t + 1) * row)));
      }
    }
  });

  it('the f16 cache variants start with `enable f16` (compiled only where shader-f16 exists)', () => {
    // Where the adapter has no shader-f16 (SwiftShader), the f16 variants cannot run: the f32 tests
    // cover their logic, which is the same text with kv_t = f32.
    const variants = [
      ['kv_write.wgsl', 'attention_bias_none.wgsl'],
      ...['attention_decode.wgsl', 'attention_prefill.wgsl'].flatMap((file) => [
        [file, 'attention_bias_none.wgsl'],
        [file, 'attention_bias_relative.wgsl'],
      ]),
    ];
    for (const [file, bias] of variants) {
      const code = preprocessWgsl(file!, SHADERS, { kv: 'kv_f16.wgsl', bias: bias! });
      const firstStatement = code.split('\n').map((l) => l.replace(/\/\/.*/, '').trim()).find((l) => l.length > 0);
      expect(firstStatement).toBe('enable f16;');
      expect(code).toContain('alias kv_t = f16;');
    }
    expect(kvCacheBytes({ capacity: 3, kvHeads: 1, headDim: 3, dtype: 'f16' })).toBe(20);
  });
});
