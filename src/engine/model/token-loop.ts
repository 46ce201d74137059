/**
 * The token loop's contract, between a chat session (which decides when to stop: end-of-generation
 * tokens, stop strings, max_tokens, abort) and a model (which evaluates and samples). A loop hands
 * out sampled tokens in step order; a model may run steps ahead of the ones taken (the GPU loop in
 * src/engine/model/decode-loop.ts records a few steps before their tokens are read back), and
 * `finish` discards whatever ran past the last token taken, so the result and the KV cache are the
 * same as stepping one token at a time (`StepByStepLoop`).
 */
import { penaltiesActive, recentTokenCounts, type AllowedTokens, type PenaltyParams, type SamplingParams, type TokenPenalties } from '../sampling/index.ts';

export interface DecodeLoopOptions {
  /** Tokens the first step evaluates after the cached ones (at least one). */
  prompt: readonly number[];
  /** The tokens already in the KV cache, in order (the penalties count the last `lastN` of them). */
  cached: readonly number[];
  sampling: SamplingParams;
  penalties: PenaltyParams;
  /** A uniform number in [0, 1) for each step, drawn in step order. */
  random: () => number;
  /** Steps (sampled tokens) the loop may run at most: the caller's max_tokens and the room left in the context. */
  maxSteps: number;
  /**
   * A grammar's allowed tokens for the next step, asked while it runs (after the previous token was
   * taken; a model with `nextWithMask` asks once the step's forward pass is on the device, so the
   * host computes the mask meanwhile). A loop that records steps ahead cannot know them:
   * constrained requests run StepByStepLoop.
   */
  allowedTokens?: () => AllowedTokens;
  /** Filled by a loop that records steps ahead (the device loop) with what recording them cost the host; the benchmark reads it. */
  stats?: LoopStats;
}

/**
 * Host cost of the steps a loop has recorded, cumulative (read the difference over a window). A
 * step's host time runs from the start of its recording until its submit returns: the JavaScript
 * a token costs, which bounds decode speed at 1000 / (hostMs / steps) tokens/s however fast the
 * device is.
 */
export interface LoopStats {
  steps: number;
  hostMs: number;
  /** The part of hostMs inside the backend's submit (the WebGPU implementation's and driver's share). */
  submitMs: number;
}

export interface DecodeLoop {
  /**
   * The token sampled by the next step. Step 0 evaluates the prompt, step i > 0 the token of step
   * i - 1. At most `maxSteps` calls.
   */
  next(): Promise<number>;
  /**
   * Ends the loop. The KV cache then holds the cached tokens, the prompt (once a token was taken)
   * and every token taken but the last (which no step needs to have evaluated), exactly as when
   * stepping one token at a time; steps that ran past that are discarded.
   */
  finish(): Promise<void>;
}

/** What `StepByStepLoop` needs: evaluate tokens and sample the next one, one step per call. */
export interface SteppedModel {
  next(tokens: readonly number[], sampling: SamplingParams, u: number, penalties?: TokenPenalties, allowed?: AllowedTokens): Promise<number>;
  /** `next` asking for the mask only once the step's forward pass runs (the host then works while the device does). */
  nextWithMask?(tokens: readonly number[], sampling: SamplingParams, u: number, penalties: TokenPenalties | undefined, allowed: () => AllowedTokens): Promise<number>;
}

/**
 * The reference loop: one step per token, each waiting for the previous token, penalties counted
 * on the host. Models without a loop of their own run this one.
 */
export class StepByStepLoop implements DecodeLoop {
  private pending: number[];
  /** The last lastN tokens evaluated so far (the penalties' history). */
  private recent: number[];
  private steps = 0;

  constructor(
    private readonly model: SteppedModel,
    private readonly options: DecodeLoopOptions,
  ) {
    if (options.prompt.length === 0) throw new RangeError('decode loop: no prompt tokens');
    this.pending = [...options.prompt];
    this.recent = options.cached.slice(-options.penalties.lastN);
  }

  async next(): Promise<number> {
    if (this.steps >= this.options.maxSteps) throw new RangeError(`decode loop: more than ${this.options.maxSteps} steps`);
    const { sampling, penalties } = this.options;
    const u = this.options.random();
    let stepPenalties: TokenPenalties | undefined;
    if (penaltiesActive(penalties)) stepPenalties = { params: penalties, counts: recentTokenCounts([...this.recent, ...this.pending], penalties.lastN) };
    const { allowedTokens } = this.options;
    const token =
      allowedTokens && this.model.nextWithMask
        ? await this.model.nextWithMask(this.pending, sampling, u, stepPenalties, allowedTokens)
        : await this.model.next(this.pending, sampling, u, stepPenalties, allowedTokens?.());
    this.steps++;
    this.recent = [...this.recent, ...this.pending].slice(-Math.max(1, penalties.lastN));
    this.pending = [token];
    return token;
  }

  async finish(): Promise<void> {
    // Every step ran because its token was asked for: nothing to discard.
  }
}
