/**
 * One training step of a LoRA adapter on a frozen base: the forward pass with the adapter (the
 * base's matrices read in their GGUF types), the weighted next-token cross-entropy over a window,
 * and the backward pass through the final norm, the output, every layer's FFN (SwiGLU), residuals,
 * attention (causal softmax, GQA, RoPE, qwen3's q/k norms, qwen2's biases) and RMS norms, down to
 * the adapter's A and B. Embeddings are not trained. Written against {@link TrainOps}.
 *
 * Activation memory: with `recompute`, only each layer's input is kept during the forward pass and
 * the layer is run again just before its backward pass, so the tape holds one layer at a time
 * (plus the inputs: n * nEmbd per layer) instead of every layer's intermediates.
 */
import type { LoraAdapterData } from '../model/lora/adapter-data.ts';
import { loraScale } from '../model/lora/adapter-file.ts';
import { matrixRow, type TrainingBase } from './base.ts';
import { TrainingDataError, UnsupportedTrainingError } from './errors.ts';
import type { AttentionShape, FrozenMatrix, LoraPair, RopeTable, TrainOps, Vec } from './ops.ts';

/** d loss / d A and d loss / d B, one entry per adapter target, in its order. */
export type LoraGrads = { a: Vec; b: Vec }[];

export interface StepOptions {
  /** Keep only each layer's input and recompute the layer in the backward pass (default false). */
  recompute?: boolean;
  /** Multiplies the gradient (not the loss): 1 / (the batch's total weight) gives the batch mean's gradient. */
  gradScale?: number;
  /** Forward and loss only. */
  lossOnly?: boolean;
}

export interface StepResult {
  /** Weighted sum of the per-token losses. */
  lossSum: number;
  /** Sum of the weights (the number of predicted tokens, for an all-ones mask). */
  weight: number;
  /** Peak bytes of activations this step held at once (its own accounting). */
  activationBytes: number;
}

/** Zeroed gradient accumulators for an adapter. */
export function zeroGrads(ops: TrainOps, adapter: LoraAdapterData): LoraGrads {
  return adapter.targets.map((t) => ({ a: ops.alloc(t.a.length), b: ops.alloc(t.b.length) }));
}

interface Linear {
  w: FrozenMatrix;
  bias: Float32Array | undefined;
  lora: { pair: LoraPair; index: number } | undefined;
}

/** The ropes' cos and sin for positions 0..n-1 (llama.cpp's rope without YaRN: base^(-2i/nRot) / factor_i * freqScale, magnitude attnFactor). */
export function ropeTable(base: TrainingBase, n: number): RopeTable {
  const r = base.config.rope;
  const half = r.nRot / 2;
  const factors = r.factors === 'freqs' ? base.vectors.get('rope_freqs.weight') : undefined;
  const cos = new Float64Array(n * half);
  const sin = new Float64Array(n * half);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < half; i++) {
      const theta = ((t * Math.pow(r.freqBase, (-2 * i) / r.nRot)) / (factors ? factors[i]! : 1)) * r.freqScale;
      cos[t * half + i] = Math.cos(theta) * r.attnFactor;
      sin[t * half + i] = Math.sin(theta) * r.attnFactor;
    }
  }
  return { nRot: r.nRot, neox: r.type === 'neox', cos, sin };
}

/**
 * Runs the forward pass over `tokens` (one window starting at position 0) and, unless `lossOnly`,
 * adds d(loss sum)/d(A, B) times `gradScale` into `grads`. `weights[t]` weighs the prediction of
 * tokens[t + 1] by position t (length tokens.length - 1; all ones when absent; 0 masks a token out).
 */
export function trainingStep(
  ops: TrainOps,
  base: TrainingBase,
  adapter: LoraAdapterData,
  tokens: readonly number[],
  grads: LoraGrads | undefined,
  options: StepOptions & { weights?: ArrayLike<number>; logits?: (logits: Vec) => void } = {},
): StepResult {
  const c = base.config;
  const n = tokens.length;
  if (n < 2) throw new TrainingDataError('a training window needs at least 2 tokens', { tokens: n });
  for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new TrainingDataError(`token ${t} outside the vocabulary of ${c.nVocab}`, { token: t });
  if (adapter.architecture !== c.architecture) throw new UnsupportedTrainingError(`the adapter is for ${adapter.architecture}, the model is ${c.architecture}`, { adapter: adapter.architecture });
  const wantGrads = !options.lossOnly;
  if (wantGrads && (!grads || grads.length !== adapter.targets.length)) throw new RangeError('trainingStep needs one gradient entry per adapter target');
  const gradScale = options.gradScale ?? 1;
  const { nEmbd, nHead, nHeadKv, headDimK, headDimV, qDim, kvDimK, nVocab, normEps: eps } = c;

  const byBase = new Map<string, { pair: LoraPair; index: number }>();
  for (const [index, t] of adapter.targets.entries()) {
    if (t.embedding) throw new UnsupportedTrainingError(`${t.base}: adapted embeddings are not trained`, { tensor: t.base });
    const w = base.matrices.get(t.base);
    if (!w || /^token_embd/.test(t.base)) throw new UnsupportedTrainingError(`${t.base}: the model has no such projection to adapt`, { tensor: t.base });
    if (w.nIn !== t.nIn || w.nOut !== t.nOut) throw new UnsupportedTrainingError(`${t.base}: the adapter is ${t.nIn} -> ${t.nOut}, the tensor ${w.nIn} -> ${w.nOut}`, { tensor: t.base });
    byBase.set(t.base, { pair: { rank: t.rank, a: t.a, b: t.b, s: loraScale(adapter.alpha, t.rank, 1) }, index });
  }
  const matrix = (name: string) => {
    const m = base.matrices.get(name);
    if (!m) throw new UnsupportedTrainingError(`the model has no tensor ${name}`, { tensor: name });
    return m;
  };
  const vector = (name: string) => {
    const v = base.vectors.get(name);
    if (!v) throw new UnsupportedTrainingError(`the model has no tensor ${name}`, { tensor: name });
    return v;
  };
  const linear = (name: string, wName = name): Linear => ({
    w: matrix(wName),
    bias: base.vectors.get(wName.replace(/\.weight$/, '.bias')),
    lora: byBase.get(name),
  });
  const linearForward = (l: Linear, x: Vec) => {
    const y = ops.matmul(l.w, x, n, l.bias);
    const u = l.lora ? ops.loraForward(l.lora.pair, l.w.nIn, l.w.nOut, x, n, y) : undefined;
    return { y, u };
  };
  /** Adds d x into dx and the adapter's gradients into grads. */
  const linearBackward = (l: Linear, x: Vec, u: Vec | undefined, dy: Vec, dx: Vec) => {
    ops.matmulBackward(l.w, dy, n, dx);
    if (l.lora && u) ops.loraBackward(l.lora.pair, l.w.nIn, l.w.nOut, x, u, dy, n, grads![l.lora.index]!, dx);
  };

  let liveBytes = 0;
  let peakBytes = 0;
  const track = (bytes: number) => {
    liveBytes += bytes;
    peakBytes = Math.max(peakBytes, liveBytes);
  };
  const sizeOf = (...vs: (Vec | undefined)[]) => vs.reduce((s, v) => s + (v?.byteLength ?? 0), 0);

  const rope = c.rope.enabled ? ropeTable(base, n) : undefined;
  const shape: AttentionShape = { n, nHead, nHeadKv, headDimK, headDimV, scale: c.attentionScale };

  const layerForward = (il: number, x: Vec) => {
    const L = (name: string) => `blk.${il}.${name}.weight`;
    const attnNorm = vector(L('attn_norm'));
    const n1 = ops.rmsNorm(x, n, nEmbd, eps, attnNorm);
    const lq = linear(L('attn_q'));
    const lk = linear(L('attn_k'));
    const lv = linear(L('attn_v'));
    const fq = linearForward(lq, n1.y);
    const fk = linearForward(lk, n1.y);
    const fv = linearForward(lv, n1.y);
    let q = fq.y;
    let k = fk.y;
    let qn: { y: Vec; r: Vec } | undefined;
    let kn: { y: Vec; r: Vec } | undefined;
    if (c.qkNorm) {
      qn = ops.rmsNorm(fq.y, n * nHead, headDimK, eps, vector(L('attn_q_norm')));
      kn = ops.rmsNorm(fk.y, n * nHeadKv, headDimK, eps, vector(L('attn_k_norm')));
      q = qn.y;
      k = kn.y;
    } else {
      q = copy(ops, fq.y);
      k = copy(ops, fk.y);
    }
    if (rope) {
      ops.rope(q, n, nHead, headDimK, rope, false);
      ops.rope(k, n, nHeadKv, headDimK, rope, false);
    }
    const att = ops.attention(q, k, fv.y, shape);
    const lo = linear(L('attn_output'));
    const fo = linearForward(lo, att.out);
    const xMid = copy(ops, x);
    ops.addInPlace(xMid, fo.y);
    const ffnNorm = vector(L('ffn_norm'));
    const n2 = ops.rmsNorm(xMid, n, nEmbd, eps, ffnNorm);
    const lg = linear(L('ffn_gate'));
    const lu = linear(L('ffn_up'));
    const fg = linearForward(lg, n2.y);
    const fu = linearForward(lu, n2.y);
    const glu = ops.swiglu(fg.y, fu.y);
    const ld = linear(L('ffn_down'));
    const fd = linearForward(ld, glu);
    const xOut = copy(ops, xMid);
    ops.addInPlace(xOut, fd.y);
    const tape = { x, attnNorm, n1, lq, lk, lv, fq, fk, fv, qn, kn, q, k, att, lo, fo, xMid, ffnNorm, n2, lg, lu, fg, fu, glu, ld, fd };
    const bytes = sizeOf(n1.y, n1.r, fq.y, fq.u, fk.y, fk.u, fv.y, fv.u, qn?.y, qn?.r, kn?.y, kn?.r, q, k, att.out, att.probs, fo.y, fo.u, xMid, n2.y, n2.r, fg.y, fg.u, fu.y, fu.u, glu, fd.y, fd.u);
    return { xOut, tape, bytes };
  };
  type Tape = ReturnType<typeof layerForward>['tape'];

  /** d x_in from d x_out, through the layer whose tape this is. */
  const layerBackward = (il: number, t: Tape, dOut: Vec): Vec => {
    // FFN: x_out = x_mid + down(silu(gate) * up)
    const dGlu = ops.alloc(t.glu.length);
    linearBackward(t.ld, t.glu, t.fd.u, dOut, dGlu);
    const { dGate, dUp } = ops.swigluBackward(t.fg.y, t.fu.y, dGlu);
    const dh2 = ops.alloc(n * nEmbd);
    linearBackward(t.lg, t.n2.y, t.fg.u, dGate, dh2);
    linearBackward(t.lu, t.n2.y, t.fu.u, dUp, dh2);
    const dxMid = ops.rmsNormBackward(t.xMid, t.n2.r, nEmbd, t.ffnNorm, dh2);
    ops.addInPlace(dxMid, dOut);
    // Attention: x_mid = x_in + Wo attn(rope(q), rope(k), v)
    const dAtt = ops.alloc(t.att.out.length);
    linearBackward(t.lo, t.att.out, t.fo.u, dxMid, dAtt);
    const { dq, dk, dv } = ops.attentionBackward(t.q, t.k, t.fv.y, t.att.probs, dAtt, shape);
    if (rope) {
      ops.rope(dq, n, nHead, headDimK, rope, true);
      ops.rope(dk, n, nHeadKv, headDimK, rope, true);
    }
    const L = (name: string) => `blk.${il}.${name}.weight`;
    const dqRaw = t.qn ? ops.rmsNormBackward(t.fq.y, t.qn.r, headDimK, vector(L('attn_q_norm')), dq) : dq;
    const dkRaw = t.kn ? ops.rmsNormBackward(t.fk.y, t.kn.r, headDimK, vector(L('attn_k_norm')), dk) : dk;
    const dh1 = ops.alloc(n * nEmbd);
    linearBackward(t.lq, t.n1.y, t.fq.u, dqRaw, dh1);
    linearBackward(t.lk, t.n1.y, t.fk.u, dkRaw, dh1);
    linearBackward(t.lv, t.n1.y, t.fv.u, dv, dh1);
    const dxIn = ops.rmsNormBackward(t.x, t.n1.r, nEmbd, t.attnNorm, dh1);
    ops.addInPlace(dxIn, dxMid);
    return dxIn;
  };

  // Embeddings: a lookup, no gradient.
  const embd = matrix('token_embd.weight');
  let x = ops.alloc(n * nEmbd);
  const row = new Float32Array(nEmbd);
  for (let t = 0; t < n; t++) {
    matrixRow(embd, tokens[t]!, row);
    x.set(row, t * nEmbd);
  }
  track(x.byteLength);

  const inputs: Vec[] = [];
  const tapes: (Tape | undefined)[] = [];
  for (let il = 0; il < c.nLayer; il++) {
    inputs.push(x);
    const f = layerForward(il, x);
    track(f.bytes + f.xOut.byteLength);
    if (options.recompute || options.lossOnly) {
      liveBytes -= f.bytes;
      tapes.push(undefined);
    } else {
      tapes.push(f.tape);
    }
    x = f.xOut;
  }

  const outNorm = vector(c.outputNorm);
  const nf = ops.rmsNorm(x, n, nEmbd, eps, outNorm);
  const lOut = linear('output.weight', c.tensors.tiedEmbeddings ? 'token_embd.weight' : 'output.weight');
  const fOut = linearForward(lOut, nf.y);
  track(sizeOf(nf.y, nf.r, fOut.y, fOut.u));
  options.logits?.(fOut.y);
  const weights = options.weights ?? new Float64Array(n - 1).fill(1);
  if (weights.length !== n - 1) throw new TrainingDataError(`the loss weights have ${weights.length} entries for a window of ${n} tokens (want ${n - 1})`, { weights: weights.length, tokens: n });
  const targets = new Int32Array(n);
  const w = new Float64Array(n);
  let weight = 0;
  for (let t = 0; t < n - 1; t++) {
    targets[t] = tokens[t + 1]!;
    w[t] = weights[t]!;
    if (!(w[t]! >= 0)) throw new TrainingDataError(`loss weight ${t} is ${w[t]}; weights must be >= 0`, { index: t });
    weight += w[t]!;
  }
  const ce = ops.crossEntropy(fOut.y, n, nVocab, targets, w);
  track(ce.dLogits.byteLength);
  if (!wantGrads || weight === 0) return { lossSum: ce.loss, weight, activationBytes: peakBytes };

  if (gradScale !== 1) for (let i = 0; i < ce.dLogits.length; i++) ce.dLogits[i] = ce.dLogits[i]! * gradScale;
  const dhf = ops.alloc(n * nEmbd);
  linearBackward(lOut, nf.y, fOut.u, ce.dLogits, dhf);
  let dx = ops.rmsNormBackward(x, nf.r, nEmbd, outNorm, dhf);
  for (let il = c.nLayer - 1; il >= 0; il--) {
    let tape = tapes[il];
    if (!tape) {
      const f = layerForward(il, inputs[il]!);
      track(f.bytes);
      tape = f.tape;
      dx = layerBackward(il, tape, dx);
      liveBytes -= f.bytes;
    } else {
      dx = layerBackward(il, tape, dx);
    }
    tapes[il] = undefined;
  }
  return { lossSum: ce.loss, weight, activationBytes: peakBytes };
}

function copy(ops: TrainOps, v: Vec): Vec {
  const out = ops.alloc(v.length);
  out.set(v);
  return out;
}
