/**
 * LoRA training as a loop of optimizer steps: each step accumulates the gradients of a batch of
 * windows (their token-weighted mean loss), clips them by global norm, and takes an AdamW step
 * (decoupled weight decay) at the scheduled learning rate (linear warm-up, then linear decay).
 * Held-out evaluation gives the mean loss and perplexity. The whole state (adapter, moments, step)
 * serializes to bytes (checkpoint.ts) so a page can keep it in IndexedDB and resume.
 *
 * The ops may keep tensors on a device (WebGPU): per optimizer step the adapter is uploaded once,
 * every window's forward and backward runs there, and the gradients come back in one read for
 * the clipping and the AdamW update, which run on the host over the adapter's own arrays.
 */
import type { ModelConfig } from '../model/config.ts';
import type { LoraAdapterData } from '../model/lora/adapter-data.ts';
import { AdamW, clipGradNorm, scheduledLr } from '../model/lora/adamw.ts';
import type { TrainingBase } from './base.ts';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import type { TrainingWindow } from './data.ts';
import { CheckpointFormatError, TrainingDataError, UnsupportedTrainingError } from './errors.ts';
import type { TrainOps } from './ops.ts';
import { trainingStep, uploadAdapter, zeroGrads } from './step.ts';

/** The block projections an adapter may train, and the output. */
export const TRAIN_TARGETS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output'] as const;
export type TrainTarget = (typeof TRAIN_TARGETS)[number];

export interface NewAdapterOptions {
  rank: number;
  /** Default: 2 * rank (s = 2). */
  alpha?: number;
  targets: readonly TrainTarget[];
  seed?: number;
  name?: string;
}

/**
 * A fresh adapter: A uniform in +-1/sqrt(nIn), B zero (so it starts as the base model, as PEFT
 * initializes LoRA), on every block tensor of each target name the base has.
 */
export function newAdapter(base: TrainingBase, o: NewAdapterOptions): LoraAdapterData {
  if (!Number.isInteger(o.rank) || o.rank < 1) throw new TrainingDataError(`rank must be an integer >= 1, got ${o.rank}`, { rank: o.rank });
  const alpha = o.alpha ?? 2 * o.rank;
  if (!(alpha >= 0) || !Number.isFinite(alpha)) throw new TrainingDataError(`alpha must be a finite number >= 0, got ${alpha}`, { alpha });
  let seed = (o.seed ?? 1) >>> 0;
  const next = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const targets: LoraAdapterData['targets'] = [];
  for (const target of o.targets) {
    if (!(TRAIN_TARGETS as readonly string[]).includes(target)) throw new UnsupportedTrainingError(`unknown LoRA target '${target}' (known: ${TRAIN_TARGETS.join(', ')})`, { target });
    const names =
      target === 'output'
        ? ['output.weight']
        : Array.from({ length: base.config.nLayer }, (_, il) => `blk.${il}.${target}.weight`);
    const present = names.filter((n) => base.matrices.has(n));
    if (present.length === 0) throw new UnsupportedTrainingError(`the model has no ${target} tensor to adapt${target === 'output' ? ' (its output is tied to the embeddings)' : ''}`, { target });
    for (const name of present) {
      const m = base.matrices.get(name)!;
      const bound = 1 / Math.sqrt(m.nIn);
      const a = new Float32Array(o.rank * m.nIn);
      for (let i = 0; i < a.length; i++) a[i] = (2 * next() - 1) * bound;
      targets.push({ base: name, rank: o.rank, nIn: m.nIn, nOut: m.nOut, embedding: false, a, b: new Float32Array(m.nOut * o.rank) });
    }
  }
  return { architecture: base.config.architecture, alpha, name: o.name, targets };
}

export interface TrainerOptions {
  /** Peak learning rate (default 1e-3). */
  lr?: number;
  /** Optimizer steps in all (the schedule's length). */
  totalSteps: number;
  /** Default: 10% of totalSteps. */
  warmupSteps?: number;
  /** AdamW's decoupled weight decay (default 0.01). */
  weightDecay?: number;
  /** Clip the global gradient norm to this (default 1). */
  maxGradNorm?: number;
  /** Keep only layer inputs, recompute layers in the backward pass (default true). */
  recompute?: boolean;
}

export interface StepReport {
  step: number;
  /** Token-weighted mean loss over the batch (before the update). */
  loss: number;
  gradNorm: number;
  lr: number;
  /** Tokens run through the model (windows' lengths). */
  tokens: number;
  activationBytes: number;
}

export class LoraTrainer<T = unknown> {
  readonly optimizer: AdamW;
  readonly lr: number;
  readonly warmupSteps: number;
  readonly maxGradNorm: number;
  readonly recompute: boolean;

  constructor(
    readonly ops: TrainOps<T>,
    readonly base: TrainingBase,
    readonly adapter: LoraAdapterData,
    readonly options: TrainerOptions,
  ) {
    if (!Number.isInteger(options.totalSteps) || options.totalSteps < 1) throw new TrainingDataError(`steps must be an integer >= 1, got ${options.totalSteps}`, { steps: options.totalSteps });
    this.lr = options.lr ?? 1e-3;
    if (!(this.lr > 0) || !Number.isFinite(this.lr)) throw new TrainingDataError(`the learning rate must be a positive number, got ${this.lr}`, { lr: this.lr });
    this.warmupSteps = options.warmupSteps ?? Math.floor(options.totalSteps / 10);
    this.maxGradNorm = options.maxGradNorm ?? 1;
    this.recompute = options.recompute ?? true;
    this.optimizer = new AdamW(
      adapter.targets.flatMap((t) => [t.a, t.b]),
      { weightDecay: options.weightDecay ?? 0.01 },
    );
  }

  get config(): ModelConfig {
    return this.base.config;
  }

  /** Steps taken. */
  get step(): number {
    return this.optimizer.step;
  }

  /** One optimizer step over `batch` (gradient accumulation over its windows). */
  async trainStep(batch: readonly TrainingWindow[]): Promise<StepReport> {
    if (batch.length === 0) throw new TrainingDataError('a training step needs at least one window', {});
    const totalWeight = batch.reduce((s, w) => s + w.weights.reduce((a, b) => a + b, 0), 0);
    if (!(totalWeight > 0)) throw new TrainingDataError('the batch has no token to train on (all weights 0)', {});
    const ops = this.ops;
    const lora = uploadAdapter(ops, this.adapter);
    const grads = zeroGrads(ops, this.adapter);
    let lossSum = 0;
    let tokens = 0;
    let activationBytes = 0;
    for (const w of batch) {
      const r = await trainingStep(ops, this.base, this.adapter, w.tokens, grads, { recompute: this.recompute, gradScale: 1 / totalWeight, weights: w.weights, lora });
      lossSum += r.lossSum;
      tokens += w.tokens.length;
      activationBytes = Math.max(activationBytes, r.activationBytes);
    }
    const flatTensors = grads.flatMap((g) => [g.a, g.b]);
    const flat = await ops.read(flatTensors);
    ops.free(...flatTensors, ...lora.flatMap((p) => [p.a, p.b]));
    const gradNorm = clipGradNorm(flat, this.maxGradNorm);
    const step = this.optimizer.step + 1;
    const lr = scheduledLr(Math.min(step, this.options.totalSteps), { peak: this.lr, warmupSteps: this.warmupSteps, totalSteps: this.options.totalSteps, final: 0 });
    this.optimizer.update(flat, lr);
    return { step, loss: lossSum / totalWeight, gradNorm, lr, tokens, activationBytes };
  }

  /** The run's state (adapter, moments, step, options) as bytes. */
  checkpoint(): Uint8Array {
    return writeCheckpoint({ adapter: this.adapter, step: this.optimizer.step, m: this.optimizer.m, v: this.optimizer.v, options: this.options });
  }

  /** A trainer that continues from a checkpoint's bytes, on this base. */
  static resume<T>(ops: TrainOps<T>, base: TrainingBase, bytes: Uint8Array): LoraTrainer<T> {
    const c = readCheckpoint(bytes);
    if (c.adapter.architecture !== base.config.architecture) throw new CheckpointFormatError(`the checkpoint is for ${c.adapter.architecture}, the model is ${base.config.architecture}`, { architecture: c.adapter.architecture });
    for (const t of c.adapter.targets) {
      const m = base.matrices.get(t.base);
      if (!m || m.nIn !== t.nIn || m.nOut !== t.nOut) throw new CheckpointFormatError(`the checkpoint adapts ${t.base} (${t.nIn} -> ${t.nOut}), which this model does not have in that shape`, { tensor: t.base });
    }
    const trainer = new LoraTrainer(ops, base, c.adapter, c.options);
    for (let k = 0; k < c.m.length; k++) {
      trainer.optimizer.m[k]!.set(c.m[k]!);
      trainer.optimizer.v[k]!.set(c.v[k]!);
    }
    trainer.optimizer.step = c.step;
    return trainer;
  }

  /** Token-weighted mean loss and perplexity over windows, the adapter as it is now (or `adapter`). */
  evaluate(windows: readonly TrainingWindow[], adapter: LoraAdapterData = this.adapter): Promise<{ loss: number; perplexity: number; tokens: number }> {
    return evaluateLoss(this.ops, this.base, adapter, windows);
  }
}

/** Token-weighted mean next-token loss over `windows` and its perplexity. */
export async function evaluateLoss<T>(ops: TrainOps<T>, base: TrainingBase, adapter: LoraAdapterData, windows: readonly TrainingWindow[]): Promise<{ loss: number; perplexity: number; tokens: number }> {
  let lossSum = 0;
  let weight = 0;
  const lora = uploadAdapter(ops, adapter);
  for (const w of windows) {
    const r = await trainingStep(ops, base, adapter, w.tokens, undefined, { lossOnly: true, weights: w.weights, lora });
    lossSum += r.lossSum;
    weight += r.weight;
  }
  ops.free(...lora.flatMap((p) => [p.a, p.b]));
  if (!(weight > 0)) throw new TrainingDataError('nothing to evaluate (no weighted tokens)', {});
  const loss = lossSum / weight;
  return { loss, perplexity: Math.exp(loss), tokens: weight };
}

/** The adapter with no targets: the base model alone, for "before" figures. */
export function emptyAdapter(adapter: LoraAdapterData): LoraAdapterData {
  return { ...adapter, targets: [] };
}
