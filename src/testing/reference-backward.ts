/**
 * The exact answer for LoRA training: a float64 forward pass that keeps a tape of its
 * intermediates, the mean next-token cross-entropy over a token window, and the backward pass from
 * that loss to the A and B matrices of every adapted tensor, the base weights frozen (read through
 * their dequantization, as {@link loadReferenceWeights} gives them, so quantized bases are QLoRA's
 * case). Every GPU and CPU backward kernel is to be checked against it, and it is checked itself
 * against {@link referenceForward} (same logits, same loss) and against finite differences.
 *
 * It follows {@link ReferenceSession.eval} op for op, for the dense architectures (llama, mistral,
 * qwen2, qwen3, phi3, gemma, gemma2, granite): embeddings (no gradient), RMSNorm, matmuls with LoRA and
 * biases, per-head or per-row q/k norms, RoPE through the reference's own rope cache (scaling,
 * YaRN, frequency factors), causal softmax attention with GQA, sliding windows and softcap, SwiGLU
 * and GeGLU, post-norms, scaled residuals, final norm, output, final softcap and logit divisor.
 * phi3's fused qkv and gate-up projections, split as the reference splits them. Experts are refused by name. Slow on purpose: plain loops.
 */
import type { LoraAdapterData } from '../engine/model/lora/adapter-data.ts';
import { applyRope, llamaCppContextSize, ropeCache, type ReferenceModel } from './reference-forward.ts';

/** The model or adapter asks for something this reference does not differentiate. */
export class UnsupportedTrainingError extends Error {
  override name = 'UnsupportedTrainingError';
}

/** One adapted tensor's trainable matrices: A is [rank][nIn], B is [nOut][rank] (as in the GGUF). */
export interface TrainableLoraTarget {
  base: string;
  rank: number;
  nIn: number;
  nOut: number;
  a: Float64Array;
  b: Float64Array;
}

/** An adapter being trained, applied as W x + s B (A x) with s = scale * alpha / rank (alpha 0: s = scale). */
export interface TrainableLora {
  architecture: string;
  alpha: number;
  scale: number;
  targets: TrainableLoraTarget[];
}

/** d loss / d A and d loss / d B, one entry per target in the adapter's order. */
export type LoraGradients = { a: Float64Array; b: Float64Array }[];

export interface TrainingOptions {
  /** The context size the rope factors are chosen for (default: as referenceForward over these tokens). */
  ropeContext?: number;
}

/** A float64 copy of an adapter's matrices, to train. */
export function trainableLora(data: LoraAdapterData, scale = 1): TrainableLora {
  const targets = data.targets.map((t) => {
    if (t.embedding) throw new UnsupportedTrainingError(`${t.base}: adapted embeddings are not trained (the embedding lookup has no gradient here)`);
    return { base: t.base, rank: t.rank, nIn: t.nIn, nOut: t.nOut, a: Float64Array.from(t.a), b: Float64Array.from(t.b) };
  });
  return { architecture: data.architecture, alpha: data.alpha, scale, targets };
}

/** The trained adapter as float32 data (what `writeLoraGguf` writes), to be applied at `lora.scale`. */
export function trainedLoraData(lora: TrainableLora, name?: string): LoraAdapterData {
  return {
    architecture: lora.architecture,
    alpha: lora.alpha,
    name,
    targets: lora.targets.map((t) => ({ base: t.base, rank: t.rank, nIn: t.nIn, nOut: t.nOut, embedding: false, a: Float32Array.from(t.a), b: Float32Array.from(t.b) })),
  };
}

/** Rounds the matrices to float32 in place: the values a GGUF export holds. */
export function roundLoraToF32(lora: TrainableLora): void {
  for (const t of lora.targets) {
    for (let i = 0; i < t.a.length; i++) t.a[i] = Math.fround(t.a[i]!);
    for (let i = 0; i < t.b.length; i++) t.b[i] = Math.fround(t.b[i]!);
  }
}

/**
 * Mean next-token cross-entropy of row-major [n][nVocab] logits: position t predicts tokens[t + 1],
 * for t < n - 1 (the last position predicts nothing).
 */
export function nextTokenCrossEntropy(logits: Float64Array, nVocab: number, tokens: readonly number[]): number {
  const n = tokens.length;
  if (n < 2) throw new RangeError('a training window needs at least 2 tokens');
  let total = 0;
  for (let t = 0; t < n - 1; t++) total += logSumExp(logits, t * nVocab, nVocab) - logits[t * nVocab + tokens[t + 1]!]!;
  return total / (n - 1);
}

function logSumExp(x: Float64Array, off: number, len: number): number {
  let max = -Infinity;
  for (let i = 0; i < len; i++) max = Math.max(max, x[off + i]!);
  let sum = 0;
  for (let i = 0; i < len; i++) sum += Math.exp(x[off + i]! - max);
  return max + Math.log(sum);
}

// ---------------------------------------------------------------- ops and their backward passes

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const silu = (x: number) => x * sigmoid(x);
const siluGrad = (x: number) => {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
};
const GELU_C = Math.sqrt(2 / Math.PI);
/** GELU, tanh approximation (the reference's geluTanh). */
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(GELU_C * x * (1 + 0.044715 * x * x)));
const geluGrad = (x: number) => {
  const th = Math.tanh(GELU_C * x * (1 + 0.044715 * x * x));
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_C * (1 + 3 * 0.044715 * x * x);
};

/** Rows of `len` at x[off + k * len]: y = x / sqrt(mean(x^2) + eps) * w; returns each row's 1 / rms. */
function rmsNormRows(x: Float64Array, rows: number, len: number, eps: number, w: Float32Array, y: Float64Array): Float64Array {
  const r = new Float64Array(rows);
  for (let k = 0; k < rows; k++) {
    const off = k * len;
    let ss = 0;
    for (let i = 0; i < len; i++) ss += x[off + i]! * x[off + i]!;
    const scale = 1 / Math.sqrt(ss / len + eps);
    r[k] = scale;
    for (let i = 0; i < len; i++) y[off + i] = x[off + i]! * scale * w[i]!;
  }
  return r;
}

/** dx = r w dy - x r^3 / len * sum_j(w_j dy_j x_j), per row; written to dx (may alias dy). */
function rmsNormRowsBackward(x: Float64Array, r: Float64Array, len: number, w: Float32Array, dy: Float64Array, dx: Float64Array): void {
  for (let k = 0; k < r.length; k++) {
    const off = k * len;
    const s = r[k]!;
    let dot = 0;
    for (let i = 0; i < len; i++) dot += w[i]! * dy[off + i]! * x[off + i]!;
    const c = (s * s * s * dot) / len;
    for (let i = 0; i < len; i++) dx[off + i] = s * w[i]! * dy[off + i]! - x[off + i]! * c;
  }
}

/** A frozen projection y = W x (+ s B (A x)) (+ bias) over [n][nIn] rows. */
interface Linear {
  w: Float32Array;
  nIn: number;
  nOut: number;
  bias: Float32Array | undefined;
  lora: { target: TrainableLoraTarget; index: number; s: number } | undefined;
}

/** Forward; returns y and, when adapted, u = A x ([n][rank]) for the backward pass. */
function linearForward(l: Linear, x: Float64Array, n: number): { y: Float64Array; u: Float64Array | undefined } {
  const { w, nIn, nOut } = l;
  const y = new Float64Array(n * nOut);
  for (let t = 0; t < n; t++) {
    for (let o = 0; o < nOut; o++) {
      let sum = 0;
      for (let i = 0; i < nIn; i++) sum += w[o * nIn + i]! * x[t * nIn + i]!;
      y[t * nOut + o] = sum;
    }
  }
  let u: Float64Array | undefined;
  if (l.lora) {
    const { target: { a, b, rank }, s } = l.lora;
    u = new Float64Array(n * rank);
    for (let t = 0; t < n; t++) {
      for (let r = 0; r < rank; r++) {
        let sum = 0;
        for (let i = 0; i < nIn; i++) sum += a[r * nIn + i]! * x[t * nIn + i]!;
        u[t * rank + r] = sum;
      }
      for (let o = 0; o < nOut; o++) {
        let sum = 0;
        for (let r = 0; r < rank; r++) sum += b[o * rank + r]! * u[t * rank + r]!;
        y[t * nOut + o] = y[t * nOut + o]! + s * sum;
      }
    }
  }
  if (l.bias) for (let t = 0; t < n; t++) for (let o = 0; o < nOut; o++) y[t * nOut + o] = y[t * nOut + o]! + l.bias[o]!;
  return { y, u };
}

/**
 * dx = W^T dy + s A^T (B^T dy); accumulates dB += s dy u^T and dA += s (B^T dy) x^T. Returns dx
 * ([n][nIn]).
 */
function linearBackward(l: Linear, x: Float64Array, u: Float64Array | undefined, dy: Float64Array, n: number, grads: LoraGradients | undefined): Float64Array {
  const { w, nIn, nOut } = l;
  const dx = new Float64Array(n * nIn);
  for (let t = 0; t < n; t++) {
    for (let o = 0; o < nOut; o++) {
      const g = dy[t * nOut + o]!;
      if (g === 0) continue;
      for (let i = 0; i < nIn; i++) dx[t * nIn + i] = dx[t * nIn + i]! + w[o * nIn + i]! * g;
    }
  }
  if (l.lora && u) {
    const { target: { a, b, rank }, s, index } = l.lora;
    const g = grads?.[index];
    const bty = new Float64Array(rank);
    for (let t = 0; t < n; t++) {
      bty.fill(0);
      for (let o = 0; o < nOut; o++) {
        const d = dy[t * nOut + o]!;
        for (let r = 0; r < rank; r++) {
          bty[r] = bty[r]! + b[o * rank + r]! * d;
          if (g) g.b[o * rank + r] = g.b[o * rank + r]! + s * d * u[t * rank + r]!;
        }
      }
      for (let r = 0; r < rank; r++) {
        const c = s * bty[r]!;
        for (let i = 0; i < nIn; i++) {
          if (g) g.a[r * nIn + i] = g.a[r * nIn + i]! + c * x[t * nIn + i]!;
          dx[t * nIn + i] = dx[t * nIn + i]! + c * a[r * nIn + i]!;
        }
      }
    }
  }
  return dx;
}

/** [n][sum widths] rows split into one [n][width] array per part (a fused projection's outputs). */
function splitColumns(y: Float64Array, n: number, widths: readonly number[]): Float64Array[] {
  const total = widths.reduce((x, w) => x + w, 0);
  let from = 0;
  return widths.map((w) => {
    const out = new Float64Array(n * w);
    for (let t = 0; t < n; t++) out.set(y.subarray(t * total + from, t * total + from + w), t * w);
    from += w;
    return out;
  });
}

/** The inverse of {@link splitColumns}. */
function joinColumns(parts: readonly Float64Array[], n: number, widths: readonly number[]): Float64Array {
  const total = widths.reduce((x, w) => x + w, 0);
  const out = new Float64Array(n * total);
  let from = 0;
  for (const [k, w] of widths.entries()) {
    for (let t = 0; t < n; t++) out.set(parts[k]!.subarray(t * w, (t + 1) * w), t * total + from);
    from += w;
  }
  return out;
}

// ---------------------------------------------------------------- the pass

export interface TrainingPass {
  /** Mean next-token cross-entropy over the window. */
  loss: number;
  /** [n][nVocab], as referenceForward gives them. */
  logits: Float64Array;
  /** Present when asked for. */
  grads?: LoraGradients;
}

/** Loss and logits only (the finite-difference side of a gradient check). */
export function referenceTrainingLoss(model: ReferenceModel, lora: TrainableLora, tokens: readonly number[], options: TrainingOptions = {}): TrainingPass {
  return trainingPass(model, lora, tokens, options, false);
}

/** Loss, logits and d loss / d (A, B) for every target. */
export function referenceTrainingStep(model: ReferenceModel, lora: TrainableLora, tokens: readonly number[], options: TrainingOptions = {}): Required<TrainingPass> {
  return trainingPass(model, lora, tokens, options, true) as Required<TrainingPass>;
}

function trainingPass(model: ReferenceModel, lora: TrainableLora, tokens: readonly number[], options: TrainingOptions, wantGrads: boolean): TrainingPass {
  const c = model.config;
  if (lora.architecture !== c.architecture) throw new UnsupportedTrainingError(`the adapter is for ${lora.architecture}, the model is ${c.architecture}`);
  if (c.moe) throw new UnsupportedTrainingError(`${c.architecture}: mixture-of-experts FFNs are not differentiated by this reference`);
  const n = tokens.length;
  if (n < 2) throw new RangeError('a training window needs at least 2 tokens');
  for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} outside the vocabulary of ${c.nVocab}`);
  const { nEmbd, nHead, nHeadKv, headDimK, headDimV, qDim, kvDimK, kvDimV, gqaGroup, nVocab, normEps: eps } = c;
  const oDim = nHead * headDimV;

  const weight = (name: string) => {
    const w = model.weights.get(name);
    if (!w) throw new Error(`reference model has no tensor ${name}`);
    return w;
  };
  const byBase = new Map(lora.targets.map((t, index) => [t.base, { target: t, index, s: lora.alpha ? (lora.scale * lora.alpha) / t.rank : lora.scale }]));
  const used = new Set<string>();
  const linear = (name: string, nIn: number, nOut: number, wName = name, biasName?: string): Linear => {
    const l = byBase.get(name);
    if (l) {
      if (l.target.nIn !== nIn || l.target.nOut !== nOut) throw new UnsupportedTrainingError(`${name}: adapter is ${l.target.nIn} -> ${l.target.nOut}, the tensor ${nIn} -> ${nOut}`);
      used.add(name);
    }
    return { w: weight(wName), nIn, nOut, bias: biasName ? model.weights.get(biasName) : undefined, lora: l };
  };
  const grads: LoraGradients | undefined = wantGrads ? lora.targets.map((t) => ({ a: new Float64Array(t.a.length), b: new Float64Array(t.b.length) })) : undefined;

  // Rope tables per position, as the reference's session computes them.
  const ropeContext = options.ropeContext ?? llamaCppContextSize(n);
  const factors =
    c.rope.factors === 'freqs'
      ? weight('rope_freqs.weight')
      : c.rope.factors === 'long-short'
        ? model.weights.get(ropeContext > c.rope.nCtxOrig ? 'rope_factors_long.weight' : 'rope_factors_short.weight')
        : undefined;
  const ropeTables = (swa: boolean) => {
    const cos: Float64Array[] = [];
    const sin: Float64Array[] = [];
    for (let t = 0; t < n; t++) {
      cos.push(new Float64Array(c.rope.nRot / 2));
      sin.push(new Float64Array(c.rope.nRot / 2));
      ropeCache(c, t, swa ? c.rope.freqBaseSwa : c.rope.freqBase, swa ? c.rope.freqScaleSwa : c.rope.freqScale, factors, cos[t]!, sin[t]!);
    }
    return { cos, sin, neg: sin.map((s) => s.map((v) => -v)) };
  };

  type Names = (base: string, suffix?: 'weight' | 'bias') => string;
  /** q, k, v from separate projections, or split from phi3's fused one (q | k | v), with the backward of either. */
  const projectQkv = (L: Names, h1: Float64Array) => {
    if (c.tensors.fusedQkv) {
      const width = qDim + kvDimK + kvDimV;
      const l = linear(L('attn_qkv'), nEmbd, width, L('attn_qkv'), L('attn_qkv', 'bias'));
      const f = linearForward(l, h1, n);
      const widths = [qDim, kvDimK, kvDimV];
      const [qRaw, kRaw, v] = splitColumns(f.y, n, widths);
      const back = (dq: Float64Array, dk: Float64Array, dv: Float64Array) => linearBackward(l, h1, f.u, joinColumns([dq, dk, dv], n, widths), n, grads);
      return { qRaw: qRaw!, kRaw: kRaw!, v: v!, back };
    }
    const lq = linear(L('attn_q'), nEmbd, qDim, L('attn_q'), L('attn_q', 'bias'));
    const lk = linear(L('attn_k'), nEmbd, kvDimK, L('attn_k'), L('attn_k', 'bias'));
    const lv = linear(L('attn_v'), nEmbd, kvDimV, L('attn_v'), L('attn_v', 'bias'));
    const fq = linearForward(lq, h1, n);
    const fk = linearForward(lk, h1, n);
    const fv = linearForward(lv, h1, n);
    const back = (dq: Float64Array, dk: Float64Array, dv: Float64Array) => {
      const d = linearBackward(lq, h1, fq.u, dq, n, grads);
      const dkx = linearBackward(lk, h1, fk.u, dk, n, grads);
      const dvx = linearBackward(lv, h1, fv.u, dv, n, grads);
      for (let i = 0; i < d.length; i++) d[i] = d[i]! + dkx[i]! + dvx[i]!;
      return d;
    };
    return { qRaw: fq.y, kRaw: fk.y, v: fv.y, back };
  };
  /** Gate and up from separate projections, or from phi3's ffn_up yielding [gate | up], with the backward of either. */
  const projectGateUp = (L: Names, h2: Float64Array, nFf: number) => {
    if (c.fusedGateUp) {
      const l = linear(L('ffn_up'), nEmbd, 2 * nFf, L('ffn_up'), L('ffn_up', 'bias'));
      const f = linearForward(l, h2, n);
      const [gatePre, upV] = splitColumns(f.y, n, [nFf, nFf]);
      const back = (dGate: Float64Array, dUp: Float64Array) => linearBackward(l, h2, f.u, joinColumns([dGate, dUp], n, [nFf, nFf]), n, grads);
      return { gatePre: gatePre!, upV: upV!, back };
    }
    const lUp = linear(L('ffn_up'), nEmbd, nFf, L('ffn_up'), L('ffn_up', 'bias'));
    const lGate = linear(L('ffn_gate'), nEmbd, nFf, L('ffn_gate'), L('ffn_gate', 'bias'));
    const fUp = linearForward(lUp, h2, n);
    const fGate = linearForward(lGate, h2, n);
    const back = (dGate: Float64Array, dUp: Float64Array) => {
      const d = linearBackward(lUp, h2, fUp.u, dUp, n, grads);
      const dg = linearBackward(lGate, h2, fGate.u, dGate, n, grads);
      for (let i = 0; i < d.length; i++) d[i] = d[i]! + dg[i]!;
      return d;
    };
    return { gatePre: fGate.y, upV: fUp.y, back };
  };

  /**
   * x_out = x_res + residualScale * post(W input) (post: gemma2's post-norm, when the model has
   * them); `back` maps d x_out to d input (the residual's share is d x_out itself).
   */
  const residualBranch = (name: string, nIn: number, input: Float64Array, postNorm: string, xRes: Float64Array) => {
    const l = linear(name, nIn, nEmbd, name, name.replace(/\.weight$/, '.bias'));
    const f = linearForward(l, input, n);
    let out = f.y;
    let rPost: Float64Array | undefined;
    if (c.postNorms) {
      out = new Float64Array(n * nEmbd);
      rPost = rmsNormRows(f.y, n, nEmbd, eps, weight(postNorm), out);
    }
    const xOut = new Float64Array(n * nEmbd);
    for (let i = 0; i < xOut.length; i++) xOut[i] = xRes[i]! + out[i]! * c.residualScale;
    const back = (dOut: Float64Array) => {
      const d = dOut.map((g) => g * c.residualScale);
      if (rPost) rmsNormRowsBackward(f.y, rPost, nEmbd, weight(postNorm), d, d);
      return linearBackward(l, input, f.u, d, n, grads);
    };
    return { xOut, back };
  };

  // Embeddings: a lookup, no gradient.
  const embd = weight('token_embd.weight');
  let x = new Float64Array(n * nEmbd);
  for (let t = 0; t < n; t++) for (let i = 0; i < nEmbd; i++) x[t * nEmbd + i] = embd[tokens[t]! * nEmbd + i]! * c.embeddingScale;

  const act = c.activation === 'gelu' ? gelu : silu;
  const actGrad = c.activation === 'gelu' ? geluGrad : siluGrad;
  const tapes: (() => void)[] = []; // backward closures, run in reverse; each reads and writes `dx`
  let dx: Float64Array = new Float64Array(0);

  for (let il = 0; il < c.nLayer; il++) {
    const L = (base: string, suffix: 'weight' | 'bias' = 'weight') => `blk.${il}.${base}.${suffix}`;
    const layer = c.layers[il]!;
    const swa = layer.slidingWindow;
    const rope = c.rope.enabled ? ropeTables(swa) : undefined;

    // --- attention
    const xIn = x;
    const attnNormW = weight(L('attn_norm'));
    const h1 = new Float64Array(n * nEmbd);
    const r1 = rmsNormRows(xIn, n, nEmbd, eps, attnNormW, h1);
    const { qRaw, kRaw, v, back: qkvBack } = projectQkv(L, h1);
    let q = qRaw;
    let k = kRaw;
    const qSeg = c.qkNormOver === 'row' ? qDim : headDimK;
    const kSeg = c.qkNormOver === 'row' ? kvDimK : headDimK;
    let rq: Float64Array | undefined;
    let rk: Float64Array | undefined;
    if (c.qkNorm) {
      q = new Float64Array(n * qDim);
      k = new Float64Array(n * kvDimK);
      rq = rmsNormRows(qRaw, (n * qDim) / qSeg, qSeg, eps, weight(L('attn_q_norm')), q);
      rk = rmsNormRows(kRaw, (n * kvDimK) / kSeg, kSeg, eps, weight(L('attn_k_norm')), k);
    } else {
      q = Float64Array.from(qRaw);
      k = Float64Array.from(kRaw);
    }
    if (rope) {
      for (let t = 0; t < n; t++) {
        applyRope(c, q, t * qDim, nHead, headDimK, rope.cos[t]!, rope.sin[t]!);
        applyRope(c, k, t * kvDimK, nHeadKv, headDimK, rope.cos[t]!, rope.sin[t]!);
      }
    }
    // Causal attention; probabilities (and softcapped scores) kept for the backward pass.
    const probs = new Float64Array(n * nHead * n);
    const capped = c.attnSoftcap ? new Float64Array(n * nHead * n) : undefined;
    const attn = new Float64Array(n * oDim);
    const visible = (t: number, j: number) => j <= t && !(swa && t - j >= c.slidingWindow);
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < nHead; h++) {
        const kvh = Math.floor(h / gqaGroup);
        const row = (t * nHead + h) * n;
        let max = -Infinity;
        for (let j = 0; j <= t; j++) {
          if (!visible(t, j)) continue;
          let dot = 0;
          for (let d = 0; d < headDimK; d++) dot += q[t * qDim + h * headDimK + d]! * k[j * kvDimK + kvh * headDimK + d]!;
          let s = dot * c.attentionScale;
          if (capped) {
            s = c.attnSoftcap * Math.tanh(s / c.attnSoftcap);
            capped[row + j] = s;
          }
          probs[row + j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) {
          const e = visible(t, j) ? Math.exp(probs[row + j]! - max) : 0;
          probs[row + j] = e;
          sum += e;
        }
        for (let j = 0; j <= t; j++) {
          const p = (probs[row + j] = probs[row + j]! / sum);
          if (p === 0) continue;
          for (let d = 0; d < headDimV; d++) attn[t * oDim + h * headDimV + d] = attn[t * oDim + h * headDimV + d]! + p * v[j * kvDimV + kvh * headDimV + d]!;
        }
      }
    }
    const attnBranch = residualBranch(L('attn_output'), oDim, attn, L('post_attention_norm'), xIn);
    const xMid = attnBranch.xOut;

    // --- FFN
    const nFf = layer.nFf;
    const ffnNormW = weight(L('ffn_norm'));
    const h2 = new Float64Array(n * nEmbd);
    const r2 = rmsNormRows(xMid, n, nEmbd, eps, ffnNormW, h2);
    const { gatePre, upV, back: gateUpBack } = projectGateUp(L, h2, nFf);
    const glu = new Float64Array(n * nFf);
    for (let i = 0; i < glu.length; i++) glu[i] = act(gatePre[i]!) * upV[i]!;
    const ffnBranch = residualBranch(L('ffn_down'), nFf, glu, L('post_ffw_norm'), xMid);
    const xOut = ffnBranch.xOut;
    x = xOut;

    tapes.push(() => {
      // FFN: x_out = x_mid + rs * post(down(act(gate) * up))
      const dxMid = Float64Array.from(dx);
      const dGlu = ffnBranch.back(dx);
      const dUp = new Float64Array(n * nFf);
      const dGate = new Float64Array(n * nFf);
      for (let i = 0; i < dGlu.length; i++) {
        dUp[i] = dGlu[i]! * act(gatePre[i]!);
        dGate[i] = dGlu[i]! * upV[i]! * actGrad(gatePre[i]!);
      }
      const dh2 = gateUpBack(dGate, dUp);
      rmsNormRowsBackward(xMid, r2, nEmbd, ffnNormW, dh2, dh2);
      for (let i = 0; i < dxMid.length; i++) dxMid[i] = dxMid[i]! + dh2[i]!;

      // Attention: x_mid = x_in + rs * post(Wo attn)
      const dxIn = Float64Array.from(dxMid);
      const dAttn = attnBranch.back(dxMid);
      const dq = new Float64Array(n * qDim);
      const dk = new Float64Array(n * kvDimK);
      const dv = new Float64Array(n * kvDimV);
      const dp = new Float64Array(n);
      for (let t = 0; t < n; t++) {
        for (let h = 0; h < nHead; h++) {
          const kvh = Math.floor(h / gqaGroup);
          const row = (t * nHead + h) * n;
          const oOff = t * oDim + h * headDimV;
          let pdp = 0;
          for (let j = 0; j <= t; j++) {
            const p = probs[row + j]!;
            if (!visible(t, j)) continue;
            let dot = 0;
            for (let d = 0; d < headDimV; d++) {
              dot += dAttn[oOff + d]! * v[j * kvDimV + kvh * headDimV + d]!;
              dv[j * kvDimV + kvh * headDimV + d] = dv[j * kvDimV + kvh * headDimV + d]! + p * dAttn[oOff + d]!;
            }
            dp[j] = dot;
            pdp += p * dot;
          }
          for (let j = 0; j <= t; j++) {
            if (!visible(t, j)) continue;
            let ds = probs[row + j]! * (dp[j]! - pdp);
            if (capped) {
              const th = capped[row + j]! / c.attnSoftcap;
              ds *= 1 - th * th;
            }
            const dz = ds * c.attentionScale;
            for (let d = 0; d < headDimK; d++) {
              const qi = t * qDim + h * headDimK + d;
              const ki = j * kvDimK + kvh * headDimK + d;
              dq[qi] = dq[qi]! + dz * k[ki]!;
              dk[ki] = dk[ki]! + dz * q[qi]!;
            }
          }
        }
      }
      // Rope is a rotation: its transpose turns by the opposite angle.
      if (rope) {
        for (let t = 0; t < n; t++) {
          applyRope(c, dq, t * qDim, nHead, headDimK, rope.cos[t]!, rope.neg[t]!);
          applyRope(c, dk, t * kvDimK, nHeadKv, headDimK, rope.cos[t]!, rope.neg[t]!);
        }
      }
      if (rq && rk) {
        rmsNormRowsBackward(qRaw, rq, qSeg, weight(L('attn_q_norm')), dq, dq);
        rmsNormRowsBackward(kRaw, rk, kSeg, weight(L('attn_k_norm')), dk, dk);
      }
      const dh1 = qkvBack(dq, dk, dv);
      rmsNormRowsBackward(xIn, r1, nEmbd, attnNormW, dh1, dh1);
      for (let i = 0; i < dxIn.length; i++) dxIn[i] = dxIn[i]! + dh1[i]!;
      dx = dxIn;
    });
  }

  // --- final norm, output, softcap, divisor, loss
  const outNormW = weight('output_norm.weight');
  const hf = new Float64Array(n * nEmbd);
  const rf = rmsNormRows(x, n, nEmbd, eps, outNormW, hf);
  const lOut = linear('output.weight', nEmbd, nVocab, c.tensors.tiedEmbeddings ? 'token_embd.weight' : 'output.weight', 'output.bias');
  const fOut = linearForward(lOut, hf, n);
  const logits = Float64Array.from(fOut.y);
  if (c.finalSoftcap) for (let i = 0; i < logits.length; i++) logits[i] = c.finalSoftcap * Math.tanh(logits[i]! / c.finalSoftcap);
  if (c.logitDivisor !== 1) for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / c.logitDivisor;
  const loss = nextTokenCrossEntropy(logits, nVocab, tokens);
  for (const t of lora.targets) if (!used.has(t.base)) throw new UnsupportedTrainingError(`${t.base}: this reference does not train an adapter on that tensor`);
  if (!grads) return { loss, logits };

  // d loss / d logits = (softmax - onehot) / (n - 1) for the predicting rows.
  const dLogits = new Float64Array(n * nVocab);
  for (let t = 0; t < n - 1; t++) {
    const lse = logSumExp(logits, t * nVocab, nVocab);
    for (let i = 0; i < nVocab; i++) dLogits[t * nVocab + i] = Math.exp(logits[t * nVocab + i]! - lse) / (n - 1);
    dLogits[t * nVocab + tokens[t + 1]!] = dLogits[t * nVocab + tokens[t + 1]!]! - 1 / (n - 1);
  }
  for (let i = 0; i < dLogits.length; i++) {
    let g = dLogits[i]! / c.logitDivisor;
    if (c.finalSoftcap) {
      const th = (logits[i]! * c.logitDivisor) / c.finalSoftcap;
      g *= 1 - th * th;
    }
    dLogits[i] = g;
  }
  const dhf = linearBackward(lOut, hf, fOut.u, dLogits, n, grads);
  rmsNormRowsBackward(x, rf, nEmbd, outNormW, dhf, dhf);
  dx = dhf;
  for (let i = tapes.length - 1; i >= 0; i--) tapes[i]!();
  return { loss, logits, grads };
}
