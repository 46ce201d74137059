/**
 * RMSNorm and LayerNorm over rows with the weight (and bias) multiply fused (norm.wgsl).
 * RMSNorm: y = x / sqrt(mean(x^2) + eps) * w, as ggml_rms_norm followed by ggml_mul.
 * LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b, as ggml_norm, ggml_mul, ggml_add.
 * In place is allowed (out and x the same buffer and rows). Float64 references: `normReference`.
 *
 * `encodeAddNorm` (add_norm.wgsl) is the residual add fused with the RMSNorm after it, so a decode
 * step spends one dispatch, not two, between two blocks: x += cur * scale, then cur = rms(x) * w.
 * Float64 reference: `addNormReference`.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { foldedGrid, ioVariant, shaderKernel, type RowView } from './common.ts';

const WORKGROUP_SIZE = 256;

export interface NormArgs {
  kind: 'rms' | 'layer';
  x: RowView;
  out: RowView;
  /** Row length. */
  n: number;
  rows: number;
  eps: number;
  /** f32[n]; omitted means no scale (1). */
  weight?: GPUBuffer;
  /** f32[n], LayerNorm only; omitted means no shift. */
  bias?: GPUBuffer;
  /** Any storage buffer, bound where weight or bias are absent. */
  dummy: GPUBuffer;
}

const NORM = kernelFamily();
const ADD_NORM = kernelFamily();

export function encodeNorm(recorder: StepRecorder, kernels: KernelCache, args: NormArgs): void {
  if (args.rows < 1 || args.n < 1) return;
  if (args.kind === 'rms' && args.bias) throw new Error('encodeNorm: RMSNorm takes no bias');
  const io = ioVariant(args.x.buffer, args.out.buffer);
  const key = (args.kind === 'layer' ? 2 : 0) + (io.slot === 'io_in_place.wgsl' ? 1 : 0);
  const kernel =
    kernels.variant(NORM, key) ??
    kernels.remember(
      NORM,
      key,
      shaderKernel(kernels, 'norm.wgsl', { name: `norm${io.suffix}`, slots: { io: io.slot }, constants: { WORKGROUP_SIZE, LAYER_NORM: args.kind === 'layer' ? 1 : 0 } }),
    );
  const [gx, gy] = foldedGrid(args.rows);
  recorder.dispatch(kernel, {
    params: {
      n: args.n,
      rows: args.rows,
      x_stride: args.x.stride ?? args.n,
      x_offset: args.x.offset ?? 0,
      out_stride: args.out.stride ?? args.n,
      out_offset: args.out.offset ?? 0,
      eps: args.eps,
      has_weight: args.weight ? 1 : 0,
      has_bias: args.bias ? 1 : 0,
      groups_x: gx,
    },
    bind: { ...io.bind, weight: args.weight ?? args.dummy, bias: args.bias ?? args.dummy },
    workgroups: [gx, gy],
    label: `${args.kind}_norm`,
  });
}

/** Float64 reference over contiguous rows of length n. */
export function normReference(
  kind: 'rms' | 'layer',
  x: ArrayLike<number>,
  n: number,
  rows: number,
  eps: number,
  weight?: ArrayLike<number>,
  bias?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    if (kind === 'layer') {
      for (let i = 0; i < n; i++) mean += x[r * n + i]!;
      mean /= n;
    }
    let sq = 0;
    for (let i = 0; i < n; i++) sq += (x[r * n + i]! - mean) ** 2;
    const scale = 1 / Math.sqrt(sq / n + eps);
    for (let i = 0; i < n; i++) {
      out[r * n + i] = (x[r * n + i]! - mean) * scale * (weight ? weight[i]! : 1) + (bias ? bias[i]! : 0);
    }
  }
  return out;
}

export interface AddNormArgs {
  /** The residual stream: x += cur * scale (written). */
  x: RowView;
  /** The block output, overwritten with RMSNorm(x) * weight; another buffer than x. */
  cur: RowView;
  n: number;
  rows: number;
  eps: number;
  /** Multiplier of cur before the add (granite's residual scale); default 1. */
  scale?: number;
  weight?: GPUBuffer;
  /** Any storage buffer, bound where the weight is absent. */
  dummy: GPUBuffer;
}

export function encodeAddNorm(recorder: StepRecorder, kernels: KernelCache, args: AddNormArgs): void {
  if (args.rows < 1 || args.n < 1) return;
  if (args.x.buffer === args.cur.buffer) throw new Error('encodeAddNorm: x and cur must be different buffers');
  const kernel = kernels.variant(ADD_NORM, 0) ?? kernels.remember(ADD_NORM, 0, shaderKernel(kernels, 'add_norm.wgsl', { constants: { WORKGROUP_SIZE } }));
  const [gx, gy] = foldedGrid(args.rows);
  recorder.dispatch(kernel, {
    params: {
      n: args.n,
      rows: args.rows,
      x_stride: args.x.stride ?? args.n,
      x_offset: args.x.offset ?? 0,
      cur_stride: args.cur.stride ?? args.n,
      cur_offset: args.cur.offset ?? 0,
      eps: args.eps,
      scale: args.scale ?? 1,
      has_weight: args.weight ? 1 : 0,
      groups_x: gx,
    },
    bind: { x: args.x.buffer, cur: args.cur.buffer, weight: args.weight ?? args.dummy },
    workgroups: [gx, gy],
    label: 'add_rms_norm',
  });
}

/** Float64 reference of `encodeAddNorm` over contiguous rows: the new x and the new cur. */
export function addNormReference(
  x: ArrayLike<number>,
  cur: ArrayLike<number>,
  n: number,
  rows: number,
  eps: number,
  scale: number,
  weight?: ArrayLike<number>,
): { x: Float64Array; cur: Float64Array } {
  const sum = Float64Array.from({ length: rows * n }, (_, i) => x[i]! + cur[i]! * scale);
  return { x: sum, cur: normReference('rms', sum, n, rows, eps, weight) };
}
