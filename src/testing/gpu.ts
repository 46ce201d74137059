/**
 * GPU test support: a real WebGPU device through Dawn. There is no silent skip: when no adapter
 * is found the tests fail with the reason, because a GPU test layer that quietly runs nothing
 * proves nothing. On machines without a GPU driver, vite.config.ts points Dawn at SwiftShader.
 */
import { createGpuContext, type GpuContext } from '../engine/backend/webgpu/device.ts';
import { nodeGpu, nodeProbeOptions } from '../node/webgpu.ts';
import { mulberry32 } from './random.ts';

/** A GPU test's device: the engine's own GPU context, on Dawn. */
export type TestGpu = GpuContext;

export async function acquireTestGpu(): Promise<TestGpu> {
  const errors: Error[] = [];
  return createGpuContext(nodeGpu(), {
    ...nodeProbeOptions(),
    onUncapturedError: (error) => errors.push(error),
  });
}

/** Deterministic pseudo-random floats in [-1, 1), fresh per seed. */
export function randomFloats(n: number, seed: number): Float32Array<ArrayBuffer> {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * 2 - 1;
  return out;
}

/** A storage buffer holding `data`, also usable as a copy source for readback. */
export function uploadFloats(device: GPUDevice, data: Float32Array<ArrayBuffer>): GPUBuffer {
  const buffer = device.createBuffer({
    size: Math.max(4, data.byteLength),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

export { freshSeed } from './random.ts';

export interface WatchedGpuOptions {
  /** Called with every device created. */
  onDevice?: (device: GPUDevice) => void;
  /** While false there is no adapter (WebGPU gone for good, as after some driver crashes). */
  available?: () => boolean;
  /** Describe the adapter as a hardware GPU, so the engine's auto choice takes it (SwiftShader stand-in). */
  asHardware?: boolean;
}

/** A `GPU` that forwards to `real`, with the changes `options` asks for. */
export function watchedGpu(real: GPU, options: WatchedGpuOptions = {}): GPU {
  const { onDevice, available = () => true, asHardware = false } = options;
  return {
    requestAdapter: async (requestOptions?: GPURequestAdapterOptions) => {
      if (!available()) return null;
      const adapter = await real.requestAdapter(requestOptions);
      if (!adapter) return adapter;
      return new Proxy(adapter, {
        get(target, prop) {
          if (prop === 'info' && asHardware) {
            const info = target.info;
            return { vendor: 'test', architecture: 'hardware-stand-in', device: '', description: '', isFallbackAdapter: false, subgroupMinSize: info.subgroupMinSize, subgroupMaxSize: info.subgroupMaxSize };
          }
          if (prop === 'isFallbackAdapter' && asHardware) return false;
          if (prop === 'requestDevice') {
            return async (descriptor?: GPUDeviceDescriptor) => {
              const device = await target.requestDevice(descriptor);
              onDevice?.(device);
              return device;
            };
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    getPreferredCanvasFormat: () => real.getPreferredCanvasFormat(),
    wgslLanguageFeatures: real.wgslLanguageFeatures,
  } as unknown as GPU;
}
