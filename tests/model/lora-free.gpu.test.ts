/**
 * A detached LoRA adapter's memory on WebGPU (SwiftShader here): `Model.unloadAdapter` destroys
 * its buffers (A, B and its scratch), `memoryLeft` grows back by as much, the base logits are
 * unchanged after, and an adapter larger than the budget left is refused by name before upload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { readModelConfig } from '../../src/engine/model/config.ts';
import { Model } from '../../src/engine/model/model.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { makeRandomLora } from '../../src/testing/make-lora.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';

let gpu: TestGpu;
let kernels: KernelCache;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
});
afterAll(() => gpu?.destroy());

describe('LoRA adapter memory on WebGPU', () => {
  it('frees every buffer of a detached adapter, and refuses one over the budget left', { timeout: 120_000 }, async () => {
    const bytes = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, seed: 3 });
    const src = bytesSource(bytes);
    const config = readModelConfig(await readGguf(src));
    const BUDGET = 1 << 30;
    const backend = new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths, memoryBudgetBytes: BUDGET });
    const model = await Model.load(backend, src, { contextLength: 64, batch: 16 });
    let held = 0;
    try {
      const tokens = [1, 5, 9, 13];
      const base = await model.eval(tokens, { logits: 'all' });
      const left = backend.memoryLeft();
      held = BUDGET - left;
      const lora = await model.loadAdapter(makeRandomLora(config, { rank: 8, targets: ['attn_q', 'ffn_down', 'output'], seed: 5, gain: 2 }), 'style');
      const taken = left - backend.memoryLeft();
      expect(taken).toBeGreaterThanOrEqual(lora.bytes);
      model.setAdapters([{ lora, scale: 1 }]);
      model.reset();
      const adapted = await model.eval(tokens, { logits: 'all' });
      expect(Array.from(adapted)).not.toEqual(Array.from(base));
      // Detached while in use: every buffer it took is destroyed and counted.
      expect(model.unloadAdapter(lora)).toBe(taken);
      expect(backend.memoryLeft()).toBe(left);
      expect(model.adapters).toEqual([]);
      model.reset();
      expect(Array.from(await model.eval(tokens, { logits: 'all' }))).toEqual(Array.from(base));
    } finally {
      model.destroy();
    }
    // A budget that holds the model (what it held above) and a few KiB more, not the adapter.
    const budget = new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths, memoryBudgetBytes: held + 8192 });
    const tight = await Model.load(budget, src, { contextLength: 64, batch: 16 });
    try {
      const big = makeRandomLora(config, { rank: 16, targets: ['attn_q', 'ffn_down', 'output'], seed: 6 });
      const error = await tight.loadAdapter(big, 'big').catch((e: unknown) => e as Error);
      expect((error as Error).name).toBe('AdapterTooLargeError');
      expect((error as Error).message).toMatch(/bytes left after the model/);
    } finally {
      tight.destroy();
    }
  });
});
