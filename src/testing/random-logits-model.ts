/**
 * For the structured-output tests: a stand-in model of random logits every step (any model, even
 * random weights, must give valid output under a constraint), sampled by the CPU backend's own
 * rule (mask, then the sampling chain).
 */
import { applyTokenMask, sampleRow, type AllowedTokens, type SamplingParams } from '../engine/sampling/index.ts';
import type { SessionModel } from '../engine/generate/chat-session.ts';
import type { Tokenizer } from '../engine/tokenizer/index.ts';

/** Random logits, leaning towards `closers` (tokens that close strings and containers) so replies end. */
export class RandomLogitsModel implements SessionModel {
  position = 0;
  /** Whether each step had a token mask. */
  readonly masked: boolean[] = [];
  constructor(
    readonly contextLength: number,
    private readonly next_: () => number,
    private readonly closers: Uint8Array,
  ) {}

  async next(tokens: readonly number[], sampling: SamplingParams, u: number, _penalties?: unknown, allowed?: AllowedTokens): Promise<number> {
    this.position += tokens.length;
    this.masked.push(allowed !== undefined);
    const logits = new Float32Array(this.closers.length);
    for (let i = 0; i < logits.length; i++) logits[i] = this.next_() * 4 + this.closers[i]! * 6;
    if (allowed) applyTokenMask(logits, allowed);
    return sampleRow(logits, sampling, u);
  }

  truncate(n: number): number {
    this.position = n;
    return n;
  }
}

/** The tokens RandomLogitsModel leans towards for `tokenizer`: closing quotes, brackets, digits, end of turn. */
export function closingTokens(tokenizer: Tokenizer): Uint8Array {
  return Uint8Array.from({ length: tokenizer.size }, (_, id) => (/["}\]0-9]/.test(tokenizer.tokenText(id)) || tokenizer.isEog(id) ? 1 : 0));
}
