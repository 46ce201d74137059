/**
 * The training step against the float64 reference (src/testing/reference-backward.ts) on generated
 * models: the same loss, and per adapter tensor the same d loss / d A and d loss / d B, in float64
 * (the step's formulas: agreement to rounding) and float32 (what training runs), with and without
 * recomputing layers in the backward pass, on F32 and Q8_0 bases. Per-tensor relative errors are
 * printed as "[train step]" lines. Architectures the step does not differentiate are refused by name.
 */
import { describe, expect, it } from 'vitest';
import { readGguf } from '../gguf/reader.ts';
import { bytesSource } from '../gguf/source.ts';
import type { LoraTargetName } from '../model/lora/adapter-file.ts';
import { makeRandomLora } from '../../testing/make-lora.ts';
import { makeTestModel, type TestModelOptions } from '../../testing/make-model.ts';
import { tokensFor } from '../../testing/random.ts';
import { referenceTrainingStep, trainableLora } from '../../testing/reference-backward.ts';
import { loadReferenceWeights } from '../../testing/reference-forward.ts';
import { loadTrainingBase } from './base.ts';
import { CpuTrainOps } from './cpu-ops.ts';
import { UnsupportedTrainingError } from './errors.ts';
import { trainingStep, zeroGrads } from './step.ts';
import type { Vec } from './ops.ts';

const ALL: LoraTargetName[] = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output'];
const DIMS = { embd: 32, layers: 2, heads: 4, kvHeads: 2, ff: 48, seed: 3 } as const;

interface Case {
  label: string;
  model: TestModelOptions;
  rank: number;
  alpha: number;
  targets?: LoraTargetName[];
}
const CASES: Case[] = [
  { label: 'llama, GQA, llama3 rope factors, F32', model: { arch: 'llama', ...DIMS, ropeFreqs: true }, rank: 4, alpha: 8 },
  { label: 'qwen2, q/k/v biases, Q8_0 base', model: { arch: 'qwen2', ...DIMS, ff: 64, quant: 'q8_0' }, rank: 3, alpha: 0 },
  { label: 'qwen3, per-head q/k norms, head dim 12, F32', model: { arch: 'qwen3', ...DIMS, headDim: 12, kvHeads: 1 }, rank: 2, alpha: 4 },
  { label: 'llama, tied output, Q8_0 base', model: { arch: 'llama', ...DIMS, embd: 64, tiedEmbeddings: true, quant: 'q8_0' }, rank: 4, alpha: 4, targets: ALL.filter((t) => t !== 'output') },
];

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s) / norm(b);
}

describe('LoRA training step vs the float64 reference', () => {
  it.each(CASES)('$label: loss and every A and B gradient', async (c) => {
    const bytes = makeTestModel(c.model);
    const src = bytesSource(bytes);
    const file = await readGguf(src);
    const ref = await loadReferenceWeights(file, src);
    const base = await loadTrainingBase(src, file);
    const data = makeRandomLora(ref.config, { rank: c.rank, alpha: c.alpha, targets: c.targets ?? ALL, seed: 11 });
    const tokens = tokensFor(12, ref.config.nVocab, 5);
    const expected = referenceTrainingStep(ref, trainableLora(data), tokens);

    for (const precision of ['f64', 'f32'] as const) {
      for (const recompute of [false, true]) {
        const ops = new CpuTrainOps(precision);
        const grads = zeroGrads(ops, data);
        let logits: Vec | undefined;
        const r = await trainingStep(ops, base, data, tokens, grads, { recompute, gradScale: 1 / (tokens.length - 1), logits: (l) => (logits = l.slice()) });
        const loss = r.lossSum / r.weight;
        const lossErr = Math.abs(loss - expected.loss) / expected.loss;
        let worst = 0;
        const per: string[] = [];
        for (const [k, t] of data.targets.entries()) {
          const ea = relErr(grads[k]!.a, expected.grads[k]!.a);
          const eb = relErr(grads[k]!.b, expected.grads[k]!.b);
          worst = Math.max(worst, ea, eb);
          per.push(`${t.base.replace(/\.weight$/, '')} A ${ea.toExponential(1)} B ${eb.toExponential(1)}`);
        }
        console.log(`[train step] ${c.label} ${precision}${recompute ? ' recompute' : ''}: loss ${loss.toFixed(6)} (ref ${expected.loss.toFixed(6)}, rel ${lossErr.toExponential(1)}), worst grad rel ${worst.toExponential(2)}, activations ${r.activationBytes} B\n  ${per.join('\n  ')}`);
        const bound = precision === 'f64' ? 1e-9 : 2e-5;
        expect(lossErr).toBeLessThan(precision === 'f64' ? 1e-12 : 1e-5);
        expect(worst).toBeLessThan(bound);
        expect(relErr(logits!, expected.logits)).toBeLessThan(precision === 'f64' ? 1e-12 : 1e-5);
        // The gradients are not vacuous: every target's B moves the loss.
        for (const g of grads) expect(norm(g.b)).toBeGreaterThan(0);
      }
    }
  });

  it('recomputing layers holds fewer activations at once', async () => {
    const bytes = makeTestModel({ arch: 'llama', ...DIMS, layers: 4 });
    const src = bytesSource(bytes);
    const base = await loadTrainingBase(src);
    const data = makeRandomLora(base.config, { rank: 2, targets: ALL, seed: 1 });
    const tokens = tokensFor(16, base.config.nVocab, 2);
    const ops = new CpuTrainOps('f32');
    const kept = await trainingStep(ops, base, data, tokens, zeroGrads(ops, data), {});
    const recomputed = await trainingStep(ops, base, data, tokens, zeroGrads(ops, data), { recompute: true });
    console.log(`[train step] activations, 4 layers x 16 tokens: kept ${kept.activationBytes} B, recomputed ${recomputed.activationBytes} B`);
    expect(recomputed.activationBytes).toBeLessThan(kept.activationBytes * 0.6);
  });

  it.each(['gemma2', 'phi3', 'granite'] as const)('refuses %s by name', async (arch) => {
    const src = bytesSource(makeTestModel({ arch, ...DIMS, kvHeads: 4, headDim: 8 }));
    await expect(loadTrainingBase(src)).rejects.toThrow(UnsupportedTrainingError);
  });
});
