import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { encodeSoftmax, softmaxReference } from './softmax.ts';
import { gatherRows, seededInts, spreadRows, useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

const cases = [
  { n: 1, rows: 2, scale: 1 },
  { n: 255, rows: 3, scale: 1 },
  { n: 257, rows: 5, scale: 8, pad: 3 },
  { n: 4099, rows: 2, scale: 20, inPlace: true },
  { n: 151_936, rows: 1, scale: 15 },
  { n: 31, rows: 70, scale: 0.125, inPlace: true, pad: 9 },
];

describe('softmax.wgsl over rows', () => {
  it.each(cases)('n=$n rows=$rows scale=$scale inPlace=$inPlace pad=$pad', async (c) => {
    const seed = freshSeed(`softmax ${JSON.stringify(c)}`);
    const rand = seededInts(seed);
    const pad = c.pad ?? 0;
    const stride = c.n + pad;
    const xOffset = pad ? rand(0, pad) : 0;
    const x = randomFloats(c.n * c.rows, seed);
    const xBuf = h.upload(spreadRows(x, c.n, c.rows, stride, xOffset));
    const outOffset = c.inPlace ? xOffset : pad ? rand(0, pad) : 0;
    const outBuf = c.inPlace ? xBuf : h.poisoned(outOffset + c.rows * stride);
    encodeSoftmax(h.recorder, h.kernels, {
      x: { buffer: xBuf, stride, offset: xOffset },
      out: { buffer: outBuf, stride, offset: outOffset },
      n: c.n,
      rows: c.rows,
      scale: c.scale,
    });
    await h.submit();
    const actual = gatherRows(await h.readF32(outBuf, outOffset + c.rows * stride), c.n, c.rows, stride, outOffset);
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, softmaxReference(x, c.n, c.rows, c.scale))).toBeLessThanOrEqual(1e-6);
  });
});
