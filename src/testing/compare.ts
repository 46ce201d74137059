/** Comparison metrics between a result and a float64 reference. */

/** sum((a - ref)^2) / sum(ref^2): 0 is exact; ggml's test-backend-ops uses the same measure. */
export function normalizedMse(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (actual.length !== reference.length) throw new RangeError(`length ${actual.length} != ${reference.length}`);
  let err = 0;
  let norm = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = actual[i]! - reference[i]!;
    err += d * d;
    norm += reference[i]! * reference[i]!;
  }
  return norm === 0 ? err : err / norm;
}

/** sqrt(normalizedMse): the error's RMS relative to the reference's (the training ops' tests' measure). */
export function relativeRmsError(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  return Math.sqrt(normalizedMse(actual, reference));
}

/** Largest absolute difference. */
export function maxAbsDiff(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < actual.length; i++) max = Math.max(max, Math.abs(actual[i]! - reference[i]!));
  return max;
}

/** Index of the largest of `row[offset .. offset + n)` (the first one on ties), relative to offset. */
export function argmax(row: ArrayLike<number>, offset = 0, n = row.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = row[offset + i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

function checkLogitRows(reference: ArrayLike<number>, actual: ArrayLike<number>, nVocab: number): number {
  if (reference.length !== actual.length) throw new RangeError(`length ${actual.length} != ${reference.length}`);
  if (!Number.isInteger(nVocab) || nVocab <= 0 || reference.length % nVocab !== 0) {
    throw new RangeError(`${reference.length} logits are not whole rows of ${nVocab}`);
  }
  return reference.length / nVocab;
}

/** log(sum(exp(row))) of one row, computed in float64 with the max subtracted. */
function logSumExp(row: ArrayLike<number>, offset: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, row[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(row[offset + i]! - max);
  return max + Math.log(sum);
}

/**
 * KL(P || Q) in nats per row, where P = softmax(reference row) and Q = softmax(actual row): how
 * much the distribution we sample from differs from the reference one. `reference` and `actual`
 * are row-major [rows][nVocab] logits. llama.cpp's `llama-perplexity --kl-divergence` reports
 * the same quantity (mean over positions).
 */
export function klDivergencePerRow(reference: ArrayLike<number>, actual: ArrayLike<number>, nVocab: number): Float64Array {
  const rows = checkLogitRows(reference, actual, nVocab);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * nVocab;
    const lzp = logSumExp(reference, o, nVocab);
    const lzq = logSumExp(actual, o, nVocab);
    let kl = 0;
    for (let i = 0; i < nVocab; i++) {
      const lp = reference[o + i]! - lzp;
      const lq = actual[o + i]! - lzq;
      kl += Math.exp(lp) * (lp - lq);
    }
    // Rounding can leave a tiny negative sum for identical rows.
    out[r] = Math.max(0, kl);
  }
  return out;
}

/** Mean over rows of {@link klDivergencePerRow}. */
export function klDivergence(reference: ArrayLike<number>, actual: ArrayLike<number>, nVocab: number): number {
  const rows = klDivergencePerRow(reference, actual, nVocab);
  let sum = 0;
  for (const v of rows) sum += v;
  return sum / rows.length;
}

/** Fraction of rows (0..1) whose largest logit is at the same token in both. */
export function topOneAgreement(reference: ArrayLike<number>, actual: ArrayLike<number>, nVocab: number): number {
  const rows = checkLogitRows(reference, actual, nVocab);
  let same = 0;
  for (let r = 0; r < rows; r++) {
    if (argmax(reference, r * nVocab, nVocab) === argmax(actual, r * nVocab, nVocab)) same++;
  }
  return same / rows;
}
