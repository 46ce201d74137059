/**
 * The ops of LoRA training, forward and backward, as one small interface: what a training step
 * (step.ts) is written against, so a WebGPU implementation can follow the CPU one (cpu-ops.ts) op
 * for op. Activations are row-major [rows][width] arrays; an implementation chooses the element
 * type (the CPU one runs in float32, or in float64 for the gradient checks). Base weights are
 * frozen and stay in their GGUF type ({@link FrozenMatrix}): the ops read them, never write them.
 */
import type { GgmlType } from '../gguf/ggml-types.ts';

export type Vec = Float32Array | Float64Array;

/** A base matrix as the file holds it: nOut rows of nIn values, encoded in `type` (QLoRA: only read). */
export interface FrozenMatrix {
  name: string;
  nIn: number;
  nOut: number;
  type: GgmlType;
  bytes: Uint8Array;
}

/** One adapted projection's trainable pair: A [rank][nIn], B [nOut][rank], applied as s B (A x). */
export interface LoraPair {
  rank: number;
  a: Vec;
  b: Vec;
  s: number;
}

/** Cos and sin of each rotated pair at each position: [n][nRot / 2]. */
export interface RopeTable {
  nRot: number;
  neox: boolean;
  cos: Float64Array;
  sin: Float64Array;
}

export interface AttentionShape {
  n: number;
  nHead: number;
  nHeadKv: number;
  headDimK: number;
  headDimV: number;
  scale: number;
}

export interface TrainOps {
  alloc(length: number): Vec;
  /** y = x W^T (+ bias): x [n][nIn], y [n][nOut]; W dequantized as it is read. */
  matmul(w: FrozenMatrix, x: Vec, n: number, bias?: Float32Array): Vec;
  /** dx += dy W: dy [n][nOut], dx [n][nIn]. */
  matmulBackward(w: FrozenMatrix, dy: Vec, n: number, dx: Vec): void;
  /** y += s B (A x); returns u = A x ([n][rank]), kept for the backward pass. */
  loraForward(p: LoraPair, nIn: number, nOut: number, x: Vec, n: number, y: Vec): Vec;
  /** dA += s (B^T dy) x^T, dB += s dy u^T, dx += s A^T (B^T dy). */
  loraBackward(p: LoraPair, nIn: number, nOut: number, x: Vec, u: Vec, dy: Vec, n: number, grad: { a: Vec; b: Vec }, dx: Vec): void;
  /** Rows of `len`: y = x / sqrt(mean(x^2) + eps) * w; returns y and each row's 1 / rms. */
  rmsNorm(x: Vec, rows: number, len: number, eps: number, w: Float32Array): { y: Vec; r: Vec };
  /** d x of {@link rmsNorm} given dy. */
  rmsNormBackward(x: Vec, r: Vec, len: number, w: Float32Array, dy: Vec): Vec;
  /** Rotates each head of each of the n rows in place; `inverse` turns the other way (rope's backward: a rotation's transpose). */
  rope(x: Vec, n: number, nHeads: number, headDim: number, table: RopeTable, inverse: boolean): void;
  /** Causal softmax attention with GQA: q [n][nHead*headDimK], k [n][nHeadKv*headDimK], v [n][nHeadKv*headDimV]; probs [n][nHead][n] kept. */
  attention(q: Vec, k: Vec, v: Vec, s: AttentionShape): { out: Vec; probs: Vec };
  attentionBackward(q: Vec, k: Vec, v: Vec, probs: Vec, dOut: Vec, s: AttentionShape): { dq: Vec; dk: Vec; dv: Vec };
  /** y = silu(gate) * up. */
  swiglu(gate: Vec, up: Vec): Vec;
  swigluBackward(gate: Vec, up: Vec, dy: Vec): { dGate: Vec; dUp: Vec };
  /**
   * Sum over rows t with weight[t] > 0 of weight[t] * -log softmax(logits[t])[targets[t]] (row t
   * predicts targets[t]), and its gradient d sum / d logits (rows without weight get zeros).
   */
  crossEntropy(logits: Vec, n: number, nVocab: number, targets: ArrayLike<number>, weight: ArrayLike<number>): { loss: number; dLogits: Vec };
  /** a += b. */
  addInPlace(a: Vec, b: Vec): void;
}
