/**
 * The float64 training reference: its taped forward gives the reference forward's logits and loss,
 * its gradients to every LoRA A and B match central finite differences on generated models of
 * several architectures (GQA, biases, q/k norms, granite's scales, gemma2's GeGLU, post-norms,
 * softcaps and sliding windows, phi3's fused projections, llama3 and long rope factors, Q8_0 and
 * Q4_K_M bases), AdamW and its schedule match hand-derived values, a few dozen steps lower the
 * loss on a repeated text, and the trained adapter written as a LoRA GGUF gives the engine's
 * reference forward the trained model's logits.
 */
import { describe, expect, it } from 'vitest';
import { readGguf } from '../engine/gguf/reader.ts';
import { bytesSource } from '../engine/gguf/source.ts';
import { readLoraFile, type LoraTargetName } from '../engine/model/lora/adapter-file.ts';
import { readLoraData, writeLoraGguf } from '../engine/model/lora/adapter-data.ts';
import { AdamW, clipGradNorm, globalNorm, scheduledLr } from '../engine/model/lora/adamw.ts';
import { makeRandomLora } from './make-lora.ts';
import { makeTestModel, type TestModelOptions } from './make-model.ts';
import { mulberry32 } from './random.ts';
import {
  nextTokenCrossEntropy,
  referenceTrainingLoss,
  referenceTrainingStep,
  roundLoraToF32,
  trainableLora,
  trainedLoraData,
  UnsupportedTrainingError,
  type TrainableLora,
} from './reference-backward.ts';
import { loadReferenceWeights, referenceForward, type ReferenceModel } from './reference-forward.ts';

const ALL: LoraTargetName[] = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output'];
const BLOCK = ALL.filter((t) => t !== 'output');

async function load(o: TestModelOptions): Promise<ReferenceModel> {
  const src = bytesSource(makeTestModel(o));
  return loadReferenceWeights(await readGguf(src), src);
}

function tokensFor(n: number, vocab: number, seed: number): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(next() * vocab));
}

/** Largest |a - b| over the largest |b|. */
function maxRelativeDiff(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

interface Case {
  label: string;
  model: TestModelOptions;
  targets: LoraTargetName[];
  rank: number;
  alpha: number;
  scale: number;
  /** A long context, for phi3's long rope factors. */
  ropeContext?: number;
}

const BASE = { embd: 32, layers: 2, heads: 4, kvHeads: 2, ff: 48, seed: 3 } as const;
const CASES: Case[] = [
  { label: 'llama, GQA, llama3 rope factors', model: { arch: 'llama', ...BASE, ropeFreqs: true }, targets: ALL, rank: 4, alpha: 8, scale: 1 },
  { label: 'qwen2, q/k/v biases, Q8_0 base', model: { arch: 'qwen2', ...BASE, ff: 64, quant: 'q8_0' }, targets: ALL, rank: 3, alpha: 0, scale: 0.7 },
  { label: 'llama, Q4_K_M base (QLoRA)', model: { arch: 'llama', embd: 256, layers: 1, heads: 4, kvHeads: 2, ff: 256, seed: 3, quant: 'q4_k_m' }, targets: ALL, rank: 4, alpha: 8, scale: 1 },
  { label: 'qwen3, per-head q/k norms, head dim 12', model: { arch: 'qwen3', ...BASE, headDim: 12, kvHeads: 1 }, targets: ALL, rank: 2, alpha: 4, scale: 1 },
  { label: 'granite, scales and biases', model: { arch: 'granite', ...BASE, biases: true }, targets: ALL, rank: 4, alpha: 4, scale: 1 },
  { label: 'mistral, sliding window 3', model: { arch: 'mistral', ...BASE, slidingWindow: 3 }, targets: BLOCK, rank: 2, alpha: 2, scale: 1 },
  { label: 'phi3, fused qkv and gate-up, long rope factors (8192 context)', model: { arch: 'phi3', ...BASE, kvHeads: 4, longRope: true }, targets: ['attn_qkv', 'attn_output', 'ffn_up', 'ffn_down', 'output'], rank: 3, alpha: 6, scale: 1, ropeContext: 8192 },
  { label: 'gemma, GeGLU, sqrt(n_embd) embeddings, tied output', model: { arch: 'gemma', ...BASE, kvHeads: 1 }, targets: BLOCK, rank: 2, alpha: 4, scale: 1.5 },
  { label: 'gemma2, GeGLU, post-norms, softcaps, window 4, tied output', model: { arch: 'gemma2', ...BASE, headDim: 16, slidingWindow: 4 }, targets: BLOCK, rank: 3, alpha: 6, scale: 1 },
];

async function setUp(c: Case) {
  const ref = await load(c.model);
  const data = makeRandomLora(ref.config, { rank: c.rank, alpha: c.alpha, targets: c.targets, seed: 11 });
  const tokens = tokensFor(9, ref.config.nVocab, 5);
  return { ref, data, tokens, lora: trainableLora(data, c.scale) };
}

/** Worst figures over all checked entries of all cases (for the closing note). */
const worst = { rel: 0, relLarge: 0, abs: 0, checked: 0 };

describe('float64 LoRA training reference', () => {
  it.each(CASES)('$label: the taped forward gives the reference forward\'s logits and loss', async (c) => {
    const { ref, data, tokens, lora } = await setUp(c);
    const opts = { ropeContext: c.ropeContext };
    const pass = referenceTrainingStep(ref, lora, tokens, opts);
    const logits = referenceForward(ref, tokens, { ...opts, adapters: [{ data, scale: c.scale }] });
    const expected = nextTokenCrossEntropy(logits, ref.config.nVocab, tokens);
    expect(Math.abs(pass.loss - expected) / expected).toBeLessThan(1e-12);
    expect(maxRelativeDiff(pass.logits, logits)).toBeLessThan(1e-12);
    // The adapter matters: without it the loss differs.
    const bare = nextTokenCrossEntropy(referenceForward(ref, tokens, opts), ref.config.nVocab, tokens);
    expect(Math.abs(bare - pass.loss)).toBeGreaterThan(1e-3);
  });

  it.each(CASES)('$label: gradients of every A and B match central differences', async (c) => {
    const { ref, tokens, lora } = await setUp(c);
    const opts = { ropeContext: c.ropeContext };
    const { grads } = referenceTrainingStep(ref, lora, tokens, opts);
    const next = mulberry32(21);
    // 1e-5: truncation (h^2) and rounding (1/h) errors balance near here; at 1e-4 the worst
    // error is 100 times larger, as h^2 predicts for a correct gradient.
    const h = 1e-5;
    let caseRel = 0;
    for (const [k, t] of lora.targets.entries()) {
      let nonzero = 0;
      for (const which of ['a', 'b'] as const) {
        const p = t[which];
        const g = grads[k]![which];
        for (let trial = 0; trial < 3; trial++) {
          const i = Math.floor(next() * p.length);
          const keep = p[i]!;
          p[i] = keep + h;
          const up = referenceTrainingLoss(ref, lora, tokens, opts).loss;
          p[i] = keep - h;
          const down = referenceTrainingLoss(ref, lora, tokens, opts).loss;
          p[i] = keep;
          const fd = (up - down) / (2 * h);
          const err = Math.abs(fd - g[i]!);
          expect(err, `${t.base} ${which}[${i}]: analytic ${g[i]} vs finite difference ${fd}`).toBeLessThanOrEqual(1e-5 * Math.abs(fd) + 1e-9);
          if (Math.abs(fd) > 1e-6) caseRel = Math.max(caseRel, err / Math.abs(fd));
          if (Math.abs(fd) > 1e-3) worst.relLarge = Math.max(worst.relLarge, err / Math.abs(fd));
          worst.abs = Math.max(worst.abs, err);
          worst.checked++;
          if (Math.abs(g[i]!) > 1e-7) nonzero++;
        }
      }
      // A check on zero gradients only would prove nothing.
      expect(nonzero, `${t.base}: some checked gradient entries are nonzero`).toBeGreaterThan(0);
    }
    worst.rel = Math.max(worst.rel, caseRel);
  });

  it('reports the worst gradient-check error', () => {
    expect(worst.checked).toBeGreaterThan(0);
    console.log(`gradient check: ${worst.checked} entries, worst relative error ${worst.rel.toExponential(2)} (|gradient| > 1e-6), ${worst.relLarge.toExponential(2)} (|gradient| > 1e-3), worst absolute ${worst.abs.toExponential(2)}`);
  });

  it('refuses what it does not differentiate, by name', async () => {
    const moe = await load({ arch: 'mixtral', ...BASE, experts: 4, expertsUsed: 2 });
    const lora = trainableLora(makeRandomLora(moe.config, { rank: 2, targets: ['attn_q'] }));
    expect(() => referenceTrainingStep(moe, lora, [1, 2, 3])).toThrow(UnsupportedTrainingError);
    expect(() => referenceTrainingStep(moe, { ...lora, architecture: 'qwen2' }, [1, 2, 3])).toThrow(/adapter is for qwen2/);
    const llama = await load({ arch: 'llama', ...BASE });
    const embd = makeRandomLora(llama.config, { rank: 2, targets: ['token_embd'] });
    expect(() => trainableLora(embd)).toThrow(UnsupportedTrainingError);
    expect(() => referenceTrainingStep(llama, trainableLora(makeRandomLora(llama.config, { rank: 2, targets: ['attn_q'] })), [1])).toThrow(RangeError);
  });
});

describe('AdamW, clipping, schedule', () => {
  it('matches a hand-derived two-step update with weight decay and bias correction', () => {
    const p = new Float64Array([1]);
    const opt = new AdamW([p], { weightDecay: 0.1 });
    opt.update([new Float64Array([0.5])], 0.1);
    // decay: 1 - 0.1 * 0.1 = 0.99; m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25.
    expect(p[0]).toBeCloseTo(0.99 - (0.1 * 0.5) / (0.5 + 1e-8), 15);
    const p1 = p[0]!;
    opt.update([new Float64Array([-0.25])], 0.05);
    // m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225; corrections 0.19, 0.001999.
    const expected = p1 * (1 - 0.05 * 0.1) - (0.05 * (0.02 / 0.19)) / (Math.sqrt(0.00031225 / 0.001999) + 1e-8);
    expect(p[0]).toBeCloseTo(expected, 14);
    expect(opt.step).toBe(2);
  });

  it('clips by the global norm and schedules a linear warm-up and decay', () => {
    const g = [new Float64Array([3]), new Float32Array([0, 4])];
    expect(clipGradNorm(g, 1)).toBe(5);
    expect(Array.from(g[0]!)).toEqual([0.6000000000000001]);
    expect(g[1]![1]).toBeCloseTo(0.8, 7);
    expect(globalNorm(g)).toBeCloseTo(1, 7);
    expect(clipGradNorm(g, 10)).toBeCloseTo(1, 7);
    expect(g[1]![1]).toBeCloseTo(0.8, 7);
    const s = { peak: 0.01, warmupSteps: 4, totalSteps: 12 };
    expect([1, 2, 4, 8, 12, 13].map((t) => scheduledLr(t, s))).toEqual([0.0025, 0.005, 0.01, 0.005, 0, 0]);
    expect(() => scheduledLr(0, s)).toThrow(RangeError);
    expect(() => new AdamW([], { beta1: 1 })).toThrow(RangeError);
  });
});

describe('training a tiny model', () => {
  it('lowers the loss on a repeated text, and the exported GGUF adapter reproduces the trained logits', async () => {
    const ref = await load({ arch: 'llama', embd: 32, layers: 1, heads: 4, kvHeads: 2, ff: 48, seed: 9 });
    const nVocab = ref.config.nVocab;
    const phrase = tokensFor(5, nVocab, 77);
    const tokens = [...phrase, ...phrase, ...phrase, ...phrase];
    // PEFT's start: A random, B zero (the adapter begins as the identity).
    const data = makeRandomLora(ref.config, { rank: 4, alpha: 8, targets: ALL, seed: 4 });
    const lora: TrainableLora = trainableLora(data);
    for (const t of lora.targets) t.b.fill(0);
    const params = lora.targets.flatMap((t) => [t.a, t.b]);
    const opt = new AdamW(params, { weightDecay: 0.01 });
    const steps = 30;
    const schedule = { peak: 0.02, warmupSteps: 3, totalSteps: steps, final: 0.002 };
    const losses: number[] = [];
    for (let step = 1; step <= steps; step++) {
      const { loss, grads } = referenceTrainingStep(ref, lora, tokens);
      losses.push(loss);
      const flat = grads.flatMap((g) => [g.a, g.b]);
      clipGradNorm(flat, 1);
      opt.update(flat, scheduledLr(step, schedule));
    }
    const final = referenceTrainingLoss(ref, lora, tokens).loss;
    expect(losses[0]).toBeGreaterThan(1);
    console.log(`training: loss ${losses[0]!.toFixed(4)} -> ${final.toFixed(4)} in ${steps} steps`);
    expect(final).toBeLessThan(0.5 * losses[0]!);

    // Export: the file holds float32 values, so compare against the trained model at those values.
    roundLoraToF32(lora);
    const trained = referenceTrainingLoss(ref, lora, tokens);
    const bytes = writeLoraGguf(trainedLoraData(lora, 'trained'));
    const src = bytesSource(bytes);
    const back = await readLoraData(readLoraFile(await readGguf(src), ref.config), src);
    expect(back.targets.map((t) => t.base)).toEqual(lora.targets.map((t) => t.base));
    const logits = referenceForward(ref, tokens, { adapters: [{ data: back, scale: lora.scale }] });
    expect(maxRelativeDiff(trained.logits, logits)).toBeLessThan(1e-12);
    expect(nextTokenCrossEntropy(logits, nVocab, tokens)).toBeLessThan(0.5 * losses[0]!);
  });
});
