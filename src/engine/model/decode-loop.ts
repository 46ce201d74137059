/**
 * The token loop on the device. Each step samples straight into `scratch.tokens`, which the next
 * step's embedding reads, so the host records step t + 1 (and more, up to `depth` steps ahead)
 * before token t is read back; the ids come back through `readIdsAsync` while the device works.
 * Decode steps after the first of a shape are replays of a captured plan (the model's
 * `decodePlan`): the host writes one position and one sampling uniform, then records the plan's
 * dispatches: no encode function, string or GPU object per token, one submit.
 *
 * Everything per token lives in buffers: the position (written by the host, known in advance),
 * the input id (on the device), the uniform u (from the host's seeded generator, drawn in step
 * order, so the same as stepping one token at a time), and the penalties' history (a ring on the
 * device that each step appends its input to). Steps past the last token the caller takes are
 * discarded by `finish`, which truncates the cache to what the step-by-step loop would hold.
 *
 * A backend that runs ops when called (CPU) has no plans and gets depth 1: the same code, one step
 * at a time.
 */
import type { Backend, DevicePenalties, IdBuffer, StepPlan } from '../backend/ops.ts';
import type { DecodeLoop, DecodeLoopOptions } from './token-loop.ts';
import { historyRing, penaltiesActive, type PenaltyParams, type SamplingParams } from '../sampling/index.ts';
import { forward, type ForwardState } from './forward.ts';

/** Steps recorded ahead of the one being read on a GPU: the lag of stop conditions. */
export const GPU_LOOP_DEPTH = 3;

/** What the loop needs of its model (Model implements it). */
export interface LoopHost {
  readonly state: ForwardState;
  /** The history ring for penalties over the last `lastN` tokens (allocated once, grown if needed). */
  penaltyHistory(lastN: number): IdBuffer;
  /** The captured decode step for these parameters, if one is valid. */
  decodePlan(loop: boolean, sampling: SamplingParams, penalties: PenaltyParams | undefined): StepPlan | undefined;
  keepDecodePlan(loop: boolean, sampling: SamplingParams, penalties: PenaltyParams | undefined, plan: StepPlan): void;
  /** Keeps at most `n` positions; returns how many it kept (a hybrid rewinds to a snapshot: Model.truncate). */
  truncate(n: number): number;
}

export class DeviceDecodeLoop implements DecodeLoop {
  private issued = 0;
  private taken = 0;
  private readonly inflight: Array<Promise<Uint32Array>> = [];
  /** Cache length before the prompt. */
  private readonly start: number;
  private readonly depth: number;
  private readonly penalties: PenaltyParams | undefined;
  private history: IdBuffer | undefined;
  private readonly position = new Uint32Array(1);
  private readonly u = [0];

  constructor(
    private readonly host: LoopHost,
    private readonly options: DecodeLoopOptions,
  ) {
    if (options.prompt.length === 0) throw new RangeError('decode loop: no prompt tokens');
    const { backend, kv } = host.state;
    this.start = kv.length;
    if (options.cached.length !== this.start) throw new RangeError(`decode loop: ${options.cached.length} cached tokens, the cache holds ${this.start}`);
    this.depth = backend.kind === 'cpu' ? 1 : GPU_LOOP_DEPTH;
    this.penalties = penaltiesActive(options.penalties) ? options.penalties : undefined;
  }

  async next(): Promise<number> {
    if (this.taken >= this.options.maxSteps) throw new RangeError(`decode loop: more than ${this.options.maxSteps} steps`);
    const ahead = Math.min(this.taken + this.depth, this.options.maxSteps);
    while (this.issued < ahead) await this.issue();
    const ids = await this.inflight.shift()!;
    this.taken++;
    return ids[0]!;
  }

  async finish(): Promise<void> {
    // Let every pending read land: their readback buffers are reused by the next loop.
    await Promise.allSettled(this.inflight.splice(0));
    const keep = this.taken > 0 ? this.start + this.options.prompt.length + this.taken - 1 : this.start;
    // Steps that ran past the last token taken are undone. A hybrid's recurrent state cannot drop
    // them: it goes back to its prompt's snapshot, and the caller evaluates the reply again with
    // its next request (one prefill then, instead of a round trip per token now).
    if (this.host.state.kv.length > keep) this.host.truncate(keep);
  }

  private devicePenalties(last: number): DevicePenalties | undefined {
    if (!this.penalties) return undefined;
    const s = this.host.state.scratch;
    return { params: this.penalties, history: this.history!, tokens: s.tokens, positions: s.positions, last };
  }

  private async issue(): Promise<void> {
    const stats = this.options.stats;
    const t0 = stats ? performance.now() : 0;
    const { backend: b, scratch: s, config: c, kv } = this.host.state;
    const step = this.issued++;
    this.u[0] = this.options.random();
    const logits = { t: s.logits, stride: c.nVocab };
    if (step === 0) {
      const prompt = this.options.prompt;
      kv.checkRoom(prompt.length);
      if (this.penalties) {
        const lastN = this.penalties.lastN;
        this.history = this.host.penaltyHistory(lastN);
        const tail = this.options.cached.slice(-lastN);
        b.writeIds(this.history, historyRing([...tail, ...prompt], this.start - tail.length, lastN));
      }
      const B = s.batch;
      for (let at = 0; at < prompt.length; at += B) {
        const chunk = prompt.slice(at, at + B);
        const isLast = at + B >= prompt.length;
        await forward(this.host.state, chunk, isLast ? chunk.length - 1 : chunk.length);
        if (!isLast) b.submit();
        else b.sample(logits, c.nVocab, 1, this.options.sampling, this.u, s.tokens, this.devicePenalties(chunk.length - 1));
      }
    } else {
      kv.checkRoom(1);
      const plan = this.host.decodePlan(true, this.options.sampling, this.penalties);
      if (plan) {
        b.begin();
        this.position[0] = kv.length;
        b.writeIds(s.positions, this.position);
        b.replay(plan, this.u);
        kv.advance(1);
      } else {
        const captured = b.capture();
        await forward(this.host.state, 1, 0);
        b.sample(logits, c.nVocab, 1, this.options.sampling, this.u, s.tokens, this.devicePenalties(0));
        if (captured) this.host.keepDecodePlan(true, this.options.sampling, this.penalties, captured);
      }
    }
    this.inflight.push(b.readIdsAsync(s.tokens, 1));
    const t1 = stats ? performance.now() : 0;
    b.submit();
    if (stats) {
      const t2 = performance.now();
      stats.steps++;
      stats.hostMs += t2 - t0;
      stats.submitMs += t2 - t1;
    }
  }
}
