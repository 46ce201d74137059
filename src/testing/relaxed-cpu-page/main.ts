/**
 * Test page (relaxed-model.chromium.test.ts): the CPU backend in the browser, where relaxed SIMD
 * runs (Node 20's is refused), loads a GGUF given as base64 and returns the logits of every prompt
 * position and of decode steps after it.
 */
import { CpuBackend } from '../../engine/backend/cpu/backend.ts';
import { bytesSource } from '../../engine/gguf/source.ts';
import { Model } from '../../engine/model/model.ts';

export interface RelaxedRun {
  relaxed: boolean;
  threads: number;
  /** Every prompt position's logits, then each decode step's. */
  logits: number[][];
}

async function runModel(a: { gguf: string; prompt: number[]; decode: number[]; threads: number }): Promise<RelaxedRun> {
  const bytes = Uint8Array.from(atob(a.gguf), (c) => c.charCodeAt(0));
  const backend = await CpuBackend.create({ threads: a.threads });
  const model = await Model.load(backend, bytesSource(bytes), { contextLength: 64, batch: 16 });
  const all = await model.eval(a.prompt, { logits: 'all' });
  const V = all.length / a.prompt.length;
  const logits = a.prompt.map((_, i) => Array.from(all.subarray(i * V, (i + 1) * V)));
  for (const t of a.decode) logits.push(Array.from(await model.eval([t])));
  const run = { relaxed: backend.kernels.relaxed, threads: backend.threads, logits };
  model.destroy();
  backend.destroy();
  return run;
}

(window as unknown as { runModel: typeof runModel }).runModel = runModel;
document.title = 'ready';
