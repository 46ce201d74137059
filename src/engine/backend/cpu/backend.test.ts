/**
 * The CPU backend through the op interface (../ops.ts): handles, both matmul paths, the KV cache,
 * sampling with the WebGPU sampler's rule. The kernels themselves are checked in kernels.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { normalizedMse } from '../../../testing/compare.ts';
import { exactWeights, randomBlocks } from '../../../testing/random-weights.ts';
import { attentionReference } from '../webgpu/kernels/attention.ts';
import { matmulReference } from '../webgpu/kernels/matmul.ts';
import { applyPenalties, recentTokenCounts, sampleRow } from '../../sampling/index.ts';
import { QUANT_FORMATS } from '../../gguf/quants/index.ts';
import { CpuBackend, Q8A_MAX_TOKENS } from './backend.ts';
import { mulberry32 as rng, freshSeed } from '../../../testing/random.ts';



const floats = (next: () => number, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);

describe('CpuBackend', () => {
  let be: CpuBackend;
  let next: () => number;

  beforeAll(async () => {
    be = await CpuBackend.create({ relaxed: false });
    next = rng(freshSeed('cpu backend'));
  });

  it('samples each row by the sampling chain, after the penalties', async () => {
    const vocab = 3000;
    const rows = 2;
    for (let trial = 0; trial < 20; trial++) {
      const logits = floats(next, rows * vocab, 6);
      // Ties, to check the lower id wins.
      logits[17] = logits[2900] = 7;
      const params = { temperature: trial % 5 === 0 ? 0 : 0.2 + next() * 1.5, topK: [0, 1, 5, 40, 200][trial % 5]!, topP: next() < 0.5 ? 1 : 0.5 + next() / 2, minP: next() < 0.5 ? 0 : next() * 0.2 };
      const u = [next(), next()];
      const history = Array.from({ length: 80 }, () => Math.floor(next() * 60));
      const penalties = trial % 2 ? { params: { repetition: 1.5, frequency: 0.3, presence: 0.2, lastN: 64 }, counts: recentTokenCounts(history, 64) } : undefined;
      const l = be.activation('logits', rows * vocab);
      be.view(l).set(logits);
      const ids = be.ids('tokens', rows);
      be.sample({ t: l, stride: vocab }, vocab, rows, params, u, ids, penalties);
      const expected = [0, 1].map((r) => {
        const row = logits.slice(r * vocab, (r + 1) * vocab);
        if (penalties) applyPenalties(row, penalties.counts, penalties.params);
        return sampleRow(row, params, u[r]!);
      });
      expect(Array.from(await be.readIds(ids, rows)), JSON.stringify(params)).toEqual(expected);
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

  // Q4_0 takes 8-bit activations at every token count (four tokens per pass beyond three); Q5_1 on
  // the plain build only up to Q8A_MAX_TOKENS, the f32 path beyond.
  it.each([
    { name: 'Q4_0', type: GgmlType.Q4_0, tokens: 1, quantized: true },
    { name: 'Q4_0', type: GgmlType.Q4_0, tokens: 9, quantized: true },
    { name: 'Q5_1', type: GgmlType.Q5_1, tokens: Q8A_MAX_TOKENS, quantized: true },
    { name: 'Q5_1', type: GgmlType.Q5_1, tokens: Q8A_MAX_TOKENS + 1, quantized: false },
  ])('$name matmul of $tokens tokens: 8-bit activations $quantized', async ({ type, tokens, quantized }) => {
    const k = 320;
    const rows = 19;
    const bytes = randomBlocks(type, rows, k, Math.floor(next() * 2 ** 31));
    const w = await be.weight({ name: 'w', type, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    const x = floats(next, tokens * k);
    const xa = be.activation('x', tokens * k);
    const ya = be.activation('y', tokens * rows);
    be.view(xa).set(x);
    be.matmul(w, { t: xa, stride: k }, { t: ya, stride: rows }, tokens);
    const err = normalizedMse(await be.read(ya, tokens * rows), matmulReference(exactWeights(type, bytes, rows * k), k, rows, x, tokens));
    expect(err).toBeLessThanOrEqual(quantized ? 2e-4 : 1e-6);
    // The quantized path is measurably not exact: it really was taken.
    if (quantized) expect(err).toBeGreaterThan(1e-9);
  });

  it('reads every type of the quants registry natively, at its GGUF bytes', () => {
    // A type added to the registry needs a CPU kernel (assembly/kernels.ts dequantize) too.
    for (const f of QUANT_FORMATS) {
      expect(be.supportsWeight(f.type), f.name).toBe(true);
      expect(be.weightBytes(f.type, [2 * 256, 3]), f.name).toBe(3 * ((2 * 256) / f.blockSize) * f.typeSize);
    }
    expect(be.supportsWeight(GgmlType.IQ2_XXS)).toBe(false);
    expect(() => be.weightBytes(GgmlType.IQ2_XXS, [256, 1])).toThrow(/cannot read type IQ2_XXS/);
  });

  it.each([GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.IQ4_NL, GgmlType.IQ4_XS].map((t) => [GgmlType[t], t] as const))('%s weights: matmul within 1e-6 of float64 on the f32 path (decode: 2e-4 on 8-bit activations), embed exact', async (_name, type) => {
    const k = 768;
    const rows = 37;
    const bytes = randomBlocks(type, rows, k, Math.floor(next() * 2 ** 31));
    const exactW = exactWeights(type, bytes, rows * k);
    const w = await be.weight({ name: 'w', type, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    expect(w.bytes).toBe(bytes.length);
    for (const tokens of [1, 5]) {
      const x = floats(next, tokens * k);
      const bias = floats(next, rows);
      const xa = be.activation('x', tokens * k);
      const ya = be.activation('y', tokens * rows);
      be.view(xa).set(x);
      be.matmul(w, { t: xa, stride: k }, { t: ya, stride: rows }, tokens, be.vector('b', bias));
      const err = normalizedMse(await be.read(ya, tokens * rows), matmulReference(exactW, k, rows, x, tokens, bias));
      // Decode runs on 8-bit activations (one-token integer dots): measurably not exact, so taken.
      const q8k = tokens <= Q8A_MAX_TOKENS;
      expect(err).toBeLessThanOrEqual(q8k ? 2e-4 : 1e-6);
      if (q8k) expect(err).toBeGreaterThan(1e-9);
    }
    const ids = be.ids('ids', 3);
    be.writeIds(ids, Uint32Array.from([5, 36, 0]));
    const e = be.activation('e', 3 * k);
    be.embed(w, ids, { t: e, stride: k }, 3, 1);
    const got = await be.read(e, 3 * k);
    [5, 36, 0].forEach((id, t) => expect(got.subarray(t * k, (t + 1) * k)).toEqual(exactW.subarray(id * k, (id + 1) * k)));
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

/**
 * Every op through the interface on one backend, on data from `seed`: the outputs, for comparing
 * thread counts. Shapes are not multiples of the pool's chunking (16-row grains, 4 chunks a thread).
 */
async function runOps(be: CpuBackend, seed: number): Promise<Float32Array[]> {
  const next = rng(seed);
  const out: Float32Array[] = [];
  const k = 512;
  const outs: Array<[GgmlType, number, number]> = [
    [GgmlType.Q4_K, 300, 1], // Q8K decode
    [GgmlType.Q4_K, 300, 7], // Q8K, 4-token tiles, parallel quantize
    [GgmlType.Q6_K, 45, 2],
    [GgmlType.Q4_0, 77, 1], // Q8A
    [GgmlType.Q8_0, 77, 5], // f32 path (per-thread dequantize scratch)
    [GgmlType.F16, 33, 3],
    [GgmlType.Q5_0, 77, 1], // Q8A
    [GgmlType.Q4_1, 50, 2], // Q8A
    [GgmlType.Q5_1, 40, 5], // f32 path
    [GgmlType.Q3_K, 30, 2], // f32 path
  ];
  const x = be.activation('x', 8 * k);
  be.view(x).set(floats(next, 8 * k));
  for (const [type, rows, tokens] of outs) {
    const bytes = randomBlocks(type, rows, k, Math.floor(next() * 2 ** 31));
    const w = await be.weight({ name: 'w', type, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    const y = be.activation('y', tokens * rows);
    be.matmul(w, { t: x, stride: k }, { t: y, stride: rows }, tokens, be.vector('b', floats(next, rows)));
    out.push(await be.read(y, tokens * rows));
  }
  // Row ops on 9 rows of 512; attention over a cache filled in two steps; embed; greedy sampling.
  const n = 512;
  const rows = 9;
  const a = be.activation('a', rows * n);
  const b = be.activation('b', rows * n);
  const c = be.activation('c', rows * n);
  be.view(a).set(floats(next, rows * n));
  be.view(b).set(floats(next, rows * n));
  be.norm('rms', { t: a, stride: n }, { t: c, stride: n }, n, rows, 1e-5, be.vector('nw', floats(next, n)));
  be.glu('silu', { t: c, stride: n }, { t: b, stride: n }, { t: a, stride: n }, n, rows);
  be.add({ t: a, stride: n }, { t: b, stride: n }, { t: c, stride: n }, n, rows, 0.5);
  be.softcap({ t: c, stride: n }, n, rows, 3);
  out.push(await be.read(c, rows * n));
  const heads = 8;
  const kvHeads = 2;
  const headDim = 64;
  const pos = be.ids('pos', rows);
  be.writeIds(pos, Uint32Array.from({ length: rows }, (_, i) => 3 + i));
  be.rope({ t: c, stride: n }, rows, heads, headDim, pos, { mode: 'neox', nRot: 64, freqBase: 10000, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, origCtx: 4096 });
  out.push(await be.read(c, rows * n));
  const kv = be.kvStorage({ layers: 1, capacity: 32, kvHeads, headDim });
  const width = kvHeads * headDim;
  const kvRows = be.activation('kv', 12 * 2 * width);
  be.view(kvRows).set(floats(next, 12 * 2 * width));
  const kvPos = be.ids('kvpos', 12);
  be.writeIds(kvPos, Uint32Array.from({ length: 12 }, (_, i) => i));
  be.kvWrite(kv, 0, { t: kvRows, stride: 2 * width }, { t: kvRows, stride: 2 * width, offset: width }, kvPos, 12);
  const att = be.activation('att', rows * n);
  be.attention(kv, 0, { t: c, stride: n }, { t: att, stride: n }, pos, rows, heads, 12, { scale: 0.125, softcap: 0, window: 0 });
  out.push(await be.read(att, rows * n));
  const table = randomBlocks(GgmlType.Q4_K, 50, 256, Math.floor(next() * 2 ** 31));
  const emb = await be.weight({ name: 'emb', type: GgmlType.Q4_K, shape: [256, 50] }, async (o, len) => table.subarray(o, o + len));
  const ids = be.ids('ids', 6);
  be.writeIds(ids, Uint32Array.from([0, 7, 49, 50, 3, 3]));
  const e = be.activation('e', 6 * 256);
  be.embed(emb, ids, { t: e, stride: 256 }, 6, 1.5);
  out.push(await be.read(e, 6 * 256));
  const tokens = be.ids('tokens', rows);
  be.sample({ t: att, stride: n }, n, rows, { temperature: 0, topK: 1, topP: 1, minP: 0 }, [], tokens);
  out.push(Float32Array.from(await be.readIds(tokens, rows)));
  return out;
}

describe('CpuBackend threads', () => {
  it('reports whether threads can start, and why not', async () => {
    const support = CpuBackend.threadingSupport();
    expect(support.available).toBe(true); // Node: worker_threads and SharedArrayBuffer
    expect(support.hardwareConcurrency).toBeGreaterThanOrEqual(1);
    const g = globalThis as { crossOriginIsolated?: boolean };
    g.crossOriginIsolated = false;
    try {
      const no = CpuBackend.threadingSupport();
      expect(no.available).toBe(false);
      expect(no.reason).toMatch(/cross-origin isolated/);
      const be = await CpuBackend.create({ relaxed: false, threads: 2 });
      expect(be.threads).toBe(1);
      expect(be.threadingFallback).toMatch(/cross-origin isolated/);
      be.destroy();
    } finally {
      delete g.crossOriginIsolated;
    }
  });

  it('keeps working when a pool worker dies: runs on this thread, restarts the pool, same results', { timeout: 60_000 }, async () => {
    const seed = freshSeed('cpu worker lost');
    const one = await CpuBackend.create({ relaxed: false, threads: 1, memoryBudgetBytes: 64 << 20 });
    const reference = await runOps(one, seed);
    one.destroy();
    const be = await CpuBackend.create({ relaxed: false, threads: 3, memoryBudgetBytes: 64 << 20 });
    try {
      // The test plays the OS killing a worker thread (the pool and its handles are private).
      // (kernels.ts keeps it in a state shared by the backend's memories.)
      const pool = (be.kernels as unknown as { ps: { pool: { lost: boolean; handles: { terminate(): void }[] } } }).ps.pool;
      pool.handles[0]!.terminate();
      while (!pool.lost) await new Promise((r) => setTimeout(r, 5));
      const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
      const during = await runOps(be, seed);
      during.forEach((a, i) => expect(bits(a), `output ${i} while restarting`).toEqual(bits(reference[i]!)));
      await be.kernels.poolReady;
      expect(be.kernels.poolRestarts).toBe(1);
      expect(be.threads).toBe(3);
      const restarted = (be.kernels as unknown as { ps: { pool: typeof pool | undefined } }).ps.pool;
      expect(restarted).toBeDefined();
      expect(restarted).not.toBe(pool);
      const after = await runOps(be, seed);
      after.forEach((a, i) => expect(bits(a), `output ${i} after the restart`).toEqual(bits(reference[i]!)));
      expect(restarted!.lost).toBe(false);
    } finally {
      be.destroy();
    }
  });

  it('gives every op bitwise the same results on 2 and 3 threads as on 1', { timeout: 60_000 }, async () => {
    const seed = freshSeed('cpu threads');
    const results: Float32Array[][] = [];
    for (const threads of [1, 2, 3]) {
      const be = await CpuBackend.create({ relaxed: false, threads, memoryBudgetBytes: 64 << 20 });
      try {
        expect(be.threads).toBe(threads);
        expect(be.threadingFallback).toBeUndefined();
        results.push(await runOps(be, seed));
        // The workers really took part (the calling thread could otherwise do every chunk). On a
        // busy machine a worker may not get a core during one run: run again (same results) a few times.
        for (let again = 0; threads > 1 && be.kernels.workerChunks === 0 && again < 5; again++) results.push(await runOps(be, seed));
        if (threads > 1) expect(be.kernels.workerChunks).toBeGreaterThan(0);
      } finally {
        be.destroy();
      }
    }
    const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
    for (const r of results.slice(1)) {
      expect(r.length).toBe(results[0]!.length);
      r.forEach((a, i) => expect(bits(a), `output ${i}`).toEqual(bits(results[0]![i]!)));
    }
  });
});
