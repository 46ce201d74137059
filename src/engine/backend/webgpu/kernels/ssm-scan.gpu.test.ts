import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { ssmScanChunked, ssmScanSequential } from '../../../../testing/reference-mamba2.ts';
import { gatherRows, spreadRows, useOpHarness } from '../../../../testing/op-harness.ts';
import { chunkedScanScratchFloats, encodeSsmScan, encodeSsmScanChunked, scanLanes } from './ssm-scan.ts';

const h = useOpHarness();

interface Case {
  heads: number;
  headDim: number;
  stateSize: number;
  groups: number;
  /** Tokens per call; the state carries across calls. */
  calls: number[];
  /** x, B and C as column slices of one wide row ([z | x | B | C | pad], as a projection's), or three buffers. */
  shared: boolean;
  /** Floats before the state region in its buffer. */
  stateOffset: number;
  /** Tokens per chunk: the chunked form (ssm_scan_chunked.wgsl) for calls of more than one token. */
  chunk?: number;
}

const cases: Case[] = [
  { heads: 1, headDim: 1, stateSize: 1, groups: 1, calls: [1, 2], shared: false, stateOffset: 0 },
  { heads: 4, headDim: 8, stateSize: 16, groups: 1, calls: [1, 1, 1], shared: true, stateOffset: 7 },
  { heads: 6, headDim: 5, stateSize: 33, groups: 3, calls: [19, 1, 8], shared: true, stateOffset: 0 },
  { heads: 8, headDim: 16, stateSize: 128, groups: 2, calls: [2, 45, 1], shared: true, stateOffset: 3 },
  { heads: 3, headDim: 7, stateSize: 64, groups: 1, calls: [9, 3], shared: false, stateOffset: 1 },
  { heads: 2, headDim: 3, stateSize: 300, groups: 2, calls: [1, 12], shared: false, stateOffset: 0 },
  // The chunked form: calls of one chunk, several, a partial last chunk, a decode step between.
  { heads: 4, headDim: 5, stateSize: 16, groups: 2, calls: [8, 1, 27, 3], shared: true, stateOffset: 2, chunk: 8 },
  { heads: 6, headDim: 4, stateSize: 33, groups: 3, calls: [50, 16, 1, 17], shared: true, stateOffset: 0, chunk: 16 },
  { heads: 8, headDim: 16, stateSize: 128, groups: 1, calls: [150, 1], shared: true, stateOffset: 1, chunk: 64 },
];

describe('ssm_scan.wgsl: the Mamba2 selective scan with the D skip', () => {
  it.each(cases)('heads=$heads headDim=$headDim state=$stateSize groups=$groups calls=$calls shared=$shared chunk=$chunk', async (c) => {
    const seed = freshSeed(`ssm_scan ${JSON.stringify(c)}`);
    const { heads: H, headDim: P, stateSize: S, groups: G } = c;
    const inner = H * P;
    const A = randomFloats(H, seed).map((v) => -Math.exp(2 * v));
    const D = randomFloats(H, seed + 1);
    const dtBias = randomFloats(H, seed + 2);
    const initial = randomFloats(inner * S, seed + 3);
    const refState = Float64Array.from(initial);
    const stateBuffer = h.upload(spreadRows(initial, inner * S, 1, inner * S + 5, c.stateOffset));
    const [aBuf, dBuf, biasBuf] = [h.upload(A), h.upload(D), h.upload(dtBias)];
    let call = 0;
    for (const T of c.calls) {
      const s = seed + 10 * ++call;
      const x = randomFloats(T * inner, s);
      const B = randomFloats(T * G * S, s + 1);
      const C = randomFloats(T * G * S, s + 2);
      // Mostly ordinary steps, with a few past softplus' identity threshold and a few far below 0.
      const dt = randomFloats(T * H, s + 3).map((v, i) => (i % 11 === 5 ? 21 + v : i % 7 === 3 ? -15 + v : 3 * v));
      // dt as a slice of a wider row, as the projection's last columns.
      const dtStride = H + 9;
      const dtView = { buffer: h.upload(spreadRows(dt, H, T, dtStride, 4)), stride: dtStride, offset: 4 };
      let xView, bView, cView;
      if (c.shared) {
        const z = 5;
        const stride = z + inner + 2 * G * S + 3;
        const row = new Float32Array(z + T * stride).fill(NaN);
        for (let t = 0; t < T; t++) {
          row.set(x.subarray(t * inner, (t + 1) * inner), z + t * stride);
          row.set(B.subarray(t * G * S, (t + 1) * G * S), z + t * stride + inner);
          row.set(C.subarray(t * G * S, (t + 1) * G * S), z + t * stride + inner + G * S);
        }
        const buffer = h.upload(row);
        xView = { buffer, stride, offset: z };
        bView = { buffer, stride, offset: z + inner };
        cView = { buffer, stride, offset: z + inner + G * S };
      } else {
        xView = { buffer: h.upload(x) };
        bView = { buffer: h.upload(spreadRows(B, G * S, T, G * S + 2, 1)), stride: G * S + 2, offset: 1 };
        cView = { buffer: h.upload(C) };
      }
      const yStride = inner + 6;
      const y = h.poisoned(2 + T * yStride);
      const scanArgs = {
        heads: H,
        headDim: P,
        stateSize: S,
        groups: G,
        tokens: T,
        x: xView,
        dt: dtView,
        B: bView,
        C: cView,
        y: { buffer: y, stride: yStride, offset: 2 },
        A: aBuf,
        D: dBuf,
        dtBias: biasBuf,
        state: stateBuffer,
        stateOffset: c.stateOffset,
      };
      if (c.chunk && T > 1) {
        const scratch = h.poisoned(chunkedScanScratchFloats(H, P, S, G, T, c.chunk));
        encodeSsmScanChunked(h.recorder, h.kernels, { ...scanArgs, scratch, chunk: c.chunk });
      } else encodeSsmScan(h.recorder, h.kernels, scanArgs);
      await h.submit();
      const dtIn = Float64Array.from(dt, (v, i) => v + dtBias[i % H]!);
      const expected = ssmScanSequential({ heads: H, headDim: P, state: S, groups: G, nTokens: T, A }, x, dtIn, B, C, refState);
      for (let i = 0; i < expected.length; i++) expected[i] = expected[i]! + D[Math.floor((i % inner) / P)]! * x[i]!;
      const actual = gatherRows(await h.readF32(y, 2 + T * yStride), inner, T, yStride, 2);
      expect(actual.every(Number.isFinite)).toBe(true);
      expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-6);
    }
    const state = await h.readF32(stateBuffer, inner * S + 5 + c.stateOffset);
    expect(normalizedMse(state.subarray(c.stateOffset, c.stateOffset + inner * S), refState)).toBeLessThanOrEqual(1e-6);
    expect(state.subarray(0, c.stateOffset).every(Number.isNaN)).toBe(true);
    expect(state.subarray(c.stateOffset + inner * S).every(Number.isNaN)).toBe(true);
  });

  it('the chunked reference equals the sequential one (the oracle a chunked kernel would use)', () => {
    const shape = { heads: 4, headDim: 3, state: 5, groups: 2, nTokens: 37, A: [-0.5, -1, -2, -0.1] };
    const r = (n: number, s: number) => Float64Array.from(randomFloats(n, s));
    const [x, dt, B, C, s0] = [r(37 * 12, 1), r(37 * 4, 2), r(37 * 10, 3), r(37 * 10, 4), r(12 * 5, 5)];
    const s1 = Float64Array.from(s0);
    const s2 = Float64Array.from(s0);
    expect(normalizedMse(ssmScanChunked(shape, x, dt, B, C, s2, 8), ssmScanSequential(shape, x, dt, B, C, s1))).toBeLessThan(1e-20);
    expect(normalizedMse(s2, s1)).toBeLessThan(1e-20);
  });

  it('takes state sizes up to 1024 and refuses larger ones by name', () => {
    expect(scanLanes(128)).toBe(32);
    expect(scanLanes(1)).toBe(1);
    expect(scanLanes(1024)).toBe(128);
    expect(() => scanLanes(1025)).toThrow(RangeError);
  });
});
