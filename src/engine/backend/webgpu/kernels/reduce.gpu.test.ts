/**
 * Sum of a float32 vector on the GPU (reduce_sum.wgsl), run in passes until one value is left,
 * against the float64 sum. No engine op uses this kernel: it is the plainest end-to-end check of
 * the WebGPU path (adapter, shader compile, uniforms, dispatch, readback), so its encoder lives here.
 */
import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { useOpHarness } from '../../../../testing/op-harness.ts';
import type { KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { dispatchGrid, shaderKernel } from './common.ts';

const WORKGROUP_SIZE = 256;
/** Each workgroup sums this many items: 4 loads per invocation keeps the tree step a small share. */
const ITEMS_PER_GROUP = WORKGROUP_SIZE * 4;

/** Float64 reference: the exact sum (to double precision) the GPU result is compared with. */
function sumFloat64(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum;
}

/**
 * Records the passes that reduce `n` floats of `input` to one float, at offset 0 of the returned
 * buffer; `partials(groups)` gives each pass its output buffer. Grids wider than `maxGroupsPerDim`
 * (the device's maxComputeWorkgroupsPerDimension) fold into y.
 */
function encodeReduceSum(
  recorder: StepRecorder,
  kernels: KernelCache,
  input: GPUBuffer,
  n: number,
  partials: (groups: number) => GPUBuffer,
  maxGroupsPerDim: number,
): GPUBuffer {
  if (n < 1) throw new RangeError('encodeReduceSum: n must be at least 1');
  const kernel = shaderKernel(kernels, 'reduce_sum.wgsl', { constants: { WORKGROUP_SIZE } });
  let source = input;
  let count = n;
  do {
    const groups = Math.ceil(count / ITEMS_PER_GROUP);
    const [gx, gy] = dispatchGrid(groups, maxGroupsPerDim);
    const output = partials(groups);
    recorder.dispatch(kernel, {
      params: { n: count, items_per_group: ITEMS_PER_GROUP, groups_x: gx },
      bind: { input: source, partials: output },
      workgroups: [gx, gy],
      label: `reduce_sum n=${count}`,
    });
    source = output;
    count = groups;
  } while (count > 1);
  return source;
}

const h = useOpHarness();

async function gpuSum(data: Float32Array<ArrayBuffer>): Promise<number> {
  const maxGroupsPerDim = h.device.limits.maxComputeWorkgroupsPerDimension;
  const result = encodeReduceSum(h.recorder, h.kernels, h.upload(data), data.length, (groups) => h.poisoned(groups), maxGroupsPerDim);
  await h.submit();
  return (await h.readF32(result, 1))[0]!;
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
    expect(h.gpu.adapter.features.length).toBeGreaterThan(0);
    expect(h.device.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
  });
});
