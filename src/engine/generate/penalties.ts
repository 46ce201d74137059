/**
 * Repetition, frequency and presence penalties (llama.cpp's penalties sampler): the tokens of the
 * last `lastN` positions (prompt and generated), counted, push their own logits down.
 */

export interface PenaltyParams {
  /** Divides positive and multiplies negative logits of seen tokens; 1 is off. */
  repetition: number;
  /** Subtracted once per occurrence; 0 is off. */
  frequency: number;
  /** Subtracted once if the token occurred at all; 0 is off. */
  presence: number;
  /** How many recent tokens count; llama.cpp's default is 64. */
  lastN: number;
}

export const NO_PENALTIES: PenaltyParams = { repetition: 1, frequency: 0, presence: 0, lastN: 64 };

export function penaltiesActive(p: PenaltyParams): boolean {
  return p.lastN > 0 && (p.repetition !== 1 || p.frequency !== 0 || p.presence !== 0);
}

/** (token id, count) pairs of the last `lastN` tokens, in order of first appearance. */
export function recentTokenCounts(history: readonly number[], lastN: number): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (let i = Math.max(0, history.length - lastN); i < history.length; i++) {
    const id = history[i]!;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return [...counts];
}

/** CPU form (also the reference for the GPU kernel): adjusts `logits` in place, f32 like llama.cpp. */
export function applyPenalties(logits: Float32Array, counts: ReadonlyArray<readonly [number, number]>, p: PenaltyParams): void {
  for (const [id, count] of counts) {
    if (id < 0 || id >= logits.length || count === 0) continue;
    let logit = logits[id]!;
    logit = logit <= 0 ? Math.fround(logit * p.repetition) : Math.fround(logit / p.repetition);
    logits[id] = Math.fround(logit - Math.fround(Math.fround(count * p.frequency) + p.presence));
  }
}
