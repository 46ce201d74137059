/**
 * A float64 reference forward for llama.cpp's `lfm2` architecture (LiquidAI's LFM2: gated short
 * convolutions and a few GQA attention layers), the oracle for engine work on hybrids; checked
 * against llama.cpp in tests/model/reference-lfm2.test.ts. The engine does not load lfm2 yet, so
 * this reads the GGUF itself instead of going through readModelConfig.
 *
 * Per layer, as llama.cpp's llama_model_lfm2 graph (src/models/lfm2.cpp) computes it:
 *   h = rms_norm(x) * attn_norm
 *   a short-convolution layer (attention.head_count_kv[il] == 0):
 *     [b | c | u] = in_proj · h;  y = c ⊙ conv(b ⊙ u over the last l_cache columns);  out_proj · y
 *   an attention layer: q, k, v; per-head RMS norms of q and k; NeoX RoPE; causal softmax
 *     attention scaled by 1/sqrt(head_dim), GQA; attn_output
 *   x = x + that;  x = x + ffn_down · (silu(ffn_gate · n) ⊙ ffn_up · n) with n = rms_norm(x) * ffn_norm
 * then the final norm (named token_embd_norm in the file) and the output projection (token_embd
 * when tied). A {@link Lfm2ReferenceSession} carries each conv layer's l_cache - 1 past columns and
 * each attention layer's keys and values, so a prompt can be fed in any split.
 */
import { findNumber, getInteger } from '../engine/gguf/metadata.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import { RecurrentReferenceError, causalConvStep, evalTokens, loadGgufWeights, perLayerKvHeads, readCommonConfig, type RecurrentReferenceModel, matVec, rmsNormInPlace, swigluFfn, tensor } from './reference-recurrent.ts';

export interface Lfm2Config {
  nEmbd: number;
  nLayer: number;
  nVocab: number;
  nFf: number;
  nHead: number;
  /** Per layer; 0 marks a short-convolution layer. */
  nHeadKv: number[];
  headDim: number;
  /** shortconv.l_cache: the convolution width. */
  convWidth: number;
  ropeBase: number;
  rmsEps: number;
}

export type Lfm2ReferenceModel = RecurrentReferenceModel<Lfm2Config>;

export function readLfm2Config(file: GgufFile): Lfm2Config {
  const { key: k, nLayer, nEmbd, nVocab, rmsEps } = readCommonConfig(file, 'lfm2');
  const nHead = getInteger(file, k('attention.head_count'));
  const nHeadKv = perLayerKvHeads(file, k('attention.head_count_kv'), nLayer);
  const config: Lfm2Config = {
    nEmbd,
    nLayer,
    nVocab,
    nFf: getInteger(file, k('feed_forward_length')),
    nHead,
    nHeadKv,
    headDim: nEmbd / nHead,
    convWidth: getInteger(file, k('shortconv.l_cache')),
    ropeBase: findNumber(file, k('rope.freq_base')) ?? 10000,
    rmsEps,
  };
  if (!Number.isInteger(config.headDim) || nHeadKv.some((h) => h !== 0 && nHead % h !== 0) || config.convWidth < 2) {
    throw new RecurrentReferenceError(`inconsistent lfm2 sizes: embd ${nEmbd}, heads ${nHead}, kv heads ${nHeadKv.join(',')}, conv ${config.convWidth}`);
  }
  return config;
}

/** Reads an lfm2 GGUF (a path or a ranged source) and dequantizes every tensor. */
export async function loadLfm2Reference(source: RangedSource | string): Promise<Lfm2ReferenceModel> {
  return loadGgufWeights(source, readLfm2Config);
}

/** NeoX RoPE in place on each of `nHeads` heads of `x` (pairs i and i + headDim/2), ggml's theta = pos * base^(-2i/headDim). */
function ropeNeox(x: Float64Array, nHeads: number, headDim: number, pos: number, base: number): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const theta = pos * Math.pow(base, (-2 * i) / headDim);
    const cos = Math.cos(theta);
    const sin = Math.sin(theta);
    for (let h = 0; h < nHeads; h++) {
      const a = h * headDim + i;
      const x0 = x[a]!;
      const x1 = x[a + half]!;
      x[a] = x0 * cos - x1 * sin;
      x[a + half] = x0 * sin + x1 * cos;
    }
  }
}

/** One sequence: the conv layers' past columns and the attention layers' keys and values. */
export class Lfm2ReferenceSession {
  readonly config: Lfm2Config;
  private readonly model: Lfm2ReferenceModel;
  /** Per conv layer [convWidth - 1][nEmbd], oldest first; undefined for attention layers. */
  private readonly convState: Array<Float64Array | undefined>;
  /** Per attention layer, one [nHeadKv * headDim] key and value per position so far. */
  private readonly keys: Float64Array[][];
  private readonly values: Float64Array[][];
  private nPast = 0;

  constructor(model: Lfm2ReferenceModel) {
    this.model = model;
    const c = (this.config = model.config);
    this.convState = c.nHeadKv.map((kv) => (kv === 0 ? new Float64Array((c.convWidth - 1) * c.nEmbd) : undefined));
    this.keys = c.nHeadKv.map(() => []);
    this.values = c.nHeadKv.map(() => []);
  }

  private w(name: string): Float32Array {
    return tensor(this.model.weights, name);
  }

  /** An independent copy of this session's state (a turn-boundary snapshot to continue from). */
  clone(): Lfm2ReferenceSession {
    const copy = new Lfm2ReferenceSession(this.model);
    this.convState.forEach((st, i) => st && copy.convState[i]!.set(st));
    // Cached keys and values are never written after they are pushed: sharing them is safe.
    this.keys.forEach((k, i) => copy.keys[i]!.push(...k));
    this.values.forEach((v, i) => copy.values[i]!.push(...v));
    copy.nPast = this.nPast;
    return copy;
  }

  /** Feeds `tokens` after everything fed before; returns their logits, [tokens][nVocab]. */
  eval(tokens: readonly number[]): Float64Array {
    return evalTokens(this.model.weights, this.config, tokens, { outputNorm: 'token_embd_norm.weight' }, (il, x) => this.layer(il, x), () => this.nPast++);
  }

  /** One block for the token at position nPast, in place on `x` [nEmbd]. */
  private layer(il: number, x: Float64Array): void {
    const c = this.config;
    const E = c.nEmbd;
    const b = `blk.${il}.`;
    const h = x.slice();
    rmsNormInPlace(h, 0, E, c.rmsEps, this.w(`${b}attn_norm.weight`));
    const mixed = c.nHeadKv[il] === 0 ? this.shortConv(il, h) : this.attention(il, h);
    for (let i = 0; i < E; i++) x[i] = x[i]! + mixed[i]!;

    const n = x.slice();
    rmsNormInPlace(n, 0, E, c.rmsEps, this.w(`${b}ffn_norm.weight`));
    const down = swigluFfn(this.model.weights, il, n, E, c.nFf);
    for (let i = 0; i < E; i++) x[i] = x[i]! + down[i]!;
  }

  private shortConv(il: number, h: Float64Array): Float64Array {
    const c = this.config;
    const E = c.nEmbd;
    const b = `blk.${il}.shortconv.`;
    const bcx = matVec(this.w(`${b}in_proj.weight`), E, 3 * E, h);
    const bx = new Float64Array(E);
    for (let i = 0; i < E; i++) bx[i] = bcx[i]! * bcx[2 * E + i]!;
    const conv = causalConvStep(this.convState[il]!, this.w(`${b}conv.weight`), c.convWidth, E, bx);
    for (let i = 0; i < E; i++) conv[i] = bcx[E + i]! * conv[i]!;
    return matVec(this.w(`${b}out_proj.weight`), E, E, conv);
  }

  private attention(il: number, h: Float64Array): Float64Array {
    const c = this.config;
    return attentionStep(this.model.weights, { nEmbd: c.nEmbd, nHead: c.nHead, nHeadKv: c.nHeadKv[il]!, headDim: c.headDim, rmsEps: c.rmsEps, ropeBase: c.ropeBase, qkNorm: true, scale: 1 / Math.sqrt(c.headDim) }, il, h, this.keys[il]!, this.values[il]!, this.nPast);
  }
}

/** One attention layer's shape and options (lfm2: q/k norms and NeoX RoPE; granitehybrid: neither). */
export interface AttentionSpec {
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  rmsEps: number;
  /** NeoX RoPE with this base; undefined: no positional rotation. */
  ropeBase: number | undefined;
  /** Per-head RMS norms of q and k (attn_q_norm, attn_k_norm). */
  qkNorm: boolean;
  /** Multiplies q·k. */
  scale: number;
}

/**
 * Causal GQA attention of layer `il` for the token at `pos`: `h` is the normalized input; its
 * key and value are appended to `keys` and `values`. Returns attn_output · heads (+ its bias if any).
 */
export function attentionStep(weights: Map<string, Float32Array>, a: AttentionSpec, il: number, h: Float64Array, keys: Float64Array[], values: Float64Array[], pos: number): Float64Array {
  const { nEmbd: E, headDim: D, nHead: H, nHeadKv: Hkv } = a;
  const b = `blk.${il}.`;
  const w = (name: string) => tensor(weights, name);
  const q = matVec(w(`${b}attn_q.weight`), E, H * D, h);
  const k = matVec(w(`${b}attn_k.weight`), E, Hkv * D, h);
  const v = matVec(w(`${b}attn_v.weight`), E, Hkv * D, h);
  if (a.qkNorm) {
    const qNorm = w(`${b}attn_q_norm.weight`);
    const kNorm = w(`${b}attn_k_norm.weight`);
    for (let hd = 0; hd < H; hd++) rmsNormInPlace(q, hd * D, D, a.rmsEps, qNorm);
    for (let hd = 0; hd < Hkv; hd++) rmsNormInPlace(k, hd * D, D, a.rmsEps, kNorm);
  }
  if (a.ropeBase !== undefined) {
    ropeNeox(q, H, D, pos, a.ropeBase);
    ropeNeox(k, Hkv, D, pos, a.ropeBase);
  }
  keys.push(k);
  values.push(v);

  const out = new Float64Array(H * D);
  const group = H / Hkv;
  const scores = new Float64Array(keys.length);
  for (let hd = 0; hd < H; hd++) {
    const kvOff = Math.floor(hd / group) * D;
    let max = -Infinity;
    for (let p = 0; p < keys.length; p++) {
      let dot = 0;
      for (let i = 0; i < D; i++) dot += q[hd * D + i]! * keys[p]![kvOff + i]!;
      scores[p] = dot * a.scale;
      max = Math.max(max, scores[p]!);
    }
    let sum = 0;
    for (let p = 0; p < keys.length; p++) sum += scores[p] = Math.exp(scores[p]! - max);
    for (let p = 0; p < keys.length; p++) {
      const wgt = scores[p]! / sum;
      for (let i = 0; i < D; i++) out[hd * D + i] = out[hd * D + i]! + wgt * values[p]![kvOff + i]!;
    }
  }
  const o = matVec(w(`${b}attn_output.weight`), H * D, E, out);
  const bias = weights.get(`${b}attn_output.bias`);
  if (bias) for (let i = 0; i < E; i++) o[i] = o[i]! + bias[i]!;
  return o;
}

/** The logits of every position of `tokens` from an empty state, [tokens][nVocab]. */
export function referenceLfm2Forward(model: Lfm2ReferenceModel, tokens: readonly number[]): Float64Array {
  return new Lfm2ReferenceSession(model).eval(tokens);
}
