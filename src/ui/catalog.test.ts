import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CPU_DEFAULT_MODEL_BYTES, fitVerdict, parseCatalog, runningBackend, toStoreEntry, type CatalogModel } from './catalog.ts';
import type { CpuReport, GpuReport } from '../engine/api.ts';
import { cpuReport } from '../engine/backend/choose.ts';
import { bytesSource, readGguf } from '../engine/gguf/index.ts';

const catalog = parseCatalog(JSON.parse(readFileSync(new URL('../../public/models.json', import.meta.url), 'utf8')));

describe('public/models.json', () => {
  it('starts with the built-in demo, served from the app itself', () => {
    const demo = catalog[0]!;
    expect(demo.builtin).toBe(true);
    expect(demo.name).toMatch(/Tiny demo \(not an assistant\)/);
    expect(demo.urls).toEqual(['models/hearth-demo-kjv-q8_0.gguf']);
  });

  it('marks the demo as a text-continuation model, with openings to click and an assistant model to suggest', () => {
    const demo = catalog[0]!;
    expect(demo.mode).toBe('continuation');
    expect(demo.examples?.length).toBeGreaterThan(0);
    const assistant = catalog.find((m) => m.id === demo.assistant);
    expect(assistant?.mode).toBe('chat');
    expect(assistant?.builtin).toBe(false);
    expect(catalog.filter((m) => m.mode === 'continuation').map((m) => m.id)).toEqual([demo.id]);
  });

  it("describes the built-in demo as its file does (context, size, quantization)", async () => {
    const demo = catalog[0]!;
    const bytes = readFileSync(new URL(`../../public/${demo.urls[0]}`, import.meta.url));
    const file = await readGguf(bytesSource(new Uint8Array(bytes)));
    const arch = file.metadata.get('general.architecture') as string;
    expect(demo.contextLength).toBe(Number(file.metadata.get(`${arch}.context_length`)));
    expect(Math.abs(demo.approxSize - bytes.byteLength)).toBeLessThan(0.1 * bytes.byteLength);
    expect(demo.quantization).toBe('Q8_0');
  });

  it('lists the well-known instruct models with sizes, licenses and memory estimates', () => {
    const families = new Set(catalog.map((m) => m.family));
    for (const f of ['Qwen2.5', 'Llama 3.2', 'Llama 3.1', 'Phi-3.5', 'Gemma 1', 'Gemma 2', 'Mistral', 'Granite 3.x']) expect(families).toContain(f);
    for (const m of catalog.slice(1)) {
      expect(m.urls[0]).toMatch(/^https:\/\/huggingface\.co\/.+\.gguf$/);
      expect(m.memoryEstimate).toBeGreaterThan(m.approxSize);
      expect(m.license.length).toBeGreaterThan(2);
    }
    expect(new Set(catalog.map((m) => m.id)).size).toBe(catalog.length);
  });

  it('skips malformed entries', () => {
    expect(parseCatalog({ models: [{ id: 'x' }, catalog[1]] })).toHaveLength(1);
    expect(() => parseCatalog({})).toThrow(/models/);
  });

  it('resolves relative URLs for the worker', () => {
    expect(toStoreEntry(catalog[0]!, 'http://localhost:4317/').urls).toEqual(['http://localhost:4317/models/hearth-demo-kjv-q8_0.gguf']);
  });
});

describe('fitVerdict', () => {
  const model = (memoryEstimate: number, approxSize = memoryEstimate / 2): CatalogModel => ({
    id: 'm', name: 'm', family: '', parameters: '', quantization: '', urls: ['x'], approxSize, memoryEstimate, license: '', contextLength: 0,
  });
  const GiB = 1024 ** 3;

  it('says no where no backend can run', () => {
    expect(fitVerdict(model(1e6), { backend: 'none' }, true).level).toBe('no');
  });
  it('fits small models', () => {
    expect(fitVerdict(model(1 * GiB), { backend: 'webgpu', deviceMemoryGiB: 8 }, false).level).toBe('fits');
  });
  it('is tight, not no, above half of a capped 8 GB report', () => {
    expect(fitVerdict(model(6 * GiB), { backend: 'webgpu', deviceMemoryGiB: 8 }, false).level).toBe('tight');
  });
  it('says no well above a small device', () => {
    expect(fitVerdict(model(6 * GiB), { backend: 'webgpu', deviceMemoryGiB: 2 }, false).level).toBe('no');
  });
  it('says no when storage is short, unless already downloaded', () => {
    const m = model(1 * GiB, 0.8 * GiB);
    expect(fitVerdict(m, { backend: 'webgpu', freeStorage: 0.5 * GiB }, false)).toMatchObject({ level: 'no', reason: expect.stringMatching(/storage/) });
    expect(fitVerdict(m, { backend: 'webgpu', freeStorage: 0.5 * GiB }, true).level).toBe('fits');
  });
});

describe('runningBackend', () => {
  const cpu = { wasmSimd: true } as CpuReport;
  const hardware = { available: true, kernelPaths: { software: false } } as GpuReport;
  const software = { available: true, kernelPaths: { software: true } } as GpuReport;
  const missing = { available: false } as GpuReport;
  it('follows the engine: Auto prefers a hardware GPU, then the CPU, then a software GPU', () => {
    expect(runningBackend('auto', hardware, cpu)).toBe('webgpu');
    expect(runningBackend('auto', software, cpu)).toBe('cpu');
    expect(runningBackend('auto', missing, cpu)).toBe('cpu');
    expect(runningBackend('auto', software, { wasmSimd: false } as CpuReport)).toBe('webgpu');
    expect(runningBackend('auto', missing, undefined)).toBe('none');
    expect(runningBackend('webgpu', missing, cpu)).toBe('none');
    expect(runningBackend('cpu', hardware, cpu)).toBe('cpu');
  });
});

describe('fitVerdict on the CPU backend', () => {
  const GiB = 1024 ** 3;
  const model = (approxSize: number, memoryEstimate: number): CatalogModel => ({
    id: 'm', name: 'm', family: '', parameters: '', quantization: '', urls: ['x'], approxSize, memoryEstimate, license: '', contextLength: 0,
  });
  /** A browser where the CPU backend can make one 4 GiB memory only (a 32-bit engine: CpuReport.shards 1). */
  const oneMemory = { cpuMaxBytes: 4 * GiB - 32 * 1024 ** 2 };
  it('says no, and why, for weights over one memory where the engine makes only one, even where a GPU could run them', () => {
    const eightB = model(4.9 * GiB, 6 * GiB);
    expect(fitVerdict(eightB, { backend: 'cpu', deviceMemoryGiB: 8, ...oneMemory }, false)).toMatchObject({ level: 'no', reason: expect.stringMatching(/at most .*GiB in this browser \(one 4 GiB WebAssembly memory.*needs WebGPU/) });
    expect(fitVerdict(eightB, { backend: 'webgpu', deviceMemoryGiB: 8, ...oneMemory }, false).level).not.toBe('no');
    // Two memories: the CPU holds it (the device memory is the limit then).
    expect(fitVerdict(eightB, { backend: 'cpu', deviceMemoryGiB: 8, cpuMaxBytes: 2 * 4 * GiB - 64 * 1024 ** 2 }, false).level).not.toBe('no');
    expect(fitVerdict(model(9 * GiB, 10 * GiB), { backend: 'cpu', deviceMemoryGiB: 16, cpuMaxBytes: 2 * 4 * GiB - 64 * 1024 ** 2 }, false)).toMatchObject({
      level: 'no',
      reason: expect.stringMatching(/2 WebAssembly memories of 4 GiB/),
    });
  });
  it('is tight when only the default context pushes it past the CPU limit', () => {
    expect(fitVerdict(model(3.5 * GiB, 4.2 * GiB), { backend: 'cpu', deviceMemoryGiB: 8, ...oneMemory }, false)).toMatchObject({ level: 'tight', reason: expect.stringMatching(/shorter context/) });
    expect(fitVerdict(model(1 * GiB, 1.5 * GiB), { backend: 'cpu', deviceMemoryGiB: 8, ...oneMemory }, false).level).toBe('fits');
  });
});

describe('fitVerdict per backend', () => {
  const GiB = 1024 ** 3;
  const model = (approxSize: number, memoryEstimate: number): CatalogModel => ({
    id: 'm', name: 'm', family: '', parameters: '', quantization: '', urls: ['x'], approxSize, memoryEstimate, license: '', contextLength: 0,
  });
  const cpuOnly = { webgpu: false, cpu: true };
  const both = { webgpu: true, cpu: true };
  const catalog = parseCatalog(JSON.parse(readFileSync(new URL('../../public/models.json', import.meta.url), 'utf8')));

  /** A browser that lets the CPU backend make one 4 GiB memory only (a 32-bit engine). */
  const oneMemory = 4 * GiB - 32 * 1024 ** 2;

  it('marks no catalog model past the CPU limit as fitting where only the CPU backend runs', () => {
    const big = catalog.filter((m) => m.approxSize > oneMemory);
    // Qwen2.5-7B (4.4 GiB) and Llama-3.1-8B (4.6 GiB) Q4_K_M among them.
    expect(big.length).toBeGreaterThanOrEqual(2);
    for (const m of big) {
      const v = fitVerdict(m, { backend: 'cpu', deviceMemoryGiB: 8, usable: cpuOnly, cpuMaxBytes: oneMemory }, false);
      expect(v.level, m.id).toBe('no');
      expect(v.only, m.id).toBeUndefined();
      expect(v.reason).toMatch(/one 4 GiB WebAssembly memory.*needs WebGPU/);
      // Where the engine makes several memories (64-bit browsers: the default), the CPU holds it.
      const several = fitVerdict(m, { backend: 'cpu', deviceMemoryGiB: 16, usable: cpuOnly }, false);
      expect(several.level, m.id).not.toBe('no');
    }
  });

  it('says a model past the CPU limit runs on WebGPU only where both backends run', () => {
    const eightB = model(4.6 * GiB, 6.3 * GiB);
    const onGpu = fitVerdict(eightB, { backend: 'webgpu', deviceMemoryGiB: 16, usable: both, cpuMaxBytes: oneMemory }, false);
    expect(onGpu.level).not.toBe('no');
    expect(onGpu.only).toBe('webgpu');
    expect(onGpu.reason).toMatch(/Runs on WebGPU only: On the CPU a model may take at most/);
    const cpuChosen = fitVerdict(eightB, { backend: 'cpu', deviceMemoryGiB: 16, usable: both, cpuMaxBytes: oneMemory }, false);
    expect(cpuChosen.level).toBe('no');
    expect(cpuChosen.only).toBe('webgpu');
    expect(cpuChosen.reason).toMatch(/WebGPU can run it here: choose WebGPU or Auto/);
  });

  it('takes the CPU limit from the engine, less the backend\'s own buffers by default', () => {
    // Node makes every memory the backend may: the default is that many.
    expect(cpuReport().maxModelBytes).toBe(CPU_DEFAULT_MODEL_BYTES);
    expect(cpuReport().shards).toBe(8);
    const justUnder4 = model(4 * GiB - 8 * 1024 ** 2, 4 * GiB);
    expect(fitVerdict(justUnder4, { backend: 'cpu', usable: cpuOnly, cpuMaxBytes: oneMemory }, false).level).toBe('no');
    expect(fitVerdict(justUnder4, { backend: 'cpu', usable: cpuOnly }, false).level).toBe('fits');
    const m = model(2 * GiB, 2.5 * GiB);
    expect(fitVerdict(m, { backend: 'cpu', usable: cpuOnly }, false).level).toBe('fits');
    expect(fitVerdict(m, { backend: 'cpu', usable: cpuOnly, cpuMaxBytes: 1 * GiB }, false).level).toBe('no');
  });

  it('names no single backend when both or neither can run it', () => {
    const small = model(1 * GiB, 1.5 * GiB);
    const fits = fitVerdict(small, { backend: 'webgpu', usable: both }, false);
    expect(fits.level).toBe('fits');
    expect(fits.only).toBeUndefined();
    const noRoom = fitVerdict(small, { backend: 'webgpu', usable: both, freeStorage: 0.1 * GiB }, false);
    expect(noRoom.level).toBe('no');
    expect(noRoom.only).toBeUndefined();
    expect(noRoom.reason).toMatch(/storage/);
  });
});
