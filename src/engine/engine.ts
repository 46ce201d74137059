/**
 * The engine behind `EngineApi`. Constructed with whatever provides WebGPU on this platform, so
 * the same class serves the Web Worker (navigator.gpu) and Node (Dawn).
 */
import type { EngineApi, EngineInfo, GpuReport } from './api.ts';
import { probeWebGPU, type ProbeOptions } from './backend/webgpu/probe.ts';
import { ENGINE_VERSION } from './version.ts';

export interface EnginePlatform {
  /** The WebGPU entry point, or undefined where the platform has none. */
  gpu: GPU | undefined;
  runtime: string;
  probeOptions?: ProbeOptions;
}

export class Engine implements EngineApi {
  constructor(private readonly platform: EnginePlatform) {}

  async info(): Promise<EngineInfo> {
    return { name: 'hearth', version: ENGINE_VERSION, runtime: this.platform.runtime };
  }

  async probe(): Promise<GpuReport> {
    return probeWebGPU(this.platform.gpu, this.platform.probeOptions);
  }
}
