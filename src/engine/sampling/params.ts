/**
 * What a caller asks of the sampler, in one place for every backend: llama.cpp's default chain
 * (top-k -> top-p -> min-p -> temperature) and its penalties sampler.
 */

/** llama.cpp's default sampler chain; temperature <= 0 is greedy. */
export interface SamplingParams {
  /** <= 0: greedy. */
  temperature: number;
  /** 0 or > SAMPLE_K_MAX: SAMPLE_K_MAX. */
  topK: number;
  /** 1: off. */
  topP: number;
  /** 0: off. */
  minP: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 1, topP: 1, minP: 0 };

/**
 * The most candidates any sampler keeps. `topK: 0` (llama.cpp's "off") also means this bound: the
 * tokens past the 128 most likely carry negligible mass for chat models, and the bound is what keeps
 * the GPU's selection a few small passes over the vocabulary.
 */
export const SAMPLE_K_MAX = 128;

/** The k the chain starts from: 1 when greedy, else top-k bounded by SAMPLE_K_MAX. */
export function effectiveTopK(params: SamplingParams): number {
  if (params.temperature <= 0) return 1;
  return params.topK <= 0 || params.topK > SAMPLE_K_MAX ? SAMPLE_K_MAX : Math.floor(params.topK);
}

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

/** Penalties for one sampling call: the rule and the (token id, count) pairs it applies to. */
export interface TokenPenalties {
  params: PenaltyParams;
  /** From `recentTokenCounts`; ids outside the vocabulary are ignored. */
  counts: ReadonlyArray<readonly [number, number]>;
}
