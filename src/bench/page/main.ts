/**
 * The benchmark page: the runtimes that live in a browser, driven from Node by ../chromium.ts
 * through `window.hearthBench`. Served by a Vite dev server with COOP/COEP (cross-origin isolation,
 * which wllama's threads need) and the models under /models/ with Range support.
 */
import { CPU_PLAN_TARGET, CpuBackend, type CpuBackendOptions } from '../../engine/backend/cpu/backend.ts';
import { openGgufModel } from '../../engine/gguf/split.ts';
import { planLoad } from '../../engine/model/loader.ts';
import { createGpuContext } from '../../engine/backend/webgpu/device.ts';
import { httpRangeSource } from '../../engine/gguf/source.ts';
import { gpuCopyBandwidth, wasmReadBandwidth } from '../bandwidth.ts';
import { measureOurs } from '../measure.ts';
import { adapterName, describeSample } from '../describe.ts';
import type { Bandwidth, RunSample, Workload } from '../types.ts';
import { measureWebGpuRuns } from '../webgpu-runs.ts';
import { runWllama, type WllamaPageResult } from './wllama.ts';

export interface PageRunArgs {
  url: string;
  workload: Workload;
  runs: number;
}

export interface PageResult {
  device: string;
  bandwidth: Bandwidth;
  samples: RunSample[];
  /** Threads actually used (the CPU backend may not have a thread pool yet). */
  threads?: number;
}

/** performance.memory is Chromium's (precise with --enable-precise-memory-info). */
function heapBytes(): number | undefined {
  return (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize;
}

/**
 * This engine on the page's WebGPU adapter, whatever it is: the engine's Auto choice would take the
 * CPU backend on a software adapter (SwiftShader here), but this runtime measures WebGPU, so it
 * makes the WebGPU backend directly.
 */
async function oursWebGpu(a: PageRunArgs): Promise<PageResult> {
  const context = await createGpuContext(navigator.gpu);
  try {
    const bandwidth = await gpuCopyBandwidth(context.device);
    const source = await httpRangeSource(a.url);
    const samples = await measureWebGpuRuns({ context, source, workload: a.workload, runs: a.runs, heapBytes, log: (line) => console.log(line) });
    return { device: adapterName(context.adapter), bandwidth, samples };
  } finally {
    context.destroy();
  }
}

async function oursCpu(a: PageRunArgs): Promise<PageResult> {
  // The worker pool needs cross-origin isolation (the bench server sends COOP/COEP); where it
  // cannot start, the backend runs one thread and the result reports the threads actually used.
  const options: CpuBackendOptions = { threads: a.workload.threads };
  const probe = await CpuBackend.create(options);
  const bandwidth = wasmReadBandwidth(probe.kernels);
  const threads = probe.kernels.threads;
  if (probe.kernels.threadingFallback) console.log(`    cpu backend: ${threads} thread(s): ${probe.kernels.threadingFallback}`);
  const device = `wasm SIMD${probe.kernels.relaxed ? ' (relaxed)' : ''}`;
  probe.destroy();
  const source = await httpRangeSource(a.url);
  const samples: RunSample[] = [];
  for (let run = 0; run < a.runs; run++) {
    let backend: CpuBackend | undefined;
    const sample = await measureOurs({
      workload: a.workload,
      run,
      source,
      // Sized from the model's plan: a model over 4 GiB takes several memories.
      backend: async (_file, contextLength) => {
        const planned = planLoad(await openGgufModel([source]), CPU_PLAN_TARGET, { contextLength });
        // --cpu-memory-mib: smaller memories, so a small model takes several (not for the probe above, whose bandwidth buffer needs room).
        backend = await CpuBackend.createFor(planned, { ...options, ...(a.workload.cpuMemoryMiB ? { shardBytes: a.workload.cpuMemoryMiB * 2 ** 20 } : {}) });
        console.log(`    cpu backend: ${backend.shardCount} WebAssembly memor${backend.shardCount === 1 ? 'y' : 'ies'} for ${planned.plan.totalBytes} bytes (budget ${backend.limits.memoryBudgetBytes})`);
        return backend;
      },
      deviceBytes: () => backend?.memoryBytes ?? 0,
      heapBytes,
    });
    console.log(`    run ${run + 1}: ${describeSample(sample)}`);
    samples.push(sample);
  }
  return { device, bandwidth, samples, threads };
}

async function wllama(a: PageRunArgs & { wasmUrl: string; gpu: boolean }): Promise<WllamaPageResult> {
  return runWllama(a.url, a.wasmUrl, a.workload, a.runs, a.gpu);
}

/** The serving Vite server's stamp (its `define`), which ../chromium.ts checks: the page is its compile. */
declare const __HEARTH_BENCH_BUILD__: string;

declare global {
  interface Window {
    hearthBench: { oursWebGpu: typeof oursWebGpu; oursCpu: typeof oursCpu; wllama: typeof wllama; build: string; ready: boolean };
  }
}

window.hearthBench = { oursWebGpu, oursCpu, wllama, build: __HEARTH_BENCH_BUILD__, ready: true };
