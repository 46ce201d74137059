/**
 * A trained adapter, exported as a GGUF LoRA file, gives the same logits in llama.cpp
 * (tools/llama-ref with --lora) as in our engine (Model.loadAdapter on the CPU backend): KL <= 1e-5
 * on an F32 base; and the trainer's own forward pass agrees with the engine's. Figures are
 * printed as "[train export]" lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesSource } from '../gguf/source.ts';
import { CpuBackend } from '../backend/cpu/backend.ts';
import { Model } from '../model/model.ts';
import { writeLoraGguf } from '../model/lora/adapter-data.ts';
import { klDivergence, topOneAgreement } from '../../testing/compare.ts';
import { llamaRefLogits } from '../../testing/llama-ref.ts';
import { makeTestModel, type TestArch } from '../../testing/make-model.ts';
import { tokensFor } from '../../testing/random.ts';
import { loadTrainingBase } from './base.ts';
import { CpuTrainOps } from './cpu-ops.ts';
import { packTokens } from './data.ts';
import { LoraTrainer, newAdapter } from './trainer.ts';
import { trainingStep } from './step.ts';

const DIMS = { embd: 128, layers: 2, heads: 4, kvHeads: 2, ff: 192, seed: 9 } as const;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-train-export-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function engineLogits(model: Uint8Array, adapter: Uint8Array | undefined, tokens: number[]): Promise<Float32Array> {
  const backend = await CpuBackend.create({ relaxed: false, quantizedActivations: false, threads: 1 });
  const m = await Model.load(backend, bytesSource(model), { contextLength: 64, batch: 32 });
  try {
    if (adapter) m.setAdapters([{ lora: await m.loadAdapter(bytesSource(adapter), 'trained'), scale: 1 }]);
    return await m.eval(tokens, { logits: 'all' });
  } finally {
    m.destroy();
  }
}

describe('exported trained adapter', () => {
  it.each(['llama', 'qwen2'] as TestArch[])('%s F32 base: llama.cpp and our engine give the same logits (KL <= 1e-5)', { timeout: 120_000 }, async (arch) => {
    const model = makeTestModel({ arch, ...DIMS });
    const base = await loadTrainingBase(bytesSource(model));
    const V = base.config.nVocab;
    const ops = new CpuTrainOps('f32');
    const adapter = newAdapter(base, { rank: 4, targets: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output'], seed: 3 });
    const windows = packTokens(tokensFor(80, V, 6), undefined, 16);
    const trainer = new LoraTrainer(ops, base, adapter, { lr: 2e-2, totalSteps: 6, warmupSteps: 1 });
    for (let s = 0; s < 6; s++) await trainer.trainStep([windows[s % windows.length]!]);

    const file = writeLoraGguf(adapter);
    const modelPath = join(dir, `${arch}.gguf`);
    const loraPath = join(dir, `${arch}-lora.gguf`);
    writeFileSync(modelPath, model);
    writeFileSync(loraPath, file);
    const tokens = tokensFor(24, V, 17);
    const ours = await engineLogits(model, file, tokens);
    const bare = await engineLogits(model, undefined, tokens);
    const llama = llamaRefLogits(modelPath, tokens, { kvType: 'f32', threads: 1, nCtx: 256, loras: [{ path: loraPath, scale: 1 }] }).logits;
    let trainerLogits: Float32Array | undefined;
    await trainingStep(ops, base, adapter, tokens, undefined, { lossOnly: true, logits: (l) => (trainerLogits = Float32Array.from(l)) });
    const figures = {
      adapterMoves: klDivergence(bare, ours, V),
      oursVsLlama: klDivergence(llama, ours, V),
      trainerVsEngine: klDivergence(ours, trainerLogits!, V),
      top1VsLlama: topOneAgreement(llama, ours, V),
    };
    console.log(`[train export] ${arch}: ${Object.entries(figures).map(([k, v]) => `${k} ${k.startsWith('top1') ? v.toFixed(3) : v.toExponential(2)}`).join(', ')}`);
    expect(figures.adapterMoves).toBeGreaterThan(1e-3);
    expect(figures.oursVsLlama).toBeLessThanOrEqual(1e-5);
    expect(figures.trainerVsEngine).toBeLessThanOrEqual(1e-5);
    expect(figures.top1VsLlama).toBeGreaterThanOrEqual(0.99);
  });
});
