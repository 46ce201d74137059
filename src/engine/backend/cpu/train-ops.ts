/**
 * {@link TrainOps} on the CPU with the frozen-base products on the WebAssembly SIMD kernels of
 * `kernels.ts` (issue 22): those products are nearly all of a step's work on a real model, and the
 * scalar TypeScript ops run them some tens of times slower than the kernels. Every other op (LoRA,
 * norms, attention, ...) is the `rest` ops' (the training layer's float32 CpuTrainOps, passed in: the
 * backends may not import the training layer above them). Tensors stay host Float32Arrays, so the
 * two mix freely; each product copies its operands into the kernels' memory and its result out.
 *
 * - Forward, y = x W^T (+ bias): the inference matmul on the GGUF rows as they are, f32 activations
 *   and accumulation (no activation quantizing), split over the pool's threads by output rows.
 * - Backward, dx += dy W: the kernels contract along a weight row only, and here the contraction
 *   runs down W's columns, so W is taken in chunks of rows, each dequantized by the kernel and
 *   transposed on the host to [nIn][rows] (an f32 "weight"), then dx_part = dy[:, chunk] chunk^T
 *   is a matmul over that, added into dx by the elementwise kernel. The transpose costs one pass
 *   over W per call, 1/n of the product's work for n tokens.
 *
 * Each base matrix is copied into the kernels' memory once, on first use, and kept there (a model's
 * quantized weights, as inference holds them); per-call operands live above a mark released after.
 */
import { GgmlType } from '../../gguf/ggml-types.ts';
import type { AttentionShape, FrozenMatrix, LoraPair, RopeTable, TrainOps, Vec } from '../train-ops.ts';
import { CPU_WEIGHT_TYPES, CpuKernels, MATMUL_SCRATCH_FLOATS, WASM32_MAX_BYTES } from './kernels.ts';

/** Floats of one transposed backward chunk: 4 MiB, a few cache-friendly pieces of a large matrix. */
const BACKWARD_CHUNK_FLOATS = 1 << 20;
/** Room beside the base for one product's operands, made with the memory (it grows past this on demand). */
const WORKING_BYTES = 64 * 2 ** 20;

export class WasmTrainOps implements TrainOps<Vec> {
  private readonly resident = new Map<FrozenMatrix, number>();
  private readonly declined = new WeakSet<FrozenMatrix>();
  private readonly scratch: number;

  /**
   * `rest`: the ops of everything but the base products (float32 host arrays). `chunkFloats`: the
   * backward's transposed chunk (tests make it small to cross chunks).
   */
  constructor(
    readonly kernels: CpuKernels,
    private readonly rest: TrainOps<Vec>,
    private readonly chunkFloats = BACKWARD_CHUNK_FLOATS,
  ) {
    this.scratch = kernels.allocF32(MATMUL_SCRATCH_FLOATS * kernels.threads);
  }

  /**
   * Kernels over `threads` threads (1 where the platform has no shared memory) around `rest`.
   * `baseBytes`: the frozen matrices' size, to make the memory that large at once (growing it
   * matrix by matrix took seconds of copying and garbage collection on a 0.5B model's first step).
   */
  static async create(rest: TrainOps<Vec>, o: { threads?: number; baseBytes?: number } = {}): Promise<WasmTrainOps> {
    const initialBytes = o.baseBytes ? Math.min(WASM32_MAX_BYTES - WORKING_BYTES, o.baseBytes) + WORKING_BYTES : undefined;
    return new WasmTrainOps(await CpuKernels.create({ threads: o.threads ?? 1, ...(initialBytes ? { initialBytes } : {}) }), rest);
  }

  /** The kernels' memory: the base's matrices copied in, and the working space. */
  heldBytes(): number {
    return this.kernels.memory.buffer.byteLength;
  }

  /** Stops the kernels' worker threads. */
  destroy(): void {
    this.kernels.destroy();
  }

  /**
   * The matrix in the kernels' memory (copied there on first use), or undefined where the kernels
   * do not read its type or it does not fit in the memory (4 GiB at most): the `rest` ops run its
   * products then.
   */
  private weight(w: FrozenMatrix): number | undefined {
    const ptr = this.resident.get(w);
    if (ptr !== undefined || this.declined.has(w)) return ptr;
    if (!CPU_WEIGHT_TYPES.includes(w.type) || this.kernels.rowBytes(w.type, w.nIn) === 0) {
      this.declined.add(w);
      return undefined;
    }
    try {
      const at = this.kernels.upload(w.bytes);
      this.resident.set(w, at);
      return at;
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.declined.add(w);
      return undefined;
    }
  }

  matmul(w: FrozenMatrix, x: Vec, n: number, bias?: Float32Array): Vec {
    const wp = x instanceof Float32Array ? this.weight(w) : undefined;
    if (wp === undefined) return this.rest.matmul(w, x, n, bias);
    const k = this.kernels;
    const mark = k.mark();
    try {
      const xp = k.upload(x.subarray(0, n * w.nIn));
      const yp = k.allocF32(n * w.nOut);
      const bp = bias ? k.upload(bias) : 0;
      k.matmul({
        type: w.type, w: wp, k: w.nIn, x: { ptr: xp, stride: w.nIn }, y: { ptr: yp, stride: w.nOut }, tokens: n, bias: bp,
        rowStart: 0, rowEnd: w.nOut, scratch: this.scratch, scratchStride: 4 * MATMUL_SCRATCH_FLOATS,
      });
      return k.f32(yp, n * w.nOut).slice();
    } finally {
      k.release(mark);
    }
  }

  matmulBackward(w: FrozenMatrix, dy: Vec, n: number, dx: Vec): void {
    const wp = dy instanceof Float32Array && dx instanceof Float32Array ? this.weight(w) : undefined;
    if (wp === undefined) return this.rest.matmulBackward(w, dy, n, dx);
    const k = this.kernels;
    const { nIn, nOut } = w;
    const rowBytes = k.rowBytes(w.type, nIn);
    const rows = Math.max(1, Math.min(nOut, Math.floor(this.chunkFloats / nIn)));
    const mark = k.mark();
    try {
      const dyp = k.upload(dy.subarray(0, n * nOut));
      const dxp = k.upload(dx.subarray(0, n * nIn));
      const part = k.allocF32(n * nIn);
      const plain = k.allocF32(rows * nIn);
      const turned = k.allocF32(rows * nIn);
      for (let r0 = 0; r0 < nOut; r0 += rows) {
        const m = Math.min(rows, nOut - r0);
        k.dequantize(w.type, wp + r0 * rowBytes, plain, m * nIn);
        transpose(k.f32(plain, m * nIn), k.f32(turned, m * nIn), m, nIn);
        // part[t][i] = sum_{o in chunk} dy[t][o] W[o][i]: the chunk's transpose is an f32 weight of nIn rows of m.
        k.matmul({
          type: GgmlType.F32, w: turned, k: m, x: { ptr: dyp, stride: nOut, offset: r0 }, y: { ptr: part, stride: nIn }, tokens: n,
          rowStart: 0, rowEnd: nIn, scratch: this.scratch, scratchStride: 4 * MATMUL_SCRATCH_FLOATS,
        });
        k.elementwise({ op: 'add', a: { ptr: dxp, stride: nIn }, b: { ptr: part, stride: nIn }, out: { ptr: dxp, stride: nIn }, n: nIn, rowStart: 0, rowEnd: n });
      }
      dx.set(k.f32(dxp, n * nIn));
    } finally {
      k.release(mark);
    }
  }

  // ---- the rest, on the host ----------------------------------------------------------------

  alloc(length: number): Vec {
    return this.rest.alloc(length);
  }
  upload(data: Float32Array | Float64Array): Vec {
    return this.rest.upload(data);
  }
  read(tensors: readonly Vec[]): Promise<Vec[]> {
    return this.rest.read(tensors);
  }
  length(t: Vec): number {
    return this.rest.length(t);
  }
  byteLength(t: Vec): number {
    return this.rest.byteLength(t);
  }
  copy(t: Vec): Vec {
    return this.rest.copy(t);
  }
  free(...tensors: (Vec | undefined)[]): void {
    this.rest.free(...tensors);
  }
  loraForward(p: LoraPair<Vec>, nIn: number, nOut: number, x: Vec, n: number, y: Vec): Vec {
    return this.rest.loraForward(p, nIn, nOut, x, n, y);
  }
  loraBackward(p: LoraPair<Vec>, nIn: number, nOut: number, x: Vec, u: Vec, dy: Vec, n: number, grad: { a: Vec; b: Vec }, dx: Vec): void {
    this.rest.loraBackward(p, nIn, nOut, x, u, dy, n, grad, dx);
  }
  rmsNorm(x: Vec, rows: number, len: number, eps: number, w: Float32Array): { y: Vec; r: Vec } {
    return this.rest.rmsNorm(x, rows, len, eps, w);
  }
  rmsNormBackward(x: Vec, r: Vec, len: number, w: Float32Array, dy: Vec): Vec {
    return this.rest.rmsNormBackward(x, r, len, w, dy);
  }
  rope(x: Vec, n: number, nHeads: number, headDim: number, table: RopeTable, inverse: boolean): void {
    this.rest.rope(x, n, nHeads, headDim, table, inverse);
  }
  attention(q: Vec, k: Vec, v: Vec, s: AttentionShape): { out: Vec; probs: Vec } {
    return this.rest.attention(q, k, v, s);
  }
  attentionBackward(q: Vec, k: Vec, v: Vec, probs: Vec, dOut: Vec, s: AttentionShape): { dq: Vec; dk: Vec; dv: Vec } {
    return this.rest.attentionBackward(q, k, v, probs, dOut, s);
  }
  swiglu(gate: Vec, up: Vec): Vec {
    return this.rest.swiglu(gate, up);
  }
  swigluBackward(gate: Vec, up: Vec, dy: Vec): { dGate: Vec; dUp: Vec } {
    return this.rest.swigluBackward(gate, up, dy);
  }
  crossEntropy(logits: Vec, n: number, nVocab: number, targets: ArrayLike<number>, weight: ArrayLike<number>, gradScale?: number): { loss: Vec; dLogits: Vec } {
    return this.rest.crossEntropy(logits, n, nVocab, targets, weight, gradScale);
  }
  addInPlace(a: Vec, b: Vec): void {
    this.rest.addInPlace(a, b);
  }
}

/** dst [cols][rows] = src [rows][cols] transposed, in tiles so both sides stay in cache. */
function transpose(src: Float32Array, dst: Float32Array, rows: number, cols: number): void {
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) {
        const s = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[s + c]!;
      }
    }
  }
}
