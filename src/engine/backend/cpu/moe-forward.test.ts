/**
 * Mixture-of-experts models on the CPU backend (moe.ts), per architecture of
 * src/engine/model/moe-config.ts, on random-weight files from make-model: the file loads in
 * llama.cpp and routes tokens to varied experts; the float64 reference and our CPU forward (f32
 * activations) match llama.cpp on F32 files (KL(llama.cpp || ours) <= 1e-5, top-1 >= 99%); on Q8_0
 * and Q4_K_M files our f32-activation logits are at least as close to the exact float64 answer
 * over the dequantized weights as llama.cpp's are (llama.cpp quantizes activations to 8 bits, which
 * flips near-tied experts: the exact answer is the judge, not llama.cpp's logits). The default
 * 8-bit-activation path is printed beside them. Figures are "[cpu moe]" lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../gguf/reader.ts';
import { Model } from '../../model/model.ts';
import { nodeFileSource } from '../../../node/file-source.ts';
import { klDivergence, topOneAgreement } from '../../../testing/compare.ts';
import { llamaRefLogits } from '../../../testing/llama-ref.ts';
import { loadReferenceWeights, referenceForward } from '../../../testing/reference-forward.ts';
import { referenceRoute } from '../../../testing/reference-moe.ts';
import { makeTestModel, type MoeTestArch, type TestModelOptions } from '../../../testing/make-model.ts';
import { CpuBackend } from './backend.ts';
import { tokensFor } from '../../../testing/random.ts';

const N_TOKENS = 24;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-cpu-moe-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Per architecture: small dims, with an expert count, top-k and widths that differ between them. */
const SHAPES: Record<MoeTestArch, Omit<TestModelOptions, 'arch' | 'quant'>> = {
  mixtral: { embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, experts: 8, expertsUsed: 2, seed: 5 },
  granitemoe: { embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, experts: 6, expertsUsed: 3, sharedFf: 256, seed: 6 },
  qwen2moe: { embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 512, experts: 10, expertsUsed: 4, expertFf: 256, sharedFf: 512, seed: 7 },
  qwen3moe: { embd: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 96, ff: 512, experts: 16, expertsUsed: 5, expertFf: 256, seed: 8 },
  olmoe: { embd: 256, layers: 2, heads: 4, ff: 256, experts: 12, expertsUsed: 4, seed: 9 },
};

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 0; i < k; i++) r = (r * (n - i)) / (i + 1);
  return r;
}

/** Our logits for `tokens`: a prefill of 16 (batch 8: grouped by expert), then token by token (decode). */
async function cpuLogits(path: string, tokens: number[], V: number, quantizedActivations: boolean): Promise<Float32Array> {
  const source = await nodeFileSource(path);
  const backend = await CpuBackend.create({ relaxed: false, quantizedActivations });
  const model = await Model.load(backend, source, { contextLength: 256, batch: 8 });
  try {
    const logits = new Float32Array(tokens.length * V);
    logits.set(await model.eval(tokens.slice(0, 16), { logits: 'all' }), 0);
    for (let t = 16; t < tokens.length; t++) logits.set(await model.eval([tokens[t]!], { logits: 'all' }), t * V);
    return logits;
  } finally {
    model.destroy();
    await source.close?.();
  }
}

describe('mixture-of-experts on the CPU backend', () => {
  const cases = (Object.keys(SHAPES) as MoeTestArch[]).flatMap((arch) => (['f32', 'q8_0', 'q4_k_m'] as const).map((quant) => [arch, quant] as const));
  it.each(cases)('%s %s', { timeout: 120_000 }, async (arch, quant) => {
    const path = join(dir, `${arch}-${quant}.gguf`);
    // Quantized files with 4 experts, 2 used: quantizing in JS is what takes the time here.
    const shape = quant === 'f32' ? SHAPES[arch] : { ...SHAPES[arch], experts: 4, expertsUsed: 2 };
    writeFileSync(path, makeTestModel({ arch, quant, ...shape }));
    const source = await nodeFileSource(path);
    const ref = await loadReferenceWeights(await readGguf(source), source).finally(() => source.close?.());
    const moe = ref.config.moe!;
    expect(moe.nExpert).toBe(shape.experts);
    expect(moe.nExpertUsed).toBe(shape.expertsUsed);
    const V = ref.config.nVocab;
    const tokens = tokensFor(N_TOKENS, V);

    // The exact answer, and which experts each token chose in each layer: not degenerate.
    const chosen = new Map<number, Set<string>>();
    const exact = referenceForward(ref, tokens, {
      nCtx: 256,
      tap: (name, layer, data, width) => {
        if (name !== 'ffn_moe_logits') return;
        const sets = new Set<string>();
        for (let t = 0; t < tokens.length; t++) sets.add(referenceRoute(data.subarray(t * width, (t + 1) * width), moe).experts.slice().sort().join(','));
        chosen.set(layer, sets);
      },
    });
    // Different tokens choose different sets of experts in every layer (at least half of the possible sets, up to 8).
    const possible = binomial(moe.nExpert, moe.nExpertUsed);
    expect(chosen.size).toBe(ref.config.nLayer);
    for (const sets of chosen.values()) expect(sets.size).toBeGreaterThanOrEqual(Math.min(8, Math.ceil(possible / 2)));

    const llama = llamaRefLogits(path, tokens, { kvType: 'f32', threads: 2, nCtx: 256 }).logits;
    const ours = await cpuLogits(path, tokens, V, false);
    const ours8 = await cpuLogits(path, tokens, V, true);
    const kl = (ref: ArrayLike<number>, x: ArrayLike<number>) => klDivergence(ref, x, V);
    const figures = {
      llamaVsOurs: kl(llama, ours),
      exactVsOurs: kl(exact, ours),
      exactVsLlama: kl(exact, llama),
      exactVsOurs8: kl(exact, ours8),
      top1: topOneAgreement(llama, ours, V),
    };
    console.log(
      `[cpu moe] ${arch} ${quant}: KL(llama.cpp||ours) ${figures.llamaVsOurs.toExponential(2)} (top-1 ${(figures.top1 * 100).toFixed(1)}%), ` +
        `KL(exact||ours) ${figures.exactVsOurs.toExponential(2)}, KL(exact||llama.cpp) ${figures.exactVsLlama.toExponential(2)}, ` +
        `KL(exact||ours, 8-bit activations) ${figures.exactVsOurs8.toExponential(2)}`,
    );
    if (quant === 'f32') {
      expect(kl(llama, exact)).toBeLessThanOrEqual(1e-5);
      expect(figures.llamaVsOurs).toBeLessThanOrEqual(1e-5);
      expect(figures.top1).toBeGreaterThanOrEqual(0.99);
      expect(figures.exactVsOurs8).toBeLessThanOrEqual(1e-5);
    } else {
      expect(figures.exactVsOurs).toBeLessThanOrEqual(figures.exactVsLlama);
      expect(figures.exactVsOurs).toBeLessThanOrEqual(1e-4);
    }
  });
});
