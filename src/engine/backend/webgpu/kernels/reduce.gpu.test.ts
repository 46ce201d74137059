import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireTestGpu, freshSeed, randomFloats, uploadFloats, type TestGpu } from '../../../../testing/gpu.ts';
import { readBuffer } from '../readback.ts';
import { encodeReduceSum, sumFloat64 } from './reduce.ts';

let gpu: TestGpu;
beforeAll(async () => {
  gpu = await acquireTestGpu();
});
afterAll(() => gpu?.destroy());

async function gpuSum(data: Float32Array<ArrayBuffer>): Promise<number> {
  const { device, pipelines } = gpu;
  const input = uploadFloats(device, data);
  const encoder = device.createCommandEncoder();
  const { result, scratch } = encodeReduceSum(device, pipelines, encoder, input, data.length);
  device.queue.submit([encoder.finish()]);
  const value = new Float32Array(await readBuffer(device, result, 4))[0]!;
  [input, ...scratch].forEach((b) => b.destroy());
  return value;
}

describe('reduce_sum.wgsl on real WebGPU', () => {
  // Sizes around the workgroup (256) and per-group (1024) boundaries, primes, and a multi-pass size.
  const sizes = [1, 2, 255, 256, 257, 1023, 1024, 1025, 4099, 65_537, 1_000_003];

  it.each(sizes)('sums %i floats like the float64 reference', async (n) => {
    const seed = freshSeed(`reduce_sum n=${n}`);
    const data = randomFloats(n, seed);
    const expected = sumFloat64(data);
    const actual = await gpuSum(data);
    // f32 tree summation: error grows like log2(n) * eps * sum|x|.
    let magnitude = 0;
    for (const x of data) magnitude += Math.abs(x);
    expect(Math.abs(actual - expected)).toBeLessThanOrEqual(4e-7 * Math.log2(n + 1) * magnitude + 1e-7);
  });

  it('sums exactly representable values exactly', async () => {
    const data = new Float32Array(5000).fill(1);
    expect(await gpuSum(data)).toBe(5000);
  });

  it('reports the adapter it ran on', () => {
    expect(gpu.adapter.features.length).toBeGreaterThan(0);
    expect(gpu.device.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
  });
});
