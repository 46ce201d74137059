/**
 * Peak GPU memory of a WebGPU backend: wraps `device.createBuffer` (and each buffer's `destroy`) to
 * keep the sum of live buffer sizes and its maximum. The engine never frees a buffer before the
 * model is destroyed except transient readback buffers, so the peak is weights + KV cache + scratch
 * + the largest readback in flight. Counts what was asked for, not the driver's padding.
 */
export interface GpuMemoryTracker {
  readonly liveBytes: number;
  readonly peakBytes: number;
  /** Starts a new peak from the current live bytes. */
  resetPeak(): void;
}

export function trackGpuMemory(device: GPUDevice): GpuMemoryTracker {
  let live = 0;
  let peak = 0;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor): GPUBuffer => {
    const buffer = create(descriptor);
    const size = descriptor.size;
    live += size;
    peak = Math.max(peak, live);
    const destroy = buffer.destroy.bind(buffer);
    let destroyed = false;
    buffer.destroy = () => {
      if (!destroyed) live -= size;
      destroyed = true;
      destroy();
    };
    return buffer;
  };
  return {
    get liveBytes() {
      return live;
    },
    get peakBytes() {
      return peak;
    },
    resetPeak() {
      peak = live;
    },
  };
}
