/**
 * A loaded model with one sequence: `eval` appends tokens (prefill in chunks of the scratch batch,
 * decode one at a time, any mix) and returns the logits asked for; `next` does the same and samples
 * the following token on the device (penalties included), reading back 4 bytes instead of the logits. Positions are the
 * KV cache's: `truncate` keeps a prefix for reuse, `reset` starts over. `decodeLoop` runs the
 * token loop on the device, steps ahead of the host (decode-loop.ts).
 *
 * Single-token steps are captured once per sampling setup and replayed afterwards (`decodePlan`):
 * the host then writes the token, its position and the sampling uniform and records the plan.
 */
import type { Backend, IdBuffer, StepPlan } from '../backend/ops.ts';
import type { PenaltyParams, SamplingParams, TokenPenalties } from '../sampling/params.ts';
import type { AllowedTokens } from '../sampling/mask.ts';
import type { DecodeLoop, DecodeLoopOptions } from './token-loop.ts';
import { DeviceDecodeLoop, type LoopHost } from './decode-loop.ts';
import type { RangedSource } from '../gguf/source.ts';
import type { GgufModel } from '../gguf/split.ts';
import type { ModelConfig } from './config.ts';
import { forward, type ForwardState, type ForwardTap } from './forward.ts';
import { loadModel, type LoadOptions, type MemoryPlan, type PlannedLoad } from './loader.ts';
import { checkLoraFits, freeLora, sameAdapters, uploadLora, type ActiveLora, type LoadedLora } from './lora/apply.ts';
import type { LoraAdapterData } from './lora/adapter-data.ts';
import { readLoraAdapter } from './lora/load.ts';

export type LogitsWanted = 'all' | 'last' | 'none';

export interface EvalOptions {
  /** Which positions' logits to return: every token's, the last one's (default) or none. */
  logits?: LogitsWanted;
  /** Debug: observe every intermediate (reads each back; slow). */
  tap?: ForwardTap;
}

/** Plans kept at once; the oldest is dropped past this (a new sampling setup per request is rare). */
const MAX_PLANS = 6;

interface KeptPlan {
  loop: boolean;
  sampling: SamplingParams;
  penalties: PenaltyParams | undefined;
  plan: StepPlan;
}

export class Model implements LoopHost {
  readonly state: ForwardState;
  private plans: KeptPlan[] = [];
  private history: IdBuffer | undefined;
  private readonly oneId = new Uint32Array(1);
  private readonly onePosition = new Uint32Array(1);
  private readonly oneU = [0];

  private constructor(
    state: ForwardState,
    readonly plan: MemoryPlan,
  ) {
    this.state = state;
  }

  /**
   * Loads one GGUF file, every part of a split model opened with `openGgufModel`, or a model
   * planned for this backend with `planLoad`.
   */
  static async load(backend: Backend, source: RangedSource | GgufModel | PlannedLoad, options: LoadOptions = {}): Promise<Model> {
    const loaded = await loadModel(backend, source, options);
    return new Model({ backend, config: loaded.config, weights: loaded.weights, scratch: loaded.scratch, kv: loaded.kv, recurrent: loaded.recurrent }, loaded.plan);
  }

  get config(): ModelConfig {
    return this.state.config;
  }

  /** Positions the KV cache holds. */
  get contextLength(): number {
    return this.state.kv.capacity;
  }

  /** Tokens in the cache: the position of the next one. */
  get position(): number {
    return this.state.kv.length;
  }

  /**
   * Evaluates `tokens` after those already in the cache. Returns row-major [rows][nVocab] logits:
   * one row per token for `all`, one for `last`, none for `none`.
   */
  async eval(tokens: readonly number[], options: EvalOptions = {}): Promise<Float32Array> {
    const wanted = options.logits ?? 'last';
    const V = this.config.nVocab;
    const n = tokens.length;
    this.state.kv.checkRoom(n);
    const out = new Float32Array(wanted === 'all' ? n * V : wanted === 'last' && n > 0 ? V : 0);
    const B = this.state.scratch.batch;
    for (let at = 0; at < n; at += B) {
      const chunk = tokens.slice(at, at + B);
      const isLast = at + B >= n;
      const from = wanted === 'all' ? 0 : wanted === 'last' && isLast ? chunk.length - 1 : chunk.length;
      const rows = await forward(this.state, chunk, from, options.tap);
      if (rows > 0) {
        const logits = await this.state.backend.read(this.state.scratch.logits, rows * V);
        out.set(logits, wanted === 'all' ? at * V : 0);
      } else {
        this.state.backend.submit();
      }
    }
    return out;
  }

  /**
   * Evaluates `tokens` and returns the next token, sampled on the device from the last row's
   * logits with llama.cpp's chain (greedy when temperature <= 0), after `penalties` if given; `u`
   * is a uniform in [0, 1).
   */
  async next(tokens: readonly number[], sampling: SamplingParams, u: number, penalties?: TokenPenalties, allowed?: AllowedTokens): Promise<number> {
    return this.step(tokens, sampling, u, penalties, allowed);
  }

  /**
   * `next` with the token mask asked for once the step's forward pass is handed to the device, so
   * the host computes the mask while the device evaluates (StepByStepLoop uses it for constrained
   * replies); the mask is then uploaded just before the sample dispatch.
   */
  async nextWithMask(tokens: readonly number[], sampling: SamplingParams, u: number, penalties: TokenPenalties | undefined, allowed: () => AllowedTokens): Promise<number> {
    return this.step(tokens, sampling, u, penalties, allowed);
  }

  private async step(tokens: readonly number[], sampling: SamplingParams, u: number, penalties: TokenPenalties | undefined, allowedOrLater: AllowedTokens | (() => AllowedTokens) | undefined): Promise<number> {
    if (tokens.length === 0) throw new RangeError('next: no tokens to evaluate');
    const { backend, scratch, config, kv } = this.state;
    const B = scratch.batch;
    kv.checkRoom(tokens.length);
    this.oneU[0] = u;
    // Host-counted penalties change the dispatches (their count is a uniform): not replayable.
    // So does a grammar's token mask (written per token).
    const plain = (!penalties || penalties.counts.length === 0) && !allowedOrLater;
    const plan = tokens.length === 1 && plain ? this.decodePlan(false, sampling, undefined) : undefined;
    const token = tokens[0]!;
    if (plan && Number.isInteger(token) && token >= 0 && token < config.nVocab) {
      backend.begin();
      this.oneId[0] = token;
      this.onePosition[0] = kv.length;
      backend.writeIds(scratch.tokens, this.oneId);
      backend.writeIds(scratch.positions, this.onePosition);
      backend.replay(plan, this.oneU);
      kv.advance(1);
    } else {
      const captured = tokens.length === 1 && plain ? backend.capture() : undefined;
      for (let at = 0; at < tokens.length; at += B) {
        const chunk = tokens.slice(at, at + B);
        const isLast = at + B >= tokens.length;
        await forward(this.state, chunk, isLast ? chunk.length - 1 : chunk.length);
        if (!isLast) backend.submit();
      }
      let allowed: AllowedTokens | undefined;
      if (typeof allowedOrLater === 'function') {
        backend.submit();
        allowed = allowedOrLater();
      } else allowed = allowedOrLater;
      backend.sample({ t: scratch.logits, stride: config.nVocab }, config.nVocab, 1, sampling, this.oneU, scratch.sampled, penalties, allowed);
      if (captured) this.keepDecodePlan(false, sampling, undefined, captured);
    }
    const read = backend.readIdsAsync(scratch.sampled, 1);
    backend.submit();
    const [id] = await read;
    return id!;
  }

  /**
   * The token loop on the device: steps run ahead of the tokens read back, and `finish` discards
   * what ran past the last token taken. Same tokens as calling `next` step by step with the same
   * uniforms and penalties.
   */
  decodeLoop(options: DecodeLoopOptions): DecodeLoop {
    return new DeviceDecodeLoop(this, options);
  }

  /** @internal LoopHost: the captured single-token step for this setup, if still valid. */
  decodePlan(loop: boolean, sampling: SamplingParams, penalties: PenaltyParams | undefined): StepPlan | undefined {
    for (const kept of this.plans) {
      if (kept.loop === loop && sameSampling(kept.sampling, sampling) && samePenalties(kept.penalties, penalties)) {
        if (kept.plan.valid) return kept.plan;
        this.dropPlan(kept);
        return undefined;
      }
    }
    return undefined;
  }

  /** @internal LoopHost */
  keepDecodePlan(loop: boolean, sampling: SamplingParams, penalties: PenaltyParams | undefined, plan: StepPlan): void {
    for (const kept of this.plans.filter((k) => k.loop === loop && sameSampling(k.sampling, sampling) && samePenalties(k.penalties, penalties))) this.dropPlan(kept);
    this.plans.push({ loop, sampling: { ...sampling }, penalties: penalties && { ...penalties }, plan });
    while (this.plans.length > MAX_PLANS) this.dropPlan(this.plans[0]!);
  }

  /** @internal LoopHost: the penalties' history ring, made on first use (plans that bound a smaller one are dropped). */
  penaltyHistory(lastN: number): IdBuffer {
    if (!this.history || this.history.length < lastN) {
      for (const kept of [...this.plans]) this.dropPlan(kept);
      this.history = this.state.backend.ids('penalty history', Math.max(64, lastN));
    }
    return this.history;
  }

  private dropPlan(kept: KeptPlan): void {
    kept.plan.destroy();
    this.plans = this.plans.filter((k) => k !== kept);
  }

  /**
   * Reads, validates and uploads a LoRA adapter for this model (a GGUF adapter file, or the float
   * values training made); it is applied once in `setAdapters`. The base weights are untouched.
   */
  async loadAdapter(source: RangedSource | LoraAdapterData, id: string): Promise<LoadedLora> {
    const data = 'targets' in source ? source : await readLoraAdapter(source, this.config);
    checkLoraFits(this.state.backend, data, this.state.scratch.batch);
    return uploadLora(this.state.backend, data, this.state.scratch.batch, id);
  }

  /**
   * Unloads an adapter loaded by `loadAdapter`: out of the active set (dropping the captured steps
   * that bound it), then its memory back to the backend as far as the backend can free it.
   * Returns the bytes freed (0 where the backend keeps them until it is destroyed).
   */
  unloadAdapter(lora: LoadedLora): number {
    if (this.adapters.some((a) => a.lora === lora)) this.setAdapters(this.adapters.filter((a) => a.lora !== lora));
    return freeLora(this.state.backend, lora);
  }

  /** The adapters the following steps apply (empty: the base model). */
  get adapters(): readonly ActiveLora[] {
    return this.state.adapters ?? [];
  }

  /**
   * Sets the adapters of the following steps. Another set (or scale) drops the captured decode
   * steps, which recorded the old ones; the KV cache is the caller's to keep or reset.
   */
  setAdapters(adapters: readonly ActiveLora[]): void {
    for (const a of adapters) {
      if (!Number.isFinite(a.scale)) throw new RangeError(`adapter ${a.lora.id}: scale ${a.scale} must be finite`);
    }
    if (sameAdapters(this.adapters, adapters)) return;
    for (const kept of [...this.plans]) this.dropPlan(kept);
    this.state.adapters = adapters.map((a) => ({ ...a }));
  }

  /**
   * Keeps the first `n` positions of the cache and returns how many it kept: `n`, except for a
   * hybrid, whose recurrent state goes back to its latest snapshot at or before `n` (recurrent-state.ts):
   * the caller evaluates the tokens from the returned position again.
   */
  truncate(n: number): number {
    const { kv, recurrent, backend } = this.state;
    // Keeping every position keeps the live state; keeping none always clears it (a step that
    // failed part-way may have changed the state without advancing the cache).
    if (!recurrent || (n === kv.length && n > 0)) {
      kv.truncate(n);
      return n;
    }
    if (!Number.isInteger(n) || n < 0 || n > kv.length) throw new RangeError(`truncate to ${n}: the cache holds ${kv.length}`);
    backend.begin();
    const kept = recurrent.recordRewind(n);
    backend.submit();
    kv.truncate(kept);
    return kept;
  }

  reset(): void {
    this.truncate(0);
  }

  destroy(): void {
    for (const kept of this.plans) kept.plan.destroy();
    this.plans = [];
    this.state.backend.destroy();
  }
}

function sameSampling(a: SamplingParams, b: SamplingParams): boolean {
  return a.temperature === b.temperature && a.topK === b.topK && a.topP === b.topP && a.minP === b.minP;
}

function samePenalties(a: PenaltyParams | undefined, b: PenaltyParams | undefined): boolean {
  if (!a || !b) return a === b;
  return a.repetition === b.repetition && a.frequency === b.frequency && a.presence === b.presence && a.lastN === b.lastN;
}
