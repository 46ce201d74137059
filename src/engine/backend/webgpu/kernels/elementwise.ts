/**
 * Elementwise ops on rows (elementwise.wgsl): residual add, multiply, scale, ReLU.
 * out = (a + b) * scale, (a * b) * scale, a * scale or max(a, 0) * scale; b may broadcast one row (`b.stride = 0`).
 * In place when out is a or b (add and mul), or both. Float64 reference: `elementwiseReference`.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { bufferOf, foldedGrid, ioVariant, type RowView, shaderKernel } from './common.ts';

const WORKGROUP_SIZE = 256;
const OPS = { add: 0, mul: 1, scale: 2, relu: 3 } as const;
export type ElementwiseOp = keyof typeof OPS;

export interface ElementwiseArgs {
  op: ElementwiseOp;
  a: RowView;
  /** The second operand (add, mul); `stride: 0` broadcasts its first row. Unused by scale and relu. */
  b?: RowView;
  out: RowView;
  /** Elements per row. */
  n: number;
  rows: number;
  /** Multiplies the result; default 1. */
  scale?: number;
  /** Any storage buffer, bound as b for `scale` and `relu`. */
  dummy: GPUBuffer;
}

const ELEMENTWISE = kernelFamily();

export function encodeElementwise(recorder: StepRecorder, kernels: KernelCache, args: ElementwiseArgs): void {
  if (args.n < 1 || args.rows < 1) return;
  if ((args.op === 'add' || args.op === 'mul') && !args.b) throw new Error(`encodeElementwise: ${args.op} needs b`);
  let a = args.a;
  let b = args.b;
  // Written in place of b: add and mul commute, so b becomes the operand read through the io slot.
  if (b && bufferOf(b.buffer) === bufferOf(args.out.buffer) && bufferOf(a.buffer) !== bufferOf(args.out.buffer)) {
    if (b.stride === 0) throw new Error(`encodeElementwise: ${args.op} into the buffer of a broadcast b`);
    [a, b] = [b, a];
  }
  const io = ioVariant(a.buffer, args.out.buffer);
  // a, b and out in one buffer: b is read through dst's binding.
  const bInDst = b !== undefined && io.slot === 'io_in_place.wgsl' && bufferOf(b.buffer) === bufferOf(args.out.buffer);
  if (bInDst && b!.buffer !== args.out.buffer) throw new Error('encodeElementwise: pass b in out\'s buffer with row offsets, not a binding range');
  const key = OPS[args.op] * 4 + (io.slot === 'io_in_place.wgsl' ? 1 : 0) + (bInDst ? 2 : 0);
  const kernel =
    kernels.variant(ELEMENTWISE, key) ??
    kernels.remember(
      ELEMENTWISE,
      key,
      shaderKernel(kernels, 'elementwise.wgsl', {
        name: `elementwise${io.suffix}${bInDst ? '_b_in_dst' : ''}`,
        slots: { io: io.slot, b: bInDst ? 'b_in_dst.wgsl' : 'b_separate.wgsl' },
        constants: { WORKGROUP_SIZE, OP: OPS[args.op] },
      }),
    );
  const [gx, gy] = foldedGrid(Math.ceil((args.n * args.rows) / WORKGROUP_SIZE));
  recorder.dispatch(kernel, {
    params: {
      n: args.n,
      rows: args.rows,
      src_stride: a.stride ?? args.n,
      src_offset: a.offset ?? 0,
      b_stride: b?.stride ?? args.n,
      b_offset: b?.offset ?? 0,
      dst_stride: args.out.stride ?? args.n,
      dst_offset: args.out.offset ?? 0,
      scale: args.scale ?? 1,
      groups_x: gx,
    },
    bind: bInDst ? io.bind : { ...io.bind, b: b?.buffer ?? args.dummy },
    workgroups: [gx, gy],
    label: args.op,
  });
}

/** Float64 reference on contiguous rows; `bBroadcast` uses b's first row for every row. */
export function elementwiseReference(
  op: ElementwiseOp,
  a: ArrayLike<number>,
  b: ArrayLike<number> | undefined,
  n: number,
  rows: number,
  scale = 1,
  bBroadcast = false,
): Float64Array {
  const out = new Float64Array(n * rows);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const x = a[r * n + i]!;
      const y = op === 'scale' || op === 'relu' ? 0 : b![(bBroadcast ? 0 : r * n) + i]!;
      out[r * n + i] = (op === 'add' ? x + y : op === 'mul' ? x * y : op === 'relu' ? Math.max(x, 0) : x) * scale;
    }
  }
  return out;
}
