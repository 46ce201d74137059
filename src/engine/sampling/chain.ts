/**
 * llama.cpp's default sampler chain on one row of logits, the one rule every sampler follows: the
 * CPU backend runs it, the WebGPU sampler (sample_candidates.wgsl + sample_finish.wgsl) computes the
 * same in f32 and is checked against it, and the float64 reference forward samples with it.
 *
 * The chain: the k best logits (ties rank the lower id first), then top-p (the shortest prefix whose
 * probability reaches p), then min-p (drop candidates below min_p times the best one's
 * probability), then temperature, and the first candidate whose cumulative probability exceeds a
 * uniform number u drawn by the caller. Greedy (temperature <= 0) is the argmax.
 */
import { effectiveTopK, type SamplingParams } from './params.ts';

/** The k largest logits, sorted by value descending then id ascending. */
export interface Candidates {
  ids: number[];
  logits: number[];
}

/**
 * The k best in one pass over the row: insertion into a short sorted list, so a 150k vocabulary
 * costs one comparison per logit once the list is full. An equal value never displaces an earlier
 * (lower) id.
 */
export function topCandidates(logits: ArrayLike<number>, k: number): Candidates {
  const ids: number[] = [];
  const vals: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (ids.length === k && !(v > vals[k - 1]!)) continue;
    let j = ids.length === k ? k - 1 : ids.length;
    while (j > 0 && v > vals[j - 1]!) {
      if (j < k) {
        ids[j] = ids[j - 1]!;
        vals[j] = vals[j - 1]!;
      }
      j--;
    }
    ids[j] = i;
    vals[j] = v;
  }
  return { ids, logits: vals };
}

/** The candidates the chain keeps after top-p and min-p, with their probabilities at the temperature. */
export interface Distribution {
  ids: number[];
  probs: number[];
}

/** Top-p, min-p and temperature over sorted candidates (float64). */
export function keptDistribution(c: Candidates, params: SamplingParams): Distribution {
  const { ids, logits } = c;
  if (params.temperature <= 0 || ids.length === 1) return { ids: ids.slice(0, 1), probs: [1] };
  const m = logits[0]!;
  let keep = ids.length;
  if (params.topP < 1) {
    let total = 0;
    for (const v of logits) total += Math.exp(v - m);
    let cum = 0;
    for (let i = 0; i < logits.length; i++) {
      cum += Math.exp(logits[i]! - m) / total;
      if (cum >= params.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params.minP > 0) {
    const minLogit = m + Math.log(params.minP);
    for (let i = 1; i < keep; i++) {
      if (logits[i]! < minLogit) {
        keep = i;
        break;
      }
    }
  }
  const w = new Float64Array(keep);
  let sum = 0;
  for (let i = 0; i < keep; i++) sum += w[i] = Math.exp((logits[i]! - m) / params.temperature);
  return { ids: ids.slice(0, keep), probs: Array.from(w, (x) => x / sum) };
}

/**
 * The first candidate whose cumulative probability exceeds `u`; if rounding leaves none, the last
 * one with a probability above 0 (a masked token, probability exactly 0, is never drawn).
 */
export function draw(d: Distribution, u: number): number {
  let acc = 0;
  let last = 0;
  for (let i = 0; i < d.ids.length; i++) {
    acc += d.probs[i]!;
    if (d.probs[i]! > 0) last = i;
    if (acc > u) return d.ids[i]!;
  }
  return d.ids[last]!;
}

/** The kept candidates of a row and their probabilities. */
export function sampleDistribution(logits: ArrayLike<number>, params: SamplingParams): Distribution {
  return keptDistribution(topCandidates(logits, effectiveTopK(params)), params);
}

/** One token from a row of logits with a uniform number `u` in [0, 1). */
export function sampleRow(logits: ArrayLike<number>, params: SamplingParams, u: number): number {
  return draw(sampleDistribution(logits, params), u);
}

/** `sampleRow` with the kept candidates and their probabilities, for distribution tests. */
export function sampleReference(logits: ArrayLike<number>, params: SamplingParams, u: number): { token: number; kept: number[]; probs: number[] } {
  const d = sampleDistribution(logits, params);
  return { token: draw(d, u), kept: d.ids, probs: d.probs };
}
