/**
 * The CPU backend's state-space ops (ssmConv, ssmScan, gatedNorm, mul, copy, zero) against the
 * float64 references (src/testing/reference-recurrent.ts, reference-mamba2.ts) on random shapes:
 * several heads / groups / head dims / state sizes / kernel widths, inputs read through strided
 * views at offsets (x, B, C and dt as column slices of wider rows, as the forward pass lays them
 * out), states that start non-zero and are carried across calls. A prompt fed in one call, in
 * uneven pieces and one token at a time gives the same outputs and states.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Activation, ConvOp, Region, SsmScanOp } from '../ops.ts';
import { causalConvStep, rmsNormInPlace, silu } from '../../../testing/reference-recurrent.ts';
import { ssmScanSequential } from '../../../testing/reference-mamba2.ts';
import { freshSeed, mulberry32 } from '../../../testing/random.ts';
import { CpuBackend } from './backend.ts';

interface Shape {
  heads: number;
  groups: number;
  headDim: number;
  stateSize: number;
  kernel: number;
  tokens: number;
  silu: boolean;
  bias: boolean;
}

const SHAPES: Shape[] = [
  { heads: 4, groups: 1, headDim: 8, stateSize: 16, kernel: 4, tokens: 1, silu: true, bias: true },
  { heads: 8, groups: 2, headDim: 16, stateSize: 128, kernel: 4, tokens: 37, silu: true, bias: true },
  { heads: 3, groups: 3, headDim: 5, stateSize: 7, kernel: 3, tokens: 19, silu: false, bias: false },
  { heads: 2, groups: 2, headDim: 64, stateSize: 33, kernel: 2, tokens: 9, silu: true, bias: false },
  { heads: 3, groups: 1, headDim: 12, stateSize: 64, kernel: 1, tokens: 6, silu: false, bias: true },
];

/** Largest |a - b| over the largest |b|: an error on the scale of the values. */
function scaledError(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  let err = 0;
  let scale = 1e-30;
  for (let i = 0; i < reference.length; i++) {
    err = Math.max(err, Math.abs(actual[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return err / scale;
}

/** Splits `tokens` into pieces: one call, one token per call, and random uneven pieces. */
function splits(tokens: number, next: () => number): number[][] {
  const random: number[] = [];
  for (let left = tokens; left > 0; ) {
    const n = Math.min(left, 1 + Math.floor(next() * 5));
    random.push(n);
    left -= n;
  }
  return [[tokens], Array.from({ length: tokens }, () => 1), random];
}

/** Random inputs of one conv + scan case, laid out as the forward pass has them. */
function makeCase(shape: Shape, next: () => number) {
  const uniform = (n: number, lo: number, hi: number): Float32Array => Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
  const { heads: H, groups: G, headDim: P, stateSize: S, kernel: K, tokens: T } = shape;
  const inner = H * P;
  const convDim = inner + 2 * G * S;
  // The projection row, behind 3 floats of padding: [z | xBC | dt].
  const pad = 3;
  const W = pad + inner + convDim + H;
  const proj = uniform(T * W, -1, 1);
  // dt before its bias: mostly small steps, and some past softplus's cut-off at 20.
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) proj[t * W + pad + inner + convDim + h] = next() < 0.1 ? 21 + next() : -4 + 5 * next();
  return {
    shape, inner, convDim, pad, W, proj,
    convW: uniform(convDim * K, -0.6, 0.6),
    convB: uniform(convDim, -0.3, 0.3),
    A: uniform(H, -4, -0.05),
    D: uniform(H, -1, 1),
    dtBias: uniform(H, -1, 1),
    convState0: uniform((K - 1) * convDim, -1, 1),
    ssmState0: uniform(H * P * S, -0.5, 0.5),
  };
}

/**
 * Runs conv then scan over the case's tokens in `pieces` (calls of that many tokens, the states
 * carried), every input read through an offset and a stride wider than its values; returns the
 * outputs and the final states.
 */
function runOn(be: CpuBackend, c: ReturnType<typeof makeCase>, pieces: number[]) {
  const { heads: H, groups: G, headDim: P, stateSize: S, kernel: K, tokens: T } = c.shape;
  const { inner, convDim, pad, W } = c;
  const xbcPad = 5;
  const xbcStride = convDim + 2 * xbcPad;
  const yStride = inner + 1;
  const projT = be.activation('proj', T * W);
  be.view(projT).set(c.proj);
  const xbcT = be.activation('xbc', T * xbcStride);
  const yT = be.activation('y', T * yStride + 2);
  // Both states in one activation, as a model keeps a layer's state, behind some other floats.
  const convFloats = c.convState0.length;
  const states = be.activation('states', 7 + convFloats + c.ssmState0.length);
  be.view(states).set(c.convState0, 7);
  be.view(states).set(c.ssmState0, 7 + convFloats);
  const conv: ConvOp = {
    channels: convDim, kernel: K, weight: be.vector('conv w', c.convW), bias: c.shape.bias ? be.vector('conv b', c.convB) : undefined,
    silu: c.shape.silu, state: { t: states, offset: 7, floats: convFloats },
  };
  const scan: SsmScanOp = {
    heads: H, headDim: P, stateSize: S, groups: G, A: be.vector('A', c.A), D: be.vector('D', c.D), dtBias: be.vector('dt bias', c.dtBias),
    state: { t: states, offset: 7 + convFloats, floats: c.ssmState0.length },
  };
  let t0 = 0;
  for (const n of pieces) {
    const projRows = (col: number) => ({ t: projT, stride: W, offset: t0 * W + col });
    const xbcRows = (col: number) => ({ t: xbcT, stride: xbcStride, offset: t0 * xbcStride + xbcPad + col });
    be.ssmConv!(projRows(pad + inner), xbcRows(0), n, conv);
    be.ssmScan!(xbcRows(0), projRows(pad + inner + convDim), xbcRows(inner), xbcRows(inner + G * S), { t: yT, stride: yStride, offset: 2 + t0 * yStride }, n, scan);
    t0 += n;
  }
  const xbc = new Float32Array(T * convDim);
  const y = new Float32Array(T * inner);
  const xv = be.view(xbcT);
  const yv = be.view(yT);
  for (let t = 0; t < T; t++) {
    xbc.set(xv.subarray(t * xbcStride + xbcPad, t * xbcStride + xbcPad + convDim), t * convDim);
    y.set(yv.subarray(2 + t * yStride, 2 + t * yStride + inner), t * inner);
  }
  const sv = be.view(states);
  return { pieces, xbc, y, convState: sv.slice(7, 7 + convFloats), ssmState: sv.slice(7 + convFloats) };
}

describe('CPU state-space ops', () => {
  let be: CpuBackend;
  let next: () => number;
  const uniform = (n: number, lo: number, hi: number): Float32Array => Float32Array.from({ length: n }, () => lo + (hi - lo) * next());

  beforeAll(async () => {
    be = await CpuBackend.create({ relaxed: false });
    next = mulberry32(freshSeed('cpu recurrent ops'));
  });

  it.each(SHAPES)('conv then scan of %o match float64, in any split of the tokens', (shape) => {
    const c = makeCase(shape, next);
    const { heads: H, groups: G, headDim: P, stateSize: S, kernel: K, tokens: T } = shape;
    const { inner, convDim, pad, W, proj } = c;

    // float64 reference, token by token.
    const convState = Float64Array.from(c.convState0);
    const ssmState = Float64Array.from(c.ssmState0);
    const xbcRef = new Float64Array(T * convDim);
    for (let t = 0; t < T; t++) {
      const column = Float64Array.from(proj.subarray(t * W + pad + inner, t * W + pad + inner + convDim));
      const conv = causalConvStep(convState, c.convW, K, convDim, column);
      for (let ch = 0; ch < convDim; ch++) {
        const v = conv[ch]! + (shape.bias ? c.convB[ch]! : 0);
        xbcRef[t * convDim + ch] = shape.silu ? silu(v) : v;
      }
    }
    // The scan reads the backend's conv output (f32), so its check does not carry the conv's rounding.
    const scanRef = (xbc: Float32Array): Float64Array => {
      const xs = new Float64Array(T * inner);
      const Bs = new Float64Array(T * G * S);
      const Cs = new Float64Array(T * G * S);
      const dts = new Float64Array(T * H);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < inner; i++) xs[t * inner + i] = xbc[t * convDim + i]!;
        for (let i = 0; i < G * S; i++) {
          Bs[t * G * S + i] = xbc[t * convDim + inner + i]!;
          Cs[t * G * S + i] = xbc[t * convDim + inner + G * S + i]!;
        }
        for (let h = 0; h < H; h++) dts[t * H + h] = proj[t * W + pad + inner + convDim + h]! + c.dtBias[h]!;
      }
      const y = ssmScanSequential({ heads: H, headDim: P, state: S, groups: G, nTokens: T, A: c.A }, xs, dts, Bs, Cs, ssmState);
      for (let t = 0; t < T; t++) for (let i = 0; i < inner; i++) y[t * inner + i] = y[t * inner + i]! + c.D[Math.floor(i / P)]! * xs[t * inner + i]!;
      return y;
    };

    const [whole, ...split] = splits(T, next).map((pieces) => runOn(be, c, pieces));
    const yRef = scanRef(whole!.xbc);
    // f32 storage and sums against float64: a few units of f32 rounding on the scale of the values.
    expect(scaledError(whole!.xbc, xbcRef)).toBeLessThan(1e-6);
    expect(scaledError(whole!.convState, convState)).toBeLessThan(1e-7);
    expect(scaledError(whole!.y, yRef)).toBeLessThan(1e-6);
    expect(scaledError(whole!.ssmState, ssmState)).toBeLessThan(1e-6);
    // Fed in pieces: the same (the recurrence runs the same per token whatever the calls).
    for (const run of split) {
      const label = `pieces ${run.pieces.join(',')}`;
      expect(scaledError(run.xbc, whole!.xbc), label).toBeLessThan(1e-6);
      expect(scaledError(run.y, whole!.y), label).toBeLessThan(1e-6);
      expect(scaledError(run.convState, whole!.convState), label).toBeLessThan(1e-6);
      expect(scaledError(run.ssmState, whole!.ssmState), label).toBeLessThan(1e-6);
    }
  });

  it('conv and scan split across 3 threads give bitwise the results of one', { timeout: 60_000 }, async () => {
    const shape = SHAPES[1]!;
    const c = makeCase(shape, next);
    const pieces = [shape.tokens - 5, 1, 1, 1, 1, 1];
    const one = runOn(be, c, pieces);
    const pool = await CpuBackend.create({ relaxed: false, threads: 3, memoryBudgetBytes: 64 << 20 });
    try {
      expect(pool.threads).toBe(3);
      const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
      // On a loaded machine the calling thread may do every chunk before a worker wakes up: run
      // again until the workers took part (each run must match).
      for (let run = 0; run < 50 && (run === 0 || pool.kernels.workerChunks === 0); run++) {
        const three = runOn(pool, c, pieces);
        for (const key of ['xbc', 'y', 'convState', 'ssmState'] as const) expect(bits(three[key]), key).toEqual(bits(one[key]));
      }
      expect(pool.kernels.workerChunks).toBeGreaterThan(0);
    } finally {
      pool.destroy();
    }
  });

  it('a state carried across calls is the state the reference reaches (decode after prefill)', () => {
    // Softplus's identity above 20 resets a head's state: exp(delta * A) underflows to 0.
    const H = 2;
    const P = 4;
    const S = 8;
    const state = be.activation('s', H * P * S);
    be.view(state).fill(1);
    const x = be.activation('x', H * P);
    be.view(x).set(uniform(H * P, -1, 1));
    const dt = be.activation('dt', H);
    be.view(dt).set([30, -30]);
    const bc = be.activation('bc', 2 * S);
    be.view(bc).set(uniform(2 * S, -1, 1));
    const y = be.activation('y', H * P);
    const op: SsmScanOp = {
      heads: H, headDim: P, stateSize: S, groups: 1, A: be.vector('A', new Float32Array([-1, -1])), D: be.vector('D', new Float32Array(H)),
      dtBias: be.vector('b', new Float32Array(H)), state: { t: state, offset: 0, floats: H * P * S },
    };
    be.ssmScan!({ t: x, stride: H * P }, { t: dt, stride: H }, { t: bc, stride: 2 * S }, { t: bc, stride: 2 * S, offset: S }, { t: y, stride: H * P }, 1, op);
    const s = be.view(state);
    const xs = be.view(x);
    const b = be.view(bc);
    // Head 0: delta 30 (softplus = identity), decay exp(-30) ~ 1e-13: s = 30 * x * B (to f32 rounding).
    for (let p = 0; p < P; p++) for (let k = 0; k < S; k++) expect(s[p * S + k]).toBeCloseTo(30 * xs[p]! * b[k]!, 4);
    // Head 1: delta = log1p(e^-30) ~ 9e-14: the state stays 1.
    for (let i = P * S; i < 2 * P * S; i++) expect(s[i]).toBeCloseTo(1, 6);
  });

  it('gatedNorm: y * silu(z), then RMSNorm per group times the weight, on strided rows', () => {
    for (const [n, groups, rows] of [[48, 1, 3], [60, 4, 5], [7, 7, 1]] as const) {
      const eps = 1e-5;
      const yStride = n + 3;
      const zStride = 2 * n + 1;
      const yv = uniform(rows * yStride, -2, 2);
      const zv = uniform(rows * zStride, -3, 3);
      const w = uniform(n, -1.5, 1.5);
      const y = be.activation('y', rows * yStride);
      be.view(y).set(yv);
      const z = be.activation('z', rows * zStride);
      be.view(z).set(zv);
      be.gatedNorm!({ t: y, stride: yStride, offset: 2 }, { t: z, stride: zStride, offset: n }, n, rows, groups, eps, be.vector('w', w));
      const out = be.view(y);
      const width = n / groups;
      for (let r = 0; r < rows; r++) {
        const ref = Float64Array.from({ length: n }, (_, i) => yv[r * yStride + 2 + i]! * silu(zv[r * zStride + n + i]!));
        for (let g = 0; g < groups; g++) rmsNormInPlace(ref, g * width, width, eps, w, g * width);
        expect(scaledError(out.subarray(r * yStride + 2, r * yStride + 2 + n), ref)).toBeLessThan(1e-6);
        // Values outside the view are untouched.
        expect(out[r * yStride]).toBe(yv[r * yStride]);
        expect(out[r * yStride + 1]).toBe(yv[r * yStride + 1]);
      }
    }
  });

  it('mul: a * b elementwise, in place and into another activation', () => {
    const n = 13;
    const rows = 3;
    const av = uniform(rows * 2 * n, -2, 2);
    const bv = uniform(rows * n, -2, 2);
    const a = be.activation('a', rows * 2 * n);
    be.view(a).set(av);
    const b = be.activation('b', rows * n);
    be.view(b).set(bv);
    const out = be.activation('out', rows * n);
    be.mul!({ t: a, stride: 2 * n, offset: n }, { t: b, stride: n }, { t: out, stride: n }, n, rows);
    for (let i = 0; i < rows * n; i++) expect(be.view(out)[i]).toBe(Math.fround(av[Math.floor(i / n) * 2 * n + n + (i % n)]! * bv[i]!));
    be.mul!({ t: b, stride: n }, { t: a, stride: 2 * n }, { t: b, stride: n }, n, rows);
    for (let i = 0; i < rows * n; i++) expect(be.view(b)[i]).toBe(Math.fround(av[Math.floor(i / n) * 2 * n + (i % n)]! * bv[i]!));
  });

  it('copy and zero touch exactly their regions; bad regions are refused by name', () => {
    const values = uniform(64, -1, 1);
    const a = be.activation('a', 64);
    be.view(a).set(values);
    const b = be.activation('b', 64);
    be.view(b).fill(7);
    be.copy!({ t: a, offset: 10, floats: 20 }, { t: b, offset: 30, floats: 20 });
    const bv = be.view(b);
    for (let i = 0; i < 64; i++) expect(bv[i]).toBe(i >= 30 && i < 50 ? values[i - 20] : 7);
    // Disjoint parts of one activation (a snapshot slot beside the live state).
    be.copy!({ t: a, offset: 0, floats: 8 }, { t: a, offset: 40, floats: 8 });
    expect(Array.from(be.view(a).subarray(40, 48))).toEqual(Array.from(values.subarray(0, 8)));
    be.zero!({ t: b, offset: 33, floats: 5 });
    for (let i = 0; i < 64; i++) expect(be.view(b)[i]).toBe(i >= 33 && i < 38 ? 0 : i >= 30 && i < 50 ? values[i - 20] : 7);
    const past: Region = { t: a, offset: 60, floats: 8 };
    expect(() => be.zero!(past)).toThrow(RangeError);
    expect(() => be.copy!({ t: a, offset: 0, floats: 8 }, { t: a, offset: 4, floats: 8 })).toThrow(/overlap/);
    expect(() => be.copy!({ t: a, offset: 0, floats: 8 }, { t: b, offset: 0, floats: 4 })).toThrow(RangeError);
    const small: Activation = be.activation('small', 4);
    expect(() => be.ssmScan!({ t: a, stride: 4 }, { t: a, stride: 1 }, { t: a, stride: 4 }, { t: a, stride: 4 }, { t: b, stride: 4 }, 1, {
      heads: 1, headDim: 4, stateSize: 4, groups: 1, A: be.vector('A', new Float32Array(1)), D: be.vector('D', new Float32Array(1)),
      dtBias: be.vector('b', new Float32Array(1)), state: { t: small, offset: 0, floats: 4 },
    })).toThrow(/state/);
  });
});
