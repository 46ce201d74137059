/**
 * Perplexity as llama-perplexity computes it (tools/perplexity `perplexity`), plus KL divergence
 * and top-1 agreement against a reference model's distributions on the same windows.
 *
 * The text's tokens (with BOS when the vocabulary adds one) are cut into n_chunk = floor(n / n_ctx)
 * windows of n_ctx tokens; each window is evaluated from an empty cache with its first token
 * replaced by BOS (when the vocabulary adds one); positions first = n_ctx / 2 .. n_ctx - 2 are
 * scored, each predicting the next token of the original text. llama.cpp needs at least 2 * n_ctx
 * tokens. Per position: -(logit[tok] - max - log(sum exp(logit - max))), in float for the
 * differences and exp, in double for the sum and the total; perplexity = exp(total / count).
 */
import { QuantizeError } from './errors.ts';

const fr = Math.fround;

export interface PerplexityWindow {
  /** What to evaluate (n_ctx tokens, BOS first when the vocabulary adds one). */
  tokens: number[];
  /** The text's tokens at the same positions (the targets of the scored positions come from here). */
  original: number[];
}

/** The windows llama-perplexity evaluates; throws a QuantizeError when the text is too short. */
export function perplexityWindows(tokens: readonly number[], nCtx: number, bos: number | undefined): PerplexityWindow[] {
  if (!Number.isInteger(nCtx) || nCtx < 4) throw new QuantizeError(`the context size must be an integer of at least 4, got ${nCtx}`, { nCtx });
  if (tokens.length < 2 * nCtx) {
    throw new QuantizeError(`the text has ${tokens.length} tokens; perplexity with a context of ${nCtx} needs at least ${2 * nCtx}`, {
      tokens: tokens.length,
      nCtx,
    });
  }
  const windows: PerplexityWindow[] = [];
  for (let start = 0; start + nCtx <= tokens.length; start += nCtx) {
    const original = tokens.slice(start, start + nCtx);
    const evaluated = original.slice();
    if (bos !== undefined) evaluated[0] = bos;
    windows.push({ tokens: evaluated, original });
  }
  return windows;
}

/** The scored positions of a window of n_ctx tokens: [n_ctx / 2, n_ctx - 1). */
export function scoredPositions(nCtx: number): { first: number; count: number } {
  const first = Math.floor(nCtx / 2);
  return { first, count: nCtx - first - 1 };
}

/** log softmax of row `row` at `tok`, as llama-perplexity's log_softmax computes it. */
export function logSoftmaxAt(logits: Float32Array, row: number, nVocab: number, tok: number): number {
  const o = row * nVocab;
  let max = logits[o]!;
  for (let i = 1; i < nVocab; i++) if (logits[o + i]! > max) max = logits[o + i]!;
  let sum = 0;
  for (let i = 0; i < nVocab; i++) sum += fr(Math.exp(fr(logits[o + i]! - max)));
  return fr(logits[o + tok]! - max) - Math.log(sum);
}

/** Running totals of an evaluation; feed windows with {@link EvalTotals.addWindow}. */
export class EvalTotals {
  nll = 0;
  count = 0;
  kl = 0;
  top1 = 0;
  compared = 0;

  /**
   * The rows of a window's logits that are scored (see {@link scoredPositions}), copied: all a
   * reference model needs to keep of a window, a little under half of its rows.
   */
  static scoredRows(logits: Float32Array, nCtx: number, nVocab: number): Float32Array {
    const { first, count } = scoredPositions(nCtx);
    return logits.slice(first * nVocab, (first + count) * nVocab);
  }

  /**
   * Scores one window: `logits` are rows for positions 0..n_ctx-1 (all rows) of the evaluated
   * model; `reference`, when given, the reference model's {@link EvalTotals.scoredRows} of it.
   */
  addWindow(window: PerplexityWindow, logits: Float32Array, nVocab: number, reference?: Float32Array): void {
    const nCtx = window.tokens.length;
    const { first, count } = scoredPositions(nCtx);
    if (reference && reference.length !== count * nVocab) {
      throw new RangeError(`the reference holds ${reference.length / nVocab} rows; a window of ${nCtx} scores ${count}`);
    }
    for (let j = first; j < first + count; j++) {
      this.nll -= logSoftmaxAt(logits, j, nVocab, window.original[j + 1]!);
      if (reference) this.compare(logits, j * nVocab, reference, (j - first) * nVocab, nVocab);
    }
    this.count += count;
  }

  private compare(q: Float32Array, oq: number, p: Float32Array, op: number, nVocab: number): void {
    let maxP = -Infinity;
    let maxQ = -Infinity;
    let argP = 0;
    let argQ = 0;
    for (let i = 0; i < nVocab; i++) {
      if (p[op + i]! > maxP) (maxP = p[op + i]!), (argP = i);
      if (q[oq + i]! > maxQ) (maxQ = q[oq + i]!), (argQ = i);
    }
    let sumP = 0;
    let sumQ = 0;
    for (let i = 0; i < nVocab; i++) {
      sumP += Math.exp(p[op + i]! - maxP);
      sumQ += Math.exp(q[oq + i]! - maxQ);
    }
    const logZp = Math.log(sumP);
    const logZq = Math.log(sumQ);
    let kl = 0;
    for (let i = 0; i < nVocab; i++) {
      const lp = p[op + i]! - maxP - logZp;
      const lq = q[oq + i]! - maxQ - logZq;
      kl += Math.exp(lp) * (lp - lq);
    }
    this.kl += Math.max(0, kl);
    if (argP === argQ) this.top1++;
    this.compared++;
  }

  get perplexity(): number {
    return Math.exp(this.nll / this.count);
  }

  /** Mean KL(reference || model) per scored position, in nats; NaN without a reference. */
  get meanKl(): number {
    return this.compared ? this.kl / this.compared : NaN;
  }

  /** Share of scored positions where both models' most likely token agree; NaN without a reference. */
  get top1Agreement(): number {
    return this.compared ? this.top1 / this.compared : NaN;
  }
}
