import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { encodeElementwise, elementwiseReference, type ElementwiseOp } from './elementwise.ts';
import { gatherRows, seededInts, spreadRows, useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

interface Case {
  op: ElementwiseOp;
  n: number;
  rows: number;
  scale?: number;
  broadcast?: boolean;
  inPlace?: boolean;
  pad?: number;
}

const cases: Case[] = [
  { op: 'add', n: 1, rows: 1 },
  { op: 'add', n: 257, rows: 3 },
  { op: 'add', n: 896, rows: 7, inPlace: true },
  { op: 'add', n: 100, rows: 9, pad: 13, broadcast: true },
  { op: 'mul', n: 333, rows: 2, broadcast: true },
  { op: 'mul', n: 64, rows: 1025, inPlace: true, pad: 3 },
  { op: 'mul', n: 255, rows: 5, scale: 0.5 },
  { op: 'scale', n: 1000, rows: 3, scale: -1.75 },
  { op: 'scale', n: 17, rows: 11, scale: 3, inPlace: true, pad: 4 },
  { op: 'relu', n: 515, rows: 3 },
  { op: 'relu', n: 64, rows: 9, inPlace: true, pad: 5 },
];

/** Layouts where out shares b's buffer: in place of b, or a, b and out column slices of one row. */
const sharedCases: Array<{ op: 'add' | 'mul'; n: number; rows: number; layout: 'intoB' | 'oneBuffer' }> = [
  { op: 'mul', n: 300, rows: 3, layout: 'intoB' },
  { op: 'add', n: 65, rows: 7, layout: 'intoB' },
  { op: 'mul', n: 257, rows: 5, layout: 'oneBuffer' },
  { op: 'add', n: 1, rows: 1, layout: 'oneBuffer' },
];

describe('elementwise.wgsl: add, mul, scale, relu', () => {
  it.each(cases)('$op n=$n rows=$rows scale=$scale broadcast=$broadcast inPlace=$inPlace pad=$pad', async (c) => {
    const seed = freshSeed(`elementwise ${JSON.stringify(c)}`);
    const rand = seededInts(seed);
    const pad = c.pad ?? 0;
    const stride = c.n + pad;
    const aOffset = pad ? rand(0, pad) : 0;
    const a = randomFloats(c.n * c.rows, seed);
    const b = randomFloats(c.n * (c.broadcast ? 1 : c.rows), seed + 1);
    const aBuf = h.upload(spreadRows(a, c.n, c.rows, stride, aOffset));
    const bOffset = rand(0, 5);
    const bBuf = h.upload(spreadRows(b, c.n, c.broadcast ? 1 : c.rows, c.n, bOffset));
    const outOffset = c.inPlace ? aOffset : pad ? rand(0, pad) : 0;
    const outBuf = c.inPlace ? aBuf : h.poisoned(outOffset + c.rows * stride);
    encodeElementwise(h.recorder, h.kernels, {
      op: c.op,
      a: { buffer: aBuf, stride, offset: aOffset },
      ...(c.op === 'add' || c.op === 'mul' ? { b: { buffer: bBuf, stride: c.broadcast ? 0 : c.n, offset: bOffset } } : {}),
      out: { buffer: outBuf, stride, offset: outOffset },
      n: c.n,
      rows: c.rows,
      ...(c.scale !== undefined ? { scale: c.scale } : {}),
      dummy: h.dummy,
    });
    await h.submit();
    const actual = gatherRows(await h.readF32(outBuf, outOffset + c.rows * stride), c.n, c.rows, stride, outOffset);
    const expected = elementwiseReference(c.op, a, b, c.n, c.rows, c.scale ?? 1, c.broadcast);
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
  });

  it.each(sharedCases)('$op n=$n rows=$rows out in b\'s buffer: $layout', async (c) => {
    const seed = freshSeed(`elementwise shared ${JSON.stringify(c)}`);
    const a = randomFloats(c.n * c.rows, seed);
    const b = randomFloats(c.n * c.rows, seed + 1);
    const expected = elementwiseReference(c.op, a, b, c.n, c.rows, 0.5);
    let aView, bView, outView, read: (all: Float32Array) => Float32Array;
    let buffer: GPUBuffer;
    if (c.layout === 'intoB') {
      buffer = h.upload(spreadRows(b, c.n, c.rows, c.n + 1, 1));
      bView = { buffer, stride: c.n + 1, offset: 1 };
      aView = { buffer: h.upload(a) };
      outView = bView;
      read = (all) => gatherRows(all, c.n, c.rows, c.n + 1, 1);
    } else {
      // [a | b | out] per row; b's rows written in place.
      const stride = 3 * c.n + 2;
      const row = spreadRows(a, c.n, c.rows, stride, 0);
      for (let r = 0; r < c.rows; r++) row.set(b.subarray(r * c.n, (r + 1) * c.n), r * stride + c.n);
      buffer = h.upload(row);
      aView = { buffer, stride, offset: 0 };
      bView = { buffer, stride, offset: c.n };
      outView = { buffer, stride, offset: 2 * c.n };
      read = (all) => gatherRows(all, c.n, c.rows, stride, 2 * c.n);
    }
    encodeElementwise(h.recorder, h.kernels, { op: c.op, a: aView, b: bView, out: outView, n: c.n, rows: c.rows, scale: 0.5, dummy: h.dummy });
    await h.submit();
    const actual = read(await h.readF32(buffer, buffer.size / 4));
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
  });
});
