/**
 * The ops of LoRA training, forward and backward, as one small interface: what a training step
 * (train/step.ts) is written against, implemented on the CPU (train/cpu-ops.ts) and on WebGPU
 * (backend/webgpu/train-ops.ts). It lives with the backends (as backend/ops.ts does for inference)
 * so a backend can implement it without importing the training layer above it.
 *
 * Tensors are opaque handles `T` that the ops allocate: host arrays on the CPU, device buffers on a
 * GPU, so a whole step stays on the device and the host reads back only what it needs (the losses
 * and the adapter gradients), through the one async `read`. Every tensor is a flat row-major
 * [rows][width] array of floats. Base weights are frozen and stay in their GGUF type
 * ({@link FrozenMatrix}); they and the small frozen vectors (norm weights, biases, rope tables) are
 * host objects an implementation may copy to its device once and cache by identity.
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
export interface LoraPair<T = Vec> {
  rank: number;
  a: T;
  b: T;
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

export interface TrainOps<T = Vec> {
  /** A zeroed tensor of `length` floats. */
  alloc(length: number): T;
  /** A tensor holding `data` (the ops may keep `data` itself where their tensors are host arrays: do not write it afterwards). */
  upload(data: Float32Array | Float64Array): T;
  /** The tensors' values, in order; on a device, everything queued so far runs first (one wait for all). */
  read(tensors: readonly T[]): Promise<Vec[]>;
  /** Elements of a tensor. */
  length(t: T): number;
  /** Bytes a tensor holds. */
  byteLength(t: T): number;
  /** A new tensor with t's values. */
  copy(t: T): T;
  /**
   * Bytes the ops hold beside the host's arrays (their copy of the frozen base in a wasm memory or
   * on a device, scratch, pooled tensors), for the memory estimate; absent: none.
   */
  heldBytes?(): number;
  /** The tensors will not be used again: a device may reuse their memory (a no-op on the host). */
  free(...tensors: (T | undefined)[]): void;
  /** y = x W^T (+ bias): x [n][nIn], y [n][nOut]; W dequantized as it is read. */
  matmul(w: FrozenMatrix, x: T, n: number, bias?: Float32Array): T;
  /** dx += dy W: dy [n][nOut], dx [n][nIn]. */
  matmulBackward(w: FrozenMatrix, dy: T, n: number, dx: T): void;
  /** y += s B (A x); returns u = A x ([n][rank]), kept for the backward pass. */
  loraForward(p: LoraPair<T>, nIn: number, nOut: number, x: T, n: number, y: T): T;
  /** dA += s (B^T dy) x^T, dB += s dy u^T, dx += s A^T (B^T dy). */
  loraBackward(p: LoraPair<T>, nIn: number, nOut: number, x: T, u: T, dy: T, n: number, grad: { a: T; b: T }, dx: T): void;
  /** Rows of `len`: y = x / sqrt(mean(x^2) + eps) * w; returns y and each row's 1 / rms. */
  rmsNorm(x: T, rows: number, len: number, eps: number, w: Float32Array): { y: T; r: T };
  /** d x of {@link rmsNorm} given dy. */
  rmsNormBackward(x: T, r: T, len: number, w: Float32Array, dy: T): T;
  /** Rotates each head of each of the n rows in place; `inverse` turns the other way (rope's backward: a rotation's transpose). */
  rope(x: T, n: number, nHeads: number, headDim: number, table: RopeTable, inverse: boolean): void;
  /** Causal softmax attention with GQA: q [n][nHead*headDimK], k [n][nHeadKv*headDimK], v [n][nHeadKv*headDimV]; probs [n][nHead][n] kept. */
  attention(q: T, k: T, v: T, s: AttentionShape): { out: T; probs: T };
  attentionBackward(q: T, k: T, v: T, probs: T, dOut: T, s: AttentionShape): { dq: T; dk: T; dv: T };
  /** y = silu(gate) * up. */
  swiglu(gate: T, up: T): T;
  swigluBackward(gate: T, up: T, dy: T): { dGate: T; dUp: T };
  /**
   * Per row t with weight[t] > 0, weight[t] * -log softmax(logits[t])[targets[t]] (row t predicts
   * targets[t]; 0 for rows without weight) as `loss` [n], and `gradScale` times the gradient of the
   * rows' sum d sum / d logits as `dLogits` (rows without weight get zeros).
   */
  crossEntropy(logits: T, n: number, nVocab: number, targets: ArrayLike<number>, weight: ArrayLike<number>, gradScale?: number): { loss: T; dLogits: T };
  /** a += b. */
  addInPlace(a: T, b: T): void;
}
