/**
 * A grammar's allowed tokens, as the sampler takes them: a bitset over the vocabulary (bit
 * `id & 31` of word `id >> 5`), applied before the chain by setting every other token's logit to
 * MASKED_LOGIT. Both backends apply it the same way (the WebGPU one in logit_mask.wgsl).
 */

/** Allowed tokens: bit (id & 31) of word (id >> 5). */
export type AllowedTokens = Uint32Array<ArrayBuffer>;

/**
 * The logit of a disallowed token: finite (WGSL has no infinity literal), and so far below any
 * real logit that its probability is exactly 0 at every temperature the API allows.
 */
export const MASKED_LOGIT = -3.0e38;

/** Sets the logits of tokens outside `allowed` to MASKED_LOGIT, in place. */
export function applyTokenMask(logits: Float32Array, allowed: AllowedTokens): void {
  for (let id = 0; id < logits.length; id++) if (((allowed[id >>> 5]! >>> (id & 31)) & 1) === 0) logits[id] = MASKED_LOGIT;
}
