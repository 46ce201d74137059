/**
 * The penalties sampler on a row of logits (the reference for logit_penalty.wgsl, and what the CPU
 * backend runs): the tokens of the last `lastN` positions, counted, push their own logits down.
 */
import type { PenaltyParams } from './params.ts';

/** (token id, count) pairs of the last `lastN` tokens, in order of first appearance. */
export function recentTokenCounts(history: readonly number[], lastN: number): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (let i = Math.max(0, history.length - lastN); i < history.length; i++) {
    const id = history[i]!;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return [...counts];
}

/** Adjusts `logits` in place, in f32 like llama.cpp. */
export function applyPenalties(logits: Float32Array, counts: ReadonlyArray<readonly [number, number]>, p: PenaltyParams): void {
  for (const [id, count] of counts) {
    if (id < 0 || id >= logits.length || count === 0) continue;
    let logit = logits[id]!;
    logit = logit <= 0 ? Math.fround(logit * p.repetition) : Math.fround(logit / p.repetition);
    logits[id] = Math.fround(logit - Math.fround(Math.fround(count * p.frequency) + p.presence));
  }
}

/**
 * The (token id, count) pairs of a history ring (slots of 0xffffffff are empty), as
 * `recentTokenCounts` gives them for the tokens it holds: the GPU's logit_penalty_history.wgsl and
 * the CPU backend keep the last lastN tokens this way, by position modulo lastN.
 */
export function historyCounts(ring: ArrayLike<number>): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (let i = 0; i < ring.length; i++) {
    const id = ring[i]!;
    if (id !== 0xffffffff) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return [...counts];
}

/** A history ring of the last `lastN` of `tokens`, which start at position `start`: the token at position p at p % lastN. */
export function historyRing(tokens: readonly number[], start: number, lastN: number): Uint32Array<ArrayBuffer> {
  const ring = new Uint32Array(lastN).fill(0xffffffff);
  for (let i = Math.max(0, tokens.length - lastN); i < tokens.length; i++) ring[(start + i) % lastN] = tokens[i]! >>> 0;
  return ring;
}
