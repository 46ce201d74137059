/**
 * The optimizer of LoRA training, as plain functions over flat parameter arrays (float32 or
 * float64): AdamW with decoupled weight decay and bias correction (Loshchilov & Hutter; PyTorch's
 * torch.optim.AdamW update), gradient clipping by the global L2 norm, and a learning rate with a
 * linear warm-up then a linear decay. Pure and deterministic, so a backend's fused kernel can be
 * checked against it.
 */

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled: p -= lr * weightDecay * p before the Adam step (default 0.01). */
  weightDecay?: number;
}

type Params = Float32Array | Float64Array;

/** AdamW state for a list of parameter arrays (each its own moments). */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** First and second moments, per parameter array (a checkpoint saves them). */
  readonly m: Float64Array[];
  readonly v: Float64Array[];
  /** Steps taken (the bias correction's t). */
  step = 0;

  constructor(readonly params: readonly Params[], o: AdamWOptions = {}) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
    for (const [k, v] of Object.entries({ beta1: this.beta1, beta2: this.beta2 })) {
      if (!(v >= 0 && v < 1)) throw new RangeError(`AdamW ${k} ${v} must be in [0, 1)`);
    }
    if (!(this.eps > 0)) throw new RangeError(`AdamW eps ${this.eps} must be positive`);
    if (!(this.weightDecay >= 0)) throw new RangeError(`AdamW weightDecay ${this.weightDecay} must be >= 0`);
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }

  /** One update with these gradients (same shapes as the parameters) at learning rate `lr`. */
  update(grads: readonly Params[], lr: number): void {
    if (grads.length !== this.params.length) throw new RangeError(`AdamW got ${grads.length} gradient arrays for ${this.params.length} parameters`);
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new RangeError(`learning rate ${lr} must be a finite number >= 0`);
    this.step++;
    const c1 = 1 - Math.pow(this.beta1, this.step);
    const c2 = 1 - Math.pow(this.beta2, this.step);
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k]!;
      const g = grads[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      if (g.length !== p.length) throw new RangeError(`AdamW gradient ${k} has ${g.length} values for ${p.length} parameters`);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        m[i] = this.beta1 * m[i]! + (1 - this.beta1) * gi;
        v[i] = this.beta2 * v[i]! + (1 - this.beta2) * gi * gi;
        const decayed = p[i]! - lr * this.weightDecay * p[i]!;
        p[i] = decayed - (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + this.eps);
      }
    }
  }
}

/** The global L2 norm of all gradients. */
export function globalNorm(grads: readonly Params[]): number {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  return Math.sqrt(ss);
}

/** Scales every gradient in place so their global norm is at most `maxNorm`; returns the norm before. */
export function clipGradNorm(grads: readonly Params[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`maxNorm ${maxNorm} must be positive`);
  const norm = globalNorm(grads);
  if (norm > maxNorm) {
    const f = maxNorm / norm;
    for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * f;
  }
  return norm;
}

export interface LrSchedule {
  peak: number;
  /** Steps of linear warm-up from peak / warmupSteps to peak. */
  warmupSteps: number;
  /** Total steps; after the warm-up the rate falls linearly to `final` at this step. */
  totalSteps: number;
  /** Default 0. */
  final?: number;
}

/** The learning rate of step `step` (1-based, as AdamW counts). */
export function scheduledLr(step: number, s: LrSchedule): number {
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`step ${step} must be an integer >= 1`);
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0 || !Number.isInteger(s.totalSteps) || s.totalSteps < s.warmupSteps) {
    throw new RangeError(`schedule needs 0 <= warmupSteps (${s.warmupSteps}) <= totalSteps (${s.totalSteps}), integers`);
  }
  const final = s.final ?? 0;
  if (step <= s.warmupSteps) return (s.peak * step) / s.warmupSteps;
  if (step >= s.totalSteps) return final;
  const f = (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps);
  return s.peak + (final - s.peak) * f;
}
