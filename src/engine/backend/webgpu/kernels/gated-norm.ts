/**
 * Mamba2's gated group RMSNorm (gated_norm.wgsl), in place on y: y = y * silu(z), then each of the
 * `groups` groups of n / groups values RMS-normalized and multiplied by its slice of weight [n]
 * (llama.cpp: ggml_mul(y, silu(z)), ggml_rms_norm over [n / groups, groups], ggml_mul(ssm_norm)).
 * Float64 reference: `gatedNormReference`.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { assertPositiveInt, bufferOf, foldedGrid, type RowView, shaderKernel } from './common.ts';

export interface GatedNormArgs {
  /** Read and written. */
  y: RowView;
  /** The gate; may be another slice of y's buffer, never overlapping y's rows. */
  z: RowView;
  n: number;
  rows: number;
  groups: number;
  eps: number;
  /** f32 [n]. */
  weight: GPUBuffer;
}

const GATED_NORM = kernelFamily();

export function encodeGatedNorm(recorder: StepRecorder, kernels: KernelCache, args: GatedNormArgs): void {
  assertPositiveInt(args.groups, 'gatedNorm groups');
  if (args.n % args.groups !== 0) throw new RangeError(`gatedNorm: ${args.n} values do not split into ${args.groups} groups`);
  if (args.n < 1 || args.rows < 1) return;
  const groupSize = args.n / args.groups;
  const inY = bufferOf(args.y.buffer) === bufferOf(args.z.buffer);
  if (inY && args.y.buffer !== args.z.buffer) throw new Error('gatedNorm: pass z in y\'s buffer with row offsets, not a binding range');
  // Narrow groups (Mamba2's are d_inner / n_group: 64 to a few thousand) need fewer invocations.
  const size = groupSize <= 64 ? 64 : 256;
  const key = (size === 64 ? 2 : 0) + (inY ? 1 : 0);
  const kernel =
    kernels.variant(GATED_NORM, key) ??
    kernels.remember(
      GATED_NORM,
      key,
      shaderKernel(kernels, 'gated_norm.wgsl', { name: `gated_norm${inY ? '_z_in_y' : ''}`, slots: { z: inY ? 'z_in_y.wgsl' : 'z_separate.wgsl' }, constants: { WORKGROUP_SIZE: size } }),
    );
  const [gx, gy] = foldedGrid(args.rows * args.groups);
  recorder.dispatch(kernel, {
    params: {
      rows: args.rows,
      groups: args.groups,
      group_size: groupSize,
      y_stride: args.y.stride ?? args.n,
      y_offset: args.y.offset ?? 0,
      z_stride: args.z.stride ?? args.n,
      z_offset: args.z.offset ?? 0,
      eps: args.eps,
      groups_x: gx,
    },
    bind: { y: args.y.buffer, weight: args.weight, ...(inY ? {} : { z: args.z.buffer }) },
    workgroups: [gx, gy],
    label: 'gated_norm',
  });
}

/** Float64 reference on contiguous rows of n. */
export function gatedNormReference(y: ArrayLike<number>, z: ArrayLike<number>, n: number, rows: number, groups: number, eps: number, weight: ArrayLike<number>): Float64Array {
  const out = new Float64Array(n * rows);
  const size = n / groups;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const g = z[r * n + i]!;
      out[r * n + i] = y[r * n + i]! * (g / (1 + Math.exp(-g)));
    }
    for (let g = 0; g < groups; g++) {
      const base = r * n + g * size;
      let sq = 0;
      for (let i = 0; i < size; i++) sq += out[base + i]! ** 2;
      const scale = 1 / Math.sqrt(sq / size + eps);
      for (let i = 0; i < size; i++) out[base + i] = out[base + i]! * scale * weight[g * size + i]!;
    }
  }
  return out;
}
