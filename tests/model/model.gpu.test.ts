/**
 * The model around the forward pass: memory planning and its errors, the cache as position
 * counter (context full, truncate for prefix reuse, reset), `last` vs `all` logits, and the debug
 * taps, which must show the same intermediates as the float64 reference's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { ContextFullError } from '../../src/engine/model/kv-cache.ts';
import { ModelTooLargeError, planMemory } from '../../src/engine/model/loader.ts';
import { readModelConfig } from '../../src/engine/model/config.ts';
import { Model } from '../../src/engine/model/model.ts';
import { klDivergence, normalizedMse } from '../../src/testing/compare.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { loadReferenceWeights, referenceForward, type ReferenceModel } from '../../src/testing/reference-forward.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { applyPenalties, GREEDY, recentTokenCounts, sampleDistribution, sampleRow, type TokenPenalties } from '../../src/engine/sampling/index.ts';

let gpu: TestGpu;
let kernels: KernelCache;
const bytes = makeTestModel({ arch: 'gemma2', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, seed: 3, slidingWindow: 8 });
const source = { size: bytes.byteLength, read: async (o: number, l: number) => bytes.subarray(o, o + l) };
let ref: ReferenceModel;

beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
  ref = await loadReferenceWeights(await readGguf(source), source);
});
afterAll(() => gpu?.destroy());

const backend = (memoryBudgetBytes?: number) =>
  new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths, ...(memoryBudgetBytes !== undefined ? { memoryBudgetBytes } : {}) });

function tokens(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 131 + seed * 17 + 3) % ref.config.nVocab);
}

describe('memory planning', () => {
  it('refuses a context that does not fit the budget with ModelTooLargeError, and shrinks the default context to fit', async () => {
    const file = await readGguf(source);
    const config = readModelConfig(file);
    const plan = planMemory(config, file.tensors, { limits: { maxBufferBytes: 1 << 30, memoryBudgetBytes: Infinity } }, { contextLength: 1024, batch: 16 });
    expect(plan.kvBytes).toBe(2 * 1024 * 2 * config.kvDimK * 4);
    const budget = plan.weightBytes + plan.scratchBytes + plan.kvBytes / 2;
    await expect(Model.load(backend(budget), source, { contextLength: 1024, batch: 16 })).rejects.toThrow(ModelTooLargeError);
    const shrunk = planMemory(config, file.tensors, { limits: { maxBufferBytes: 1 << 30, memoryBudgetBytes: budget } }, { batch: 16 });
    expect(shrunk.contextLength).toBe(512);
    expect(shrunk.totalBytes).toBeLessThanOrEqual(budget);
    expect(() => planMemory(config, file.tensors, { limits: { maxBufferBytes: 1 << 30, memoryBudgetBytes: plan.weightBytes } }, { batch: 16 })).toThrow(ModelTooLargeError);
  });
});

describe('a sequence', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(backend(), source, { contextLength: 64, batch: 16 });
  });
  afterAll(() => model?.destroy());

  it('throws ContextFullError past the context and keeps what it had', async () => {
    model.reset();
    await model.eval(tokens(60, 1), { logits: 'none' });
    await expect(model.eval(tokens(5, 2))).rejects.toThrow(ContextFullError);
    expect(model.position).toBe(60);
  });

  it("returns the last row of 'all' for 'last', and after truncate re-evaluates a suffix as a fresh run does", async () => {
    const seq = tokens(40, 3);
    const V = ref.config.nVocab;
    model.reset();
    const all = await model.eval(seq, { logits: 'all' });
    model.reset();
    const last = await model.eval(seq);
    // Not bit-equal: one row goes through matvec, a chunk of 8 through the tiled matmul.
    expect(last.length).toBe(V);
    expect(normalizedMse(last, all.subarray(39 * V))).toBeLessThan(1e-10);
    expect(normalizedMse(last, all.subarray(38 * V, 39 * V))).toBeGreaterThan(1e-3);
    // Keep 25 positions, then a different continuation: compare with the reference on the whole sequence.
    model.truncate(25);
    const other = [...seq.slice(0, 25), ...tokens(15, 9)];
    const suffix = await model.eval(other.slice(25), { logits: 'all' });
    const exact = referenceForward(ref, other).subarray(25 * V);
    expect(klDivergence(exact, suffix, V)).toBeLessThan(1e-4);
    // The negative control: without truncating, the same tokens land at other positions.
    const shifted = referenceForward(ref, [...seq, ...tokens(15, 9)]).subarray(40 * V);
    expect(klDivergence(shifted, suffix, V)).toBeGreaterThan(1e-3);
  });

  it('samples with penalties on the device as the sampling chain does on the penalized logits', async () => {
    const seq = tokens(20, 5);
    model.reset();
    const logits = await model.eval(seq);
    const best = sampleRow(logits, GREEDY, 0);
    // The prompt's tokens plus the best one, repeated: a strong penalty must move the argmax.
    const penalties: TokenPenalties = { params: { repetition: 50, frequency: 0.5, presence: 1, lastN: 64 }, counts: recentTokenCounts([...seq, best, best], 64) };
    const penalized = logits.slice();
    applyPenalties(penalized, penalties.counts, penalties.params);
    const greedy = sampleRow(penalized, GREEDY, 0);
    expect(greedy).not.toBe(best);
    model.truncate(19);
    expect(await model.next(seq.slice(19), GREEDY, 0, penalties)).toBe(greedy);
    // Seeded: u in the middle of each kept candidate's interval, so f32 rounding cannot move it.
    const params = { temperature: 1.2, topK: 8, topP: 1, minP: 0 };
    const { ids, probs } = sampleDistribution(penalized, params);
    expect(ids.length).toBeGreaterThan(1);
    let start = 0;
    for (let i = 0; i < ids.length; i++) {
      model.truncate(19);
      expect(await model.next(seq.slice(19), params, start + probs[i]! / 2, penalties)).toBe(ids[i]);
      start += probs[i]!;
    }
  });

  it('taps show the reference intermediates, named as llama.cpp names them', async () => {
    const seq = tokens(12, 4);
    const want = new Map<string, Float64Array>();
    referenceForward(ref, seq, { tap: (name, layer, data) => want.set(`${name}/${layer}`, Float64Array.from(data)) });
    const got = new Map<string, Float32Array>();
    model.reset();
    await model.eval(seq, { logits: 'all', tap: (name, layer, data) => got.set(`${name}/${layer}`, data) });
    const names = ['inp_embd/-1', 'attn_norm/0', 'Qcur_rope/0', 'kqv_out/0', 'attn_post_norm/0', 'ffn_out/1', 'l_out/1', 'result_norm/-1', 'result_output/-1'];
    for (const name of names) {
      expect(got.has(name), name).toBe(true);
      expect(normalizedMse(got.get(name)!, want.get(name)!), name).toBeLessThan(1e-8);
    }
    // A layer's tap differs from another layer's: the comparison can fail.
    expect(normalizedMse(got.get('l_out/1')!, want.get('l_out/0')!)).toBeGreaterThan(1e-3);
  });
});

// The SwiftShader runs above use the software strategy (a row per invocation); a GPU runs the
// others. Each must give the reference logits through a whole model: prefill chunks (tiled or
// row matmul) and single-token decode steps (matvec).
describe('every matvec and matmul strategy', () => {
  it.each(['workgroup', 'subgroup', 'invocation'] as const)('%s gives the reference logits', async (matvec) => {
    if (matvec === 'subgroup') expect(gpu.kernelPaths.subgroups, 'the test adapter has subgroups').toBe(true);
    const model = await Model.load(new WebGpuBackend(gpu.device, { kernels, kernelPaths: { ...gpu.kernelPaths, matvec } }), source, { contextLength: 64, batch: 16 });
    try {
      const seq = tokens(33, 6);
      const V = ref.config.nVocab;
      const got = new Float32Array(seq.length * V);
      got.set(await model.eval(seq.slice(0, 30), { logits: 'all' })); // chunks of 16 and 14
      for (let i = 30; i < seq.length; i++) got.set(await model.eval([seq[i]!]), i * V);
      const exact = referenceForward(ref, seq);
      expect(normalizedMse(got, exact)).toBeLessThan(1e-8);
      // The comparison can fail: the same logits one position off are far away.
      expect(normalizedMse(got.subarray(V), exact.subarray(0, (seq.length - 1) * V))).toBeGreaterThan(1e-3);
    } finally {
      model.destroy();
    }
  });
});
