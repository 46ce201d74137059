/**
 * LoRA adapters on WebGPU (SwiftShader here, a real GPU on the device machine) against the float64
 * reference with the same adapters: prefill (tiled matmuls), decode (matvec, the stacked [gate; up]
 * taken apart when adapted), several adapters at their own scales, and greedy tokens from the
 * captured-and-replayed decode step, which must be captured again when the adapters change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { readModelConfig } from '../../src/engine/model/config.ts';
import { Model } from '../../src/engine/model/model.ts';
import type { LoraTargetName } from '../../src/engine/model/lora/adapter-file.ts';
import { GREEDY } from '../../src/engine/sampling/index.ts';
import { argmax, klDivergence, topOneAgreement } from '../../src/testing/compare.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { makeRandomLora } from '../../src/testing/make-lora.ts';
import { makeTestModel, type TestArch } from '../../src/testing/make-model.ts';
import { loadReferenceWeights, referenceForward, ReferenceSession } from '../../src/testing/reference-forward.ts';

let gpu: TestGpu;
let kernels: KernelCache;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
});
afterAll(() => gpu?.destroy());

const DIMS = { embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, seed: 3 } as const;
const ALL: LoraTargetName[] = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output', 'token_embd'];

function tokensFor(n: number, vocab: number): number[] {
  let s = 99;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

describe('LoRA on WebGPU vs the float64 reference', () => {
  it.each([
    ['llama', 'f32', 8, ALL],
    // Ranks that are no multiple of 4: rows of A x and of B are not vec4-aligned.
    ['llama', 'q4_0', 1, ['attn_q', 'attn_v', 'ffn_gate', 'ffn_up', 'ffn_down']],
    ['phi3', 'f32', 5, ['attn_qkv', 'ffn_up', 'ffn_down', 'output']],
  ] as Array<[TestArch, string, number, LoraTargetName[]]>)('%s %s, rank %i', { timeout: 120_000 }, async (arch, quant, rank, targets) => {
    const bytes = makeTestModel({ arch, ...DIMS, quant });
    const src = bytesSource(bytes);
    const ref = await loadReferenceWeights(await readGguf(src), src);
    const V = ref.config.nVocab;
    const one = makeRandomLora(ref.config, { rank, alpha: 16, targets, seed: 7 });
    const two = makeRandomLora(ref.config, { rank: 3, alpha: 4, targets: targets.slice(-2), seed: 8 });
    const adapters = [
      { data: one, scale: 0.6 },
      { data: two, scale: 1.2 },
    ];
    const tokens = tokensFor(24, V);
    const exact = referenceForward(ref, tokens, { nCtx: 64, adapters });

    const model = await Model.load(new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths }), src, { contextLength: 64, batch: 16 });
    try {
      const l1 = await model.loadAdapter(one, 'one');
      const l2 = await model.loadAdapter(two, 'two');
      model.setAdapters([
        { lora: l1, scale: 0.6 },
        { lora: l2, scale: 1.2 },
      ]);
      const out = new Float32Array(tokens.length * V);
      out.set(await model.eval(tokens.slice(0, 16), { logits: 'all' }), 0);
      for (let t = 16; t < tokens.length; t++) out.set(await model.eval([tokens[t]!], { logits: 'all' }), t * V);
      const kl = klDivergence(exact, out, V);
      const top1 = topOneAgreement(exact, out, V);
      console.log(`[lora webgpu] ${arch} ${quant}: KL ${kl.toExponential(2)}, top-1 ${(top1 * 100).toFixed(1)}%`);
      expect(kl).toBeLessThanOrEqual(1e-4);
      expect(top1).toBeGreaterThanOrEqual(0.99);

      // Greedy decode through the captured step: with the adapters, then without (captured anew).
      const greedy = async (session: ReferenceSession, prompt: number[], steps: number) => {
        const ids: number[] = [];
        let logits = session.eval(prompt);
        for (let i = 0; i < steps; i++) {
          const id = argmax(logits, logits.length - V, V);
          ids.push(id);
          logits = session.eval([id]);
        }
        return ids;
      };
      const ours = async (steps: number) => {
        model.reset();
        const ids: number[] = [];
        let id = await model.next(tokens.slice(0, 8), GREEDY, 0);
        for (let i = 0; i < steps; i++) {
          ids.push(id);
          id = await model.next([id], GREEDY, 0);
        }
        return ids;
      };
      const wantAdapted = await greedy(new ReferenceSession(ref, { nCtx: 64, adapters }), tokens.slice(0, 8), 6);
      expect(await ours(6)).toEqual(wantAdapted);
      model.setAdapters([]);
      const wantBase = await greedy(new ReferenceSession(ref, { nCtx: 64 }), tokens.slice(0, 8), 6);
      expect(wantBase).not.toEqual(wantAdapted);
      expect(await ours(6)).toEqual(wantBase);
    } finally {
      model.destroy();
    }
  });
});

/**
 * A detached adapter's memory: `Model.unloadAdapter` destroys its buffers (A, B and its scratch),
 * `memoryLeft` grows back by as much, the base logits are unchanged after, and an adapter larger
 * than the budget left is refused by name before upload.
 */
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
