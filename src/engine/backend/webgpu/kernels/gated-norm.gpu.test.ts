import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { rmsNormInPlace, silu } from '../../../../testing/reference-recurrent.ts';
import { gatherRows, spreadRows, useOpHarness } from '../../../../testing/op-harness.ts';
import { encodeGatedNorm, gatedNormReference } from './gated-norm.ts';

const h = useOpHarness();

interface Case {
  n: number;
  groups: number;
  rows: number;
  /** z as the columns before y in one wide row (one buffer), or its own buffer. */
  zInY: boolean;
}

const cases: Case[] = [
  { n: 1, groups: 1, rows: 1, zInY: false },
  { n: 64, groups: 1, rows: 3, zInY: true },
  { n: 96, groups: 4, rows: 5, zInY: false },
  { n: 1000, groups: 2, rows: 2, zInY: true },
  { n: 777, groups: 7, rows: 9, zInY: false },
];

describe('gated_norm.wgsl: y * silu(z), then RMSNorm per group', () => {
  it.each(cases)('n=$n groups=$groups rows=$rows zInY=$zInY', async (c) => {
    const seed = freshSeed(`gated_norm ${JSON.stringify(c)}`);
    const y = randomFloats(c.n * c.rows, seed).map((v) => v * 3);
    const z = randomFloats(c.n * c.rows, seed + 1).map((v) => v * 6);
    const weight = randomFloats(c.n, seed + 2);
    const eps = 1e-5;
    let yView, zView, yBuffer: GPUBuffer, read: (all: Float32Array) => Float32Array;
    if (c.zInY) {
      const stride = 2 * c.n + 3;
      const row = spreadRows(z, c.n, c.rows, stride, 1);
      for (let r = 0; r < c.rows; r++) row.set(y.subarray(r * c.n, (r + 1) * c.n), 1 + r * stride + c.n);
      yBuffer = h.upload(row);
      yView = { buffer: yBuffer, stride, offset: 1 + c.n };
      zView = { buffer: yBuffer, stride, offset: 1 };
      read = (all) => gatherRows(all, c.n, c.rows, stride, 1 + c.n);
    } else {
      yBuffer = h.upload(spreadRows(y, c.n, c.rows, c.n + 2, 2));
      yView = { buffer: yBuffer, stride: c.n + 2, offset: 2 };
      zView = { buffer: h.upload(z) };
      read = (all) => gatherRows(all, c.n, c.rows, c.n + 2, 2);
    }
    encodeGatedNorm(h.recorder, h.kernels, { y: yView, z: zView, n: c.n, rows: c.rows, groups: c.groups, eps, weight: h.upload(weight) });
    await h.submit();
    const actual = read(await h.readF32(yBuffer, yBuffer.size / 4));
    expect(actual.every(Number.isFinite)).toBe(true);
    const expected = gatedNormReference(y, z, c.n, c.rows, c.groups, eps, weight);
    expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-10);
  });

  it('the reference is the mamba2 reference forward\'s gate and group norm', () => {
    const [n, groups] = [12, 3];
    const y = randomFloats(n, 5);
    const z = randomFloats(n, 6);
    const w = randomFloats(n, 7);
    const ours = gatedNormReference(y, z, n, 1, groups, 1e-6, w);
    const theirs = Float64Array.from(y, (v, i) => v * silu(z[i]!));
    for (let g = 0; g < groups; g++) rmsNormInPlace(theirs, g * 4, 4, 1e-6, w, g * 4);
    expect(normalizedMse(ours, theirs)).toBeLessThan(1e-24);
  });
});
