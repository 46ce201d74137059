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

/** Largest absolute difference. */
export function maxAbsDiff(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < actual.length; i++) max = Math.max(max, Math.abs(actual[i]! - reference[i]!));
  return max;
}
