import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../../gguf/ggml-types.ts';
import { acquireTestGpu, freshSeed, randomFloats, uploadFloats, type TestGpu } from '../../../../testing/gpu.ts';
import { exactWeights, randomBlocks, randomWeight } from '../../../../testing/random-weights.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { gatherRows } from '../../../../testing/op-harness.ts';
import { KernelCache } from '../kernel.ts';
import { readBuffer } from '../readback.ts';
import { StepRecorder } from '../recorder.ts';
import { uploadWeight } from '../weights.ts';
import type { MatvecStrategy } from '../probe.ts';
import { gluReference, type GluActivation } from './glu.ts';
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
  /** Output rows as a slice of wider rows: this many extra floats per token, the slice at a random offset among them. */
  outPad?: number;
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
  const outStride = c.rows + (c.outPad ?? 0);
  const outOffset = c.outPad ? 1 + (seed % c.outPad) : 0;
  const outBuf = uploadFloats(device, new Float32Array(c.tokens * outStride).fill(NaN)); // poisoned
  const biasBuf = biasValues ? uploadFloats(device, biasValues) : undefined;
  const dummy = uploadFloats(device, new Float32Array(1));
  encodeMatmul(recorder, kernels, device.limits.maxComputeWorkgroupsPerDimension, {
    weight,
    x: { buffer: xBuf },
    out: { buffer: outBuf },
    tokens: c.tokens,
    ...(c.outPad ? { outStride, outOffset } : {}),
    ...(biasBuf ? { bias: biasBuf } : {}),
    dummy,
  });
  recorder.submit();
  const actual = await readSlice(outBuf, c.rows, c.tokens, outStride, outOffset);
  for (const b of [xBuf, outBuf, dummy, biasBuf, ...weight.parts.map((p) => p.buffer)]) b?.destroy();
  return { actual, expected: matmulReference(w.values, c.k, c.rows, x, c.tokens, biasValues) };
}

/** The `rows` floats at `offset` of each token's `stride`, after checking nothing outside them was written (the poison stays). */
async function readSlice(buffer: GPUBuffer, rows: number, tokens: number, stride: number, offset: number): Promise<Float32Array> {
  const all = new Float32Array(await readBuffer(gpu.device, buffer, tokens * stride * 4));
  for (let i = 0; i < all.length; i++) {
    const col = i % stride;
    if ((col < offset || col >= offset + rows) && !Number.isNaN(all[i])) throw new Error(`float ${i} written, outside the output rows`);
  }
  return gatherRows(all, rows, tokens, stride, offset);
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
  // Into a slice of wider rows (v into a [q | k | v] buffer), decode and prefill, split and not.
  { type: GgmlType.Q8_0, rows: 37, k: 64, tokens: 1, bias: true, outPad: 29 },
  { type: GgmlType.F16, rows: 30, k: 40, tokens: 3, maxRowsPerPart: 7, bias: true, outPad: 11 },
  { type: GgmlType.Q8_0, rows: 33, k: 96, tokens: 19, bias: true, outPad: 18 },
];

describe('matmul and matvec with fused dequantization', () => {
  it.each(cases.map((c) => ({ ...c, format: GgmlType[c.type] })))('$format rows=$rows k=$k tokens=$tokens bias=$bias parts<=$maxRowsPerPart', async (c) => {
    const seed = freshSeed(`matmul ${JSON.stringify(c)}`);
    const { actual, expected } = await runCase(c, seed);
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
  });
});

interface GluCase {
  type: GgmlType;
  /** Output rows: the weight is [gate; up], twice as many. */
  rows: number;
  k: number;
  tokens: number;
  activation: GluActivation;
  bias?: boolean;
  /** Output as a slice of wider rows (extra floats per token). */
  outPad?: number;
}

const gluCases: GluCase[] = [
  { type: GgmlType.F32, rows: 37, k: 93, tokens: 1, activation: 'silu' },
  { type: GgmlType.F16, rows: 65, k: 130, tokens: 3, activation: 'gelu', bias: true },
  { type: GgmlType.Q8_0, rows: 45, k: 96, tokens: 2, activation: 'silu', bias: true, outPad: 9 },
  { type: GgmlType.Q4_K, rows: 70, k: 512, tokens: 1, activation: 'silu' },
  { type: GgmlType.Q6_K, rows: 33, k: 256, tokens: 4, activation: 'gelu', bias: true },
  { type: GgmlType.Q4_0, rows: 5, k: 64, tokens: 1, activation: 'gelu' },
];

const STRATEGIES: readonly MatvecStrategy[] = ['workgroup', 'subgroup', 'invocation'];

/** The [gate; up] product with the GLU applied as it is stored, against matmul then GLU in float64. */
async function runGlu(c: GluCase, seed: number, matvec: MatvecStrategy): Promise<{ actual: Float32Array; expected: Float64Array }> {
  const { device } = gpu;
  // Float formats from values, block formats as random valid blocks (decoded exactly by the CPU).
  const blockFormat = ![GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0].includes(c.type);
  const bytes = blockFormat ? randomBlocks(c.type, 2 * c.rows, c.k, seed) : undefined;
  const w = bytes ? { bytes, values: exactWeights(c.type, bytes, 2 * c.rows * c.k) } : randomWeight(c.type, 2 * c.rows, c.k, seed);
  const weight = await uploadWeight(device, { name: 'gate_up', type: c.type, shape: [c.k, 2 * c.rows] }, async (offset, length) => w.bytes.subarray(offset, offset + length));
  // Scaled so that GELU's cut-offs (|x| >= 10) are reached by some rows.
  const x = randomFloats(c.tokens * c.k, seed + 1).map((v) => v * 3);
  const biasValues = c.bias ? randomFloats(2 * c.rows, seed + 2) : undefined;
  const outStride = c.rows + (c.outPad ?? 0);
  const outOffset = c.outPad ? 1 + (seed % c.outPad) : 0;
  const xBuf = uploadFloats(device, x);
  const outBuf = uploadFloats(device, new Float32Array(c.tokens * outStride).fill(NaN));
  const biasBuf = biasValues ? uploadFloats(device, biasValues) : undefined;
  const dummy = uploadFloats(device, new Float32Array(1));
  encodeMatmul(recorder, kernels, device.limits.maxComputeWorkgroupsPerDimension, {
    weight,
    x: { buffer: xBuf },
    out: { buffer: outBuf },
    tokens: c.tokens,
    outStride,
    outOffset,
    ...(biasBuf ? { bias: biasBuf } : {}),
    dummy,
    matvec,
    glu: c.activation,
  });
  recorder.submit();
  const actual = await readSlice(outBuf, c.rows, c.tokens, outStride, outOffset);
  for (const b of [xBuf, outBuf, dummy, biasBuf, ...weight.parts.map((p) => p.buffer)]) b?.destroy();
  const full = matmulReference(w.values, c.k, 2 * c.rows, x, c.tokens, biasValues);
  const gate = new Float64Array(c.tokens * c.rows);
  const up = new Float64Array(c.tokens * c.rows);
  for (let t = 0; t < c.tokens; t++) {
    gate.set(full.subarray(t * 2 * c.rows, t * 2 * c.rows + c.rows), t * c.rows);
    up.set(full.subarray(t * 2 * c.rows + c.rows, (t + 1) * 2 * c.rows), t * c.rows);
  }
  return { actual, expected: gluReference(c.activation, gate, up) };
}

describe('matvec with the GLU applied as [gate; up] rows are stored', () => {
  it.each(gluCases.map((c) => ({ ...c, format: GgmlType[c.type] })))('$format $activation rows=$rows k=$k tokens=$tokens bias=$bias pad=$outPad', async (c) => {
    expect(gpu.device.features.has('subgroups')).toBe(true);
    const seed = freshSeed(`matmul glu ${JSON.stringify(c)}`);
    for (const matvec of STRATEGIES) {
      const { actual, expected } = await runGlu(c, seed, matvec);
      expect(actual.every(Number.isFinite), matvec).toBe(true);
      expect(normalizedMse(actual, expected), matvec).toBeLessThanOrEqual(1e-6);
    }
  });
});
