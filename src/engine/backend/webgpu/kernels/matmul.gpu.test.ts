import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../../gguf/ggml-types.ts';
import { acquireTestGpu, freshSeed, randomFloats, uploadFloats, type TestGpu } from '../../../../testing/gpu.ts';
import { randomWeight } from '../../../../testing/random-weights.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { KernelCache } from '../kernel.ts';
import { readBuffer } from '../readback.ts';
import { StepRecorder } from '../recorder.ts';
import { uploadWeight } from '../weights.ts';
import { encodeMatmul, matmulReference } from './matmul.ts';

let gpu: TestGpu;
let kernels: KernelCache;
let recorder: StepRecorder;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
  recorder = new StepRecorder(gpu.device);
});
afterAll(() => gpu?.destroy());

interface Case {
  type: GgmlType;
  rows: number;
  k: number;
  tokens: number;
  bias?: boolean;
  maxRowsPerPart?: number;
}

async function runCase(c: Case, seed: number): Promise<{ actual: Float32Array; expected: Float64Array }> {
  const { device } = gpu;
  const w = randomWeight(c.type, c.rows, c.k, seed);
  const weight = await uploadWeight(
    device,
    { name: 'w', type: c.type, shape: [c.k, c.rows] },
    async (offset, length) => w.bytes.subarray(offset, offset + length),
    c.maxRowsPerPart ? { maxRowsPerPart: c.maxRowsPerPart } : {},
  );
  const x = randomFloats(c.tokens * c.k, seed + 1);
  const biasValues = c.bias ? randomFloats(c.rows, seed + 2) : undefined;
  const xBuf = uploadFloats(device, x);
  const outBuf = uploadFloats(device, new Float32Array(c.tokens * c.rows).fill(NaN)); // poisoned
  const biasBuf = biasValues ? uploadFloats(device, biasValues) : undefined;
  const dummy = uploadFloats(device, new Float32Array(1));
  encodeMatmul(recorder, kernels, device.limits.maxComputeWorkgroupsPerDimension, {
    weight,
    x: { buffer: xBuf },
    out: { buffer: outBuf },
    tokens: c.tokens,
    ...(biasBuf ? { bias: biasBuf } : {}),
    dummy,
  });
  recorder.submit();
  const actual = new Float32Array(await readBuffer(device, outBuf, c.tokens * c.rows * 4));
  for (const b of [xBuf, outBuf, dummy, biasBuf, ...weight.parts.map((p) => p.buffer)]) b?.destroy();
  return { actual, expected: matmulReference(w.values, c.k, c.rows, x, c.tokens, biasValues) };
}

const FLOAT_TYPES = [GgmlType.F32, GgmlType.F16, GgmlType.BF16];
const cases: Case[] = [
  // Awkward sizes: k and rows not multiples of 4, the workgroup, or the tile.
  ...FLOAT_TYPES.flatMap((type) => [
    { type, rows: 37, k: 93, tokens: 1 },
    { type, rows: 65, k: 130, tokens: 3, bias: true },
    { type, rows: 33, k: 67, tokens: 45, bias: true },
    { type, rows: 7, k: 1, tokens: 5 },
  ]),
  { type: GgmlType.Q8_0, rows: 45, k: 96, tokens: 1 },
  { type: GgmlType.Q8_0, rows: 70, k: 256, tokens: 2, bias: true },
  { type: GgmlType.Q8_0, rows: 100, k: 160, tokens: 37 },
  // A weight split into several buffers, as for tensors above maxStorageBufferBindingSize.
  { type: GgmlType.F16, rows: 50, k: 64, tokens: 1, maxRowsPerPart: 16 },
  { type: GgmlType.Q8_0, rows: 50, k: 64, tokens: 40, bias: true, maxRowsPerPart: 13 },
];

describe('matmul and matvec with fused dequantization', () => {
  it.each(cases.map((c) => ({ ...c, format: GgmlType[c.type] })))('$format rows=$rows k=$k tokens=$tokens bias=$bias parts<=$maxRowsPerPart', async (c) => {
    const seed = freshSeed(`matmul ${JSON.stringify(c)}`);
    const { actual, expected } = await runCase(c, seed);
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
  });
});
