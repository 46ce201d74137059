/**
 * One benchmark run of this engine, the same code under Node (Dawn) and in the page (Chromium's
 * WebGPU, the CPU backend): load the model from a ranged source, warm up, then time the prompt and
 * decode at each context. Decode runs as a chat turn runs it: through the model's decode loop
 * (steps recorded ahead of the ids read back), greedy sampling on the device.
 */
import type { Backend } from '../engine/backend/ops.ts';
import { GREEDY, NO_PENALTIES } from '../engine/sampling/params.ts';
import { readGguf } from '../engine/gguf/reader.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import { GPU_LOOP_DEPTH } from '../engine/model/decode-loop.ts';
import { Model } from '../engine/model/model.ts';
import type { LoopStats } from '../engine/model/token-loop.ts';
import { benchPrompt } from './prompt.ts';
import type { DecodeHostCosts, RunSample, StepCounts, Workload } from './types.ts';

/**
 * Tokens a decode measurement takes before its window opens: the loop's first step evaluates its
 * input through the encode functions (not the captured plan) and the loop is still filling its
 * pipeline of steps ahead.
 */
const LOOP_WARMUP_TOKENS = 2;


export interface OursRunOptions {
  workload: Workload;
  /**
   * Makes the backend for this run (a fresh one each run, so load time includes its setup), for the
   * model's header and the context it loads with (the CPU backend sizes its memories from them).
   */
  backend: (file: GgufFile, contextLength: number) => Promise<Backend>;
  source: RangedSource;
  /** Bytes of device memory held now: GPU buffers (tracked) or the wasm memory. */
  deviceBytes: () => number;
  /** JS heap in use now, where the platform tells. */
  heapBytes: () => number | undefined;
  /** Run index: varies the prompt's first token. */
  run: number;
  /** Dispatches, submits and GPU objects so far (WebGPU runtimes): with it the run reports decode's host costs. */
  stepCounts?: () => StepCounts;
}

export async function measureOurs(o: OursRunOptions): Promise<RunSample> {
  const { workload } = o;
  let peakHeap = 0;
  let peakDevice = 0;
  const sample = () => {
    peakHeap = Math.max(peakHeap, o.heapBytes() ?? 0);
    peakDevice = Math.max(peakDevice, o.deviceBytes());
  };
  const contexts = [...workload.contexts].sort((a, b) => a - b);
  // The loop records GPU_LOOP_DEPTH steps past the last token taken (discarded at its end).
  const longest = Math.max(workload.promptTokens, ...contexts) + LOOP_WARMUP_TOKENS + workload.decodeTokens + GPU_LOOP_DEPTH + 1;

  const t0 = performance.now();
  const file = await readGguf(o.source);
  const contextLength = Math.ceil(longest / 256) * 256;
  const backend = await o.backend(file, contextLength);
  const model = await Model.load(backend, o.source, { file, contextLength, onProgress: sample });
  const loadMs = performance.now() - t0;
  sample();
  try {
    // First use: compiles every pipeline of the batched (prefill) and single-token paths, captures
    // the loop's decode plan, and runs the replay path enough for the JIT (without the loop's
    // tokens, the first run's host time per token came out several times the later runs').
    const w0 = performance.now();
    const t = await model.next(benchPrompt(Math.min(16, workload.promptTokens), o.run + 1).ids, GREEDY, 0);
    await model.next([t], GREEDY, 0);
    model.reset();
    await decodeThroughLoop(model, [t], [], 2, 6);
    const warmupMs = performance.now() - w0;
    model.reset();

    const prompt = benchPrompt(workload.promptTokens, o.run).ids;
    const p0 = performance.now();
    let token = await model.next(prompt, GREEDY, 0);
    const ttftMs = performance.now() - p0;
    // The tokens in the cache, in order (the loop checks their count).
    let cached: number[] = [...prompt];
    sample();

    const decodeTps: Record<string, number> = {};
    const host = { tokens: 0, hostMs: 0, submitMs: 0, dispatches: 0, submits: 0, objects: 0 };
    for (const ctx of contexts) {
      if (model.position > ctx) {
        model.reset();
        cached = [];
      }
      // Fill the cache to `ctx` positions; the values do not matter, only how many there are.
      const fill = ctx - model.position;
      if (fill > 0) {
        const ids = benchPrompt(fill + 1, o.run).ids.slice(1);
        token = await model.next(ids, GREEDY, 0);
        cached.push(...ids);
      }
      const d = await decodeThroughLoop(model, [token], cached, LOOP_WARMUP_TOKENS, workload.decodeTokens, o.stepCounts);
      decodeTps[String(ctx)] = workload.decodeTokens / (d.ms / 1000);
      cached.push(token, ...d.ids.slice(0, -1));
      token = d.ids[d.ids.length - 1]!;
      // A hybrid's loop undoes its run-ahead steps by going back to a snapshot (Model.truncate):
      // the cache may hold fewer tokens than were decoded, and the bench's values do not matter.
      cached.length = Math.min(cached.length, model.position);
      if (d.host) {
        host.tokens += d.host.steps;
        host.hostMs += d.host.hostMs;
        host.submitMs += d.host.submitMs;
        host.dispatches += d.host.dispatches;
        host.submits += d.host.submits;
        host.objects += d.host.objects;
      }
      sample();
    }
    const decodeHost: DecodeHostCosts | undefined =
      host.tokens > 0
        ? {
            tokens: host.tokens,
            hostMsPerToken: host.hostMs / host.tokens,
            submitMsPerToken: host.submitMs / host.tokens,
            dispatchesPerToken: host.dispatches / host.tokens,
            submitsPerToken: host.submits / host.tokens,
            objectsPerToken: host.objects / host.tokens,
          }
        : undefined;
    return {
      loadMs,
      warmupMs,
      ttftMs,
      prefillTps: workload.promptTokens / (ttftMs / 1000),
      decodeTps,
      peakDeviceBytes: peakDevice,
      ...(peakHeap > 0 ? { peakHeapBytes: peakHeap } : {}),
      ...(decodeHost ? { decodeHost } : {}),
    };
  } finally {
    model.destroy();
  }
}

interface LoopWindow {
  /** Every token taken, the warm-up ones first. */
  ids: number[];
  /** Wall time of the `tokens` measured ones. */
  ms: number;
  /** Host costs of the steps recorded during the window (with `counts`). */
  host?: LoopStats & StepCounts;
}

/**
 * Greedy decode from `input` (not yet in the cache, after `cached`) through the model's loop:
 * `warm` tokens, then a window of `tokens`. The loop keeps GPU_LOOP_DEPTH steps in flight, so the
 * steps recorded during the window are as many as its tokens, all past the loop's start-up.
 */
async function decodeThroughLoop(model: Model, input: number[], cached: readonly number[], warm: number, tokens: number, counts?: () => StepCounts): Promise<LoopWindow> {
  const stats: LoopStats = { steps: 0, hostMs: 0, submitMs: 0 };
  const loop = model.decodeLoop({
    prompt: input,
    cached,
    sampling: GREEDY,
    penalties: NO_PENALTIES,
    random: () => 0,
    maxSteps: warm + tokens + GPU_LOOP_DEPTH,
    stats,
  });
  const ids: number[] = [];
  try {
    for (let i = 0; i < warm; i++) ids.push(await loop.next());
    const steps = stats.steps;
    const hostMs = stats.hostMs;
    const submitMs = stats.submitMs;
    const before = counts?.();
    const t0 = performance.now();
    for (let i = 0; i < tokens; i++) ids.push(await loop.next());
    const ms = performance.now() - t0;
    if (!counts || !before) return { ids, ms };
    const after = counts();
    return {
      ids,
      ms,
      host: {
        steps: stats.steps - steps,
        hostMs: stats.hostMs - hostMs,
        submitMs: stats.submitMs - submitMs,
        dispatches: after.dispatches - before.dispatches,
        submits: after.submits - before.submits,
        objects: after.objects - before.objects,
      },
    };
  } finally {
    await loop.finish();
  }
}
