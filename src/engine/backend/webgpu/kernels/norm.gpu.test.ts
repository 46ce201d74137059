import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { addNormReference, encodeAddNorm, encodeNorm, normReference } from './norm.ts';
import { gatherRows, seededInts, spreadRows, useOpHarness } from '../../../../testing/op-harness.ts';

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

interface AddCase {
  n: number;
  rows: number;
  weight: boolean;
  scale: number;
  /** Extra floats per row in x and cur. */
  pad?: number;
}

const addCases: AddCase[] = [
  { n: 1, rows: 2, weight: true, scale: 1 },
  { n: 255, rows: 3, weight: true, scale: 1 },
  { n: 257, rows: 1, weight: false, scale: 0.22 },
  { n: 896, rows: 5, weight: true, scale: 1, pad: 7 },
  { n: 2049, rows: 4, weight: true, scale: 0.5, pad: 3 },
  { n: 64, rows: 300, weight: true, scale: 1, pad: 5 },
];

describe('add_norm.wgsl: residual add fused with RMSNorm', () => {
  it.each(addCases)('n=$n rows=$rows weight=$weight scale=$scale pad=$pad', async (c) => {
    const seed = freshSeed(`add_norm ${JSON.stringify(c)}`);
    const rand = seededInts(seed);
    const pad = c.pad ?? 0;
    const stride = c.n + pad;
    const x = randomFloats(c.rows * c.n, seed);
    const cur = randomFloats(c.rows * c.n, seed + 1);
    const w = c.weight ? randomFloats(c.n, seed + 2) : undefined;
    const eps = 1e-5;
    const xOffset = pad ? rand(0, pad) : 0;
    const curOffset = pad ? rand(0, pad) : 0;
    // NaN in the padding: a kernel that reads or writes outside the rows shows up.
    const xBuf = h.upload(spreadRows(x, c.n, c.rows, stride, xOffset));
    const curBuf = h.upload(spreadRows(cur, c.n, c.rows, stride, curOffset));
    encodeAddNorm(h.recorder, h.kernels, {
      x: { buffer: xBuf, stride, offset: xOffset },
      cur: { buffer: curBuf, stride, offset: curOffset },
      n: c.n,
      rows: c.rows,
      eps,
      scale: c.scale,
      ...(w ? { weight: h.upload(w) } : {}),
      dummy: h.dummy,
    });
    await h.submit();
    const allX = await h.readF32(xBuf, xOffset + c.rows * stride);
    const allCur = await h.readF32(curBuf, curOffset + c.rows * stride);
    const expected = addNormReference(x, cur, c.n, c.rows, eps, c.scale, w);
    for (const [actual, want] of [[gatherRows(allX, c.n, c.rows, stride, xOffset), expected.x], [gatherRows(allCur, c.n, c.rows, stride, curOffset), expected.cur]] as const) {
      expect(actual.every(Number.isFinite)).toBe(true);
      expect(normalizedMse(actual, want)).toBeLessThanOrEqual(1e-6);
    }
    if (pad) {
      for (let r = 0; r < c.rows; r++) {
        expect(Number.isNaN(allX[xOffset + r * stride + c.n] ?? NaN)).toBe(true);
        expect(Number.isNaN(allCur[curOffset + r * stride + c.n] ?? NaN)).toBe(true);
      }
    }
  });
});
