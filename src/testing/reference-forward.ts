/**
 * The exact answer: a float64 forward pass over the dequantized weights of any model
 * `readModelConfig` accepts, used by tests as the oracle for the GPU and CPU backends (and checked
 * itself against llama.cpp in tests/model/reference-forward.test.ts).
 *
 * One function, {@link ReferenceSession.eval}, reads top to bottom like llama.cpp's graph builders
 * (src/models/<arch>.cpp): embeddings, then per layer norm, q/k/v, rope, attention through the KV
 * cache, output projection, residual, norm, gated FFN, residual; final norm; logits. Architecture
 * differences are flags of {@link ModelConfig}, never copies of the loop. Every intermediate can be
 * observed with a {@link Tap}, named as llama.cpp's `cb(cur, name, il)`.
 *
 * Weights are held as Float32Array: every format dequantizes to float32 values exactly, and all
 * arithmetic (matmuls, norms, rope, softmax) is done in float64 on top of them. Slow on purpose:
 * plain loops that are easy to check. Fine for the small test models; not for a 7B model.
 */
import { yarnCorrDims } from '../engine/backend/rope-scaling.ts';
import { checkTensors, modelTensors } from '../engine/model/tensors.ts';
import { readModelConfig, type ModelConfig } from '../engine/model/config.ts';
import { readGguf } from '../engine/gguf/reader.ts';
import { f16ToF32, f32ToF16, requireQuantFormat } from '../engine/gguf/quants/index.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import type { GgufFile, GgufTensorInfo } from '../engine/gguf/types.ts';
import { nodeFileSource } from '../node/file-source.ts';
import type { LoraAdapterData } from '../engine/model/lora/adapter-data.ts';
import { referenceMoeFfn } from './reference-moe.ts';

/** A model ready for {@link referenceForward}: its config and every tensor it reads, dequantized. */
export interface ReferenceModel {
  config: ModelConfig;
  /** By GGUF name; element order as in the file (row-major, ne0 fastest). */
  weights: Map<string, Float32Array>;
}

/** Observes an intermediate: `layer` is -1 outside the layer loop; `data` is [tokens][width] and only valid during the call. */
export type Tap = (name: string, layer: number, data: Float64Array, width: number) => void;

/**
 * Reads a GGUF file (a path, or any ranged source), validates it with `readModelConfig` and
 * `checkTensors`, and dequantizes the tensors the model uses, one ranged read per tensor.
 */
export async function loadReferenceModel(source: RangedSource | string): Promise<ReferenceModel> {
  const src = typeof source === 'string' ? await nodeFileSource(source) : source;
  try {
    const file = await readGguf(src);
    return await loadReferenceWeights(file, src);
  } finally {
    if (typeof source === 'string') await src.close?.();
  }
}

/** As {@link loadReferenceModel} for an already parsed file. */
export async function loadReferenceWeights(file: GgufFile, source: RangedSource): Promise<ReferenceModel> {
  const config = readModelConfig(file);
  checkTensors(config, file);
  const infos = new Map(file.tensors.map((t) => [t.name, t]));
  const weights = new Map<string, Float32Array>();
  for (const spec of modelTensors(config)) {
    const info = infos.get(spec.name);
    if (info) weights.set(spec.name, await dequantizeTensor(info, source));
  }
  return { config, weights };
}

async function dequantizeTensor(info: GgufTensorInfo, source: RangedSource): Promise<Float32Array> {
  const bytes = await source.read(info.fileOffset, info.byteSize);
  const out = new Float32Array(info.elementCount);
  requireQuantFormat(info.type).dequantize(bytes, out, info.elementCount);
  return out;
}

export interface ReferenceOptions {
  /**
   * KV cache capacity in positions (default: the model's training context, at most 4096). The
   * phi3-style long/short rope factors are chosen from {@link ropeContext}, not from this.
   */
  nCtx?: number;
  /**
   * The context size llama.cpp would run with (`n_ctx_seq`): long rope factors are used when it
   * exceeds the model's original context. llama.cpp pads n_ctx up to a multiple of 256, so the
   * default is nCtx rounded up to 256.
   */
  ropeContext?: number;
  tap?: Tap;
  /**
   * Evaluate GELU through llama.cpp CPU's f16 lookup table instead of exactly. Off for the oracle
   * (backends should not inherit a CPU shortcut); on to show that the gemma residual against
   * llama.cpp is that table and nothing else.
   */
  ggmlCpuGelu?: boolean;
  /** LoRA adapters at their scales (llama.cpp's --lora-scaled): W x + s B (A x) after every adapted matmul. */
  adapters?: readonly { data: LoraAdapterData; scale: number }[];
  /** Layers to skip: the residual stream passes them unchanged (what dropping them should equal). */
  skipLayers?: readonly number[];
}

/** One adapted tensor of one adapter, with its effective scale s. */
interface ReferenceLora {
  a: Float32Array;
  b: Float32Array;
  rank: number;
  nIn: number;
  nOut: number;
  s: number;
}

/** llama.cpp's context size for a requested n_ctx (llama-context.cpp pads it to 256). */
export function llamaCppContextSize(nCtx: number): number {
  return Math.ceil(nCtx / 256) * 256;
}

/**
 * Logits for `tokens` as one sequence starting at `positionsStart` (default 0) with an empty
 * cache: row-major [tokens.length][nVocab].
 */
export function referenceForward(
  model: ReferenceModel,
  tokens: readonly number[],
  options: ReferenceOptions & { positionsStart?: number } = {},
): Float64Array {
  const start = options.positionsStart ?? 0;
  const nCtx = options.nCtx ?? Math.max(start + tokens.length, 1);
  const session = new ReferenceSession(model, { ...options, nCtx: Math.max(nCtx, start + tokens.length) });
  return session.eval(tokens, start);
}

// ---------------------------------------------------------------- math helpers (float64)

/** out[o] = sum_i W[o * nIn + i] * x[i] for o < nOut: W is a GGUF [nIn, nOut] tensor. */
function matVec(w: Float32Array, nIn: number, nOut: number, x: Float64Array, xOff: number, out: Float64Array, outOff: number): void {
  for (let o = 0; o < nOut; o++) {
    const row = o * nIn;
    let sum = 0;
    for (let i = 0; i < nIn; i++) sum += w[row + i]! * x[xOff + i]!;
    out[outOff + o] = sum;
  }
}

/** x[off..off+n) = x / sqrt(mean(x^2) + eps) * weight (ggml_rms_norm then ggml_mul). */
function rmsNorm(x: Float64Array, off: number, n: number, eps: number, weight: Float32Array, out: Float64Array, outOff: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i]! * x[off + i]!;
  const scale = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) out[outOff + i] = x[off + i]! * scale * weight[i]!;
}

function addBias(x: Float64Array, off: number, bias: Float32Array | undefined, biasOff = 0, n = bias?.length ?? 0): void {
  if (!bias) return;
  for (let i = 0; i < n; i++) x[off + i] = x[off + i]! + bias[biasOff + i]!;
}

const silu = (x: number) => x / (1 + Math.exp(-x));
/** GELU, tanh approximation (ggml_gelu_f32's formula). */
export const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x)));
/**
 * GELU as llama.cpp's CPU backend evaluates it (GGML_GELU_FP16, ggml-cpu/vec.h): 0 below -10, x
 * above 10, else a 65536-entry table indexed by x rounded to f16, holding f16 results. Its error
 * (about 1e-3 relative) is what separates our gemma logits from llama.cpp's; see `ggmlCpuGelu`.
 */
export const geluF16Table = (x: number) => {
  if (x <= -10) return 0;
  if (x >= 10) return x;
  return f16ToF32(f32ToF16(geluTanh(f16ToF32(f32ToF16(x)))));
};

// ---------------------------------------------------------------- rope

/**
 * Cos/sin for each rotated pair at position `pos` (ggml's rope_yarn): theta_i = pos * base^(-2i/nRot)
 * / factor_i, scaled by freqScale (blended with the unscaled angle over YaRN's ramp), magnitude
 * attnFactor (times YaRN's 1 + 0.1 ln(1/freqScale)).
 */
export function ropeCache(
  config: ModelConfig,
  pos: number,
  base: number,
  freqScale: number,
  factors: Float32Array | undefined,
  cos: Float64Array,
  sin: Float64Array,
): void {
  const { nRot, extFactor, nCtxOrig, betaFast, betaSlow } = config.rope;
  let mscale = config.rope.attnFactor;
  const [low, high] = yarnCorrDims(nRot, nCtxOrig, base, betaFast, betaSlow);
  if (extFactor !== 0) mscale *= 1 + 0.1 * Math.log(1 / freqScale);
  for (let i = 0; i < nRot / 2; i++) {
    const thetaExtrap = (pos * Math.pow(base, (-2 * i) / nRot)) / (factors ? factors[i]! : 1);
    const thetaInterp = freqScale * thetaExtrap;
    let theta = thetaInterp;
    if (extFactor !== 0) {
      const y = (i - low) / Math.max(0.001, high - low);
      const rampMix = (1 - Math.min(1, Math.max(0, y))) * extFactor;
      theta = thetaInterp * (1 - rampMix) + thetaExtrap * rampMix;
    }
    cos[i] = Math.cos(theta) * mscale;
    sin[i] = Math.sin(theta) * mscale;
  }
}

/** Rotates each head of x[off..] in place: `normal` pairs (2i, 2i+1), `neox` pairs (i, i + nRot/2). */
export function applyRope(config: ModelConfig, x: Float64Array, off: number, nHeads: number, headDim: number, cos: Float64Array, sin: Float64Array): void {
  const half = config.rope.nRot / 2;
  const neox = config.rope.type === 'neox';
  for (let h = 0; h < nHeads; h++) {
    const base = off + h * headDim;
    for (let i = 0; i < half; i++) {
      const a = base + (neox ? i : 2 * i);
      const b = neox ? a + half : a + 1;
      const x0 = x[a]!;
      const x1 = x[b]!;
      x[a] = x0 * cos[i]! - x1 * sin[i]!;
      x[b] = x0 * sin[i]! + x1 * cos[i]!;
    }
  }
}

// ---------------------------------------------------------------- the session

/**
 * A sequence with a KV cache: `eval` appends tokens and returns their logits, so tests can compare
 * one prefill with token-by-token decode and any mix. The cache and scratch are allocated once.
 */
export class ReferenceSession {
  readonly config: ModelConfig;
  readonly nCtx: number;
  private readonly model: ReferenceModel;
  private readonly ropeContext: number;
  private readonly tap: Tap | undefined;
  private readonly skipLayers: ReadonlySet<number>;
  private readonly gelu: (x: number) => number;
  /** Per layer, [nCtx][kvDimK] keys after rope and [nCtx][kvDimV] values. */
  private readonly kCache: Float64Array[];
  private readonly vCache: Float64Array[];
  /** Position of each filled cache cell. */
  private readonly cellPos: Int32Array;
  /** Adapters by base tensor name. */
  private readonly loras = new Map<string, ReferenceLora[]>();
  private used = 0;
  private nextPos = 0;

  constructor(model: ReferenceModel, options: ReferenceOptions = {}) {
    this.model = model;
    this.config = model.config;
    this.nCtx = options.nCtx ?? Math.min(this.config.nCtxTrain, 4096);
    if (!Number.isSafeInteger(this.nCtx) || this.nCtx <= 0) throw new RangeError(`nCtx ${this.nCtx} must be a positive integer`);
    this.ropeContext = options.ropeContext ?? llamaCppContextSize(this.nCtx);
    this.tap = options.tap;
    this.skipLayers = new Set(options.skipLayers ?? []);
    this.gelu = options.ggmlCpuGelu ? geluF16Table : geluTanh;
    this.kCache = this.config.layers.map(() => new Float64Array(this.nCtx * this.config.kvDimK));
    this.vCache = this.config.layers.map(() => new Float64Array(this.nCtx * this.config.kvDimV));
    this.cellPos = new Int32Array(this.nCtx);
    for (const { data, scale } of options.adapters ?? []) {
      for (const t of data.targets) {
        // llama.cpp's get_scale: alpha 0 means the scale as given.
        const s = data.alpha ? (scale * data.alpha) / t.rank : scale;
        const list = this.loras.get(t.base) ?? [];
        list.push({ a: t.a, b: t.b, rank: t.rank, nIn: t.nIn, nOut: t.nOut, s });
        this.loras.set(t.base, list);
      }
    }
  }

  /** out[outOff..] += s B (A x[xOff..]) for each adapter of base tensor `name`. */
  private lora(name: string, x: Float64Array, xOff: number, out: Float64Array, outOff: number): void {
    for (const l of this.loras.get(name) ?? []) {
      const ax = new Float64Array(l.rank);
      matVec(l.a, l.nIn, l.rank, x, xOff, ax, 0);
      for (let o = 0; o < l.nOut; o++) {
        let sum = 0;
        for (let r = 0; r < l.rank; r++) sum += l.b[o * l.rank + r]! * ax[r]!;
        out[outOff + o] = out[outOff + o]! + l.s * sum;
      }
    }
  }

  /** Cells in use (tokens evaluated since the last reset). */
  get length(): number {
    return this.used;
  }

  /** Position the next token gets by default. */
  get position(): number {
    return this.nextPos;
  }

  reset(): void {
    this.used = 0;
    this.nextPos = 0;
  }

  private w(name: string): Float32Array {
    const t = this.model.weights.get(name);
    if (!t) throw new Error(`reference model has no tensor ${name}`);
    return t;
  }

  private wOpt(name: string): Float32Array | undefined {
    return this.model.weights.get(name);
  }

  /** Rope frequency divisors for this context (llama.cpp `get_rope_factors`). */
  private ropeFactors(): Float32Array | undefined {
    const f = this.config.rope.factors;
    if (f === 'freqs') return this.w('rope_freqs.weight');
    if (f === 'long-short') {
      return this.ropeContext > this.config.rope.nCtxOrig ? this.wOpt('rope_factors_long.weight') : this.wOpt('rope_factors_short.weight');
    }
    return undefined;
  }

  /**
   * Evaluates `tokens` at positions start, start + 1, ... (default: after the last evaluated
   * token) and returns their logits, row-major [tokens.length][nVocab]. All tokens go through each
   * layer together, as in a llama.cpp batch; each attends to every cached position <= its own
   * (and, in sliding-window layers, > its own - window).
   */
  eval(tokens: readonly number[], start = this.nextPos): Float64Array {
    const c = this.config;
    const n = tokens.length;
    if (n === 0) return new Float64Array(0);
    if (this.used + n > this.nCtx) throw new RangeError(`KV cache full: ${this.used} + ${n} tokens > nCtx ${this.nCtx}`);
    if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`bad start position ${start}`);
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} outside the vocabulary of ${c.nVocab}`);
    }
    const { nEmbd, nHead, nHeadKv, headDimK, headDimV, qDim, kvDimK, kvDimV, gqaGroup } = c;
    const tap = this.tap ?? (() => {});
    const cell0 = this.used;
    for (let t = 0; t < n; t++) this.cellPos[cell0 + t] = start + t;

    // Scratch, [n][width] each.
    const x = new Float64Array(n * nEmbd); // residual stream
    const cur = new Float64Array(n * nEmbd);
    const q = new Float64Array(n * qDim);
    const k = new Float64Array(n * kvDimK);
    const v = new Float64Array(n * kvDimV);
    const attn = new Float64Array(n * nHead * headDimV);
    const maxFf = Math.max(...c.layers.map((l) => l.nFf));
    const gate = new Float64Array(maxFf * (c.fusedGateUp ? 2 : 1));
    const up = new Float64Array(maxFf);
    const qkv = c.tensors.fusedQkv ? new Float64Array(qDim + kvDimK + kvDimV) : undefined;
    const cos = new Float64Array(c.rope.nRot / 2);
    const sin = new Float64Array(c.rope.nRot / 2);
    const scores = new Float64Array(this.nCtx);
    const factors = this.ropeFactors();

    // Token embeddings (gemma: times sqrt(n_embd); granite: times embedding_scale).
    const embd = this.w('token_embd.weight');
    for (let t = 0; t < n; t++) {
      const row = tokens[t]! * nEmbd;
      for (let i = 0; i < nEmbd; i++) x[t * nEmbd + i] = embd[row + i]! * c.embeddingScale;
      // Adapted embeddings: + s B A[token] (A is [nVocab][rank]), scaled with the row.
      for (const l of this.loras.get('token_embd.weight') ?? []) {
        for (let i = 0; i < nEmbd; i++) {
          let sum = 0;
          for (let r = 0; r < l.rank; r++) sum += l.b[i * l.rank + r]! * l.a[tokens[t]! * l.rank + r]!;
          x[t * nEmbd + i] = x[t * nEmbd + i]! + l.s * sum * c.embeddingScale;
        }
      }
    }
    tap('inp_embd', -1, x, nEmbd);

    for (let il = 0; il < c.nLayer; il++) {
      if (this.skipLayers.has(il)) continue;
      const L = (base: string, suffix: 'weight' | 'bias' = 'weight') => `blk.${il}.${base}.${suffix}`;
      const layer = c.layers[il]!;
      const swa = layer.slidingWindow;
      const freqBase = swa ? c.rope.freqBaseSwa : c.rope.freqBase;
      const freqScale = swa ? c.rope.freqScaleSwa : c.rope.freqScale;
      const kc = this.kCache[il]!;
      const vc = this.vCache[il]!;

      // --- attention norm, q/k/v
      const attnNorm = this.w(L('attn_norm'));
      for (let t = 0; t < n; t++) rmsNorm(x, t * nEmbd, nEmbd, c.normEps, attnNorm, cur, t * nEmbd);
      tap('attn_norm', il, cur, nEmbd);
      for (let t = 0; t < n; t++) {
        if (qkv) {
          // Fused: one [nEmbd, qDim + 2 kvDim] projection, split as q | k | v.
          matVec(this.w(L('attn_qkv')), nEmbd, qkv.length, cur, t * nEmbd, qkv, 0);
          this.lora(L('attn_qkv'), cur, t * nEmbd, qkv, 0);
          addBias(qkv, 0, this.wOpt(L('attn_qkv', 'bias')));
          q.set(qkv.subarray(0, qDim), t * qDim);
          k.set(qkv.subarray(qDim, qDim + kvDimK), t * kvDimK);
          v.set(qkv.subarray(qDim + kvDimK), t * kvDimV);
        } else {
          matVec(this.w(L('attn_q')), nEmbd, qDim, cur, t * nEmbd, q, t * qDim);
          matVec(this.w(L('attn_k')), nEmbd, kvDimK, cur, t * nEmbd, k, t * kvDimK);
          matVec(this.w(L('attn_v')), nEmbd, kvDimV, cur, t * nEmbd, v, t * kvDimV);
          this.lora(L('attn_q'), cur, t * nEmbd, q, t * qDim);
          this.lora(L('attn_k'), cur, t * nEmbd, k, t * kvDimK);
          this.lora(L('attn_v'), cur, t * nEmbd, v, t * kvDimV);
          addBias(q, t * qDim, this.wOpt(L('attn_q', 'bias')));
          addBias(k, t * kvDimK, this.wOpt(L('attn_k', 'bias')));
          addBias(v, t * kvDimV, this.wOpt(L('attn_v', 'bias')));
        }
      }
      tap('Qcur', il, q, qDim);
      tap('Kcur', il, k, kvDimK);
      tap('Vcur', il, v, kvDimV);

      // --- per-head q/k RMS norms (qwen3, gemma3), then rope
      if (c.qkNorm) {
        const qn = this.w(L('attn_q_norm'));
        const kn = this.w(L('attn_k_norm'));
        for (let t = 0; t < n; t++) {
          if (c.qkNormOver === 'row') {
            // olmoe: over the token's whole q and k rows.
            rmsNorm(q, t * qDim, qDim, c.normEps, qn, q, t * qDim);
            rmsNorm(k, t * kvDimK, kvDimK, c.normEps, kn, k, t * kvDimK);
            continue;
          }
          for (let h = 0; h < nHead; h++) rmsNorm(q, t * qDim + h * headDimK, headDimK, c.normEps, qn, q, t * qDim + h * headDimK);
          for (let h = 0; h < nHeadKv; h++) rmsNorm(k, t * kvDimK + h * headDimK, headDimK, c.normEps, kn, k, t * kvDimK + h * headDimK);
        }
        tap('Qcur_normed', il, q, qDim);
        tap('Kcur_normed', il, k, kvDimK);
      }
      if (c.rope.enabled) {
        for (let t = 0; t < n; t++) {
          ropeCache(c, start + t, freqBase, freqScale, factors, cos, sin);
          applyRope(c, q, t * qDim, nHead, headDimK, cos, sin);
          applyRope(c, k, t * kvDimK, nHeadKv, headDimK, cos, sin);
        }
        tap('Qcur_rope', il, q, qDim);
        tap('Kcur_rope', il, k, kvDimK);
      }

      // --- store k, v in the cache, then attend
      kc.set(k.subarray(0, n * kvDimK), cell0 * kvDimK);
      vc.set(v.subarray(0, n * kvDimV), cell0 * kvDimV);
      const nCells = cell0 + n;
      for (let t = 0; t < n; t++) {
        const p1 = start + t;
        for (let h = 0; h < nHead; h++) {
          const kvh = Math.floor(h / gqaGroup);
          const qOff = t * qDim + h * headDimK;
          let max = -Infinity;
          for (let j = 0; j < nCells; j++) {
            const p0 = this.cellPos[j]!;
            // llama.cpp's mask: causal by position; sliding-window layers also hide p1 - p0 >= window.
            if (p0 > p1 || (swa && p1 - p0 >= c.slidingWindow)) {
              scores[j] = -Infinity;
              continue;
            }
            const kOff = j * kvDimK + kvh * headDimK;
            let dot = 0;
            for (let d = 0; d < headDimK; d++) dot += q[qOff + d]! * kc[kOff + d]!;
            let s = dot * c.attentionScale;
            if (c.attnSoftcap) s = c.attnSoftcap * Math.tanh(s / c.attnSoftcap);
            scores[j] = s;
            if (s > max) max = s;
          }
          let sum = 0;
          for (let j = 0; j < nCells; j++) {
            const e = scores[j] === -Infinity ? 0 : Math.exp(scores[j]! - max);
            scores[j] = e;
            sum += e;
          }
          const outOff = t * nHead * headDimV + h * headDimV;
          attn.fill(0, outOff, outOff + headDimV);
          for (let j = 0; j < nCells; j++) {
            const pj = scores[j]! / sum;
            if (pj === 0) continue;
            const vOff = j * kvDimV + kvh * headDimV;
            for (let d = 0; d < headDimV; d++) attn[outOff + d] = attn[outOff + d]! + pj * vc[vOff + d]!;
          }
        }
      }
      tap('kqv_out', il, attn, nHead * headDimV);

      // --- output projection, post-norm (gemma), residual (granite: scaled)
      const wo = this.w(L('attn_output'));
      const woB = this.wOpt(L('attn_output', 'bias'));
      for (let t = 0; t < n; t++) {
        matVec(wo, nHead * headDimV, nEmbd, attn, t * nHead * headDimV, cur, t * nEmbd);
        this.lora(L('attn_output'), attn, t * nHead * headDimV, cur, t * nEmbd);
        addBias(cur, t * nEmbd, woB);
      }
      tap('attn_out', il, cur, nEmbd);
      if (c.postNorms) {
        const pn = this.w(L('post_attention_norm'));
        for (let t = 0; t < n; t++) rmsNorm(cur, t * nEmbd, nEmbd, c.normEps, pn, cur, t * nEmbd);
        tap('attn_post_norm', il, cur, nEmbd);
      }
      for (let i = 0; i < n * nEmbd; i++) x[i] = x[i]! + cur[i]! * c.residualScale;
      tap('ffn_inp', il, x, nEmbd);

      // --- FFN: norm, gate and up, GLU, down, post-norm (gemma), residual
      const nFf = layer.nFf;
      const ffnNorm = this.w(L('ffn_norm'));
      const act = c.activation === 'gelu' ? this.gelu : silu;
      const h = new Float64Array(nEmbd);
      if (c.moe) {
        const routerLogits = new Float64Array(n * c.moe.nExpert);
        for (let t = 0; t < n; t++) {
          rmsNorm(x, t * nEmbd, nEmbd, c.normEps, ffnNorm, h, 0);
          const { out, logits } = referenceMoeFfn(c.moe, nEmbd, (name) => this.w(name), (name) => this.wOpt(name), il, h, act);
          cur.set(out, t * nEmbd);
          routerLogits.set(logits, t * c.moe.nExpert);
        }
        tap('ffn_moe_logits', il, routerLogits, c.moe.nExpert);
      } else {
        const wUp = this.w(L('ffn_up'));
        const wGate = c.fusedGateUp ? undefined : this.w(L('ffn_gate'));
        const wDown = this.w(L('ffn_down'));
        const upB = this.wOpt(L('ffn_up', 'bias'));
        const gateB = this.wOpt(L('ffn_gate', 'bias'));
        const downB = this.wOpt(L('ffn_down', 'bias'));
        for (let t = 0; t < n; t++) {
          rmsNorm(x, t * nEmbd, nEmbd, c.normEps, ffnNorm, h, 0);
          if (c.fusedGateUp) {
            // phi3: ffn_up yields [gate | up] (ggml_swiglu takes the first half as the gate).
            matVec(wUp, nEmbd, 2 * nFf, h, 0, gate, 0);
            this.lora(L('ffn_up'), h, 0, gate, 0);
            addBias(gate, 0, upB);
            for (let i = 0; i < nFf; i++) up[i] = gate[nFf + i]!;
          } else {
            matVec(wUp, nEmbd, nFf, h, 0, up, 0);
            this.lora(L('ffn_up'), h, 0, up, 0);
            addBias(up, 0, upB);
            matVec(wGate!, nEmbd, nFf, h, 0, gate, 0);
            this.lora(L('ffn_gate'), h, 0, gate, 0);
            addBias(gate, 0, gateB);
          }
          for (let i = 0; i < nFf; i++) gate[i] = act(gate[i]!) * up[i]!;
          matVec(wDown, nFf, nEmbd, gate, 0, cur, t * nEmbd);
          this.lora(L('ffn_down'), gate, 0, cur, t * nEmbd);
          addBias(cur, t * nEmbd, downB);
        }
      }
      tap('ffn_out', il, cur, nEmbd);
      if (c.postNorms) {
        const pn = this.w(L('post_ffw_norm'));
        for (let t = 0; t < n; t++) rmsNorm(cur, t * nEmbd, nEmbd, c.normEps, pn, cur, t * nEmbd);
        tap('ffn_post_norm', il, cur, nEmbd);
      }
      for (let i = 0; i < n * nEmbd; i++) x[i] = x[i]! + cur[i]! * c.residualScale;
      tap('l_out', il, x, nEmbd);
    }

    // --- final norm, logits (tied: token_embd), output bias, softcap (gemma), divisor (granite)
    const outNorm = this.w('output_norm.weight');
    for (let t = 0; t < n; t++) rmsNorm(x, t * nEmbd, nEmbd, c.normEps, outNorm, cur, t * nEmbd);
    tap('result_norm', -1, cur, nEmbd);
    const out = this.w(c.tensors.tiedEmbeddings ? 'token_embd.weight' : 'output.weight');
    const outB = this.wOpt('output.bias');
    const logits = new Float64Array(n * c.nVocab);
    for (let t = 0; t < n; t++) {
      matVec(out, nEmbd, c.nVocab, cur, t * nEmbd, logits, t * c.nVocab);
      this.lora('output.weight', cur, t * nEmbd, logits, t * c.nVocab);
      addBias(logits, t * c.nVocab, outB);
    }
    if (c.finalSoftcap) {
      for (let i = 0; i < logits.length; i++) logits[i] = c.finalSoftcap * Math.tanh(logits[i]! / c.finalSoftcap);
    }
    if (c.logitDivisor !== 1) {
      for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / c.logitDivisor;
    }
    tap('result_output', -1, logits, c.nVocab);

    this.used += n;
    this.nextPos = start + n;
    return logits;
  }
}
