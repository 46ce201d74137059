/**
 * Copies and clears of float regions (region.wgsl): a recurrent state's snapshot at a turn
 * boundary, a fresh state. Dispatches, not copyBufferToBuffer / clearBuffer, so they keep their
 * place among the step's dispatches, are captured and replayed with them, and copy within one
 * buffer (which copyBufferToBuffer refuses).
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { foldedGrid, ioVariant, shaderKernel } from './common.ts';

const WORKGROUP_SIZE = 256;

export interface FloatRegion {
  buffer: GPUBuffer;
  /** In floats. */
  offset: number;
  floats: number;
}

const REGION = kernelFamily();

/** to = from; two buffers, or disjoint regions of one. */
export function encodeRegionCopy(recorder: StepRecorder, kernels: KernelCache, from: FloatRegion, to: FloatRegion): void {
  if (from.floats !== to.floats) throw new RangeError(`copy: ${from.floats} floats into a region of ${to.floats}`);
  if (from.buffer === to.buffer && from.offset < to.offset + to.floats && to.offset < from.offset + from.floats) {
    if (from.offset === to.offset) return;
    throw new RangeError('copy: overlapping regions of one buffer');
  }
  const io = ioVariant(from.buffer, to.buffer);
  encode(recorder, kernels, false, io.slot, io.bind, from.offset, to);
}

/** The region's floats set to 0. */
export function encodeRegionZero(recorder: StepRecorder, kernels: KernelCache, region: FloatRegion): void {
  encode(recorder, kernels, true, 'io_in_place.wgsl', { dst: region.buffer }, 0, region);
}

function encode(
  recorder: StepRecorder,
  kernels: KernelCache,
  zero: boolean,
  slot: 'io_in_place.wgsl' | 'io_separate.wgsl',
  bind: Record<string, GPUBuffer | { buffer: GPUBuffer }>,
  srcOffset: number,
  to: FloatRegion,
): void {
  if (to.floats < 1) return;
  const key = (zero ? 2 : 0) + (slot === 'io_in_place.wgsl' ? 1 : 0);
  const kernel =
    kernels.variant(REGION, key) ??
    kernels.remember(
      REGION,
      key,
      shaderKernel(kernels, 'region.wgsl', { name: `region${zero ? '_zero' : '_copy'}${slot === 'io_in_place.wgsl' ? '_in_place' : ''}`, slots: { io: slot }, constants: { WORKGROUP_SIZE, ZERO: zero ? 1 : 0 } }),
    );
  const [gx, gy] = foldedGrid(Math.ceil(to.floats / WORKGROUP_SIZE));
  recorder.dispatch(kernel, {
    params: { floats: to.floats, src_offset: srcOffset, dst_offset: to.offset, groups_x: gx },
    bind,
    workgroups: [gx, gy],
    label: zero ? 'zero' : 'copy',
  });
}
