/**
 * Gated feed-forward activations (glu.wgsl): SwiGLU out = silu(gate) * up, GeGLU out = gelu(gate) * up,
 * with GELU's tanh approximation as ggml computes it (ggml's CPU path reads the same formula from
 * an f16 table, and returns 0 below -10 and x above 10). gate and up are row views, so they can be
 * the two halves of a fused gate_up output. Float64 reference: `gluReference`.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { foldedGrid, shaderKernel, type RowView } from './common.ts';

const WORKGROUP_SIZE = 256;
export type GluActivation = 'silu' | 'gelu';

export interface GluArgs {
  activation: GluActivation;
  gate: RowView;
  up: RowView;
  /** Must be a different buffer from gate and up. */
  out: RowView;
  /** Elements per row (the feed-forward width). */
  n: number;
  rows: number;
}

const GLU = kernelFamily();

export function encodeGlu(recorder: StepRecorder, kernels: KernelCache, args: GluArgs): void {
  if (args.n < 1 || args.rows < 1) return;
  const act = args.activation === 'silu' ? 0 : 1;
  const kernel = kernels.variant(GLU, act) ?? kernels.remember(GLU, act, shaderKernel(kernels, 'glu.wgsl', { constants: { WORKGROUP_SIZE, ACT: act } }));
  const [gx, gy] = foldedGrid(Math.ceil((args.n * args.rows) / WORKGROUP_SIZE));
  recorder.dispatch(kernel, {
    params: {
      n: args.n,
      rows: args.rows,
      gate_stride: args.gate.stride ?? args.n,
      gate_offset: args.gate.offset ?? 0,
      up_stride: args.up.stride ?? args.n,
      up_offset: args.up.offset ?? 0,
      out_stride: args.out.stride ?? args.n,
      out_offset: args.out.offset ?? 0,
      groups_x: gx,
    },
    bind: { gate: args.gate.buffer, up: args.up.buffer, out: args.out.buffer },
    workgroups: [gx, gy],
    label: args.activation === 'silu' ? 'swiglu' : 'geglu',
  });
}

export function siluReference(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function geluReference(x: number): number {
  if (x <= -10) return 0;
  if (x >= 10) return x;
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x)));
}

/** Float64 reference on contiguous rows. */
export function gluReference(activation: GluActivation, gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const act = activation === 'silu' ? siluReference : geluReference;
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = act(gate[i]!) * up[i]!;
  return out;
}
