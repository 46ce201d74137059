import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { encodeNorm, normReference } from './norm.ts';
import { seededInts, useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

interface Case {
  kind: 'rms' | 'layer';
  n: number;
  rows: number;
  weight: boolean;
  bias?: boolean;
  inPlace?: boolean;
  /** Extra floats per row in x and out (rows are a strided slice of a wider buffer). */
  pad?: number;
}

const cases: Case[] = [
  { kind: 'rms', n: 1, rows: 3, weight: true },
  { kind: 'rms', n: 255, rows: 7, weight: true },
  { kind: 'rms', n: 257, rows: 1, weight: false },
  { kind: 'rms', n: 896, rows: 5, weight: true, inPlace: true },
  { kind: 'rms', n: 1000, rows: 13, weight: true, pad: 37 },
  { kind: 'rms', n: 64, rows: 300, weight: true, pad: 5, inPlace: true },
  { kind: 'layer', n: 3, rows: 2, weight: true, bias: true },
  { kind: 'layer', n: 511, rows: 9, weight: true, bias: true, pad: 3 },
  { kind: 'layer', n: 2049, rows: 4, weight: true, bias: false, inPlace: true },
  { kind: 'layer', n: 100, rows: 6, weight: false, bias: false },
];

describe('norm.wgsl: RMSNorm and LayerNorm with fused weight', () => {
  it.each(cases)('$kind n=$n rows=$rows weight=$weight bias=$bias inPlace=$inPlace pad=$pad', async (c) => {
    const seed = freshSeed(`norm ${JSON.stringify(c)}`);
    const rand = seededInts(seed);
    const pad = c.pad ?? 0;
    const stride = c.n + pad;
    const xOffset = pad ? rand(0, pad) : 0;
    const x = randomFloats(c.rows * c.n, seed);
    // An offset mean makes LayerNorm's centring matter.
    if (c.kind === 'layer') for (let i = 0; i < x.length; i++) x[i] = x[i]! * 3 + 2;
    const w = c.weight ? randomFloats(c.n, seed + 1) : undefined;
    const b = c.bias ? randomFloats(c.n, seed + 2) : undefined;
    const eps = c.kind === 'rms' ? 1e-6 : 1e-5;

    const padded = new Float32Array(xOffset + c.rows * stride).fill(NaN);
    for (let r = 0; r < c.rows; r++) padded.set(x.subarray(r * c.n, (r + 1) * c.n), xOffset + r * stride);
    const xBuf = h.upload(padded);
    const outOffset = c.inPlace ? xOffset : pad ? rand(0, pad) : 0;
    const outBuf = c.inPlace ? xBuf : h.poisoned(outOffset + c.rows * stride);
    encodeNorm(h.recorder, h.kernels, {
      kind: c.kind,
      x: { buffer: xBuf, stride, offset: xOffset },
      out: { buffer: outBuf, stride, offset: outOffset },
      n: c.n,
      rows: c.rows,
      eps,
      ...(w ? { weight: h.upload(w) } : {}),
      ...(b ? { bias: h.upload(b) } : {}),
      dummy: h.dummy,
    });
    await h.submit();
    const all = await h.readF32(outBuf, outOffset + c.rows * stride);
    const actual = new Float32Array(c.rows * c.n);
    for (let r = 0; r < c.rows; r++) actual.set(all.subarray(outOffset + r * stride, outOffset + r * stride + c.n), r * c.n);
    const expected = normReference(c.kind, x, c.n, c.rows, eps, w, b);
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
    if (pad && !c.inPlace) {
      // Nothing outside the rows was written: the padding stays NaN.
      for (let r = 0; r < c.rows; r++) expect(Number.isNaN(all[outOffset + r * stride + c.n] ?? NaN)).toBe(true);
    }
  });
});
