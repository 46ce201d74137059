/**
 * Mixture-of-experts models on the WebGPU backend (moeFfn: routing, expert products and the
 * weighted sum on the device, backend.ts), on random-weight make-model files: our logits over a
 * prefill (batch 8: the 12 tokens in two evals, their expert products grouped by expert) and then
 * decode (indexed expert products), against
 * llama.cpp and the exact float64 forward. F32: KL(llama.cpp || ours) <= 1e-5 and top-1 >= 99%;
 * Q8_0: our logits at least as close to the exact answer over the dequantized weights as
 * llama.cpp's (which quantizes activations to 8 bits). Figures are "[webgpu moe]" lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { Model } from '../../src/engine/model/model.ts';
import { GREEDY } from '../../src/engine/sampling/index.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { argmax, klDivergence, topOneAgreement } from '../../src/testing/compare.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { llamaRefLogits } from '../../src/testing/llama-ref.ts';
import { makeTestModel, type MoeTestArch, type TestModelOptions } from '../../src/testing/make-model.ts';
import { loadReferenceWeights, referenceForward } from '../../src/testing/reference-forward.ts';
import { tokensFor } from '../../src/testing/random.ts';

const N_TOKENS = 20;
const PREFILL = 12;

let gpu: TestGpu;
let kernels: KernelCache;
let dir: string;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
  dir = mkdtempSync(join(tmpdir(), 'hearth-webgpu-moe-'));
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const CASES: Array<[MoeTestArch, 'f32' | 'q8_0', Omit<TestModelOptions, 'arch' | 'quant'>]> = [
  // The gated shared expert, experts not renormalized.
  ['qwen2moe', 'f32', { embd: 128, layers: 2, heads: 4, kvHeads: 2, ff: 256, experts: 10, expertsUsed: 4, expertFf: 96, sharedFf: 128, seed: 7 }],
  ['qwen3moe', 'f32', { embd: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, ff: 256, experts: 16, expertsUsed: 5, expertFf: 64, seed: 8 }],
  ['granitemoe', 'q8_0', { embd: 128, layers: 2, heads: 4, kvHeads: 2, ff: 128, experts: 4, expertsUsed: 2, sharedFf: 128, seed: 6 }],
];

describe('mixture-of-experts on the WebGPU backend', () => {
  it.each(CASES)('%s %s', { timeout: 180_000 }, async (arch, quant, shape) => {
    const path = join(dir, `${arch}-${quant}.gguf`);
    writeFileSync(path, makeTestModel({ arch, quant, ...shape }));
    const source = await nodeFileSource(path);
    try {
      const ref = await loadReferenceWeights(await readGguf(source), source);
      expect(ref.config.moe?.nExpert).toBe(shape.experts);
      const V = ref.config.nVocab;
      const tokens = tokensFor(N_TOKENS, V);
      const exact = referenceForward(ref, tokens, { nCtx: 128 });
      const llama = llamaRefLogits(path, tokens, { kvType: 'f32', threads: 2, nCtx: 128 }).logits;

      const model = await Model.load(new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths }), source, { contextLength: 128, batch: 8 });
      const ours = new Float32Array(tokens.length * V);
      const generated: number[] = [];
      try {
        ours.set(await model.eval(tokens.slice(0, PREFILL), { logits: 'all' }), 0);
        for (let t = PREFILL; t < tokens.length; t++) ours.set(await model.eval([tokens[t]!], { logits: 'all' }), t * V);
        // Greedy decode through the sampler: from the third step on, a captured step plan is replayed.
        model.reset();
        generated.push(await model.next(tokens.slice(0, PREFILL), GREEDY, 0));
        for (let i = 0; i < 5; i++) generated.push(await model.next([generated.at(-1)!], GREEDY, 0));
      } finally {
        model.destroy();
      }
      const sequence = [...tokens.slice(0, PREFILL), ...generated];
      const exactGreedy = referenceForward(ref, sequence.slice(0, -1), { nCtx: 128 });
      generated.forEach((id, i) => expect(id, `greedy token ${i}`).toBe(argmax(exactGreedy, (PREFILL - 1 + i) * V, V)));
      const kl = (a: ArrayLike<number>, b: ArrayLike<number>) => klDivergence(a, b, V);
      const figures = { llamaVsOurs: kl(llama, ours), exactVsOurs: kl(exact, ours), exactVsLlama: kl(exact, llama), top1: topOneAgreement(llama, ours, V) };
      console.log(
        `[webgpu moe] ${arch} ${quant}: KL(llama.cpp||ours) ${figures.llamaVsOurs.toExponential(2)} (top-1 ${(figures.top1 * 100).toFixed(1)}%), ` +
          `KL(exact||ours) ${figures.exactVsOurs.toExponential(2)}, KL(exact||llama.cpp) ${figures.exactVsLlama.toExponential(2)}`,
      );
      expect(ours.every(Number.isFinite)).toBe(true);
      if (quant === 'f32') {
        expect(figures.llamaVsOurs).toBeLessThanOrEqual(1e-5);
        expect(figures.top1).toBeGreaterThanOrEqual(0.99);
        expect(figures.exactVsOurs).toBeLessThanOrEqual(1e-5);
      } else {
        expect(figures.exactVsOurs).toBeLessThanOrEqual(figures.exactVsLlama);
        expect(figures.exactVsOurs).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      await source.close?.();
    }
  });
});
