/**
 * Shared setup for the op kernel GPU tests (src/engine/backend/webgpu/kernels/*.gpu.test.ts): one
 * device, kernel cache and recorder per file, and helpers to upload data, allocate NaN-poisoned
 * outputs and read results back.
 */
import { afterAll, beforeAll } from 'vitest';
import { acquireTestGpu, uploadFloats, type TestGpu } from './gpu.ts';
import { mulberry32 } from './random.ts';
import { KernelCache } from '../engine/backend/webgpu/kernel.ts';
import { readBuffer } from '../engine/backend/webgpu/readback.ts';
import { StepRecorder } from '../engine/backend/webgpu/recorder.ts';

export interface OpHarness {
  gpu: TestGpu;
  device: GPUDevice;
  kernels: KernelCache;
  recorder: StepRecorder;
  /** A one-float buffer for optional bindings. */
  dummy: GPUBuffer;
  upload(data: Float32Array<ArrayBuffer>): GPUBuffer;
  uploadU32(data: Uint32Array<ArrayBuffer>): GPUBuffer;
  /** A buffer of `n` floats, all NaN, so anything the kernel fails to write shows. */
  poisoned(n: number): GPUBuffer;
  readF32(buffer: GPUBuffer, n: number, offsetFloats?: number): Promise<Float32Array>;
  readU32(buffer: GPUBuffer, n: number): Promise<Uint32Array>;
  /** Submits the recorded step and fails on any validation error it raised. */
  submit(): Promise<void>;
}

export function useOpHarness(): OpHarness {
  const buffers: GPUBuffer[] = [];
  const h = {} as OpHarness;
  beforeAll(async () => {
    h.gpu = await acquireTestGpu();
    h.device = h.gpu.device;
    h.kernels = new KernelCache(h.device);
    h.recorder = new StepRecorder(h.device);
    h.dummy = h.upload(new Float32Array(1));
  });
  afterAll(() => {
    for (const b of buffers) b.destroy();
    h.recorder?.destroy();
    h.gpu?.destroy();
  });
  h.upload = (data) => {
    const b = uploadFloats(h.device, data);
    buffers.push(b);
    return b;
  };
  h.uploadU32 = (data) => {
    const b = h.device.createBuffer({
      size: Math.max(4, data.byteLength),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    h.device.queue.writeBuffer(b, 0, data);
    buffers.push(b);
    return b;
  };
  h.poisoned = (n) => h.upload(new Float32Array(n).fill(NaN));
  h.readF32 = async (buffer, n, offsetFloats = 0) => new Float32Array(await readBuffer(h.device, buffer, n * 4, offsetFloats * 4));
  h.readU32 = async (buffer, n) => new Uint32Array(await readBuffer(h.device, buffer, n * 4));
  h.submit = async () => {
    h.device.pushErrorScope('validation');
    h.recorder.submit();
    const error = await h.device.popErrorScope();
    if (error) throw new Error(`WebGPU validation error: ${error.message}`);
  };
  return h;
}

/** Random integer in [lo, hi] from a seeded generator. */
export function seededInts(seed: number): (lo: number, hi: number) => number {
  const next = mulberry32(seed);
  return (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
}

/** Contiguous rows of length n placed at `offset + r * stride` in a NaN-filled array. */
export function spreadRows(data: ArrayLike<number>, n: number, rows: number, stride: number, offset: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(offset + rows * stride).fill(NaN);
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) out[offset + r * stride + i] = data[r * n + i]!;
  return out;
}

/** The inverse of `spreadRows`. */
export function gatherRows(data: ArrayLike<number>, n: number, rows: number, stride: number, offset: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) out[r * n + i] = data[offset + r * stride + i]!;
  return out;
}
