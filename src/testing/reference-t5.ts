/**
 * A float64 reference for llama.cpp's `t5` architecture (T5, Flan-T5): the encoder-decoder oracle for
 * engine work, checked against llama.cpp's llama_encode + llama_decode in
 * tests/model/reference-t5.test.ts. The engine does not load t5 yet, so this reads the GGUF itself.
 *
 * As llama.cpp's llama_model_t5 graphs (src/models/t5.cpp) compute it:
 *   encoder, over all input tokens at once, per layer:
 *     h = rms_norm(x) * attn_norm;  q, k, v = h · W;  for query j, key i and head h the score is
 *     q_j · k_i + rel_b[bucket(i - j, bidirectional)][h] (no 1/sqrt(head_dim): T5 folds it into its
 *     weights); softmax over all keys; x += attn_o · attention
 *     x += ffn_down · f(h) with h = rms_norm(x) * ffn_norm, f = GELU(ffn_gate · h) ⊙ ffn_up · h
 *     (Flan-T5, when ffn_gate exists) or ReLU(ffn_up · h) (original T5)
 *   then e = rms_norm(x) * enc.output_norm.
 *   decoder, per layer: the same self-attention with causal keys and rel_b[bucket(i - j, causal)];
 *     cross-attention: q from rms_norm(x) * cross_attn_norm, k and v from e, no bias, no mask;
 *     the FFN; then rms_norm(x) * dec.output_norm and the output projection (token_embd when the
 *     file has no output.weight, unscaled: llama.cpp does not apply Hugging Face's d_model^-0.5 to
 *     tied T5 logits).
 * Each layer without its own rel_b uses layer 0's, as llama.cpp does. T5's RMSNorm has no mean
 * subtraction and no bias, as ggml_rms_norm.
 */
import { getInteger, getNumber } from '../engine/gguf/metadata.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import { relativePositionBucket } from '../engine/model/t5-config.ts';
import { geluF16Table, geluTanh } from './reference-forward.ts';
import { RecurrentReferenceError, loadGgufWeights, matVec, readCommonConfig, rmsNormInPlace, tensor, type RecurrentReferenceModel } from './reference-recurrent.ts';

export interface T5Config {
  nEmbd: number;
  nVocab: number;
  /** Encoder blocks (block_count). */
  nLayer: number;
  /** Decoder blocks (decoder_block_count, default block_count). */
  nDecLayer: number;
  nHead: number;
  headDim: number;
  nFf: number;
  /** attention.relative_buckets_count. */
  buckets: number;
  rmsEps: number;
  /** decoder_start_token_id, or undefined when the file has none. */
  decoderStart: number | undefined;
  /** Flan-T5's gated GELU FFN (ffn_gate present) rather than original T5's ReLU. */
  gatedGelu: boolean;
}

export type T5ReferenceModel = RecurrentReferenceModel<T5Config>;

export function readT5Config(file: GgufFile): T5Config {
  const { key: k, nLayer, nEmbd, nVocab, rmsEps } = readCommonConfig(file, 't5');
  const nHead = getInteger(file, k('attention.head_count'));
  const keyLength = file.metadata.has(k('attention.key_length')) ? getInteger(file, k('attention.key_length')) : nEmbd / nHead;
  const nHeadKv = file.metadata.has(k('attention.head_count_kv')) ? getInteger(file, k('attention.head_count_kv')) : nHead;
  const start = file.metadata.get(k('decoder_start_token_id'));
  const config: T5Config = {
    nEmbd,
    nVocab,
    nLayer,
    nDecLayer: file.metadata.has(k('decoder_block_count')) ? getInteger(file, k('decoder_block_count')) : nLayer,
    nHead,
    headDim: keyLength,
    nFf: getInteger(file, k('feed_forward_length')),
    buckets: getInteger(file, k('attention.relative_buckets_count')),
    rmsEps,
    decoderStart: typeof start === 'number' ? start : undefined,
    gatedGelu: file.tensors.some((t) => t.name === 'enc.blk.0.ffn_gate.weight'),
  };
  if (!Number.isInteger(config.headDim) || config.headDim < 1 || nHeadKv !== nHead || config.buckets < 2 || getNumber(file, k('attention.layer_norm_rms_epsilon')) <= 0) {
    throw new RecurrentReferenceError(`inconsistent t5 sizes: embd ${nEmbd}, heads ${nHead} (kv ${nHeadKv}) of ${config.headDim}, buckets ${config.buckets}`);
  }
  return config;
}

/** Reads a t5 GGUF (a path or a ranged source) and dequantizes every tensor. */
export async function loadT5Reference(source: RangedSource | string): Promise<T5ReferenceModel> {
  return loadGgufWeights(source, readT5Config);
}

/** llama.cpp's llama_relative_position_bucket (the engine's copy: the bucket ids are data, checked against llama.cpp here and in tests/model/reference-t5.test.ts). */
export { relativePositionBucket } from '../engine/model/t5-config.ts';

export interface T5ReferenceOptions {
  /** GELU through llama.cpp CPU's f16 lookup table (see reference-forward.ts); default exact. */
  ggmlCpuGelu?: boolean;
}

/**
 * One input and its output so far: the constructor runs the encoder over `input`; `eval` appends
 * decoder tokens (any split) and returns their logits, [tokens][nVocab].
 */
export class T5ReferenceSession {
  readonly config: T5Config;
  /** The encoder's normalized output, [input][nEmbd]. */
  readonly encoded: Float64Array;
  private readonly weights: Map<string, Float32Array>;
  private readonly gelu: (x: number) => number;
  /** Per decoder layer: keys and values of the decoder tokens so far, [pos][nHead * headDim]. */
  private readonly kSelf: Float64Array[][];
  private readonly vSelf: Float64Array[][];
  /** Per decoder layer: the cross-attention keys and values of the encoder output. */
  private readonly kCross: Float64Array[][];
  private readonly vCross: Float64Array[][];

  constructor(model: T5ReferenceModel, input: readonly number[], options: T5ReferenceOptions = {}) {
    this.config = model.config;
    this.weights = model.weights;
    this.gelu = options.ggmlCpuGelu ? geluF16Table : geluTanh;
    if (input.length === 0) throw new RecurrentReferenceError('t5 reference: the encoder needs at least one input token');
    this.encoded = this.encode(input);
    const c = this.config;
    const A = c.nHead * c.headDim;
    this.kSelf = Array.from({ length: c.nDecLayer }, () => []);
    this.vSelf = Array.from({ length: c.nDecLayer }, () => []);
    this.kCross = [];
    this.vCross = [];
    for (let il = 0; il < c.nDecLayer; il++) {
      const b = `dec.blk.${il}.`;
      const ks: Float64Array[] = [];
      const vs: Float64Array[] = [];
      for (let t = 0; t < input.length; t++) {
        ks.push(matVec(tensor(this.weights, `${b}cross_attn_k.weight`), c.nEmbd, A, this.encoded, t * c.nEmbd));
        vs.push(matVec(tensor(this.weights, `${b}cross_attn_v.weight`), c.nEmbd, A, this.encoded, t * c.nEmbd));
      }
      this.kCross.push(ks);
      this.vCross.push(vs);
    }
  }

  /** Decoder tokens evaluated so far. */
  get length(): number {
    return this.kSelf[0]?.length ?? 0;
  }

  private checkToken(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.config.nVocab) throw new RecurrentReferenceError(`token id ${id} out of range [0, ${this.config.nVocab})`);
  }

  private embed(tokens: readonly number[]): Float64Array[] {
    const E = this.config.nEmbd;
    const embd = tensor(this.weights, 'token_embd.weight');
    return tokens.map((id) => {
      this.checkToken(id);
      return Float64Array.from(embd.subarray(id * E, (id + 1) * E));
    });
  }

  /** rel_b of a layer, or layer 0's when it has none (llama.cpp's fallback). */
  private relBias(stack: 'enc' | 'dec', il: number): Float32Array {
    return this.weights.get(`${stack}.blk.${il}.attn_rel_b.weight`) ?? tensor(this.weights, `${stack}.blk.0.attn_rel_b.weight`);
  }

  /** Softmax attention of one query over `keys`/`values` per head, scores plus `bias(head, key)`; unscaled. */
  private attend(q: Float64Array, keys: Float64Array[], values: Float64Array[], bias: ((h: number, i: number) => number) | undefined): Float64Array {
    const { nHead: H, headDim: D } = this.config;
    const out = new Float64Array(H * D);
    const scores = new Float64Array(keys.length);
    for (let h = 0; h < H; h++) {
      let max = -Infinity;
      for (let i = 0; i < keys.length; i++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[h * D + d]! * keys[i]![h * D + d]!;
        if (bias) s += bias(h, i);
        scores[i] = s;
        if (s > max) max = s;
      }
      let z = 0;
      for (let i = 0; i < keys.length; i++) z += scores[i] = Math.exp(scores[i]! - max);
      for (let i = 0; i < keys.length; i++) {
        const p = scores[i]! / z;
        for (let d = 0; d < D; d++) out[h * D + d] = out[h * D + d]! + p * values[i]![h * D + d]!;
      }
    }
    return out;
  }

  private normed(x: Float64Array, name: string): Float64Array {
    const n = Float64Array.from(x);
    rmsNormInPlace(n, 0, this.config.nEmbd, this.config.rmsEps, tensor(this.weights, name));
    return n;
  }

  /** x += the FFN of block prefix `b` over rms_norm(x) * ffn_norm. */
  private ffn(b: string, x: Float64Array): void {
    const { nEmbd: E, nFf: F } = this.config;
    const h = this.normed(x, `${b}ffn_norm.weight`);
    const up = matVec(tensor(this.weights, `${b}ffn_up.weight`), E, F, h);
    const gate = this.weights.get(`${b}ffn_gate.weight`);
    if (gate) {
      const g = matVec(gate, E, F, h);
      for (let i = 0; i < F; i++) up[i] = this.gelu(g[i]!) * up[i]!;
    } else {
      for (let i = 0; i < F; i++) up[i] = Math.max(0, up[i]!);
    }
    const down = matVec(tensor(this.weights, `${b}ffn_down.weight`), F, E, up);
    for (let i = 0; i < E; i++) x[i] = x[i]! + down[i]!;
  }

  /** Queries of `xs` for block prefix `b` (over rms_norm(x) * attn_norm); their keys and values appended to `keys`, `values`. */
  private selfAttentionInputs(b: string, xs: readonly Float64Array[], keys: Float64Array[], values: Float64Array[]): Float64Array[] {
    const E = this.config.nEmbd;
    const A = this.config.nHead * this.config.headDim;
    return xs.map((x) => {
      const h = this.normed(x, `${b}attn_norm.weight`);
      keys.push(matVec(tensor(this.weights, `${b}attn_k.weight`), E, A, h));
      values.push(matVec(tensor(this.weights, `${b}attn_v.weight`), E, A, h));
      return matVec(tensor(this.weights, `${b}attn_q.weight`), E, A, h);
    });
  }

  private encode(input: readonly number[]): Float64Array {
    const c = this.config;
    const E = c.nEmbd;
    const A = c.nHead * c.headDim;
    const xs = this.embed(input);
    const n = xs.length;
    for (let il = 0; il < c.nLayer; il++) {
      const b = `enc.blk.${il}.`;
      const rel = this.relBias('enc', il);
      const ks: Float64Array[] = [];
      const vs: Float64Array[] = [];
      const qs = this.selfAttentionInputs(b, xs, ks, vs);
      for (let j = 0; j < n; j++) {
        const att = this.attend(qs[j]!, ks, vs, (h, i) => rel[relativePositionBucket(i, j, c.buckets, true) * c.nHead + h]!);
        const o = matVec(tensor(this.weights, `${b}attn_o.weight`), A, E, att);
        const x = xs[j]!;
        for (let e = 0; e < E; e++) x[e] = x[e]! + o[e]!;
        this.ffn(b, x);
      }
    }
    const out = new Float64Array(n * E);
    xs.forEach((x, t) => out.set(this.normed(x, 'enc.output_norm.weight'), t * E));
    return out;
  }

  /** Appends decoder tokens at positions length, length + 1, ... and returns their logits. */
  eval(tokens: readonly number[]): Float64Array {
    const c = this.config;
    const E = c.nEmbd;
    const A = c.nHead * c.headDim;
    const start = this.length;
    const xs = this.embed(tokens);
    for (let il = 0; il < c.nDecLayer; il++) {
      const b = `dec.blk.${il}.`;
      const rel = this.relBias('dec', il);
      const keys = this.kSelf[il]!;
      const values = this.vSelf[il]!;
      const qs = this.selfAttentionInputs(b, xs, keys, values);
      xs.forEach((x, t) => {
        const pos = start + t;
        const visible = pos + 1;
        const att = this.attend(qs[t]!, keys.slice(0, visible), values.slice(0, visible), (h, i) => rel[relativePositionBucket(i, pos, c.buckets, false) * c.nHead + h]!);
        const o = matVec(tensor(this.weights, `${b}attn_o.weight`), A, E, att);
        for (let e = 0; e < E; e++) x[e] = x[e]! + o[e]!;
        const hc = this.normed(x, `${b}cross_attn_norm.weight`);
        const qc = matVec(tensor(this.weights, `${b}cross_attn_q.weight`), E, A, hc);
        const cross = this.attend(qc, this.kCross[il]!, this.vCross[il]!, undefined);
        const oc = matVec(tensor(this.weights, `${b}cross_attn_o.weight`), A, E, cross);
        for (let e = 0; e < E; e++) x[e] = x[e]! + oc[e]!;
        this.ffn(b, x);
      });
    }
    const output = this.weights.get('output.weight') ?? tensor(this.weights, 'token_embd.weight');
    const logits = new Float64Array(tokens.length * c.nVocab);
    xs.forEach((x, t) => logits.set(matVec(output, E, c.nVocab, this.normed(x, 'dec.output_norm.weight')), t * c.nVocab));
    return logits;
  }
}
