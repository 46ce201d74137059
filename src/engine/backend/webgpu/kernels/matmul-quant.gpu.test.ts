/**
 * matvec (every strategy) and matmul on every block format, against float64 products over the
 * exact weights: random valid blocks decoded by the CPU reference dequantizer (bit-exact with
 * llama.cpp), so a wrong bit position, scale unpacking or block offset in a WGSL include fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeInfo } from '../../../gguf/ggml-types.ts';
import { acquireTestGpu, freshSeed, randomFloats, uploadFloats, type TestGpu } from '../../../../testing/gpu.ts';
import { exactWeights, randomBlocks } from '../../../../testing/random-weights.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { KernelCache } from '../kernel.ts';
import { readBuffer } from '../readback.ts';
import { StepRecorder } from '../recorder.ts';
import { uploadWeight } from '../weights.ts';
import type { MatvecStrategy } from '../probe.ts';
import { encodeMatmul, matmulReference, matmulSupports } from './matmul.ts';

const MATVEC_STRATEGIES: readonly MatvecStrategy[] = ['workgroup', 'subgroup', 'invocation'];

let gpu: TestGpu;
let kernels: KernelCache;
let recorder: StepRecorder;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
  recorder = new StepRecorder(gpu.device);
});
afterAll(() => gpu?.destroy());

const BLOCK_TYPES = [
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.IQ4_NL,
  GgmlType.Q2_K,
  GgmlType.Q3_K,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
  GgmlType.IQ4_XS,
];
/** Formats the first matmul tests cover; here only for the other matvec strategies. */
const OTHER_TYPES = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0];

interface Case {
  type: GgmlType;
  rows: number;
  k: number;
  tokens: number;
  bias?: boolean;
  maxRowsPerPart?: number;
  /** A smaller per-dimension workgroup limit, so rows fold into a 2-D grid with spare workgroups. */
  maxGroups?: number;
  /** x and out rows wider than k and rows (slices of bigger activations); the gaps must stay untouched. */
  strided?: boolean;
  /** Floats between x rows past k when strided (default 12; an odd gap reads x a float at a time). */
  xGap?: number;
}

/** Awkward shapes per format: rows not multiples of 4, 32 or 64; the smallest and a few larger k. */
function casesFor(type: GgmlType): Case[] {
  const block = ggmlTypeInfo(type)!.blockSize;
  const [k1, k2, k3] = block === 256 ? [256, 512, 256] : [32, 64, 96];
  return [
    { type, rows: 37, k: k1, tokens: 1 },
    { type, rows: 65, k: k2, tokens: 2, bias: true },
    { type, rows: 13, k: k3, tokens: 3 },
    // Long rows: several chunks per invocation, a chunk count that is not a multiple of 16 or 32.
    { type, rows: 19, k: block === 256 ? 2304 : 1056, tokens: 1, bias: true },
    { type, rows: 70, k: k2, tokens: 37, bias: true },
    { type, rows: 33, k: k3, tokens: 45 },
    // A weight split into several buffers, as for tensors above maxStorageBufferBindingSize.
    { type, rows: 50, k: k1, tokens: 1, bias: true, maxRowsPerPart: 13 },
    { type, rows: 50, k: k2, tokens: 40, maxRowsPerPart: 16 },
    // Rows folded into x and y (as for a 150k-row output head), with workgroups past the last row.
    { type, rows: 50, k: k1, tokens: 2, maxGroups: 7 },
    // Strided activations, for both kernels.
    { type, rows: 21, k: k2, tokens: 4, strided: true },
    { type, rows: 21, k: k2, tokens: 9, strided: true, bias: true },
    { type, rows: 21, k: k2, tokens: 3, strided: true, xGap: 13 },
    { type, rows: 21, k: k2, tokens: 11, strided: true, xGap: 13 },
  ];
}

async function runCase(c: Case, seed: number, matvec: MatvecStrategy): Promise<{ actual: Float32Array; expected: Float64Array }> {
  const { device } = gpu;
  const bytes = randomBlocks(c.type, c.rows, c.k, seed);
  const values = exactWeights(c.type, bytes, c.rows * c.k);
  expect(values.every(Number.isFinite), 'random blocks decode to finite weights').toBe(true);
  const weight = await uploadWeight(
    device,
    { name: 'w', type: c.type, shape: [c.k, c.rows] },
    async (offset, length) => bytes.subarray(offset, offset + length),
    c.maxRowsPerPart ? { maxRowsPerPart: c.maxRowsPerPart } : {},
  );
  if (c.maxRowsPerPart) expect(weight.parts.length).toBe(Math.ceil(c.rows / c.maxRowsPerPart));
  const x = randomFloats(c.tokens * c.k, seed + 1);
  const biasValues = c.bias ? randomFloats(c.rows, seed + 2) : undefined;
  const xStride = c.strided ? c.k + (c.xGap ?? 12) : c.k;
  const outStride = c.strided ? c.rows + 7 : c.rows;
  const xStrided = new Float32Array(c.tokens * xStride).fill(1e30); // would swamp any sum that read it
  for (let t = 0; t < c.tokens; t++) xStrided.set(x.subarray(t * c.k, (t + 1) * c.k), t * xStride);
  const xBuf = uploadFloats(device, xStrided);
  const outBuf = uploadFloats(device, new Float32Array(c.tokens * outStride).fill(NaN)); // poisoned
  const biasBuf = biasValues ? uploadFloats(device, biasValues) : undefined;
  const dummy = uploadFloats(device, new Float32Array(1));
  encodeMatmul(recorder, kernels, c.maxGroups ?? device.limits.maxComputeWorkgroupsPerDimension, {
    weight,
    x: { buffer: xBuf },
    out: { buffer: outBuf },
    tokens: c.tokens,
    xStride,
    outStride,
    ...(biasBuf ? { bias: biasBuf } : {}),
    dummy,
    matvec,
  });
  recorder.submit();
  const raw = new Float32Array(await readBuffer(device, outBuf, c.tokens * outStride * 4));
  const actual = new Float32Array(c.tokens * c.rows);
  for (let t = 0; t < c.tokens; t++) {
    actual.set(raw.subarray(t * outStride, t * outStride + c.rows), t * c.rows);
    for (let r = c.rows; r < outStride; r++) expect(raw[t * outStride + r], 'gap between output rows').toBeNaN();
  }
  for (const b of [xBuf, outBuf, dummy, biasBuf, ...weight.parts.map((p) => p.buffer)]) b?.destroy();
  return { actual, expected: matmulReference(values, c.k, c.rows, x, c.tokens, biasValues) };
}

function label(c: Case): string {
  return `${GgmlType[c.type]} rows=${c.rows} k=${c.k} tokens=${c.tokens}${c.bias ? ' bias' : ''}${c.maxRowsPerPart ? ` parts<=${c.maxRowsPerPart}` : ''}${c.maxGroups ? ` groups<=${c.maxGroups}` : ''}${c.strided ? ` strided+${c.xGap ?? 12}` : ''}`;
}

describe('matmul and matvec on block-quantized weights', () => {
  it('has a kernel for every block format', () => {
    for (const type of [...BLOCK_TYPES, ...OTHER_TYPES]) expect(matmulSupports(type), GgmlType[type]).toBe(true);
  });

  const cases = BLOCK_TYPES.flatMap(casesFor);
  it.each(cases.map((c) => ({ c, name: label(c) })))('$name', async ({ c }) => {
    const seed = freshSeed(`matmul-quant ${label(c)}`);
    // Matvec (tokens <= 4) runs every strategy on the same data; matmul has two: tiled
    // (workgroup, subgroup) and a row per invocation (invocation).
    await expectEveryStrategy(c, seed, c.tokens <= 4 ? MATVEC_STRATEGIES : ['workgroup', 'invocation']);
  });

  async function expectEveryStrategy(c: Case, seed: number, strategies: readonly MatvecStrategy[]): Promise<void> {
    if (strategies.includes('subgroup')) expect(gpu.device.features.has('subgroups')).toBe(true);
    for (const matvec of strategies) {
      const { actual, expected } = await runCase(c, seed, matvec);
      expect(actual.every(Number.isFinite), `finite (${matvec})`).toBe(true);
      expect(normalizedMse(actual, expected), matvec).toBeLessThanOrEqual(1e-6);
    }
  }

  // The other strategies on the formats the first matmul tests cover, including a k that is not a
  // multiple of 4 or 32 (the w1 tail), 4 tokens, a split weight, and 13 tokens (prefill: a group of
  // 8 tokens and one of 5).
  const strategyCases: Case[] = OTHER_TYPES.flatMap((type): Case[] =>
    type === GgmlType.Q8_0
      ? [{ type, rows: 45, k: 96, tokens: 1 }, { type, rows: 70, k: 256, tokens: 3, bias: true, maxRowsPerPart: 31 }, { type, rows: 70, k: 96, tokens: 13, strided: true }]
      : [{ type, rows: 37, k: 93, tokens: 1 }, { type, rows: 65, k: 130, tokens: 4, bias: true }, { type, rows: 9, k: 1061, tokens: 1 }, { type, rows: 33, k: 67, tokens: 13, bias: true }],
  );
  it.each(strategyCases.map((c) => ({ c, name: label(c) })))('every matvec strategy $name', async ({ c }) => {
    await expectEveryStrategy(c, freshSeed(`matvec-strategies ${label(c)}`), c.tokens <= 4 ? MATVEC_STRATEGIES : ['workgroup', 'invocation']);
  });
});
