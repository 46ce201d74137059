/**
 * One training step of a LoRA adapter on a frozen base: the forward pass with the adapter (the
 * base's matrices read in their GGUF types), the weighted next-token cross-entropy over a window,
 * and the backward pass through the final norm, the output, every layer's FFN (SwiGLU), residuals,
 * attention (causal softmax, GQA, RoPE, qwen3's q/k norms, qwen2's biases) and RMS norms, down to
 * the adapter's A and B. Embeddings are not trained. Written against {@link TrainOps}.
 *
 * Activation memory: with `recompute`, only each layer's input is kept during the forward pass and
 * the layer is run again just before its backward pass, so the tape holds one layer at a time
 * (plus the inputs: n * nEmbd per layer) instead of every layer's intermediates. Tensors are freed
 * as soon as the step is done with them, so a device implementation can reuse their memory.
 *
 * The step is async because of its one read: the per-token losses once the window has run (and
 * the logits, when asked for); everything else stays in the ops' tensors.
 */
import type { LoraAdapterData } from '../model/lora/adapter-data.ts';
import { loraScale } from '../model/lora/adapter-file.ts';
import { matrixRow, type TrainingBase } from './base.ts';
import { TrainingDataError, UnsupportedTrainingError } from './errors.ts';
import type { AttentionShape, FrozenMatrix, LoraPair, RopeTable, TrainOps, Vec } from './ops.ts';

/** d loss / d A and d loss / d B, one entry per adapter target, in its order. */
export type LoraGrads<T = Vec> = { a: T; b: T }[];

/** An adapter's A and B as the ops' tensors, one entry per target, in its order. */
export type LoraTensors<T = Vec> = { a: T; b: T }[];

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
export function zeroGrads<T>(ops: TrainOps<T>, adapter: LoraAdapterData): LoraGrads<T> {
  return adapter.targets.map((t) => ({ a: ops.alloc(t.a.length), b: ops.alloc(t.b.length) }));
}

/** The adapter's A and B uploaded (on the CPU: the adapter's own arrays). Upload once per optimizer step and pass as `lora`. */
export function uploadAdapter<T>(ops: TrainOps<T>, adapter: LoraAdapterData): LoraTensors<T> {
  return adapter.targets.map((t) => ({ a: ops.upload(t.a), b: ops.upload(t.b) }));
}

interface Linear<T> {
  w: FrozenMatrix;
  bias: Float32Array | undefined;
  lora: { pair: LoraPair<T>; index: number } | undefined;
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
export async function trainingStep<T>(
  ops: TrainOps<T>,
  base: TrainingBase,
  adapter: LoraAdapterData,
  tokens: readonly number[],
  grads: LoraGrads<T> | undefined,
  options: StepOptions & { weights?: ArrayLike<number>; logits?: (logits: Vec) => void; lora?: LoraTensors<T> } = {},
): Promise<StepResult> {
  const c = base.config;
  const n = tokens.length;
  if (n < 2) throw new TrainingDataError('a training window needs at least 2 tokens', { tokens: n });
  for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new TrainingDataError(`token ${t} outside the vocabulary of ${c.nVocab}`, { token: t });
  if (adapter.architecture !== c.architecture) throw new UnsupportedTrainingError(`the adapter is for ${adapter.architecture}, the model is ${c.architecture}`, { adapter: adapter.architecture });
  const wantGrads = !options.lossOnly;
  if (wantGrads && (!grads || grads.length !== adapter.targets.length)) throw new RangeError('trainingStep needs one gradient entry per adapter target');
  const gradScale = options.gradScale ?? 1;
  const { nEmbd, nHead, nHeadKv, headDimK, headDimV, qDim, kvDimK, nVocab, normEps: eps } = c;

  if (options.lora && options.lora.length !== adapter.targets.length) throw new RangeError('trainingStep needs one uploaded A and B per adapter target');
  const lora = options.lora ?? uploadAdapter(ops, adapter);
  const byBase = new Map<string, { pair: LoraPair<T>; index: number }>();
  for (const [index, t] of adapter.targets.entries()) {
    if (t.embedding) throw new UnsupportedTrainingError(`${t.base}: adapted embeddings are not trained`, { tensor: t.base });
    const w = base.matrices.get(t.base);
    if (!w || /^token_embd/.test(t.base)) throw new UnsupportedTrainingError(`${t.base}: the model has no such projection to adapt`, { tensor: t.base });
    if (w.nIn !== t.nIn || w.nOut !== t.nOut) throw new UnsupportedTrainingError(`${t.base}: the adapter is ${t.nIn} -> ${t.nOut}, the tensor ${w.nIn} -> ${w.nOut}`, { tensor: t.base });
    byBase.set(t.base, { pair: { rank: t.rank, a: lora[index]!.a, b: lora[index]!.b, s: loraScale(adapter.alpha, t.rank, 1) }, index });
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
  const linear = (name: string, wName = name): Linear<T> => ({
    w: matrix(wName),
    bias: base.vectors.get(wName.replace(/\.weight$/, '.bias')),
    lora: byBase.get(name),
  });
  const linearForward = (l: Linear<T>, x: T) => {
    const y = ops.matmul(l.w, x, n, l.bias);
    const u = l.lora ? ops.loraForward(l.lora.pair, l.w.nIn, l.w.nOut, x, n, y) : undefined;
    return { y, u };
  };
  /** Adds d x into dx and the adapter's gradients into grads. */
  const linearBackward = (l: Linear<T>, x: T, u: T | undefined, dy: T, dx: T) => {
    ops.matmulBackward(l.w, dy, n, dx);
    if (l.lora && u) ops.loraBackward(l.lora.pair, l.w.nIn, l.w.nOut, x, u, dy, n, grads![l.lora.index]!, dx);
  };

  let liveBytes = 0;
  let peakBytes = 0;
  const track = (bytes: number) => {
    liveBytes += bytes;
    peakBytes = Math.max(peakBytes, liveBytes);
  };
  const sizeOf = (...vs: (T | undefined)[]) => vs.reduce((s, v) => s + (v === undefined ? 0 : ops.byteLength(v)), 0);

  const rope = c.rope.enabled ? ropeTable(base, n) : undefined;
  const shape: AttentionShape = { n, nHead, nHeadKv, headDimK, headDimV, scale: c.attentionScale };

  const layerForward = (il: number, x: T) => {
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
    let qn: { y: T; r: T } | undefined;
    let kn: { y: T; r: T } | undefined;
    if (c.qkNorm) {
      qn = ops.rmsNorm(fq.y, n * nHead, headDimK, eps, vector(L('attn_q_norm')));
      kn = ops.rmsNorm(fk.y, n * nHeadKv, headDimK, eps, vector(L('attn_k_norm')));
      q = qn.y;
      k = kn.y;
    } else {
      q = ops.copy(fq.y);
      k = ops.copy(fk.y);
    }
    if (rope) {
      ops.rope(q, n, nHead, headDimK, rope, false);
      ops.rope(k, n, nHeadKv, headDimK, rope, false);
    }
    const att = ops.attention(q, k, fv.y, shape);
    const lo = linear(L('attn_output'));
    const fo = linearForward(lo, att.out);
    const xMid = ops.copy(x);
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
    const xOut = ops.copy(xMid);
    ops.addInPlace(xOut, fd.y);
    const tape = { x, attnNorm, n1, lq, lk, lv, fq, fk, fv, qn, kn, q, k, att, lo, fo, xMid, ffnNorm, n2, lg, lu, fg, fu, glu, ld, fd };
    // Every tensor the tape holds but its input x (q and k are qn.y and kn.y under q/k norms).
    const held = [...new Set([n1.y, n1.r, fq.y, fq.u, fk.y, fk.u, fv.y, fv.u, qn?.y, qn?.r, kn?.y, kn?.r, q, k, att.out, att.probs, fo.y, fo.u, xMid, n2.y, n2.r, fg.y, fg.u, fu.y, fu.u, glu, fd.y, fd.u])].filter((v): v is T => v !== undefined);
    return { xOut, tape, held, bytes: sizeOf(...held) };
  };
  type Tape = ReturnType<typeof layerForward>['tape'];

  /** d x_in from d x_out, through the layer whose tape this is. */
  const layerBackward = (il: number, t: Tape, dOut: T): T => {
    // FFN: x_out = x_mid + down(silu(gate) * up)
    const dGlu = ops.alloc(ops.length(t.glu));
    linearBackward(t.ld, t.glu, t.fd.u, dOut, dGlu);
    const { dGate, dUp } = ops.swigluBackward(t.fg.y, t.fu.y, dGlu);
    const dh2 = ops.alloc(n * nEmbd);
    linearBackward(t.lg, t.n2.y, t.fg.u, dGate, dh2);
    linearBackward(t.lu, t.n2.y, t.fu.u, dUp, dh2);
    const dxMid = ops.rmsNormBackward(t.xMid, t.n2.r, nEmbd, t.ffnNorm, dh2);
    ops.addInPlace(dxMid, dOut);
    ops.free(dGlu, dGate, dUp, dh2);
    // Attention: x_mid = x_in + Wo attn(rope(q), rope(k), v)
    const dAtt = ops.alloc(ops.length(t.att.out));
    linearBackward(t.lo, t.att.out, t.fo.u, dxMid, dAtt);
    const { dq, dk, dv } = ops.attentionBackward(t.q, t.k, t.fv.y, t.att.probs, dAtt, shape);
    ops.free(dAtt);
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
    ops.free(...new Set([dq, dk, dv, dqRaw, dkRaw, dh1, dxMid]));
    return dxIn;
  };

  // Embeddings: a lookup, no gradient.
  const embd = matrix('token_embd.weight');
  const embedded = new Float32Array(n * nEmbd);
  for (let t = 0; t < n; t++) matrixRow(embd, tokens[t]!, embedded.subarray(t * nEmbd, (t + 1) * nEmbd));
  let x = ops.upload(embedded);
  track(ops.byteLength(x));

  const inputs: T[] = [];
  const tapes: (ReturnType<typeof layerForward> | undefined)[] = [];
  for (let il = 0; il < c.nLayer; il++) {
    inputs.push(x);
    const f = layerForward(il, x);
    track(f.bytes + ops.byteLength(f.xOut));
    if (options.recompute || options.lossOnly) {
      ops.free(...f.held);
      if (options.lossOnly) ops.free(x);
      liveBytes -= f.bytes;
      tapes.push(undefined);
    } else {
      tapes.push(f);
    }
    x = f.xOut;
  }

  const outNorm = vector(c.outputNorm);
  const nf = ops.rmsNorm(x, n, nEmbd, eps, outNorm);
  const lOut = linear('output.weight', c.tensors.tiedEmbeddings ? 'token_embd.weight' : 'output.weight');
  const fOut = linearForward(lOut, nf.y);
  track(sizeOf(nf.y, nf.r, fOut.y, fOut.u));
  if (options.logits) options.logits((await ops.read([fOut.y]))[0]!);
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
  const ce = ops.crossEntropy(fOut.y, n, nVocab, targets, w, gradScale);
  ops.free(fOut.y);
  track(ops.byteLength(ce.dLogits));
  const lossSum = async () => {
    const rows = (await ops.read([ce.loss]))[0]!;
    ops.free(ce.loss);
    let sum = 0;
    for (let t = 0; t < n; t++) sum += rows[t]!;
    return sum;
  };
  if (!wantGrads || weight === 0) {
    ops.free(ce.dLogits, nf.y, nf.r, fOut.u, x, ...inputs);
    for (const t of tapes) if (t) ops.free(...t.held);
    return { lossSum: await lossSum(), weight, activationBytes: peakBytes };
  }

  const dhf = ops.alloc(n * nEmbd);
  linearBackward(lOut, nf.y, fOut.u, ce.dLogits, dhf);
  let dx = ops.rmsNormBackward(x, nf.r, nEmbd, outNorm, dhf);
  ops.free(ce.dLogits, dhf, nf.y, nf.r, fOut.u, x);
  for (let il = c.nLayer - 1; il >= 0; il--) {
    const kept = tapes[il];
    const f = kept ?? layerForward(il, inputs[il]!);
    if (!kept) {
      ops.free(f.xOut);
      track(f.bytes);
    }
    const dIn = layerBackward(il, f.tape, dx);
    ops.free(dx, ...f.held, inputs[il]);
    liveBytes -= f.bytes;
    dx = dIn;
    tapes[il] = undefined;
  }
  ops.free(dx);
  return { lossSum: await lossSum(), weight, activationBytes: peakBytes };
}
