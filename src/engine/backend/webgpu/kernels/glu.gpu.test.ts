import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { encodeGlu, geluReference, gluReference, type GluActivation } from './glu.ts';
import { gatherRows, useOpHarness } from '../../../../testing/op-harness.ts';

const h = useOpHarness();

interface Case {
  activation: GluActivation;
  n: number;
  rows: number;
  /** gate and up as the two halves of one fused [rows][2n] buffer. */
  fused?: boolean;
  /** Input range: values in [-range, range). */
  range: number;
}

const cases: Case[] = [
  { activation: 'silu', n: 1, rows: 1, range: 4 },
  { activation: 'silu', n: 4864, rows: 3, range: 6, fused: true },
  { activation: 'silu', n: 257, rows: 9, range: 30 },
  { activation: 'gelu', n: 255, rows: 4, range: 4 },
  { activation: 'gelu', n: 1000, rows: 2, range: 14, fused: true },
  { activation: 'gelu', n: 33, rows: 65, range: 3 },
];

describe('glu.wgsl: SwiGLU and GeGLU', () => {
  it.each(cases)('$activation n=$n rows=$rows fused=$fused range=$range', async (c) => {
    const seed = freshSeed(`glu ${JSON.stringify(c)}`);
    const gate = randomFloats(c.n * c.rows, seed).map((v) => v * c.range);
    const up = randomFloats(c.n * c.rows, seed + 1);
    const out = h.poisoned(c.n * c.rows);
    if (c.fused) {
      const fused = new Float32Array(2 * c.n * c.rows);
      for (let r = 0; r < c.rows; r++) {
        fused.set(gate.subarray(r * c.n, (r + 1) * c.n), r * 2 * c.n);
        fused.set(up.subarray(r * c.n, (r + 1) * c.n), r * 2 * c.n + c.n);
      }
      const buf = h.upload(fused);
      encodeGlu(h.recorder, h.kernels, {
        activation: c.activation,
        gate: { buffer: buf, stride: 2 * c.n },
        up: { buffer: buf, stride: 2 * c.n, offset: c.n },
        out: { buffer: out },
        n: c.n,
        rows: c.rows,
      });
    } else {
      encodeGlu(h.recorder, h.kernels, { activation: c.activation, gate: { buffer: h.upload(gate) }, up: { buffer: h.upload(up) }, out: { buffer: out }, n: c.n, rows: c.rows });
    }
    await h.submit();
    const actual = gatherRows(await h.readF32(out, c.n * c.rows), c.n, c.rows, c.n, 0);
    expect(actual.every(Number.isFinite)).toBe(true);
    expect(normalizedMse(actual, gluReference(c.activation, gate, up))).toBeLessThanOrEqual(1e-6);
  });

  it('GELU reference is the tanh approximation, not erf', () => {
    // erf-GELU(1) = 0.8413447; tanh-GELU(1) = 0.8411920.
    expect(geluReference(1)).toBeCloseTo(0.841192, 6);
    expect(geluReference(-10.5)).toBe(0);
    expect(geluReference(12)).toBe(12);
  });
});
