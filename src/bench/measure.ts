/**
 * One benchmark run of this engine, the same code under Node (Dawn) and in the page (Chromium's
 * WebGPU, the CPU backend): load the model from a ranged source, warm up, then time the prompt and
 * decode at each context. Greedy sampling on the device, as a chat turn would run.
 */
import type { Backend } from '../engine/backend/ops.ts';
import { GREEDY } from '../engine/sampling/params.ts';
import { readGguf } from '../engine/gguf/reader.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import { Model } from '../engine/model/model.ts';
import { benchPrompt } from './prompt.ts';
import type { RunSample, Workload } from './types.ts';


export interface OursRunOptions {
  workload: Workload;
  /** Makes the backend for this run (a fresh one each run, so load time includes its setup). */
  backend: () => Promise<Backend>;
  source: RangedSource;
  /** Bytes of device memory held now: GPU buffers (tracked) or the wasm memory. */
  deviceBytes: () => number;
  /** JS heap in use now, where the platform tells. */
  heapBytes: () => number | undefined;
  /** Run index: varies the prompt's first token. */
  run: number;
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
  const longest = Math.max(workload.promptTokens, ...contexts) + workload.decodeTokens + 1;

  const t0 = performance.now();
  const backend = await o.backend();
  const file = await readGguf(o.source);
  const model = await Model.load(backend, o.source, { file, contextLength: Math.ceil(longest / 256) * 256, onProgress: sample });
  const loadMs = performance.now() - t0;
  sample();
  try {
    // First use: compiles every pipeline of the batched (prefill) and single-token paths.
    const w0 = performance.now();
    const t = await model.next(benchPrompt(Math.min(16, workload.promptTokens), o.run + 1).ids, GREEDY, 0);
    await model.next([t], GREEDY, 0);
    const warmupMs = performance.now() - w0;
    model.reset();

    const prompt = benchPrompt(workload.promptTokens, o.run).ids;
    const p0 = performance.now();
    let token = await model.next(prompt, GREEDY, 0);
    const ttftMs = performance.now() - p0;
    sample();

    const decodeTps: Record<string, number> = {};
    for (const ctx of contexts) {
      if (model.position > ctx) model.reset();
      // Fill the cache to `ctx` positions; the values do not matter, only how many there are.
      const fill = ctx - model.position;
      if (fill > 0) token = await model.next(benchPrompt(fill + 1, o.run).ids.slice(1), GREEDY, 0);
      const d0 = performance.now();
      for (let i = 0; i < workload.decodeTokens; i++) token = await model.next([token], GREEDY, 0);
      decodeTps[String(ctx)] = workload.decodeTokens / ((performance.now() - d0) / 1000);
      sample();
    }
    return {
      loadMs,
      warmupMs,
      ttftMs,
      prefillTps: workload.promptTokens / (ttftMs / 1000),
      decodeTps,
      peakDeviceBytes: peakDevice,
      ...(peakHeap > 0 ? { peakHeapBytes: peakHeap } : {}),
    };
  } finally {
    model.destroy();
  }
}
