/**
 * The engine's public API: what the UI (through the worker), the CLI and tests call. It is the one
 * typed boundary of the engine; later issues add models, chat completions and the model store here.
 * Every method is async and takes and returns structured-cloneable data, so the same interface is
 * served directly in Node and through Comlink from a Web Worker.
 */
import type { GpuReport } from './backend/webgpu/probe.ts';

export type { GpuReport, AdapterReport, KernelPaths } from './backend/webgpu/probe.ts';

export interface EngineInfo {
  name: 'hearth';
  version: string;
  /** Where the engine runs: a dedicated worker, Node, ... */
  runtime: string;
}

export interface EngineApi {
  /** Identifies the engine; the cheapest call, used to check the worker answers. */
  info(): Promise<EngineInfo>;
  /** Reports the WebGPU adapter, its features and limits, or why there is none. */
  probe(): Promise<GpuReport>;
}
