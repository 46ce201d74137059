/**
 * Embedding lookup on every table format against the CPU reference dequantizer, bit for bit: the
 * kernel only decodes and scales, so any difference is a decoding bug, not rounding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeInfo } from '../../../gguf/ggml-types.ts';
import { acquireTestGpu, freshSeed, uploadFloats, type TestGpu } from '../../../../testing/gpu.ts';
import { exactWeights, randomBlocks } from '../../../../testing/random-weights.ts';
import { KernelCache } from '../kernel.ts';
import { readBuffer } from '../readback.ts';
import { StepRecorder } from '../recorder.ts';
import { uploadWeight } from '../weights.ts';
import { embedReference, embedSupports, encodeEmbed } from './embed.ts';

let gpu: TestGpu;
let kernels: KernelCache;
let recorder: StepRecorder;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
  recorder = new StepRecorder(gpu.device);
});
afterAll(() => gpu?.destroy());

const TYPES = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
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

interface Case {
  type: GgmlType;
  rows: number;
  k: number;
  ids: number[];
  scale?: number;
  maxRowsPerPart?: number;
  /** Floats per output row, when wider than k (a row of a larger activation buffer). */
  outStride?: number;
}

async function runCase(c: Case, seed: number): Promise<{ actual: Float32Array; expected: Float32Array }> {
  const { device } = gpu;
  const bytes = randomBlocks(c.type, c.rows, c.k, seed);
  const values = exactWeights(c.type, bytes, c.rows * c.k);
  const table = await uploadWeight(
    device,
    { name: 'token_embd', type: c.type, shape: [c.k, c.rows] },
    async (offset, length) => bytes.subarray(offset, offset + length),
    c.maxRowsPerPart ? { maxRowsPerPart: c.maxRowsPerPart } : {},
  );
  const stride = c.outStride ?? c.k;
  const idsBuf = device.createBuffer({ size: Math.max(4, c.ids.length * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(idsBuf, 0, new Uint32Array(c.ids));
  const outBuf = uploadFloats(device, new Float32Array(c.ids.length * stride).fill(NaN)); // poisoned
  encodeEmbed(recorder, kernels, device.limits.maxComputeWorkgroupsPerDimension, {
    table,
    ids: { buffer: idsBuf },
    out: { buffer: outBuf },
    tokens: c.ids.length,
    outStride: stride,
    ...(c.scale !== undefined ? { scale: c.scale } : {}),
  });
  recorder.submit();
  const raw = new Float32Array(await readBuffer(device, outBuf, c.ids.length * stride * 4));
  for (const b of [idsBuf, outBuf, ...table.parts.map((p) => p.buffer)]) b.destroy();
  // Columns past k must be left alone (still the poison).
  const actual = new Float32Array(c.ids.length * c.k);
  for (let t = 0; t < c.ids.length; t++) {
    actual.set(raw.subarray(t * stride, t * stride + c.k), t * c.k);
    for (let j = c.k; j < stride; j++) expect(raw[t * stride + j]).toBeNaN();
  }
  return { actual, expected: embedReference(values, c.k, c.rows, c.ids, c.scale) };
}

function kFor(type: GgmlType): number {
  const block = ggmlTypeInfo(type)!.blockSize;
  return block === 256 ? 512 : block === 32 ? 96 : 70; // floats: not a multiple of 4 (the w1 tail)
}

function label(c: Case): string {
  return `${GgmlType[c.type]} rows=${c.rows} k=${c.k} tokens=${c.ids.length}${c.scale ? ` scale=${c.scale.toFixed(3)}` : ''}${c.maxRowsPerPart ? ` parts<=${c.maxRowsPerPart}` : ''}`;
}

const cases: Case[] = TYPES.flatMap((type) => {
  const k = kFor(type);
  return [
    // Repeated ids, the first and last row, and ids past the end (zeros, no out-of-bounds read).
    { type, rows: 37, k, ids: [5, 0, 36, 5, 37, 12, 0xffffffff, 100] },
    // A split table: ids land in every part, in no particular order; Gemma-style scale.
    { type, rows: 50, k, ids: [49, 3, 13, 26, 39, 12, 25, 50, 40, 0], scale: Math.sqrt(k), maxRowsPerPart: 13, outStride: k + 3 },
  ];
});

describe('embedding lookup', () => {
  it('supports every table format', () => {
    for (const type of TYPES) expect(embedSupports(type), GgmlType[type]).toBe(true);
  });

  it.each(cases.map((c) => ({ c, name: label(c) })))('$name', async ({ c }) => {
    const seed = freshSeed(`embed ${label(c)}`);
    const { actual, expected } = await runCase(c, seed);
    c.ids.forEach((id, t) => {
      const row = actual.subarray(t * c.k, (t + 1) * c.k);
      if (id >= c.rows) expect(row.every((v) => Object.is(v, 0)), `token ${t}: id ${id} is out of range`).toBe(true);
      else expect(row.some((v) => v !== 0), `token ${t}: row ${id} is not all zeros`).toBe(true);
    });
    let mismatches = 0;
    let first = -1;
    for (let i = 0; i < expected.length; i++) {
      if (!Object.is(actual[i], expected[i])) {
        mismatches++;
        if (first < 0) first = i;
      }
    }
    expect(mismatches, first >= 0 ? `first at ${first}: ${actual[first]} != ${expected[first]}` : '').toBe(0);
  });

  it.each([GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K])('keeps subnormal f16 scales of %s (not flushed to zero)', async (type) => {
    // Real files have tiny scales and mins; llama.cpp converts subnormal halves exactly.
    const { device } = gpu;
    const rows = 4;
    const k = 256;
    const bytes = randomBlocks(type, rows, k, freshSeed(`embed subnormal ${GgmlType[type]}`));
    const { typeSize } = ggmlTypeInfo(type)!;
    const halfOffsets = { [GgmlType.Q4_0]: [0], [GgmlType.Q4_K]: [0, 2], [GgmlType.Q6_K]: [208] }[type as number]!;
    for (let b = 0; b * typeSize < bytes.length; b++) {
      for (const o of halfOffsets) {
        bytes[b * typeSize + o] = 0x01 + b * 37;
        bytes[b * typeSize + o + 1] = b % 2 ? 0x83 : 0x02; // exponent 0: subnormal, both signs
      }
    }
    const values = exactWeights(type, bytes, rows * k);
    expect(values.some((v) => v !== 0)).toBe(true);
    const table = await uploadWeight(device, { name: 't', type, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    const ids = [0, 1, 2, 3];
    const idsBuf = device.createBuffer({ size: ids.length * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(idsBuf, 0, new Uint32Array(ids));
    const outBuf = uploadFloats(device, new Float32Array(ids.length * k).fill(NaN));
    encodeEmbed(recorder, kernels, device.limits.maxComputeWorkgroupsPerDimension, { table, ids: { buffer: idsBuf }, out: { buffer: outBuf }, tokens: ids.length });
    recorder.submit();
    const actual = new Float32Array(await readBuffer(device, outBuf, ids.length * k * 4));
    for (const b of [idsBuf, outBuf, ...table.parts.map((p) => p.buffer)]) b.destroy();
    expect(actual).toEqual(embedReference(values, k, rows, ids));
  });

  it('decodes every f16 scale bit pattern exactly (Q4_0 blocks with q - 8 = 1, one per row)', async () => {
    // 65536 tokens also exceed maxComputeWorkgroupsPerDimension (65535): the token fold runs.
    const { device } = gpu;
    const type = GgmlType.Q4_0;
    const rows = 65536;
    const k = 32;
    const bytes = new Uint8Array(rows * 18).fill(0x99); // every nibble 9
    for (let r = 0; r < rows; r++) {
      bytes[r * 18] = r & 0xff;
      bytes[r * 18 + 1] = r >> 8;
    }
    const values = exactWeights(type, bytes, rows * k);
    const table = await uploadWeight(device, { name: 't', type, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    const ids = Array.from({ length: rows }, (_, i) => i);
    const idsBuf = device.createBuffer({ size: rows * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(idsBuf, 0, new Uint32Array(ids));
    const outBuf = uploadFloats(device, new Float32Array(rows * k).fill(NaN));
    encodeEmbed(recorder, kernels, device.limits.maxComputeWorkgroupsPerDimension, { table, ids: { buffer: idsBuf }, out: { buffer: outBuf }, tokens: rows });
    recorder.submit();
    const actual = new Float32Array(await readBuffer(device, outBuf, rows * k * 4));
    for (const b of [idsBuf, outBuf, ...table.parts.map((p) => p.buffer)]) b.destroy();
    const bad: string[] = [];
    for (let r = 0; r < rows; r++) {
      const want = values[r * k]!;
      for (let j = 0; j < k; j++) {
        const got = actual[r * k + j]!;
        if (!(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)))) {
          bad.push(`0x${r.toString(16)}: ${got} != ${want}`);
          break;
        }
      }
    }
    expect(bad.slice(0, 5), `${bad.length} bit patterns wrong`).toEqual([]);
  });

  it('handles more tokens than one dispatch dimension allows', async () => {
    // Token counts fold into y and z; check with a small limit instead of 65536 real tokens.
    const { device } = gpu;
    const type = GgmlType.Q4_K;
    const rows = 9;
    const k = 256;
    const bytes = randomBlocks(type, rows, k, freshSeed('embed fold'));
    const values = exactWeights(type, bytes, rows * k);
    const table = await uploadWeight(device, { name: 't', type, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n));
    const ids = Array.from({ length: 23 }, (_, i) => (i * 7) % (rows + 2));
    const idsBuf = device.createBuffer({ size: ids.length * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(idsBuf, 0, new Uint32Array(ids));
    const outBuf = uploadFloats(device, new Float32Array(ids.length * k).fill(NaN));
    encodeEmbed(recorder, kernels, 5, { table, ids: { buffer: idsBuf }, out: { buffer: outBuf }, tokens: ids.length });
    recorder.submit();
    const actual = new Float32Array(await readBuffer(device, outBuf, ids.length * k * 4));
    for (const b of [idsBuf, outBuf, ...table.parts.map((p) => p.buffer)]) b.destroy();
    expect(actual).toEqual(embedReference(values, k, rows, ids));
  });
});
