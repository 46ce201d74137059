/**
 * The op interface the forward pass is written against (src/engine/model/forward.ts), once, for
 * every backend: WebGPU (webgpu/backend.ts) and WebAssembly SIMD on the CPU (cpu/backend.ts).
 *
 * Everything a model needs is allocated at load through this interface (weights, f32 vectors, the
 * activation scratch, id buffers, the KV cache) and referred to by opaque handles afterwards, so a
 * token step allocates nothing. Ops are recorded between `begin()` and `submit()`: on the GPU one
 * step is one command buffer; a CPU backend may simply run each op when it is called. Results come
 * back only through `read`/`readIds`, which wait for the submitted work.
 *
 * Activations are f32 row-major matrices inside an {@link Activation}; an op sees them through a
 * {@link Rows} view (row r starts at float `offset + r * stride`), so q, k and v can be slices of
 * one fused projection without copies.
 */
import type { GgmlType } from '../gguf/ggml-types.ts';
import type { PenaltyParams, SamplingParams, TokenPenalties } from '../sampling/params.ts';
import type { AllowedTokens } from '../sampling/mask.ts';

/** A weight matrix as stored in the file: `rows` rows of `k` values in format `type` (GGUF shape [k, rows]). */
export interface Weight {
  readonly name: string;
  readonly type: GgmlType;
  readonly k: number;
  readonly rows: number;
  /** Bytes the backend holds for it. */
  readonly bytes: number;
}

/** A small f32 vector (norm weights, biases, rope frequency factors). */
export interface Vector {
  readonly name: string;
  readonly length: number;
}

/** f32 scratch of `floats` elements, allocated once at load. */
export interface Activation {
  readonly name: string;
  readonly floats: number;
}

/** u32 scratch: token ids, positions, sampled tokens. */
export interface IdBuffer {
  readonly name: string;
  readonly length: number;
}

/** Rows of an activation: row r starts at float `offset + r * stride`. */
export interface Rows {
  readonly t: Activation;
  readonly stride: number;
  readonly offset?: number;
}

/**
 * K and V storage for every layer: `capacity` positions of [kvHeads][headDim] per layer; the slot
 * of a token is its absolute position.
 */
export interface KvStorage {
  readonly layers: number;
  readonly capacity: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly bytes: number;
}

/** Reads `length` bytes at `offset` of one tensor's data. */
export type ByteReader = (offset: number, length: number) => Promise<Uint8Array>;

/** ggml_rope_ext's parameters (see kernels/rope.ts for the exact semantics). */
export interface RopeOp {
  mode: 'normal' | 'neox';
  nRot: number;
  freqBase: number;
  freqScale: number;
  extFactor: number;
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
  /** The training context before scaling (YaRN's correction dims). */
  origCtx: number;
  /** f32[nRot / 2] divisors of each pair's frequency (llama3 rope_freqs, phi3 long/short). */
  factors?: Vector | undefined;
}

export interface AttentionOp {
  /** Multiplier of q.k. */
  scale: number;
  /** c * tanh(s / c) of each score; 0 is off. */
  softcap: number;
  /** A query at p sees keys at p - window < p' <= p; 0 is unlimited. */
  window: number;
  /**
   * false: every key below kvLength is visible, whatever the query's position (T5's encoder
   * self-attention and cross-attention; `window` then unused). Default causal. Only on a backend
   * with `relativeAttention`.
   */
  causal?: boolean | undefined;
  /** T5's relative position bias added to each score; only on a backend with `relativeAttention`. */
  bias?: RelativeBias | undefined;
}

/**
 * A relative position bias: the score of a query at position qp for the key at p gains
 * table[bucketIds[p - qp + offset] * heads + h] (table [buckets][heads], GGUF attn_rel_b). The
 * bucket of every relative position is computed once on the host (T5's bucket function).
 */
export interface RelativeBias {
  table: Vector;
  bucketIds: IdBuffer;
  offset: number;
}

/**
 * Penalties from a history of recent ids kept on the device, for a loop that records a step before
 * the token it evaluates is known: nothing in it changes per token.
 */
export interface DevicePenalties {
  params: PenaltyParams;
  /** `params.lastN` ids: the token at position p at p % lastN (0xffffffff: none). The step appends its own. */
  history: IdBuffer;
  /** The step's input ids and positions; the token at index `last` is appended to the history first. */
  tokens: IdBuffer;
  positions: IdBuffer;
  last: number;
}

/**
 * A step recorded once (`capture`) and recorded again without calling its ops (`replay`). Its
 * dispatches bind the same buffers with the same uniform values, so what may change between
 * replays is only what lives in buffers: ids and positions (`writeIds`), the sampling uniforms
 * (`replay`'s u), and whatever the step derives from them on the device.
 */
export interface StepPlan {
  /** Dispatches one replay records. */
  readonly dispatches: number;
  /** False once something it binds was reallocated or it was destroyed: capture again. */
  readonly valid: boolean;
  destroy(): void;
}

/**
 * A mixture-of-experts FFN (src/engine/model/moe-config.ts has the routing rules): router logits
 * `router` x, probabilities (softmax or sigmoid over all experts), the `used` largest chosen, their
 * weights (divided by their sum when `normalize`, times `weightsScale`), then each chosen expert's
 * GLU FFN (rows e * nFf ..< (e+1) * nFf of `gate` and `up`, e * n_embd ..< of `down`) weighted and
 * summed, plus the shared expert when there is one (times sigmoid(x · gateInp) when gated).
 */
export interface MoeFfnOp {
  router: Weight;
  gate: Weight;
  up: Weight;
  down: Weight;
  nExpert: number;
  used: number;
  nFf: number;
  gating: 'softmax' | 'sigmoid';
  normalize: boolean;
  weightsScale: number;
  activation: 'silu' | 'gelu';
  shared?: { gate: Weight; up: Weight; down: Weight; nFf: number; gateInp?: Vector | undefined } | undefined;
  /**
   * Scratch, each `batch` rows: router logits [nExpert], one expert's gathered inputs [n_embd],
   * its gate, up and GLU [max(nFf, shared nFf)], its output [n_embd].
   */
  scratch: { logits: Activation; x: Activation; gate: Activation; up: Activation; h: Activation; y: Activation };
}

/** A region of an activation: `floats` values from float `offset` (a recurrent state, a snapshot of one). */
export interface Region {
  readonly t: Activation;
  readonly offset: number;
  readonly floats: number;
}

/**
 * A causal depthwise convolution over time with a rolling state (ggml_ssm_conv; Mamba2's conv1d,
 * LFM2's short convolution) of `tokens` rows of `channels`: with the state's `kernel - 1` past
 * columns (oldest first) before the step's rows,
 *   out[t][ch] = sum_{j < kernel} weight[ch * kernel + j] * column(t - (kernel - 1) + j)[ch] (+ bias[ch]),
 * then silu(out) when `silu`; the state then holds the last `kernel - 1` columns it saw.
 */
export interface ConvOp {
  channels: number;
  kernel: number;
  /** [channels][kernel] (GGUF shape [kernel, channels]: ssm_conv1d.weight, shortconv.conv.weight). */
  weight: Vector;
  bias?: Vector | undefined;
  silu: boolean;
  /** [kernel - 1][channels], oldest column first; read and updated. */
  state: Region;
}

/**
 * Mamba2's selective scan (ggml_ssm_scan with a scalar A per head) of one sequence, plus the D skip:
 * per token t and head h (group g = floor(h / (heads / groups))),
 *   δ = softplus(dt[t][h] + dtBias[h]);  s[h] = s[h] · exp(δ · A[h]) + δ · x[t][h] ⊗ B[t][g]
 *   y[t][h] = s[h] · C[t][g] + D[h] · x[t][h]
 * with softplus(v) = v above 20 (ggml's). x and y are [heads][headDim] per row, B and C
 * [groups][state], dt [heads]; the state s is [heads][headDim][state]. A backend may compute a
 * prefill in chunks (the state-space dual form); it equals this recurrence up to rounding.
 */
export interface SsmScanOp {
  heads: number;
  headDim: number;
  /** d_state: the length of B, C and each state row. */
  stateSize: number;
  groups: number;
  /** [heads], negative (the file's ssm_a: -exp(A_log)). */
  A: Vector;
  /** [heads] */
  D: Vector;
  /** [heads] */
  dtBias: Vector;
  /** [heads][headDim][stateSize]; read and updated. */
  state: Region;
}

/** What a backend can hold, for load-time planning. */
export interface BackendLimits {
  /** Largest single allocation in bytes (an activation, one layer's K or V). */
  maxBufferBytes: number;
  /** Bytes the caller allows the model (weights + KV cache + scratch) to take. */
  memoryBudgetBytes: number;
}

export interface Backend {
  readonly kind: 'webgpu' | 'cpu';
  readonly limits: BackendLimits;
  /** Whether `matmul`/`embed` read weights of this type. */
  supportsWeight(type: GgmlType): boolean;
  /**
   * Bytes a weight of this type and shape takes once loaded, where that differs from its size in
   * the file (the CPU backend widens types it has no kernel for to F32). Absent: the file size.
   */
  weightBytes?(type: GgmlType, shape: readonly number[]): number;

  // ---- allocation, at load time only
  weight(info: { name: string; type: GgmlType; shape: readonly number[] }, read: ByteReader): Promise<Weight>;
  /**
   * Gives back the memory of weights and buffers this backend made that nothing will use again
   * (a detached LoRA adapter's), and returns the bytes given back: a backend frees what its
   * allocator can (WebGPU: each buffer; the CPU backend's bump allocator: only a region at its
   * top) and keeps the rest until `destroy`. Captured plans may have bound them: the caller
   * drops those first. Absent: nothing is freed before `destroy`.
   */
  free?(items: ReadonlyArray<Weight | Activation>): number;
  /**
   * Bytes this backend can still allocate: what is left of its memory budget (WebGPU) or of its
   * WebAssembly memory's maximum (CPU). Checked before an upload after the load (a LoRA adapter).
   */
  memoryLeft?(): number;
  vector(name: string, values: Float32Array): Vector;
  activation(name: string, floats: number): Activation;
  ids(name: string, length: number): IdBuffer;
  kvStorage(layout: { layers: number; capacity: number; kvHeads: number; headDim: number }): KvStorage;

  // ---- a step: begin, ops, submit
  begin(): void;
  /** Sets ids[0 .. values.length); ordered before the ops recorded after it. */
  writeIds(target: IdBuffer, values: Uint32Array): void;
  /** out[t] = scale * table[ids[t]] (zeros for ids past the table). */
  embed(table: Weight, ids: IdBuffer, out: Rows, tokens: number, scale: number): void;
  /** RMSNorm (`x / sqrt(mean(x^2) + eps) * w`) or LayerNorm of `rows` rows of `n`; in place allowed (same rows). */
  norm(kind: 'rms' | 'layer', x: Rows, out: Rows, n: number, rows: number, eps: number, weight?: Vector, bias?: Vector): void;
  /**
   * The residual add and the RMSNorm after it, as one op: x += cur * scale, then
   * cur = x / sqrt(mean(x^2) + eps) * weight. x and cur are different activations. The same as
   * `scale`, `add` and `norm` in turn, in one pass (one dispatch between two blocks, not two).
   */
  addNorm(x: Rows, cur: Rows, n: number, rows: number, eps: number, weight?: Vector, scale?: number): void;
  /** out[t, r] = sum_k x[t, k] * W[r, k] (+ bias[r]); x rows start at offset 0 of their activation. */
  matmul(w: Weight, x: Rows, out: Rows, tokens: number, bias?: Vector): void;
  /** Rotates `heads` heads of `headDim` per token in place (head h at x.offset + t * x.stride + h * headDim). */
  rope(x: Rows, tokens: number, heads: number, headDim: number, positions: IdBuffer, op: RopeOp): void;
  /** Copies k and v rows into layer `layer` of the cache at the slots in `positions`. */
  kvWrite(cache: KvStorage, layer: number, k: Rows, v: Rows, positions: IdBuffer, tokens: number): void;
  /**
   * `rope` of q (`heads` heads) and k (the cache's kvHeads heads), both in place, then `kvWrite`
   * of k and v, as one op (one dispatch where the backend can, not three).
   */
  ropeKvWrite(cache: KvStorage, layer: number, q: Rows, k: Rows, v: Rows, heads: number, positions: IdBuffer, tokens: number, op: RopeOp): void;
  /**
   * Causal attention of `tokens` queries (`heads` per row) over cache slots [0, kvLength); out
   * laid out like q. kvLength is the largest position + 1: a query never sees a later key, so a
   * backend may read visibility from `positions` alone (WebGPU does, to replay decode steps).
   * With `op.causal: false` every key below kvLength is visible, so kvLength is what bounds them.
   */
  attention(cache: KvStorage, layer: number, q: Rows, out: Rows, positions: IdBuffer, tokens: number, heads: number, kvLength: number, op: AttentionOp): void;
  /**
   * The gate/up projection and the GLU as one op, for a [gate; up] weight (2 n rows): gateUp =
   * W x (+ bias), then out = act(gate) * up (`glu` of its halves). A backend may apply the GLU as
   * it stores the products and leave gateUp unwritten (WebGPU decode); out is another activation.
   */
  gluMatmul(activation: 'silu' | 'gelu', w: Weight, x: Rows, gateUp: Rows, out: Rows, tokens: number, bias?: Vector): void;
  /** out = act(gate) * up (SiLU or ggml's tanh GELU), `rows` rows of `n`; out is another activation. */
  glu(activation: 'silu' | 'gelu', gate: Rows, up: Rows, out: Rows, n: number, rows: number): void;
  /**
   * The mixture-of-experts FFN of `tokens` rows of x into out (another activation); a token reads
   * only its chosen experts' weights, and each expert's weights are read once for all the tokens
   * that chose it. Absent on a backend that does not run MoE models yet (the loader refuses them).
   */
  moeFfn?(x: Rows, out: Rows, tokens: number, op: MoeFfnOp): void;
  /**
   * Ops of state-space hybrids (mamba2, lfm2, granitehybrid); absent on a backend that does not run
   * them yet (the loader refuses those models there).
   */
  /** The causal convolution of `tokens` rows of x into out (another activation), state updated. */
  ssmConv?(x: Rows, out: Rows, tokens: number, op: ConvOp): void;
  /** The selective scan of `tokens` rows into y (another activation), state updated. */
  ssmScan?(x: Rows, dt: Rows, B: Rows, C: Rows, y: Rows, tokens: number, op: SsmScanOp): void;
  /**
   * Mamba2's gated norm, in place on y: y = y * silu(z), then each of the `groups` groups of
   * n / groups values RMS-normalized and multiplied by its part of weight [n].
   */
  gatedNorm?(y: Rows, z: Rows, n: number, rows: number, groups: number, eps: number, weight: Vector): void;
  /**
   * Whether `attention` honours AttentionOp's `causal: false` and `bias` (encoder-decoder T5);
   * absent, the T5 loader refuses the backend.
   */
  readonly relativeAttention?: boolean;
  /** out = max(x, 0) elementwise (original T5's ReLU FFN); absent, ReLU T5 files are refused there. */
  relu?(x: Rows, out: Rows, n: number, rows: number): void;
  /** out = a * b elementwise, `rows` rows of `n`; in place allowed (out is a or b). */
  mul?(a: Rows, b: Rows, out: Rows, n: number, rows: number): void;
  /** to = from (regions of `from.floats` values; different activations or disjoint); a recurrent state snapshot. */
  copy?(from: Region, to: Region): void;
  /** The region's values set to 0 (a fresh recurrent state). */
  zero?(region: Region): void;
  /** out = (a + b) * scale; in place when out is a. */
  add(a: Rows, b: Rows, out: Rows, n: number, rows: number, scale?: number): void;
  /** out = a * scale; in place when out is a. */
  scale(a: Rows, out: Rows, n: number, rows: number, scale: number): void;
  /** x = cap * tanh(x / cap), in place. */
  softcap(x: Rows, n: number, rows: number, cap: number): void;
  /**
   * One token per row of logits into `out`, by src/engine/sampling's chain, drawn with the host
   * uniforms `u` (one per row). `penalties` first adjust every row in place (the logits are spent);
   * `DevicePenalties` take one row. `allowed` (a grammar's token mask, one row) then sets every
   * other token's logit to MASKED_LOGIT, so the chain never draws it.
   */
  sample(
    logits: Rows,
    vocab: number,
    rows: number,
    params: SamplingParams,
    u: readonly number[],
    out: IdBuffer,
    penalties?: TokenPenalties | DevicePenalties,
    allowed?: AllowedTokens,
  ): void;
  /** Ends the step and hands it to the device. */
  submit(): void;

  // ---- planned steps (a backend that runs ops at once has none: capture returns undefined)
  /** Captures the ops recorded from now until `submit()` into a plan, complete after that submit. */
  capture(): StepPlan | undefined;
  /** Records a captured step into the current one, drawing with the sampling uniforms `u`. */
  replay(plan: StepPlan, u: readonly number[]): void;

  // ---- results (wait for submitted work)
  read(t: Activation, floats: number, offset?: number): Promise<Float32Array>;
  readIds(t: IdBuffer, count: number): Promise<Uint32Array>;
  /**
   * `count` (<= 64) ids of `t` as the step being recorded leaves them, without submitting or
   * waiting: resolves once the device has run that step, so the host records the next steps
   * meanwhile. At most 8 reads may be pending.
   */
  readIdsAsync(t: IdBuffer, count: number): Promise<Uint32Array>;

  destroy(): void;
}
