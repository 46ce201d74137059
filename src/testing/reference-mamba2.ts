/**
 * A float64 reference forward for llama.cpp's `mamba2` architecture (a pure state-space model: no
 * attention, no FFN), the oracle for engine work on state-space models; checked against llama.cpp
 * in tests/model/reference-mamba2.test.ts. The engine does not load mamba2 yet, so this reads the
 * GGUF itself instead of going through readModelConfig.
 *
 * Per layer, as llama.cpp's build_mamba2_layer (src/models/mamba-base.cpp) and the CPU ops
 * ggml_ssm_conv / ggml_ssm_scan compute it:
 *   h = rms_norm(x) * attn_norm
 *   [z | xBC | dt] = ssm_in · h                 z: d_inner, xBC: d_inner + 2·groups·d_state, dt: heads
 *   xBC = silu(causal depthwise conv(xBC over the last conv_kernel columns, conv state first) + bias)
 *   [x | B | C] = xBC                           x: heads × head_dim, B and C: groups × d_state
 *   per head h (group g = h / (heads / groups)):
 *     δ = softplus(dt[h] + dt_bias[h]); state[h] = state[h] · exp(δ · A[h]) + δ · x[h] ⊗ B[g]
 *     y[h] = state[h] · C[g] + D[h] · x[h]
 *   y = rms_norm_per_group(y · silu(z)) * ssm_norm (groups of d_inner / groups)
 *   x = x + ssm_out · y
 * then the final norm and the output projection. The GGUF holds A already negated (-exp(A_log)).
 *
 * The recurrent state (per layer: the conv_kernel - 1 last xBC columns and the d_state × d_inner
 * scan state) lives in a {@link Mamba2ReferenceSession}, so a prompt can be fed in any split and
 * gives the same logits. Plain loops, slow on purpose; for small test models.
 */
import { getInteger } from '../engine/gguf/metadata.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import { RecurrentReferenceError, causalConvStep, loadGgufWeights, readCommonConfig, type RecurrentReferenceModel, matVec, rmsNormInPlace, silu, tensor } from './reference-recurrent.ts';

/** The hyperparameters llama.cpp's llama_model_mamba2::load_arch_hparams reads. */
export interface Mamba2Config {
  nEmbd: number;
  nLayer: number;
  nVocab: number;
  /** ssm.conv_kernel: the convolution width (the state keeps convKernel - 1 columns). */
  convKernel: number;
  /** ssm.inner_size (d_inner). */
  inner: number;
  /** ssm.state_size (d_state). */
  state: number;
  /** ssm.time_step_rank: the number of SSM heads. */
  heads: number;
  /** ssm.group_count: heads share B and C in this many groups. */
  groups: number;
  headDim: number;
  rmsEps: number;
}

export type Mamba2ReferenceModel = RecurrentReferenceModel<Mamba2Config>;

export function readMamba2Config(file: GgufFile): Mamba2Config {
  const { key: k, nLayer, nEmbd, nVocab, rmsEps } = readCommonConfig(file, 'mamba2');
  const inner = getInteger(file, k('ssm.inner_size'));
  const heads = getInteger(file, k('ssm.time_step_rank'));
  const groups = getInteger(file, k('ssm.group_count'));
  const config: Mamba2Config = {
    nEmbd,
    nLayer,
    nVocab,
    convKernel: getInteger(file, k('ssm.conv_kernel')),
    inner,
    state: getInteger(file, k('ssm.state_size')),
    heads,
    groups,
    headDim: inner / heads,
    rmsEps,
  };
  if (!Number.isInteger(config.headDim) || heads % groups !== 0 || config.convKernel < 1) {
    throw new RecurrentReferenceError(`inconsistent mamba2 sizes: inner ${inner}, heads ${heads}, groups ${groups}, conv ${config.convKernel}`);
  }
  return config;
}

/** Reads a mamba2 GGUF (a path or a ranged source) and dequantizes every tensor. */
export async function loadMamba2Reference(source: RangedSource | string): Promise<Mamba2ReferenceModel> {
  return loadGgufWeights(source, readMamba2Config);
}

/** ggml's softplus: the identity above 20, where log1p(exp(x)) equals x in float32. */
const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

/** One sequence's recurrent state: per layer the last convKernel - 1 xBC columns and the scan state. */
export class Mamba2ReferenceSession {
  readonly config: Mamba2Config;
  private readonly model: Mamba2ReferenceModel;
  /** Per layer [convKernel - 1][convDim], oldest column first. */
  private readonly convState: Float64Array[];
  /** Per layer [heads][headDim][state]. */
  private readonly ssmState: Float64Array[];

  constructor(model: Mamba2ReferenceModel) {
    this.model = model;
    this.config = model.config;
    const c = model.config;
    const states = Array.from({ length: c.nLayer }, () => mamba2LayerState(c));
    this.convState = states.map((st) => st.conv);
    this.ssmState = states.map((st) => st.ssm);
  }

  private w(name: string): Float32Array {
    return tensor(this.model.weights, name);
  }

  /** An independent copy of this session's state (a turn-boundary snapshot to continue from). */
  clone(): Mamba2ReferenceSession {
    const copy = new Mamba2ReferenceSession(this.model);
    this.convState.forEach((st, i) => copy.convState[i]!.set(st));
    this.ssmState.forEach((st, i) => copy.ssmState[i]!.set(st));
    return copy;
  }

  /** Feeds `tokens` after everything fed before; returns their logits, [tokens][nVocab]. */
  eval(tokens: readonly number[]): Float64Array {
    const c = this.config;
    const E = c.nEmbd;
    const n = tokens.length;
    const embd = this.w('token_embd.weight');
    const hidden = new Float64Array(n * E);
    tokens.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= c.nVocab) throw new RecurrentReferenceError(`token id ${id} out of range [0, ${c.nVocab})`);
      for (let i = 0; i < E; i++) hidden[t * E + i] = embd[id * E + i]!;
    });
    for (let il = 0; il < c.nLayer; il++) this.layer(il, hidden, n);

    const outNorm = this.w('output_norm.weight');
    const output = this.model.weights.get('output.weight') ?? embd;
    const logits = new Float64Array(n * c.nVocab);
    for (let t = 0; t < n; t++) {
      rmsNormInPlace(hidden, t * E, E, c.rmsEps, outNorm);
      logits.set(matVec(output, E, c.nVocab, hidden, t * E), t * c.nVocab);
    }
    return logits;
  }

  /** One mamba2 block over the batch, in place on `hidden` ([n][nEmbd]). */
  private layer(il: number, hidden: Float64Array, n: number): void {
    const c = this.config;
    const E = c.nEmbd;
    const attnNorm = this.w(`blk.${il}.attn_norm.weight`);
    for (let t = 0; t < n; t++) {
      const h = hidden.slice(t * E, (t + 1) * E);
      rmsNormInPlace(h, 0, E, c.rmsEps, attnNorm);
      const out = mamba2Mixer(this.model.weights, c, il, h, this.convState[il]!, this.ssmState[il]!);
      for (let i = 0; i < E; i++) hidden[t * E + i] = hidden[t * E + i]! + out[i]!;
    }
  }
}

/** The sizes a Mamba2 mixer needs (also granitehybrid's SSM layers). */
export type Mamba2Sizes = Pick<Mamba2Config, 'nEmbd' | 'inner' | 'state' | 'heads' | 'headDim' | 'groups' | 'convKernel' | 'rmsEps'>;

/** A fresh state for one Mamba2 layer: [convKernel - 1][convDim] conv columns and the [heads][headDim][state] scan state. */
export function mamba2LayerState(c: Mamba2Sizes): { conv: Float64Array; ssm: Float64Array } {
  const convDim = c.inner + 2 * c.groups * c.state;
  return { conv: new Float64Array((c.convKernel - 1) * convDim), ssm: new Float64Array(c.inner * c.state) };
}

/**
 * The Mamba2 mixer of layer `il` for one token: `h` is the normalized input [nEmbd]; `conv` and
 * `s` (from {@link mamba2LayerState}) are updated in place. Returns ssm_out · y [nEmbd].
 */
export function mamba2Mixer(weights: Map<string, Float32Array>, c: Mamba2Sizes, il: number, h: Float64Array, conv: Float64Array, s: Float64Array): Float64Array {
  const { nEmbd: E, inner, state: S, heads, headDim: P, groups, convKernel: K } = c;
  const convDim = inner + 2 * groups * S;
  const b = `blk.${il}.`;
  const w = (name: string) => tensor(weights, name);
  const convW = w(`${b}ssm_conv1d.weight`);
  const convB = weights.get(`${b}ssm_conv1d.bias`);
  const dtBias = w(`${b}ssm_dt.bias`);
  const A = w(`${b}ssm_a`);
  const D = w(`${b}ssm_d`);
  const norm = w(`${b}ssm_norm.weight`);
  const groupWidth = inner / groups;
  const zxBCdt = matVec(w(`${b}ssm_in.weight`), E, inner + convDim + heads, h);

  // Causal depthwise convolution over xBC with the state's convKernel - 1 past columns.
  const xBC = causalConvStep(conv, convW, K, convDim, zxBCdt, inner);
  for (let ch = 0; ch < convDim; ch++) xBC[ch] = silu(xBC[ch]! + (convB ? convB[ch]! : 0));

  // Selective scan, one step; x is xBC[0, inner), B and C follow by group; then the D skip.
  const dt = new Float64Array(heads);
  for (let hd = 0; hd < heads; hd++) dt[hd] = zxBCdt[inner + convDim + hd]! + dtBias[hd]!;
  const scan = { heads, headDim: P, state: S, groups, nTokens: 1, A };
  const y = ssmScanSequential(scan, xBC.subarray(0, inner), dt, xBC.subarray(inner, inner + groups * S), xBC.subarray(inner + groups * S), s);
  for (let hd = 0; hd < heads; hd++) {
    for (let p = 0; p < P; p++) y[hd * P + p] = y[hd * P + p]! + xBC[hd * P + p]! * D[hd]!;
  }

  // Gate with silu(z), then RMS-normalize each group of inner / groups values.
  for (let i = 0; i < inner; i++) y[i] = y[i]! * silu(zxBCdt[i]!);
  for (let g = 0; g < groups; g++) rmsNormInPlace(y, g * groupWidth, groupWidth, c.rmsEps, norm, g * groupWidth);
  return matVec(w(`${b}ssm_out.weight`), inner, E, y);
}

/** Sizes of a selective scan over one sequence (ggml_ssm_scan with a scalar A per head). */
export interface SsmScanShape {
  heads: number;
  headDim: number;
  state: number;
  groups: number;
  nTokens: number;
  /** Per head, negative (the file's -exp(A_log)). */
  A: ArrayLike<number>;
}

/**
 * ggml_ssm_scan, token by token (the decode recurrence), in float64. Layouts as ggml's, one
 * sequence: x [nTokens][heads][headDim], dt [nTokens][heads] before softplus (dt + dt_bias),
 * B and C [nTokens][groups][state], the state s [heads][headDim][state] updated in place; head h
 * reads group h / (heads / groups). Returns y [nTokens][heads][headDim] (no D skip):
 *   δ = softplus(dt);  s = s · exp(δ·A[h]) + δ · x ⊗ B;  y = s · C
 */
export function ssmScanSequential(a: SsmScanShape, x: ArrayLike<number>, dt: ArrayLike<number>, B: ArrayLike<number>, C: ArrayLike<number>, s: Float64Array): Float64Array {
  const { heads, headDim: P, state: S, groups, nTokens } = a;
  const y = new Float64Array(nTokens * heads * P);
  const perGroup = heads / groups;
  for (let t = 0; t < nTokens; t++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / perGroup);
      const bc = (t * groups + g) * S;
      const delta = softplus(dt[t * heads + h]!);
      const decay = Math.exp(delta * a.A[h]!);
      for (let p = 0; p < P; p++) {
        const xi = h * P + p;
        const xDelta = x[t * heads * P + xi]! * delta;
        let sum = 0;
        for (let k = 0; k < S; k++) {
          const si = xi * S + k;
          const v = s[si]! * decay + B[bc + k]! * xDelta;
          s[si] = v;
          sum += v * C[bc + k]!;
        }
        y[t * heads * P + xi] = sum;
      }
    }
  }
  return y;
}

/**
 * The same scan in chunks of `chunk` tokens, the parallel form a prefill kernel uses (Mamba2's
 * state-space duality): within a chunk, with the cumulative log-decay L_t = Σ_{u≤t} δ_u·A,
 *   y_t = exp(L_t) · (C_t · s_0) + Σ_{u≤t} exp(L_t − L_u) · (C_t · B_u) · δ_u · x_u
 *   s_end = exp(L_T) · s_0 + Σ_u exp(L_T − L_u) · δ_u · x_u ⊗ B_u
 * so every output of a chunk is independent of the others given the chunk's starting state.
 * Equal to {@link ssmScanSequential} up to rounding; the oracle for chunked kernels.
 */
export function ssmScanChunked(a: SsmScanShape, x: ArrayLike<number>, dt: ArrayLike<number>, B: ArrayLike<number>, C: ArrayLike<number>, s: Float64Array, chunk: number): Float64Array {
  if (!Number.isInteger(chunk) || chunk < 1) throw new RecurrentReferenceError(`chunk must be a positive integer, got ${chunk}`);
  const { heads, headDim: P, state: S, groups, nTokens } = a;
  const y = new Float64Array(nTokens * heads * P);
  const perGroup = heads / groups;
  for (let t0 = 0; t0 < nTokens; t0 += chunk) {
    const T = Math.min(chunk, nTokens - t0);
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / perGroup);
      const delta = new Float64Array(T);
      const L = new Float64Array(T);
      let acc = 0;
      for (let t = 0; t < T; t++) {
        delta[t] = softplus(dt[(t0 + t) * heads + h]!);
        acc += delta[t]! * a.A[h]!;
        L[t] = acc;
      }
      const bAt = (t: number, k: number) => B[((t0 + t) * groups + g) * S + k]!;
      const cAt = (t: number, k: number) => C[((t0 + t) * groups + g) * S + k]!;
      // C_t · B_u for the chunk's pairs u <= t (shared by the head's headDim rows).
      const cb = new Float64Array(T * T);
      for (let t = 0; t < T; t++) {
        for (let u = 0; u <= t; u++) {
          let dot = 0;
          for (let k = 0; k < S; k++) dot += cAt(t, k) * bAt(u, k);
          cb[t * T + u] = dot;
        }
      }
      for (let p = 0; p < P; p++) {
        const xi = h * P + p;
        const xAt = (t: number) => x[(t0 + t) * heads * P + xi]!;
        for (let t = 0; t < T; t++) {
          let fromState = 0;
          for (let k = 0; k < S; k++) fromState += cAt(t, k) * s[xi * S + k]!;
          let sum = Math.exp(L[t]!) * fromState;
          for (let u = 0; u <= t; u++) sum += Math.exp(L[t]! - L[u]!) * cb[t * T + u]! * delta[u]! * xAt(u);
          y[(t0 + t) * heads * P + xi] = sum;
        }
        const end = L[T - 1]!;
        for (let k = 0; k < S; k++) {
          let v = Math.exp(end) * s[xi * S + k]!;
          for (let u = 0; u < T; u++) v += Math.exp(end - L[u]!) * delta[u]! * xAt(u) * bAt(u, k);
          s[xi * S + k] = v;
        }
      }
    }
  }
  return y;
}

/** The logits of every position of `tokens` from an empty state, [tokens][nVocab]. */
export function referenceMamba2Forward(model: Mamba2ReferenceModel, tokens: readonly number[]): Float64Array {
  return new Mamba2ReferenceSession(model).eval(tokens);
}
