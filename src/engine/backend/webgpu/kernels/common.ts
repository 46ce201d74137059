/**
 * Small things the kernel modules share: the strided row view every op takes, the 2-D folding of
 * large 1-D dispatches, and a lookup of registered shaders.
 */
import { SHADERS } from '../../../../shaders/index.ts';
import type { KernelCache, Kernel } from '../kernel.ts';
import { preprocessWgsl } from '../preprocess.ts';
import type { BufferRange } from '../recorder.ts';

/**
 * A matrix of f32 rows inside a buffer: row r starts at float `offset + r * stride`. This is how a
 * kernel reads a slice of a bigger activation (e.g. the k part of a fused qkv output: stride =
 * q_dim + 2 * kv_dim, offset = q_dim). `stride` defaults to the row length, `offset` to 0.
 */
export interface RowView {
  buffer: GPUBuffer | BufferRange;
  stride?: number;
  offset?: number;
}

/** Splits a 1-D workgroup count into a 2-D dispatch that respects the per-dimension limit. */
export function dispatchGrid(groups: number, maxPerDimension: number): [number, number] {
  if (groups <= maxPerDimension) return [groups, 1];
  const y = Math.ceil(groups / maxPerDimension);
  return [Math.ceil(groups / y), y];
}

/** WebGPU guarantees at least this many workgroups per dispatch dimension on every device. */
export const MAX_GROUPS_PER_DIM = 65535;

/** A 1-D workgroup count folded into x and y; the shader gets `groups_x` to unfold it. */
export function foldedGrid(groups: number): [number, number] {
  return dispatchGrid(groups, MAX_GROUPS_PER_DIM);
}

const preprocessed = new Map<string, string>();

/**
 * The kernel for a registered shader file (after includes), compiled once per constants. The
 * preprocessed text is cached too: encode functions run for every dispatch of every token step.
 */
export function shaderKernel(
  kernels: KernelCache,
  file: string,
  options: { entryPoint?: string; constants?: Record<string, number>; slots?: Record<string, string>; name?: string } = {},
): Kernel {
  const slots = options.slots ?? {};
  const textKey = `${file}|${Object.entries(slots).sort().map(([k, v]) => `${k}=${v}`).join(',')}`;
  let wgsl = preprocessed.get(textKey);
  if (wgsl === undefined) {
    wgsl = preprocessWgsl(file, SHADERS, slots);
    preprocessed.set(textKey, wgsl);
  }
  return kernels.get({
    name: options.name ?? file.replace('.wgsl', ''),
    wgsl,
    ...(options.entryPoint ? { entryPoint: options.entryPoint } : {}),
    ...(options.constants ? { constants: options.constants } : {}),
  });
}

export function assertPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
}

/** The GPU buffer of a binding (a whole buffer or a range of one). */
export function bufferOf(binding: GPUBuffer | BufferRange): GPUBuffer {
  return 'buffer' in binding ? binding.buffer : binding;
}

/**
 * The `io` include and bindings for a kernel that reads `src` and writes `dst`: in place when both
 * are the same GPU buffer (WebGPU forbids a buffer in a writable and another binding of one
 * dispatch), with separate bindings otherwise. In place, ranges must be the same rows or disjoint.
 */
export function ioVariant(
  src: GPUBuffer | BufferRange,
  dst: GPUBuffer | BufferRange,
): { slot: 'io_in_place.wgsl' | 'io_separate.wgsl'; suffix: string; bind: Record<string, GPUBuffer | BufferRange> } {
  if (bufferOf(src) === bufferOf(dst)) {
    const s = 'buffer' in src ? src : { buffer: src };
    const d = 'buffer' in dst ? dst : { buffer: dst };
    if ((s.offset ?? 0) !== (d.offset ?? 0) || s.size !== d.size) {
      throw new Error('in-place kernels bind the whole buffer: pass row offsets in the RowView, not binding ranges');
    }
    return { slot: 'io_in_place.wgsl', suffix: '_in_place', bind: { dst } };
  }
  return { slot: 'io_separate.wgsl', suffix: '', bind: { src, dst } };
}
