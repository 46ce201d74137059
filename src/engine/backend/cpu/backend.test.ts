/**
 * The CPU backend through the op interface (../ops.ts): handles, both matmul paths, the KV cache,
 * sampling with the WebGPU sampler's rule. The kernels themselves are checked in kernels.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { normalizedMse } from '../../../test-support/compare.ts';
import { exactWeights, randomBlocks } from '../../../test-support/random-weights.ts';
import { attentionReference } from '../webgpu/kernels/attention.ts';
import { matmulReference } from '../webgpu/kernels/matmul.ts';
import { yarnCorrDims as gpuYarnCorrDims } from '../webgpu/kernels/rope.ts';
import { sampleReference } from '../webgpu/kernels/sample.ts';
import { CpuBackend, Q8A_MAX_TOKENS, sampleRow, yarnCorrDims } from './backend.ts';
import { mulberry32 as rng, freshSeed } from '../../../test-support/random.ts';



const floats = (next: () => number, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);

describe('CpuBackend', () => {
  let be: CpuBackend;
  let next: () => number;

  beforeAll(async () => {
    be = await CpuBackend.create({ relaxed: false });
    next = rng(freshSeed('cpu backend'));
  });

  it('computes YaRN correction dims as the WebGPU rope does', () => {
    for (const [nRot, ctx, base] of [[128, 4096, 10000], [64, 32768, 1e6], [96, 2048, 500000]] as const) {
      expect(yarnCorrDims(nRot, ctx, base, 32, 1)).toEqual(gpuYarnCorrDims(nRot, ctx, base, 32, 1));
    }
  });

  it('samples with the WebGPU sampler rule', () => {
    const vocab = 3000;
    for (let trial = 0; trial < 40; trial++) {
      const logits = floats(next, vocab, 6);
      // Ties, to check the lower id wins.
      logits[17] = logits[2900] = 7;
      const params = { temperature: trial % 5 === 0 ? 0 : 0.2 + next() * 1.5, topK: [0, 1, 5, 40, 200][trial % 5]!, topP: next() < 0.5 ? 1 : 0.5 + next() / 2, minP: next() < 0.5 ? 0 : next() * 0.2 };
      const u = next();
      expect(sampleRow(logits, params, u), JSON.stringify(params)).toBe(sampleReference(logits, params, u).token);
    }
  });

  it.each([1, 3, 7])('matmul of %i tokens through the interface (Q4_K, bias, fused output rows)', async (tokens) => {
    const k = 512;
    const rows = 45;
    const bytes = randomBlocks(GgmlType.Q4_K, rows, k, Math.floor(next() * 2 ** 31));
    const w = await be.weight({ name: 'w', type: GgmlType.Q4_K, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    expect(w.rows).toBe(rows);
    const x = floats(next, tokens * k);
    const bias = floats(next, rows);
    const xa = be.activation('x', tokens * k);
    const ya = be.activation('y', tokens * (rows + 4));
    be.begin();
    be.view(xa).set(x);
    be.matmul(w, { t: xa, stride: k }, { t: ya, stride: rows + 4, offset: 2 }, tokens, be.vector('b', bias));
    be.submit();
    const all = await be.read(ya, tokens * (rows + 4));
    const got = new Float32Array(tokens * rows);
    for (let t = 0; t < tokens; t++) got.set(all.subarray(t * (rows + 4) + 2, t * (rows + 4) + 2 + rows), t * rows);
    const ref = matmulReference(exactWeights(GgmlType.Q4_K, bytes, rows * k), k, rows, x, tokens, bias);
    const err = normalizedMse(got, ref);
    // K-quants always take the 8-bit activation path (kernels.test.ts bounds its error) ...
    expect(err).toBeLessThanOrEqual(2e-4);
    // ... unless the backend is told not to: then f32 throughout.
    const exact = await CpuBackend.create({ relaxed: false, quantizedActivations: false });
    const w2 = await exact.weight({ name: 'w', type: GgmlType.Q4_K, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    const x2 = exact.activation('x', tokens * k);
    const y2 = exact.activation('y', tokens * rows);
    exact.view(x2).set(x);
    exact.matmul(w2, { t: x2, stride: k }, { t: y2, stride: rows }, tokens, exact.vector('b', bias));
    expect(normalizedMse(await exact.read(y2, tokens * rows), ref)).toBeLessThanOrEqual(1e-6);
  });

  it.each([1, Q8A_MAX_TOKENS + 1])('Q4_0 matmul of %i tokens: 8-bit activations in decode, f32 beyond', async (tokens) => {
    const k = 320;
    const rows = 19;
    const bytes = randomBlocks(GgmlType.Q4_0, rows, k, Math.floor(next() * 2 ** 31));
    const w = await be.weight({ name: 'w', type: GgmlType.Q4_0, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    const x = floats(next, tokens * k);
    const xa = be.activation('x', tokens * k);
    const ya = be.activation('y', tokens * rows);
    be.view(xa).set(x);
    be.matmul(w, { t: xa, stride: k }, { t: ya, stride: rows }, tokens);
    const err = normalizedMse(await be.read(ya, tokens * rows), matmulReference(exactWeights(GgmlType.Q4_0, bytes, rows * k), k, rows, x, tokens));
    expect(err).toBeLessThanOrEqual(tokens <= Q8A_MAX_TOKENS ? 2e-4 : 1e-6);
    // The quantized path is measurably not exact: it really was taken.
    if (tokens <= Q8A_MAX_TOKENS) expect(err).toBeGreaterThan(1e-9);
  });

  it('writes the KV cache at the given positions and attends over it', async () => {
    const kvHeads = 2;
    const heads = 6;
    const headDim = 40;
    const capacity = 64;
    const kv = be.kvStorage({ layers: 2, capacity, kvHeads, headDim });
    const width = kvHeads * headDim;
    const qkvStride = heads * headDim + 2 * width;
    const total = 30;
    const kRef = new Float32Array(capacity * width);
    const vRef = new Float32Array(capacity * width);
    const qkv = be.activation('qkv', total * qkvStride);
    const pos = be.ids('pos', total);
    const out = be.activation('out', total * heads * headDim);
    // Fill the cache in two steps: 25 prompt tokens, then 5 more.
    let q = new Float32Array(0);
    for (const [start, count] of [[0, 25], [25, 5]] as const) {
      const data = floats(next, count * qkvStride);
      be.view(qkv).set(data);
      be.writeIds(pos, Uint32Array.from({ length: count }, (_, i) => start + i));
      for (let t = 0; t < count; t++) {
        kRef.set(data.subarray(t * qkvStride + heads * headDim, t * qkvStride + heads * headDim + width), (start + t) * width);
        vRef.set(data.subarray(t * qkvStride + heads * headDim + width, (t + 1) * qkvStride), (start + t) * width);
      }
      be.kvWrite(kv, 1, { t: qkv, stride: qkvStride, offset: heads * headDim }, { t: qkv, stride: qkvStride, offset: heads * headDim + width }, pos, count);
      be.attention(kv, 1, { t: qkv, stride: qkvStride }, { t: out, stride: heads * headDim }, pos, count, heads, start + count, { scale: 0.2, softcap: 0, window: 0 });
      q = Float32Array.from({ length: count * heads * headDim }, (_, i) => data[Math.floor(i / (heads * headDim)) * qkvStride + (i % (heads * headDim))]!);
      const positions = Array.from({ length: count }, (_, i) => start + i);
      const ref = attentionReference({ q, kCache: kRef, vCache: vRef, positions, tokens: count, heads, kvHeads, headDim, kvLength: start + count, scale: 0.2 });
      expect(normalizedMse(await be.read(out, count * heads * headDim), ref)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('greedy sampling reads back one id per row', async () => {
    const vocab = 5000;
    const logits = floats(next, 2 * vocab);
    logits[123] = 10;
    logits[vocab + 4321] = 10;
    const l = be.activation('logits', 2 * vocab);
    be.view(l).set(logits);
    const ids = be.ids('tokens', 2);
    be.sample({ t: l, stride: vocab }, vocab, 2, { temperature: 0, topK: 40, topP: 1, minP: 0 }, [0.5, 0.5], ids);
    expect(Array.from(await be.readIds(ids, 2))).toEqual([123, 4321]);
  });
});
