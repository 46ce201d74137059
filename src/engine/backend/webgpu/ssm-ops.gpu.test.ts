/**
 * The state-space ops through the WebGPU backend's op interface, as a Mamba2 mixer calls them: a
 * projection row [z | xBC | dt] per token, ssmConv of its xBC columns into another activation,
 * ssmScan of that activation's x, B and C columns with dt from the projection, gatedNorm with z.
 * A prefill of T tokens (the chunked scan), T decode steps (one captured, the rest replayed),
 * shorter calls (the sequential scan) and the float64 references agree; a state snapshot (copy) restores to the same outputs; zero starts afresh.
 */
import { describe, expect, it } from 'vitest';
import type { Activation, Backend, ConvOp, SsmScanOp, Vector } from '../ops.ts';
import { WebGpuBackend } from './backend.ts';
import { freshSeed, randomFloats } from '../../../testing/gpu.ts';
import { useOpHarness } from '../../../testing/op-harness.ts';
import { normalizedMse } from '../../../testing/compare.ts';
import { causalConvStep, silu } from '../../../testing/reference-recurrent.ts';
import { ssmScanSequential } from '../../../testing/reference-mamba2.ts';
import { gatedNormReference } from './kernels/gated-norm.ts';

const h = useOpHarness();

const H = 4;
const P = 6;
const S = 16;
const G = 2;
const K = 4;
const INNER = H * P;
const CONV = INNER + 2 * G * S;
const ROW = INNER + CONV + H; // [z | xBC | dt]
const EPS = 1e-5;

interface Mixer {
  backend: Backend;
  proj: Activation;
  input: Activation;
  xbc: Activation;
  y: Activation;
  /** conv state, scan state, then their snapshot copies, in one activation. */
  states: Activation;
  conv: ConvOp;
  scan: SsmScanOp;
  norm: Vector;
}

/** An activation holding `values` (vector handles are activations on this backend). */
function filled(backend: Backend, name: string, values: Float32Array): Activation {
  return backend.vector(name, values) as unknown as Activation;
}

function mixer(backend: Backend, seed: number, inputs: Float32Array, capacity: number): Mixer {
  const convFloats = (K - 1) * CONV;
  const scanFloats = INNER * S;
  const states = backend.activation('states', 2 * (convFloats + scanFloats));
  return {
    backend,
    proj: backend.activation('proj', capacity * ROW),
    input: filled(backend, 'input', inputs),
    xbc: backend.activation('xbc', capacity * CONV),
    y: backend.activation('y', capacity * INNER),
    states,
    conv: { channels: CONV, kernel: K, weight: backend.vector('conv w', randomFloats(CONV * K, seed)), bias: backend.vector('conv b', randomFloats(CONV, seed + 1)), silu: true, state: { t: states, offset: 0, floats: convFloats } },
    scan: {
      heads: H,
      headDim: P,
      stateSize: S,
      groups: G,
      A: backend.vector('A', randomFloats(H, seed + 2).map((v) => -Math.exp(v))),
      D: backend.vector('D', randomFloats(H, seed + 3)),
      dtBias: backend.vector('dt bias', randomFloats(H, seed + 4)),
      state: { t: states, offset: convFloats, floats: scanFloats },
    },
    norm: backend.vector('norm', randomFloats(INNER, seed + 5)),
  };
}

/** The mixer ops over `tokens` rows of proj. */
function record(m: Mixer, tokens: number): void {
  const b = m.backend;
  b.ssmConv!({ t: m.proj, stride: ROW, offset: INNER }, { t: m.xbc, stride: CONV }, tokens, m.conv);
  b.ssmScan!(
    { t: m.xbc, stride: CONV },
    { t: m.proj, stride: ROW, offset: INNER + CONV },
    { t: m.xbc, stride: CONV, offset: INNER },
    { t: m.xbc, stride: CONV, offset: INNER + G * S },
    { t: m.y, stride: INNER },
    tokens,
    m.scan,
  );
  b.gatedNorm!({ t: m.y, stride: INNER }, { t: m.proj, stride: ROW }, INNER, tokens, G, EPS, m.norm);
}

function resetStates(m: Mixer): void {
  m.backend.zero!({ t: m.states, offset: 0, floats: m.states.floats });
}

/** Rows [first, first + count) of the inputs into proj, then the mixer; returns y. */
async function run(m: Mixer, first: number, count: number): Promise<Float32Array> {
  m.backend.begin();
  m.backend.copy!({ t: m.input, offset: first * ROW, floats: count * ROW }, { t: m.proj, offset: 0, floats: count * ROW });
  record(m, count);
  m.backend.submit();
  return m.backend.read(m.y, count * INNER);
}

/** The float64 mixer over every row of `inputs` from zero states. */
function reference(inputs: Float32Array, seed: number, T: number): Float64Array {
  const w = randomFloats(CONV * K, seed);
  const bias = randomFloats(CONV, seed + 1);
  const A = randomFloats(H, seed + 2).map((v) => -Math.exp(v));
  const D = randomFloats(H, seed + 3);
  const dtBias = randomFloats(H, seed + 4);
  const norm = randomFloats(INNER, seed + 5);
  const conv = new Float64Array((K - 1) * CONV);
  const s = new Float64Array(INNER * S);
  const out = new Float64Array(T * INNER);
  for (let t = 0; t < T; t++) {
    const row = Float64Array.from(inputs.subarray(t * ROW, (t + 1) * ROW));
    const xbc = causalConvStep(conv, w, K, CONV, row, INNER).map((v, ch) => silu(v + bias[ch]!));
    const dt = Float64Array.from({ length: H }, (_, h) => row[INNER + CONV + h]! + dtBias[h]!);
    const x = xbc.subarray(0, INNER);
    const y = ssmScanSequential({ heads: H, headDim: P, state: S, groups: G, nTokens: 1, A }, x, dt, xbc.subarray(INNER, INNER + G * S), xbc.subarray(INNER + G * S), s);
    for (let i = 0; i < INNER; i++) y[i] = y[i]! + D[Math.floor(i / P)]! * x[i]!;
    out.set(gatedNormReference(y, row.subarray(0, INNER), INNER, 1, G, EPS, norm), t * INNER);
  }
  return out;
}

describe('WebGPU backend: ssmConv, ssmScan, gatedNorm, copy, zero as a Mamba2 mixer', () => {
  it('a prefill, captured and replayed decode steps and the float64 reference agree; snapshots restore', async () => {
    const T = 21;
    const seed = freshSeed('ssm ops mixer');
    const inputs = randomFloats(T * ROW, seed + 100).map((v) => v * 2);
    const backend = new WebGpuBackend(h.device, { kernels: h.kernels, chunkedScanFrom: 16 });
    try {
      const m = mixer(backend, seed, inputs, T);
      const expected = reference(inputs, seed, T);
      // Poison the states first: zero must clear them.
      backend.begin();
      backend.copy!({ t: m.input, offset: 0, floats: m.states.floats / 2 }, { t: m.states, offset: 0, floats: m.states.floats / 2 });
      resetStates(m);
      backend.submit();

      const before = backend.counters.dispatches;
      const prefill = await run(m, 0, T);
      // The copy, the conv's outputs and state shift, the chunked scan's five passes, the norm:
      // this prefill went through the chunked form.
      expect(backend.counters.dispatches - before).toBe(1 + 2 + 5 + 1);
      expect(prefill.every(Number.isFinite)).toBe(true);
      expect(normalizedMse(prefill, expected)).toBeLessThanOrEqual(1e-6);
      const prefillStates = await backend.read(m.states, m.states.floats / 2);

      backend.begin();
      resetStates(m);
      backend.submit();
      const decoded = new Float32Array(T * INNER);
      let plan;
      for (let t = 0; t < T; t++) {
        backend.begin();
        backend.copy!({ t: m.input, offset: t * ROW, floats: ROW }, { t: m.proj, offset: 0, floats: ROW });
        if (plan) backend.replay(plan, []);
        else {
          plan = backend.capture();
          record(m, 1);
        }
        backend.submit();
        decoded.set(await backend.read(m.y, INNER), t * INNER);
      }
      expect(plan?.valid).toBe(true);
      expect(normalizedMse(decoded, expected)).toBeLessThanOrEqual(1e-6);
      expect(normalizedMse(decoded, prefill)).toBeLessThanOrEqual(1e-6);
      expect(normalizedMse(await backend.read(m.states, m.states.floats / 2), prefillStates)).toBeLessThanOrEqual(1e-6);

      // Snapshot after 12 tokens, run 5 more, restore, run the same 5: the same outputs exactly.
      const half = m.states.floats / 2;
      backend.begin();
      resetStates(m);
      backend.submit();
      await run(m, 0, 12);
      backend.begin();
      backend.copy!({ t: m.states, offset: 0, floats: half }, { t: m.states, offset: half, floats: half });
      backend.submit();
      const first = await run(m, 12, 5);
      backend.begin();
      backend.copy!({ t: m.states, offset: half, floats: half }, { t: m.states, offset: 0, floats: half });
      backend.submit();
      const again = await run(m, 12, 5);
      expect(Array.from(again)).toEqual(Array.from(first));
      expect(normalizedMse(first, expected.subarray(12 * INNER, 17 * INNER))).toBeLessThanOrEqual(1e-6);
    } finally {
      backend.destroy();
    }
  });

  it('mul in place of either operand, and regions outside their activation refused by name', async () => {
    const backend = new WebGpuBackend(h.device, { kernels: h.kernels });
    try {
      const a = randomFloats(30, 1);
      const b = randomFloats(30, 2);
      const both = new Float32Array(60);
      both.set(a);
      both.set(b, 30);
      const t = filled(backend, 'ab', both);
      backend.begin();
      backend.mul!({ t, stride: 10 }, { t, stride: 10, offset: 30 }, { t, stride: 10, offset: 30 }, 10, 3);
      backend.submit();
      const out = await backend.read(t, 30, 30);
      expect(normalizedMse(out, Float64Array.from(a, (v, i) => v * b[i]!))).toBeLessThanOrEqual(1e-12);
      expect(() => backend.zero!({ t, offset: 50, floats: 11 })).toThrow(/outside ab/);
      expect(() => backend.copy!({ t, offset: 0, floats: 10 }, { t, offset: 5, floats: 10 })).toThrow(/overlapping/);
    } finally {
      backend.destroy();
    }
  });

  it('an LFM2 short convolution: mul of slices of one projection, the conv without bias or SiLU, mul again', async () => {
    // in_proj gives [B | C | x] per token; bx = B * x; conv(bx) with its state; y = C * conv.
    const [E, W, T] = [40, 3, 9];
    const seed = freshSeed('ssm ops lfm2');
    const proj = randomFloats(T * 3 * E, seed);
    const weight = randomFloats(E * W, seed + 1);
    const backend = new WebGpuBackend(h.device, { kernels: h.kernels });
    try {
      const p = filled(backend, 'proj', proj);
      const bx = backend.activation('bx', T * E);
      const conv = backend.activation('conv', T * E);
      const state = backend.activation('state', (W - 1) * E);
      const op: ConvOp = { channels: E, kernel: W, weight: backend.vector('w', weight), silu: false, state: { t: state, offset: 0, floats: (W - 1) * E } };
      const step = async (first: number, count: number) => {
        const row = (offset: number) => ({ t: p, stride: 3 * E, offset: first * 3 * E + offset });
        backend.begin();
        backend.mul!(row(0), row(2 * E), { t: bx, stride: E }, E, count);
        backend.ssmConv!({ t: bx, stride: E }, { t: conv, stride: E }, count, op);
        // In place of the second operand, C's columns of the projection.
        backend.mul!({ t: conv, stride: E }, row(E), row(E), E, count);
        backend.submit();
        const all = await backend.read(p, T * 3 * E);
        return Float32Array.from({ length: count * E }, (_, i) => all[(first + Math.floor(i / E)) * 3 * E + E + (i % E)]!);
      };
      backend.begin();
      backend.zero!(op.state);
      backend.submit();
      const got = new Float32Array(T * E);
      got.set(await step(0, 6));
      got.set(await step(6, 1), 6 * E);
      got.set(await step(7, 2), 7 * E);

      const refState = new Float64Array((W - 1) * E);
      const expected = new Float64Array(T * E);
      for (let t = 0; t < T; t++) {
        const at = (part: number, i: number) => proj[t * 3 * E + part * E + i]!;
        const column = Float64Array.from({ length: E }, (_, i) => at(0, i) * at(2, i));
        const out = causalConvStep(refState, weight, W, E, column);
        for (let i = 0; i < E; i++) expected[t * E + i] = at(1, i) * out[i]!;
      }
      expect(normalizedMse(got, expected)).toBeLessThanOrEqual(1e-10);
    } finally {
      backend.destroy();
    }
  });
});
