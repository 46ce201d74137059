/**
 * Test page (relaxed-model.chromium.test.ts): the CPU backend in the browser, where relaxed SIMD
 * runs (Node 20's is refused), loads a GGUF given as base64 and returns the logits of a prefill and
 * of decode steps after it.
 */
import { CpuBackend } from '../../engine/backend/cpu/backend.ts';
import { bytesSource } from '../../engine/gguf/source.ts';
import { Model } from '../../engine/model/model.ts';

export interface RelaxedRun {
  relaxed: boolean;
  threads: number;
  /** The prompt's last logits, then each decode step's. */
  logits: number[][];
}

async function runModel(a: { gguf: string; prompt: number[]; decode: number[]; threads: number }): Promise<RelaxedRun> {
  const bytes = Uint8Array.from(atob(a.gguf), (c) => c.charCodeAt(0));
  const backend = await CpuBackend.create({ threads: a.threads });
  const model = await Model.load(backend, bytesSource(bytes), { contextLength: 64, batch: 16 });
  const logits = [Array.from(await model.eval(a.prompt))];
  for (const t of a.decode) logits.push(Array.from(await model.eval([t])));
  const run = { relaxed: backend.kernels.relaxed, threads: backend.threads, logits };
  model.destroy();
  backend.destroy();
  return run;
}

(window as unknown as { runModel: typeof runModel }).runModel = runModel;
document.title = 'ready';
