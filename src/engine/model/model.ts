/**
 * A loaded model with one sequence: `eval` appends tokens (prefill in chunks of the scratch batch,
 * decode one at a time, any mix) and returns the logits asked for; `next` does the same and samples
 * the following token on the device, reading back 4 bytes instead of the logits. Positions are the
 * KV cache's: `truncate` keeps a prefix for reuse, `reset` starts over.
 */
import type { Backend, SamplingOp } from '../backend/ops.ts';
import type { RangedSource } from '../gguf/source.ts';
import type { GgufModel } from '../gguf/split.ts';
import type { ModelConfig } from './config.ts';
import { forward, type ForwardState, type ForwardTap } from './forward.ts';
import { loadModel, type LoadOptions, type MemoryPlan, type PlannedLoad } from './loader.ts';

export type LogitsWanted = 'all' | 'last' | 'none';

export interface EvalOptions {
  /** Which positions' logits to return: every token's, the last one's (default) or none. */
  logits?: LogitsWanted;
  /** Debug: observe every intermediate (reads each back; slow). */
  tap?: ForwardTap;
}

export class Model {
  private readonly state: ForwardState;

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
    return new Model({ backend, config: loaded.config, weights: loaded.weights, scratch: loaded.scratch, kv: loaded.kv }, loaded.plan);
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
   * logits with llama.cpp's chain (greedy when temperature <= 0); `u` is a uniform in [0, 1).
   */
  async next(tokens: readonly number[], sampling: SamplingOp, u: number): Promise<number> {
    if (tokens.length === 0) throw new RangeError('next: no tokens to evaluate');
    const { backend, scratch, config } = this.state;
    const B = scratch.batch;
    this.state.kv.checkRoom(tokens.length);
    for (let at = 0; at < tokens.length; at += B) {
      const chunk = tokens.slice(at, at + B);
      const isLast = at + B >= tokens.length;
      await forward(this.state, chunk, isLast ? chunk.length - 1 : chunk.length);
      if (!isLast) backend.submit();
    }
    backend.sample({ t: scratch.logits, stride: config.nVocab }, config.nVocab, 1, sampling, [u], scratch.sampled);
    const [id] = await backend.readIds(scratch.sampled, 1);
    return id!;
  }

  /** Keeps the first `n` positions of the cache. */
  truncate(n: number): void {
    this.state.kv.truncate(n);
  }

  reset(): void {
    this.state.kv.reset();
  }

  destroy(): void {
    this.state.backend.destroy();
  }
}
