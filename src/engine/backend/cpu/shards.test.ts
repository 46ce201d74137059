/**
 * Weights over several WebAssembly memories (shards.ts): a small generated model with memories of
 * 1 MiB (so its weights take two or three) gives bitwise the logits of the same model in one
 * memory, prefill (in chunks of the batch, and the logits' matmul in staging chunks) and decode,
 * dense and MoE, on 1 and 2 threads; a model that needs more memories than allowed, or a browser
 * that cannot make another memory, fails with a named error before any weight is read.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { bytesSource } from '../../gguf/source.ts';
import { openGgufModel } from '../../gguf/split.ts';
import { Model } from '../../model/model.ts';
import { planLoad } from '../../model/loader.ts';
import { makeTestModel, type TestModelOptions } from '../../../testing/make-model.ts';
import { tokensFor } from '../../../testing/random.ts';
import { CPU_PLAN_TARGET } from '../choose.ts';
import { CpuBackend, cpuWeightBytes } from './backend.ts';
import { cpuLayout, planShards } from './shards.ts';

const MiB = 1 << 20;
/**
 * Memories of 1 MiB: three for the dense models (shard 0 holding the first layer's weights beside
 * the KV cache and activations), and 64 KiB of staging, so a 16-token batch of gate|up goes
 * through it in chunks of 12 and 4.
 */
const SHARD_BYTES = 1 << 20;
const SIZING = { contextLength: 64, batch: 16 };

const DENSE: TestModelOptions = { arch: 'llama', embd: 256, layers: 4, heads: 4, kvHeads: 2, ff: 512, quant: 'q4_k_m', seed: 3 };
// Q4_0 attention and Q8_0 output: the Q8A path; Q4_1 feed-forward: the f32 path in prefill (plain SIMD).
const LEGACY: TestModelOptions = { ...DENSE, quant: 'q4_0', seed: 4 };
const MOE: TestModelOptions = { arch: 'mixtral', embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, experts: 6, expertsUsed: 2, quant: 'q4_k_m', seed: 5 };

const files = new Map<TestModelOptions, Uint8Array>();
beforeAll(() => {
  for (const o of [DENSE, LEGACY, MOE]) files.set(o, makeTestModel(o));
}, 60_000);

async function planned(o: TestModelOptions) {
  const file = await openGgufModel([bytesSource(files.get(o)!)]);
  return planLoad(file, CPU_PLAN_TARGET, SIZING);
}

/** Logits of a 20-token prefill (batches of 8) and 4 decode steps, and the backend's memory count. */
async function run(o: TestModelOptions, threads: number, shardBytes?: number): Promise<{ logits: Float32Array[]; shards: number }> {
  const p = await planned(o);
  const layout = cpuLayout(p.file.tensors, p.plan.totalBytes, cpuWeightBytes);
  const backend = await CpuBackend.create({ relaxed: false, threads, ...(shardBytes ? { layout, shardBytes } : {}) });
  const model = await Model.load(backend, p);
  try {
    const tokens = tokensFor(24, p.config.nVocab, 7);
    const logits = [await model.eval(tokens.slice(0, 20), { logits: 'all' })];
    for (const t of tokens.slice(20)) logits.push(await model.eval([t]));
    return { logits, shards: backend.shardCount };
  } finally {
    model.destroy();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('CPU weights over several memories', () => {
  // The MoE's stacked experts (320 KiB a tensor) need larger memories.
  for (const [name, o, shardBytes] of [['dense Q4_K_M', DENSE, SHARD_BYTES], ['dense Q4_0', LEGACY, SHARD_BYTES], ['MoE Q4_K_M', MOE, 2 * SHARD_BYTES]] as const) {
    for (const threads of [1, 2]) {
      it(`${name}, ${threads} thread${threads > 1 ? 's' : ''}: bitwise the one-memory logits`, async () => {
        const one = await run(o, threads);
        const many = await run(o, threads, shardBytes);
        expect(one.shards).toBe(1);
        expect(many.shards).toBeGreaterThanOrEqual(2);
        expect(many.logits.length).toBe(one.logits.length);
        for (let i = 0; i < one.logits.length; i++) {
          expect(one.logits[i]!.some((v) => v !== 0)).toBe(true);
          expect(many.logits[i]).toEqual(one.logits[i]);
        }
      });
    }
  }

  it('plans one memory when everything fits in one, more only past it', () => {
    const layout = { matrixBytes: [100, 100, 100], largestBytes: 100, residentBytes: 50 };
    expect(planShards(layout, 1 * MiB, 1024)?.count).toBe(1);
    // 8 KiB memories (1 KiB of own buffers each): shard 0 has 7 KiB - 50 for 3 x 100 weights.
    const big = { matrixBytes: Array.from({ length: 100 }, () => 1000), largestBytes: 1000, residentBytes: 6000 };
    const plan = planShards(big, 8 * 1024, 1024, 64)!;
    // First fit in any order: room of (cap - largest) per shard covers every matrix.
    const room = plan.weightCaps.reduce((a, c) => a + Math.max(0, c - big.largestBytes), 0);
    expect(room).toBeGreaterThanOrEqual(100 * 1064);
    expect(planShards(big, 8 * 1024, 1024, plan.count - 1)).toBeUndefined();
  });

  it('a model needing more memories than allowed: CpuMemoryError before any weight is read', async () => {
    const p = await planned(DENSE);
    const layout = cpuLayout(p.file.tensors, p.plan.totalBytes, cpuWeightBytes);
    await expect(CpuBackend.create({ relaxed: false, layout, shardBytes: 1 * MiB, maxShards: 2 })).rejects.toMatchObject({ name: 'CpuMemoryError' });
  });

  it('an engine that cannot make another memory: CpuMemoryError naming it, before any weight is read', async () => {
    const p = await planned(DENSE);
    const layout = cpuLayout(p.file.tensors, p.plan.totalBytes, cpuWeightBytes);
    const Real = WebAssembly.Memory;
    let made = 0;
    vi.spyOn(WebAssembly, 'Memory').mockImplementation(function (d: WebAssembly.MemoryDescriptor) {
      if (++made > 1) throw new RangeError('WebAssembly.Memory(): could not allocate memory');
      return new Real(d);
    } as unknown as typeof WebAssembly.Memory);
    const error = await CpuBackend.create({ relaxed: false, layout, shardBytes: 1 * MiB }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'CpuMemoryError' });
    expect((error as Error).message).toMatch(/memory 2 of \d+/);
  });
});
