/**
 * The CPU backend's moeFfn op on its own, against a float64 computation over the dequantized
 * weights: sigmoid and softmax gating, renormalized or not, a weight scale, a gated shared expert
 * (routing variants the architectures' tests do not all reach), for one token and for a batch that
 * several tokens route to the same experts. The first 8-bit-activation matmul of a fresh backend
 * happens inside the op, so its scratch grows the memory mid-op (views taken before it would be
 * detached).
 */
import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { requireQuantFormat } from '../../gguf/quants/index.ts';
import type { MoeConfig } from '../../model/moe-config.ts';
import type { MoeFfnOp, Weight } from '../ops.ts';
import { referenceRoute } from '../../../testing/reference-moe.ts';
import { mulberry32 } from '../../../testing/random.ts';
import { CpuBackend } from './backend.ts';

const E = 256;
const F = 256;
const FS = 512;
const X = 6;

function randoms(n: number, seed: number, scale: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/** out[o] = sum_i w[base + o * k + i] * h[i] in float64. */
function rows(w: Float32Array, base: number, k: number, n: number, h: ArrayLike<number>): Float64Array {
  const out = new Float64Array(n);
  for (let o = 0; o < n; o++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += w[base + o * k + i]! * h[i]!;
    out[o] = s;
  }
  return out;
}

function glu(gate: Float32Array, up: Float32Array, down: Float32Array, e: number, f: number, h: ArrayLike<number>): Float64Array {
  const g = rows(gate, e * f * E, E, f, h);
  const u = rows(up, e * f * E, E, f, h);
  for (let i = 0; i < f; i++) g[i] = silu(g[i]!) * u[i]!;
  return rows(down, e * E * f, f, E, g);
}

describe('CPU moeFfn', () => {
  const cases: Array<[string, Pick<MoeConfig, 'gating' | 'normalize' | 'weightsScale'>, number, boolean]> = [
    ['sigmoid, renormalized, scale 2.5, 8-bit activations', { gating: 'sigmoid', normalize: true, weightsScale: 2.5 }, 5, true],
    ['softmax, not renormalized, f32 activations', { gating: 'softmax', normalize: false, weightsScale: 1 }, 7, false],
    ['softmax, renormalized, one token', { gating: 'softmax', normalize: true, weightsScale: 1 }, 1, true],
  ];
  it.each(cases)('%s', async (_, routing, tokens, quantized) => {
    const backend = await CpuBackend.create({ relaxed: false, quantizedActivations: quantized });
    try {
      const q8 = requireQuantFormat(GgmlType.Q8_0);
      const weight = async (name: string, type: GgmlType, shape: number[], values: Float32Array): Promise<[Weight, Float32Array]> => {
        const bytes = type === GgmlType.F32 ? new Uint8Array(values.buffer) : q8.quantize!(values, values.length);
        const dequantized = new Float32Array(values.length);
        requireQuantFormat(type).dequantize(bytes, dequantized, values.length);
        return [await backend.weight({ name, type, shape }, async (o, n) => bytes.subarray(o, o + n)), dequantized];
      };
      const [router, wr] = await weight('router', GgmlType.F32, [E, X], randoms(E * X, 1, 0.2));
      const [gate, wg] = await weight('gate', GgmlType.Q8_0, [E, F, X], randoms(E * F * X, 2, 0.08));
      const [up, wu] = await weight('up', GgmlType.Q8_0, [E, F, X], randoms(E * F * X, 3, 0.08));
      const [down, wd] = await weight('down', GgmlType.Q8_0, [F, E, X], randoms(F * E * X, 4, 0.08));
      const [sg, wsg] = await weight('sg', GgmlType.Q8_0, [E, FS], randoms(E * FS, 5, 0.08));
      const [su, wsu] = await weight('su', GgmlType.Q8_0, [E, FS], randoms(E * FS, 6, 0.08));
      const [sd, wsd] = await weight('sd', GgmlType.Q8_0, [FS, E], randoms(FS * E, 7, 0.06));
      const gateInpValues = randoms(E, 8, 0.1);
      const gateInp = backend.vector('gi', gateInpValues);
      const act = (name: string, width: number) => backend.activation(name, tokens * width);
      const x = act('x', E);
      const out = act('out', E);
      const xs = randoms(tokens * E, 9, 1);
      backend.view(x).set(xs);
      const op: MoeFfnOp = {
        router, gate, up, down, nExpert: X, used: 3, nFf: F, ...routing, activation: 'silu',
        shared: { gate: sg, up: su, down: sd, nFf: FS, gateInp },
        scratch: { logits: act('l', X), x: act('gx', E), gate: act('g', FS), up: act('u', FS), h: act('h', FS), y: act('y', E) },
      };
      // Fill the memory to its end: the op's first allocation (an 8-bit-activation scratch) must grow it.
      backend.kernels.alloc(backend.kernels.memory.buffer.byteLength - backend.kernels.mark());
      const before = backend.kernels.memory.buffer.byteLength;
      backend.moeFfn({ t: x, stride: E }, { t: out, stride: E }, tokens, op);
      if (quantized && tokens === 1) expect(backend.kernels.memory.buffer.byteLength).toBeGreaterThan(before);
      const got = backend.view(out).slice();

      const moe: MoeConfig = { nExpert: X, nExpertUsed: 3, nFfExp: F, nFfShexp: FS, sharedGate: true, ...routing };
      const chosen = new Set<number>();
      for (let t = 0; t < tokens; t++) {
        const h = xs.subarray(t * E, (t + 1) * E);
        const { experts, weights } = referenceRoute(rows(wr, 0, E, X, h), moe);
        experts.forEach((e) => chosen.add(e));
        const want = new Float64Array(E);
        experts.forEach((e, j) => glu(wg, wu, wd, e, F, h).forEach((v, i) => (want[i] = want[i]! + weights[j]! * v)));
        let dot = 0;
        for (let i = 0; i < E; i++) dot += gateInpValues[i]! * h[i]!;
        const shared = glu(wsg, wsu, wsd, 0, FS, h);
        shared.forEach((v, i) => (want[i] = want[i]! + v / (1 + Math.exp(-dot))));
        let err = 0;
        let norm = 0;
        for (let i = 0; i < E; i++) {
          err += (got[t * E + i]! - want[i]!) ** 2;
          norm += want[i]! ** 2;
        }
        expect(Math.sqrt(err / norm), `token ${t}`).toBeLessThan(quantized ? 2e-2 : 1e-5);
      }
      if (tokens > 1) expect(chosen.size).toBeGreaterThan(3);
    } finally {
      backend.destroy();
    }
  });
});
