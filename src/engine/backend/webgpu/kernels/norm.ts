/**
 * RMSNorm and LayerNorm over rows with the weight (and bias) multiply fused (norm.wgsl).
 * RMSNorm: y = x / sqrt(mean(x^2) + eps) * w, as ggml_rms_norm followed by ggml_mul.
 * LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b, as ggml_norm, ggml_mul, ggml_add.
 * In place is allowed (out and x the same buffer and rows). Float64 references: `normReference`.
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
