/**
 * Which backend a load runs on, and how the CPU backend is sized. `auto` (the default) runs on
 * WebGPU and falls back to the WebAssembly CPU backend when WebGPU is missing or will not start (no
 * navigator.gpu, no adapter, no device), or when its adapter is a software renderer (SwiftShader,
 * llvmpipe, WARP: a GPU emulated on the same CPU, about 100x slower than the CPU backend itself);
 * `webgpu` and `cpu` take that backend, and `webgpu` still runs on a software renderer. Only a
 * failure to get a device falls back: a model that does not fit or is not supported on the GPU is
 * reported as such. The result says which backend runs and why, for the model info.
 *
 * The CPU backend's memory is sized from the model's plan (weights, KV cache for the context,
 * scratch), so a shared memory declares no more than it needs; the plan is made here, once, against
 * the CPU's ceiling ({@link CPU_PLAN_TARGET}) and handed on to the load.
 */
import { HearthError, WebGPUUnavailableError } from '../errors.ts';
import { CPU_PLAN_TARGET, cpuMaxModelBytes, CpuBackend, type CpuPlanned } from './cpu/backend.ts';
import { relaxedSimdSupported, simdSupported } from './cpu/kernels.ts';
import { probeShards } from './cpu/shards.ts';
import type { Backend } from './ops.ts';
import type { GpuContext } from './webgpu/device.ts';
import { WebGpuBackend } from './webgpu/backend.ts';
import type { KernelCache } from './webgpu/kernel.ts';
import { adapterName, probeWebGPU, type ProbeOptions } from './webgpu/probe.ts';

/** What the CPU backend can do in this engine (WebAssembly features and threads). */
export interface CpuReport {
  /** WebAssembly SIMD128: required by the CPU backend. */
  wasmSimd: boolean;
  /** Relaxed SIMD (faster integer dots), used where available. */
  relaxedSimd: boolean;
  /** Whether worker threads can start (SharedArrayBuffer, cross-origin isolation, ...); if not, why. */
  threadsAvailable: boolean;
  threadsReason?: string;
  /** Logical cores the platform reports. */
  hardwareConcurrency: number;
  /** Threads a CPU load uses by default. */
  defaultThreads: number;
  /** The page's (worker's) `crossOriginIsolated`, where the platform has one. */
  crossOriginIsolated?: boolean;
  /**
   * The most a model may take on the CPU backend, weights, KV cache and scratch together: `shards`
   * wasm32 memories (4 GiB each) less the backend's own buffers. The catalog's "fits" uses it.
   */
  maxModelBytes: number;
  /** WebAssembly memories of 4 GiB this engine let us reserve (up to CPU_MAX_SHARDS): the weights are spread over them. */
  shards: number;
}

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

/** The most CPU threads a load starts by default: decode is memory-bound past a few. */
export const MAX_DEFAULT_THREADS = 8;

/** What the CPU backend can do here (for the capability page and the default thread count). */
export function cpuReport(): CpuReport {
  const shards = probeShards();
  const support = CpuBackend.threadingSupport();
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  return {
    wasmSimd: simdSupported(),
    relaxedSimd: relaxedSimdSupported(),
    threadsAvailable: support.available,
    ...(support.reason !== undefined ? { threadsReason: support.reason } : {}),
    hardwareConcurrency: support.hardwareConcurrency,
    defaultThreads: support.available ? Math.max(1, Math.min(support.hardwareConcurrency, MAX_DEFAULT_THREADS)) : 1,
    ...(isolated !== undefined ? { crossOriginIsolated: isolated } : {}),
    maxModelBytes: cpuMaxModelBytes(shards),
    shards,
  };
}

export { CPU_PLAN_TARGET, cpuMaxModelBytes } from './cpu/backend.ts';

/**
 * A model planned against a backend: the CPU backend takes its memory budget from `plan`, and the
 * number of its memories (shards) from the file's matrices (`cpuLayout`) where given.
 */
export type Planned = CpuPlanned;

/** A backend made for one load, with what the model info says about it. */
export interface ChosenBackend<P extends Planned> {
  backend: Backend;
  kind: 'webgpu' | 'cpu';
  notice?: string;
  threads?: number;
  /** The CPU's: the model as planned to size the backend; load it as is rather than plan again. */
  planned?: P;
}

export interface BackendRequest<P extends Planned> {
  /** Default 'auto'. */
  backend?: BackendChoice | undefined;
  /** CPU threads; default min(cores, 8) where workers can start, else 1. */
  threads?: number | undefined;
  /** The WebGPU device, held or opened now; throws WebGPUUnavailableError when WebGPU cannot start. */
  gpuDevice(): Promise<{ context: GpuContext; kernels: KernelCache }>;
  /** The adapter's name when WebGPU here is a software renderer (see {@link softwareAdapterName}). */
  softwareAdapter(): Promise<string | undefined>;
  /** The model read, checked and planned on `target` (the loader's `planLoad`). */
  planForCpu(target: typeof CPU_PLAN_TARGET): P;
}

/** The backend a load runs on, as the module comment says. */
export async function chooseBackend<P extends Planned>(request: BackendRequest<P>): Promise<ChosenBackend<P>> {
  const want = request.backend ?? 'auto';
  if (want === 'cpu') return cpuBackend(request, 'Running on the CPU, as chosen');
  if (want === 'auto') {
    const software = await request.softwareAdapter();
    if (software) return cpuBackend(request, `The WebGPU adapter is a software renderer (${software}), slower than the CPU; running on the CPU`);
  }
  try {
    const { context, kernels } = await request.gpuDevice();
    return { backend: new WebGpuBackend(context.device, { kernelPaths: context.kernelPaths, kernels }), kind: 'webgpu' };
  } catch (error) {
    if (want === 'webgpu' || !(error instanceof WebGPUUnavailableError || (error as Error)?.name === 'WebGPUUnavailableError')) throw error;
    const reason = ((error as Error).message || String(error)).replace(/\.$/, '');
    return cpuBackend(request, `WebGPU unavailable: ${reason}; running on the CPU`);
  }
}

/**
 * The adapter's name when WebGPU here is a software renderer: the held device's adapter, else a
 * fresh probe's (which opens no device). Undefined for a hardware adapter or no WebGPU at all.
 */
export async function softwareAdapterName(held: GpuContext | undefined, gpu: GPU | undefined, probeOptions?: ProbeOptions): Promise<string | undefined> {
  const found = held
    ? { adapter: held.adapter, software: held.kernelPaths.software }
    : await probeWebGPU(gpu, probeOptions).then((p) => (p.available ? { adapter: p.adapter, software: p.kernelPaths.software } : undefined));
  if (!found?.software) return undefined;
  return adapterName(found.adapter) || 'unnamed';
}

/**
 * A CPU backend sized for this model (also a fallback after another backend refused the model, with
 * `why`): its memory budget is the model's plan, so a shared memory
 * declares no more than it needs. Threads: the request's, else the default of {@link cpuReport}.
 */
export async function cpuBackend<P extends Planned>(request: BackendRequest<P>, why: string): Promise<ChosenBackend<P>> {
  const planned = request.planForCpu(CPU_PLAN_TARGET);
  const report = cpuReport();
  if (request.threads !== undefined && (!Number.isInteger(request.threads) || request.threads < 1)) {
    throw new HearthError(`threads must be a positive integer, got ${request.threads}`);
  }
  const threads = request.threads ?? report.defaultThreads;
  // The memories the weights need are made here, before the download: a browser that cannot make
  // them fails now (CpuMemoryError).
  const backend = await CpuBackend.createFor(planned, { threads });
  const n = backend.threads;
  let notice = `${why} (${n} thread${n === 1 ? '' : 's'})`;
  const single = backend.threadingFallback ?? (n === 1 && !report.threadsAvailable ? report.threadsReason : undefined);
  if (single) notice += `; single-threaded because ${single}`;
  return { backend, kind: 'cpu', notice, threads: n, planned };
}
