/**
 * Softmax over rows (softmax.wgsl): out = softmax(x * scale), in place allowed. Used by tests and
 * by sampling diagnostics; attention has its own fused online softmax. Reference: `softmaxReference`.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { foldedGrid, ioVariant, shaderKernel, type RowView } from './common.ts';

const WORKGROUP_SIZE = 256;

export interface SoftmaxArgs {
  x: RowView;
  out: RowView;
  n: number;
  rows: number;
  /** Multiplies x before the softmax; default 1. */
  scale?: number;
}

const SOFTMAX = kernelFamily();

export function encodeSoftmax(recorder: StepRecorder, kernels: KernelCache, args: SoftmaxArgs): void {
  if (args.n < 1 || args.rows < 1) return;
  const io = ioVariant(args.x.buffer, args.out.buffer);
  const key = io.slot === 'io_in_place.wgsl' ? 1 : 0;
  const kernel =
    kernels.variant(SOFTMAX, key) ??
    kernels.remember(SOFTMAX, key, shaderKernel(kernels, 'softmax.wgsl', { name: `softmax${io.suffix}`, slots: { io: io.slot }, constants: { WORKGROUP_SIZE } }));
  const [gx, gy] = foldedGrid(args.rows);
  recorder.dispatch(kernel, {
    params: {
      n: args.n,
      rows: args.rows,
      src_stride: args.x.stride ?? args.n,
      src_offset: args.x.offset ?? 0,
      dst_stride: args.out.stride ?? args.n,
      dst_offset: args.out.offset ?? 0,
      scale: args.scale ?? 1,
      groups_x: gx,
    },
    bind: io.bind,
    workgroups: [gx, gy],
    label: 'softmax',
  });
}

/** Float64 reference on contiguous rows. */
export function softmaxReference(x: ArrayLike<number>, n: number, rows: number, scale = 1): Float64Array {
  const out = new Float64Array(n * rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[r * n + i]! * scale);
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(x[r * n + i]! * scale - m);
    for (let i = 0; i < n; i++) out[r * n + i] = Math.exp(x[r * n + i]! * scale - m) / s;
  }
  return out;
}
