/**
 * WebGPU in Node through Dawn (the npm `webgpu` package). Gives the engine the same `GPU` object
 * a browser exposes as `navigator.gpu`, so the engine core runs unchanged in the CLI and tests.
 */
import { create, globals } from 'webgpu';
import { usingSoftwareVulkan } from './vulkan-env.ts';

let installed = false;
let instance: GPU | undefined;

/** Installs WebGPU's global constants (GPUBufferUsage, GPUMapMode, ...) that engine code uses. */
export function installWebGpuGlobals(): void {
  if (installed) return;
  Object.assign(globalThis, globals);
  installed = true;
}

/** One Dawn instance per process: creating several leaks Vulkan instances. */
export function nodeGpu(): GPU {
  installWebGpuGlobals();
  instance ??= create([]) as GPU;
  return instance;
}

/** On the software driver only the fallback adapter exists; ask for it so Dawn does not look for hardware. */
export function nodeProbeOptions(): { forceFallbackAdapter: boolean } {
  return { forceFallbackAdapter: usingSoftwareVulkan() };
}
