/**
 * The decode floor's denominator: how fast the device streams memory. A decode step reads every
 * weight byte once, so (weight bytes per token) / bandwidth is the shortest a token can take.
 * Platform-agnostic (Node's Dawn and the page both run it).
 */
import type { CpuKernels } from '../engine/backend/cpu/kernels.ts';
import type { Bandwidth } from './types.ts';

/** copyBufferToBuffer of a large buffer, bytes read plus bytes written per second (best of `repeats`). */
export async function gpuCopyBandwidth(device: GPUDevice, repeats = 5): Promise<Bandwidth> {
  const bytes = Math.min(256 << 20, Math.floor(Math.min(device.limits.maxBufferSize, 1 << 30) / 4 / 2) * 4);
  const src = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST });
  try {
    const copy = async () => {
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    };
    await copy(); // first touch allocates the pages
    let best = Infinity;
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      await copy();
      best = Math.min(best, performance.now() - t0);
    }
    return { bytesPerS: (2 * bytes) / (best / 1000), method: `copyBufferToBuffer ${bytes >> 20} MiB, read + write, best of ${repeats}` };
  } finally {
    src.destroy();
    dst.destroy();
  }
}

/** One thread streaming a 128 MiB wasm buffer with SIMD loads (the CPU kernels' `readBandwidth`). */
export function wasmReadBandwidth(kernels: CpuKernels, repeats = 8): Bandwidth {
  const bytes = 128 << 20;
  const mark = kernels.mark();
  try {
    const ptr = kernels.alloc(bytes);
    // Touch the pages: untouched pages of a fresh memory all map the one zero page (cached).
    kernels.u8(ptr, bytes).fill(1);
    let best = Infinity;
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      kernels.readBandwidth(ptr, bytes);
      best = Math.min(best, performance.now() - t0);
    }
    return { bytesPerS: bytes / (best / 1000), method: `wasm SIMD read of ${bytes >> 20} MiB, one thread, best of ${repeats}` };
  } finally {
    kernels.release(mark);
  }
}
