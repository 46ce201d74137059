/**
 * The backend an encoder-decoder (t5) model runs on, chosen by what the backend supports: with a
 * (stand-in) hardware WebGPU adapter and `backend: 'auto'`, a WebGPU backend that cannot run t5
 * (T5Model.load refuses it by name) falls back to the CPU backend and the model info says why,
 * while `backend: 'webgpu'` gets the refusal itself. Where WebGPU does run t5, auto stays on it
 * and the greedy output equals the CPU backend's.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { nodeGpu, nodeProbeOptions } from '../../src/node/webgpu.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { watchedGpu } from '../../src/testing/gpu.ts';

const bytes = makeTestModel({ arch: 't5', embd: 64, layers: 2, heads: 4, ff: 128, seed: 12, name: 'Tiny T5' });
const file = () => ({ kind: 'file' as const, file: new Blob([bytes as Uint8Array<ArrayBuffer>]), name: 't5.gguf' });
const REQUEST = { input: 'translate English to German: the house is small', max_tokens: 10, temperature: 0 };

const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.unloadModel();
});

describe('t5 backend choice', () => {
  it('auto takes WebGPU only where it runs t5, else the CPU with the reason; webgpu asked for gets the refusal by name', { timeout: 120_000 }, async () => {
    const cpu = new Engine({ gpu: undefined, runtime: 'test' });
    const gpu = new Engine({ gpu: watchedGpu(nodeGpu(), { asHardware: true }), runtime: 'test', probeOptions: nodeProbeOptions() });
    engines.push(cpu, gpu);
    await cpu.loadModel(file(), { backend: 'cpu', threads: 1, contextLength: 48 });
    const expected = await cpu.transform(REQUEST);

    const info = await gpu.loadModel(file(), { contextLength: 48 });
    const forced = await gpu.loadModel(file(), { backend: 'webgpu', contextLength: 48 }).then(
      (i) => i,
      (e: Error & { detail?: Record<string, unknown> }) => e,
    );
    if (info.backend === 'cpu') {
      expect(info.backendNotice).toMatch(/^t5 .*do(es)? not run on the webgpu backend yet; running on the CPU \(\d+ threads?\)/);
      expect(forced).toBeInstanceOf(Error);
      expect((forced as Error).name).toBe('UnsupportedModelError');
      expect((forced as Error & { detail?: Record<string, unknown> }).detail?.backend).toBe('webgpu');
    } else {
      expect(info.backend).toBe('webgpu');
      expect((forced as { backend: string }).backend).toBe('webgpu');
    }
    // Either way the model answers, with the CPU's greedy output.
    expect((await gpu.transform(REQUEST)).output).toBe(expected.output);
  });
});
