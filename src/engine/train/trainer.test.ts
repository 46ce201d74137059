/**
 * The trainer end to end on a small generated model: training on a short, distinctive token
 * sequence lowers the train loss a lot and the held-out loss (windows of the same text the trainer
 * never steps on) by a clear margin; a checkpoint resumes to the same next step bit for bit; the
 * data module packs, masks and splits as documented. Figures are printed as "[train]" lines.
 */
import { describe, expect, it } from 'vitest';
import { bytesSource } from '../gguf/source.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { mulberry32 } from '../../testing/random.ts';
import { loadTrainingBase } from './base.ts';
import { CpuTrainOps } from './cpu-ops.ts';
import { conversationTokens, packTokens, splitHeldOut, textWindows } from './data.ts';
import { CheckpointFormatError, TrainingDataError } from './errors.ts';
import { LoraTrainer, evaluateLoss, newAdapter } from './trainer.ts';

const MODEL = { arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, seed: 7 } as const;

/** A "text": a fixed phrase of 23 tokens, repeated with one varying token in 8 (the distinctive pattern to learn). */
function distinctiveTokens(n: number, vocab: number, seed: number): number[] {
  const next = mulberry32(seed);
  const phrase = Array.from({ length: 23 }, (_, i) => (i * 37 + 11) % vocab);
  return Array.from({ length: n }, (_, i) => (i % 8 === 7 ? Math.floor(next() * vocab) : phrase[i % phrase.length]!));
}

describe('LoRA trainer', () => {
  it('learns a distinctive text: train loss falls a lot, held-out loss by a clear margin', async () => {
    const base = await loadTrainingBase(bytesSource(makeTestModel(MODEL)));
    const V = base.config.nVocab;
    const windows = packTokens(distinctiveTokens(24 * 15 + 1, V, 3), undefined, 25);
    const { train, heldOut } = splitHeldOut(windows, 0.2);
    expect(heldOut.length).toBe(3);
    const ops = new CpuTrainOps('f32');
    const adapter = newAdapter(base, { rank: 4, targets: ['attn_q', 'attn_v', 'attn_output', 'ffn_up', 'ffn_down', 'output'], seed: 2 });
    const steps = 40;
    const trainer = new LoraTrainer(ops, base, adapter, { lr: 1e-2, totalSteps: steps, warmupSteps: 4, weightDecay: 0.01, maxGradNorm: 1 });
    const trainBefore = (await evaluateLoss(ops, base, adapter, train)).loss;
    const heldBefore = (await evaluateLoss(ops, base, adapter, heldOut)).loss;
    for (let s = 0; s < steps; s++) await trainer.trainStep([train[(2 * s) % train.length]!, train[(2 * s + 1) % train.length]!]);
    const trainAfter = (await evaluateLoss(ops, base, adapter, train)).loss;
    const heldAfter = (await evaluateLoss(ops, base, adapter, heldOut)).loss;
    console.log(`[train] generated llama 64x2, ${steps} steps x 2 windows of 25: train loss ${trainBefore.toFixed(3)} -> ${trainAfter.toFixed(3)}, held-out ${heldBefore.toFixed(3)} -> ${heldAfter.toFixed(3)} (perplexity ${Math.exp(heldBefore).toFixed(1)} -> ${Math.exp(heldAfter).toFixed(1)})`);
    expect(trainAfter).toBeLessThan(trainBefore * 0.5);
    expect(heldAfter).toBeLessThan(heldBefore * 0.5);
  });

  it('resumes from a checkpoint to the same next step', async () => {
    const base = await loadTrainingBase(bytesSource(makeTestModel({ ...MODEL, quant: 'q8_0' })));
    const windows = packTokens(distinctiveTokens(70, base.config.nVocab, 5), undefined, 12);
    const ops = new CpuTrainOps('f32');
    const opts = { lr: 5e-3, totalSteps: 6, warmupSteps: 2 };
    const a = new LoraTrainer(ops, base, newAdapter(base, { rank: 2, targets: ['attn_q', 'ffn_down'], seed: 4 }), opts);
    await a.trainStep([windows[0]!]);
    await a.trainStep([windows[1]!, windows[2]!]);
    const bytes = a.checkpoint();
    const b = LoraTrainer.resume(ops, base, bytes);
    expect(b.step).toBe(2);
    const ra = await a.trainStep([windows[3]!]);
    const rb = await b.trainStep([windows[3]!]);
    expect(rb.loss).toBe(ra.loss);
    expect(rb.lr).toBe(ra.lr);
    for (const [k, t] of a.adapter.targets.entries()) {
      expect(Array.from(b.adapter.targets[k]!.a)).toEqual(Array.from(t.a));
      expect(Array.from(b.adapter.targets[k]!.b)).toEqual(Array.from(t.b));
    }
    expect(() => LoraTrainer.resume(ops, base, bytes.subarray(0, bytes.length - 8))).toThrow(CheckpointFormatError);
  });

  it('packs windows overlapping by one token, every token predicted once', () => {
    const tokens = Array.from({ length: 20 }, (_, i) => i);
    const w = packTokens(tokens, undefined, 8);
    expect(w.map((x) => x.tokens[0])).toEqual([0, 7, 14]);
    expect(w.reduce((s, x) => s + x.weights.length, 0)).toBe(19);
    expect(() => packTokens(tokens, undefined, 1)).toThrow(TrainingDataError);
    expect(() => textWindows(['  '], () => [1, 2], 8)).toThrow(TrainingDataError);
  });

  it('trains conversations on assistant turns only', () => {
    const render = (messages: readonly { role: string; content: string }[], gen: boolean) =>
      messages.map((m) => `<${m.role}>${m.content}</>`).join('') + (gen ? '<assistant>' : '');
    const encode = (text: string) => Array.from(text, (ch) => ch.charCodeAt(0));
    const { tokens, weights } = conversationTokens(
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'yo' },
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'ok' },
      ],
      render,
      encode,
    );
    const text = String.fromCharCode(...tokens);
    expect(text).toBe('<user>hi</><assistant>yo</><user>q</><assistant>ok</>');
    const trained = tokens.filter((_, i) => i > 0 && weights[i - 1] === 1).map((t) => String.fromCharCode(t)).join('');
    expect(trained).toBe('yo</>ok</>');
    expect(() => conversationTokens([{ role: 'user', content: 'x' }], render, encode)).toThrow(TrainingDataError);
  });
});
