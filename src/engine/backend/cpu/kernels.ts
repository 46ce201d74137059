/**
 * Host side of the CPU kernels (assembly/kernels.ts, built by build.mjs into generated/): loads the
 * plain SIMD128 or the relaxed-SIMD module (chosen at run time), owns the linear memory and a bump
 * allocator in it, and gives every kernel a typed call.
 *
 * Pointers are byte offsets into `memory`; f32 operands are described in floats (row r of an
 * operand at `ptr + 4 * (offset + r * stride)`, like the WebGPU kernels' row views). Ops over
 * independent rows take `[rowStart, rowEnd)`; with `threads > 1` the memory is shared and every such
 * call is split across a worker pool (threads.ts) by rows, bitwise identical to one thread.
 */
import { GgmlType } from '../../gguf/ggml-types.ts';
import { RELAXED_SHARED_WASM_BASE64, RELAXED_WASM_BASE64, SIMD_SHARED_WASM_BASE64, SIMD_WASM_BASE64 } from './generated/kernels-wasm.ts';
import { HearthError } from '../../errors.ts';
import { CONTROL_BYTES, CpuWorkerLostError, ThreadPool, threadingSupport, type PoolOptions } from './threads.ts';

/** Weight types the CPU matmul, dequantize and embed kernels read (raw GGUF blocks). */
export const CPU_WEIGHT_TYPES: readonly GgmlType[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
  GgmlType.Q2_K,
  GgmlType.Q3_K,
  GgmlType.IQ4_NL,
  GgmlType.IQ4_XS,
];

/** Weight types with an integer-dot path on 8-bit quantized activations (`matmulQ8A`). */
export const Q8A_WEIGHT_TYPES: readonly GgmlType[] = [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL];

/** Bytes per 32 activations in the Q8A format: f32 d, two i16 half sums, 32 i8. */
export const Q8A_BLOCK_BYTES = 40;

/** Floats of `attention` scratch per key and thread: a pair of heads sharing a KV head keeps both heads' scores. */
export const ATTENTION_SCRATCH_FLOATS_PER_KEY = 2;

/** K-quant weight types with an integer-dot path on Q8K activations (`matmulQ8K`). */
export const Q8K_WEIGHT_TYPES: readonly GgmlType[] = [GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q3_K, GgmlType.Q2_K, GgmlType.IQ4_XS];

/** Bytes per 256 activations in the Q8K format: f32 d, 16 i16 sums (one per 16), 256 i8. */
export const Q8K_BLOCK_BYTES = 292;

/** Block size in bytes and the offsets of its f16 fields, for the relaxed-SIMD agreement check. */
const HALF_FIELDS: Partial<Record<GgmlType, { size: number; halves: number[] }>> = {
  [GgmlType.Q8_0]: { size: 34, halves: [0] },
  [GgmlType.Q4_0]: { size: 18, halves: [0] },
  [GgmlType.Q4_1]: { size: 20, halves: [0, 2] },
  [GgmlType.Q5_0]: { size: 22, halves: [0] },
  [GgmlType.Q5_1]: { size: 24, halves: [0, 2] },
  [GgmlType.Q4_K]: { size: 144, halves: [0, 2] },
  [GgmlType.Q5_K]: { size: 176, halves: [0, 2] },
  [GgmlType.Q6_K]: { size: 210, halves: [208] },
  [GgmlType.Q2_K]: { size: 84, halves: [80, 82] },
  [GgmlType.Q3_K]: { size: 110, halves: [108] },
  [GgmlType.IQ4_NL]: { size: 18, halves: [0] },
  [GgmlType.IQ4_XS]: { size: 136, halves: [0] },
};

/** Per-thread scratch of the packed prefill: thread i uses scratch + i * stride (bytes). */
export interface PackScratch {
  scratch: number;
  stride: number;
}

/**
 * The types the relaxed build stores four rows interleaved for decode (`packInterleaved`); IQ4_NL
 * only where the unsigned-byte dot is exact (`CpuKernels.unsignedDot`).
 */
export type InterleavedType = GgmlType.Q4_0 | GgmlType.Q5_0 | GgmlType.Q8_0 | GgmlType.IQ4_NL | KX4Type;

/**
 * `embed`'s type code for a Q4_0 table stored as Q4_0x4 (`packQ4_0x4`; not a ggml type): the
 * relaxed build's decode layout of Q4_0 matrices.
 */
export const Q4_0X4_LAYOUT = 1002;

/**
 * `embed`'s type code for a Q5_0 table stored as Q5_0x4 (`packQ5_0x4`; not a ggml type): the
 * relaxed build's decode layout of Q5_0 matrices.
 */
export const Q5_0X4_LAYOUT = 1006;

/**
 * `embed`'s type code for a Q8_0 table stored as Q8_0x4 (`packQ8_0x4`; not a ggml type): the
 * relaxed build's decode layout of Q8_0 matrices.
 */
export const Q8_0X4_LAYOUT = 1008;

/**
 * `embed`'s type code for an IQ4_NL table stored as IQ4_NLx4 (Q4_0x4's bytes, `packQ4_0x4`: the
 * blocks are laid out alike; not a ggml type).
 */
export const IQ4_NLX4_LAYOUT = 1020;

/**
 * `embed`'s type code for a Q4_K table stored as Q4_Kx4 (`packQ4_Kx4`; not a ggml type): the
 * relaxed build's decode layout of Q4_K matrices.
 */
export const Q4_KX4_LAYOUT = 1012;

/**
 * `embed`'s type code for a Q6_K table stored as Q6_Kx4 (`packQ6_Kx4`; not a ggml type): the
 * relaxed build's decode layout of Q6_K matrices (Llama 3's tied Q6_K embedding included).
 */
export const Q6_KX4_LAYOUT = 1014;

/** `embed`'s type codes for the interleaved layouts. */
export type InterleavedLayout = typeof Q4_0X4_LAYOUT | typeof Q5_0X4_LAYOUT | typeof Q8_0X4_LAYOUT | typeof IQ4_NLX4_LAYOUT | typeof Q4_KX4_LAYOUT | typeof Q6_KX4_LAYOUT;
const INTERLEAVED_LAYOUTS: Record<InterleavedType, InterleavedLayout> = {
  [GgmlType.Q4_0]: Q4_0X4_LAYOUT,
  [GgmlType.Q5_0]: Q5_0X4_LAYOUT,
  [GgmlType.Q8_0]: Q8_0X4_LAYOUT,
  [GgmlType.IQ4_NL]: IQ4_NLX4_LAYOUT,
  [GgmlType.Q4_K]: Q4_KX4_LAYOUT,
  [GgmlType.Q6_K]: Q6_KX4_LAYOUT,
};

const INTERLEAVED_LAYOUT_CODES: readonly number[] = Object.values(INTERLEAVED_LAYOUTS);

/** The `embed` type code of a matrix of `type` stored interleaved (`packInterleaved`). */
export function interleavedLayout(type: InterleavedType): InterleavedLayout {
  return INTERLEAVED_LAYOUTS[type];
}

/** Scratch bytes `packQ4_0x4` / `packQ5_0x4` need for rows of k elements (one four-row group's quants and scales). */
export function nibbleX4PackBytes(k: number): number {
  return (k / 32) * 152;
}

/** The K-quants with an interleaved layout (Q4_Kx4, Q6_Kx4): super-blocks of 256, Q8K activations. */
export type KX4Type = GgmlType.Q4_K | GgmlType.Q6_K;

/** Whether `type` is one of the KX4Type K-quants (the other interleaved types take Q8A activations). */
export function isKX4Type(type: GgmlType): type is KX4Type {
  return type === GgmlType.Q4_K || type === GgmlType.Q6_K;
}

/** Scratch bytes `packQ4_Kx4` / `packQ6_Kx4` need for rows of k elements (one four-row group's GGUF rows, k % 256 == 0). */
export function kX4PackBytes(type: KX4Type, k: number): number {
  return (k / 256) * (type === GgmlType.Q4_K ? 144 : 210) * 4;
}

/** Floats of scratch `matmul` needs (one dequantized chunk of a weight row). */
export const MATMUL_SCRATCH_FLOATS = 1024;

/**
 * Bytes of per-thread scratch for the relaxed build's packed prefill (`matmulQ8A` on Q8_0 / Q4_0 /
 * Q5_0 / IQ4_NL / IQ4_XS, `matmulQ8K` on the K-quants: four rows unpacked into a row-interleaved
 * layout, `packedPrefillBytes`): rows of up to 32768 elements of any of those types. Longer rows
 * take the unpacked path.
 */
export const PACKED_PREFILL_SCRATCH_BYTES = 278_528;

/**
 * Bytes four rows of k elements of `type` take in the packed prefill layout (0: no packed path):
 * assembly/kernels.ts `q8aPackBytes` (Q8_0 / Q4_0 / Q5_0 on Q8A activations) and `q8kPackBytes`
 * (the K-quants on Q8K activations).
 */
export function packedPrefillBytes(type: GgmlType, k: number): number {
  // The signed types in two planes of nibbles. IQ4_XS's decode splits each token into xp and xn
  // there too (k / 256 * 512 bytes, less).
  if (type === GgmlType.Q8_0 || type === GgmlType.IQ4_NL || type === GgmlType.IQ4_XS) return (k / 32) * 272;
  if (type === GgmlType.Q4_0 || type === GgmlType.Q5_0) return (k / 32) * 144;
  if (Q8K_WEIGHT_TYPES.includes(type)) return (k / 256) * 1440;
  return 0;
}

const WASM_PAGE = 65536;
/** wasm32: 65536 pages of 64 KiB, 4 GiB, the most a 32-bit pointer addresses. */
export const WASM32_MAX_BYTES = 2 ** 32;

/**
 * The kernels a pool thread may run, by index (pool-share.js names them by number); each takes its
 * range as two adjacent arguments.
 */
const KERNEL_NAMES = ['matmul', 'quantizeQ8A', 'matmulQ8A', 'quantizeQ8K', 'matmulQ8K', 'norm', 'rope', 'attention', 'softmax', 'glu', 'elementwise', 'embed', 'argmax', 'ssmConv', 'ssmScan', 'matmulInterleaved'] as const;
type KernelName = (typeof KERNEL_NAMES)[number];
const K = Object.fromEntries(KERNEL_NAMES.map((n, i) => [n, i])) as Record<KernelName, number>;
/** Output rows per chunk unit of the matmuls: 16 floats, one cache line of y per thread. */
const ROW_GRAIN = 16;

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const V128_ZERO = 'fd0c' + '00'.repeat(16);
/** (func (result v128) v128.const 0) */
const SIMD_PROBE = '0061736d01000000' + '0105016000017b' + '03020100' + '0a16011400' + V128_ZERO + '0b';
/** (func (result v128) (f32x4.relaxed_madd (v128.const 0) (v128.const 0) (v128.const 0))) */
const RELAXED_PROBE = '0061736d01000000' + '0105016000017b' + '03020100' + '0a3d013b00' + V128_ZERO.repeat(3) + 'fd8502' + '0b';

/** Whether this engine validates WebAssembly SIMD128 (required by the CPU backend). */
export function simdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(hexBytes(SIMD_PROBE));
}

/** Whether this engine validates relaxed SIMD (Chrome 114+, Node 22+; Node 20 behind a flag). */
export function relaxedSimdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(hexBytes(RELAXED_PROBE));
}

export class CpuBackendUnavailableError extends Error {
  override readonly name = 'CpuBackendUnavailableError';
}

/** The module's exports (see assembly/kernels.ts for each kernel's contract). */
interface KernelExports {
  heapBase(): number;
  isRelaxed(): number;
  detectUnsignedDot(): number;
  relaxedSelfTest(scratch: number): number;
  rowBytes(type: number, k: number): number;
  dequantize(type: number, src: number, dst: number, n: number): void;
  matmul(type: number, w: number, k: number, x: number, xStride: number, y: number, yStride: number, tokens: number, bias: number, rowStart: number, rowEnd: number, scratch: number): void;
  quantizeQ8A(x: number, xStride: number, dst: number, k: number, rowStart: number, rowEnd: number): void;
  matmulQ8A(type: number, w: number, k: number, xq: number, y: number, yStride: number, tokens: number, bias: number, rowStart: number, rowEnd: number, scratch: number): void;
  quantizeQ8K(x: number, xStride: number, dst: number, k: number, rowStart: number, rowEnd: number): void;
  matmulQ8K(type: number, w: number, k: number, xq: number, y: number, yStride: number, tokens: number, bias: number, rowStart: number, rowEnd: number, scratch: number): void;
  norm(layer: number, x: number, xStride: number, y: number, yStride: number, n: number, eps: number, weight: number, bias: number, rowStart: number, rowEnd: number): void;
  rope(x: number, tokenStride: number, headStride: number, heads: number, nRot: number, mode: number, positions: number, freqBase: number, freqScale: number, extFactor: number, attnFactor: number, corr0: number, corr1: number, freqFactors: number, tokStart: number, tokEnd: number): void;
  attention(q: number, qStride: number, k: number, v: number, out: number, outStride: number, positions: number, heads: number, kvHeads: number, headDim: number, kvLength: number, scale: number, softcap: number, window: number, causal: number, bias: number, bucketIds: number, bucketOffset: number, scratch: number, uStart: number, uEnd: number): void;
  softmax(x: number, xStride: number, y: number, yStride: number, n: number, scale: number, rowStart: number, rowEnd: number): void;
  glu(act: number, gate: number, gateStride: number, up: number, upStride: number, out: number, outStride: number, n: number, rowStart: number, rowEnd: number): void;
  elementwise(op: number, a: number, aStride: number, b: number, bStride: number, out: number, outStride: number, n: number, s: number, rowStart: number, rowEnd: number): void;
  embed(type: number, table: number, k: number, rows: number, ids: number, out: number, outStride: number, scale: number, tokStart: number, tokEnd: number): void;
  argmax(x: number, xStride: number, n: number, out: number, rowStart: number, rowEnd: number): void;
  ssmConv(x: number, xStride: number, out: number, outStride: number, tokens: number, kernel: number, channels: number, weight: number, bias: number, silu: number, state: number, chStart: number, chEnd: number): void;
  ssmScan(
    x: number, xStride: number, dt: number, dtStride: number, B: number, bStride: number, C: number, cStride: number, y: number, yStride: number,
    tokens: number, headDim: number, stateSize: number, headsPerGroup: number, A: number, D: number, dtBias: number, state: number, hStart: number, hEnd: number,
  ): void;
  readBandwidth(p: number, n: number): number;
  packQ4_0x4(w: number, rows: number, k: number, scratch: number): void;
  packQ5_0x4(w: number, rows: number, k: number, scratch: number): void;
  packQ8_0x4(w: number, rows: number, k: number, scratch: number): void;
  packQ4_Kx4(w: number, rows: number, k: number, scratch: number): void;
  packQ6_Kx4(w: number, rows: number, k: number, scratch: number): void;
  matmulInterleaved(type: number, w: number, k: number, xq: number, y: number, yStride: number, tokens: number, bias: number, rowStart: number, rowEnd: number, scratch: number): void;
}

/** An f32 operand: row r starts at float `offset + r * stride` from byte pointer `ptr`. */
export interface F32Rows {
  ptr: number;
  stride: number;
  offset?: number;
}

export interface CpuKernelsOptions {
  /** 'auto' (default): relaxed SIMD where this engine has it. */
  relaxed?: boolean | 'auto';
  /** Initial memory in bytes (grown on demand by `alloc`). */
  initialBytes?: number;
  /**
   * Threads, the calling one included (default 1). Above 1, and where `threadingSupport()` allows,
   * the memory is shared and `threads - 1` workers start; otherwise one thread, and
   * `threadingFallback` says why.
   */
  threads?: number;
  /**
   * The shared memory's maximum in bytes (default and cap 4 GiB, wasm32's limit): a shared memory
   * must declare one up front, and `alloc` fails past it. Unshared memory ignores it.
   */
  maximumBytes?: number;
}

const at = (v: F32Rows): number => v.ptr + 4 * (v.offset ?? 0);

/** A shard beyond the first: its memory's initial size (made up front) and, when shared, its declared maximum. */
export interface ShardSize {
  initialBytes: number;
  maximumBytes: number;
}

/**
 * This engine could not make or grow a WebAssembly memory the backend needs (the model's shards are
 * made before its download, so this comes first). Usually the device or the browser is out of
 * memory or address space: a smaller model or quantization, or closing tabs, helps.
 */
export class CpuMemoryError extends HearthError {
  override name = 'CpuMemoryError';
}

/**
 * The thread pool and its restart state, shared by the shards of one backend: one pool serves every
 * shard (its workers hold an instance per shard's memory, kernel index = shard * kernels + kernel).
 */
class PoolState {
  pool: ThreadPool | undefined;
  /** How the pool was started, to start it again after a worker died; undefined without one. */
  options: PoolOptions | undefined;
  /** Two control blocks: a restarted pool takes the other, never one the dead pool's threads may still read. */
  controls: [number, number] = [0, 0];
  restarting: Promise<void> | undefined;
  restarts = 0;
  fallback: string | undefined;

  /**
   * A worker died: ops run on the calling thread until a new pool (same size, the other control
   * block) is up. If it cannot start, the kernels stay single-threaded and `fallback` says why.
   */
  restart(): void {
    this.pool = undefined;
    const old = this.options;
    if (!old || this.restarting) return;
    const control = old.control === this.controls[0] ? this.controls[1] : this.controls[0];
    const next = { ...old, control };
    this.restarting = ThreadPool.start(next).then(
      (pool) => {
        this.restarting = undefined;
        if (this.options !== old) return pool.destroy(); // destroyed meanwhile
        this.pool = pool;
        this.options = next;
        this.restarts++;
      },
      (e: unknown) => {
        this.restarting = undefined;
        if (this.options !== old) return;
        this.options = undefined;
        this.fallback = `a worker thread died and the pool did not restart (${e instanceof Error ? e.message : String(e)})`;
      },
    );
  }
}

export class CpuKernels {
  readonly memory: WebAssembly.Memory;
  readonly relaxed: boolean;
  private readonly k: KernelExports;
  private readonly fns: Array<(...args: number[]) => void>;
  private top: number;
  /** This shard's first kernel index in the pool (shard * KERNEL_NAMES.length). */
  private readonly kernelBase: number;

  private constructor(
    instance: WebAssembly.Instance,
    private readonly module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    relaxed: boolean,
    private readonly ps: PoolState = new PoolState(),
    /** Which memory of the backend this is (0: the one that holds activations and the pool's control block). */
    readonly shard = 0,
  ) {
    this.k = instance.exports as unknown as KernelExports;
    this.fns = KERNEL_NAMES.map((n) => (instance.exports as Record<string, (...args: number[]) => void>)[n]!);
    this.memory = memory;
    this.relaxed = relaxed;
    this.kernelBase = shard * KERNEL_NAMES.length;
    this.top = align(this.k.heapBase(), 64);
  }

  /**
   * Whether relaxed SIMD's i32 dot is exact on unsigned bytes here (AVX-VNNI's vpdpbusd; the
   * kernels' known-answer check): the kernels then take their unsigned-byte forms, and IQ4_NL
   * matrices can be stored as IQ4_NLx4.
   */
  get unsignedDot(): boolean {
    return this.relaxed && this.k.detectUnsignedDot() === 1;
  }

  static async create(options: CpuKernelsOptions = {}): Promise<CpuKernels> {
    return (await CpuKernels.createShards(options))[0]!;
  }

  /**
   * The kernels over `1 + more.length` memories ("shards", each up to wasm32's 4 GiB): the first as
   * `create` makes it, then one per `more` entry, made now at its initial size (so a device that
   * cannot hold them says so before any download: CpuMemoryError). One thread pool serves them all.
   */
  static async createShards(options: CpuKernelsOptions = {}, more: readonly ShardSize[] = []): Promise<CpuKernels[]> {
    if (!simdSupported()) throw new CpuBackendUnavailableError('This browser has no WebAssembly SIMD; update it to run models on the CPU.');
    const want = options.relaxed ?? 'auto';
    const relaxed = want === 'auto' ? relaxedSimdSupported() : want;
    if (relaxed && !relaxedSimdSupported()) throw new CpuBackendUnavailableError('relaxed SIMD was requested but this engine does not validate it');
    const threads = Math.max(1, Math.floor(options.threads ?? 1));
    let fallback: string | undefined;
    let shared = false;
    if (threads > 1) {
      const support = threadingSupport();
      shared = support.available;
      fallback = support.reason;
    }
    const count = 1 + more.length;
    const makeMemory = (shard: number, initialBytes: number, maximumBytes: number): WebAssembly.Memory => {
      const pages = Math.max(2, Math.ceil(initialBytes / WASM_PAGE));
      // Unshared memory may grow to wasm32's 4 GiB. A shared one reserves its maximum up front in
      // some engines (32-bit ones in particular), so the caller sizes it from the model plan.
      const maxPages = shared ? Math.max(pages, Math.min(65536, Math.ceil(maximumBytes / WASM_PAGE))) : 65536;
      try {
        return new WebAssembly.Memory({ initial: pages, maximum: maxPages, shared });
      } catch (e) {
        throw new CpuMemoryError(
          `the CPU backend could not allocate WebAssembly memory ${shard + 1} of ${count} (${pages * WASM_PAGE} bytes): ${e instanceof Error ? e.message : String(e)}`,
          { shard, shards: count, bytes: pages * WASM_PAGE },
        );
      }
    };
    const memory = makeMemory(0, options.initialBytes ?? 1 << 20, options.maximumBytes ?? WASM32_MAX_BYTES);
    const ps = new PoolState();
    let chosen = new CpuKernels(...(await instantiate(shared ? SIMD_SHARED_WASM_BASE64 : SIMD_WASM_BASE64, memory)), memory, false, ps);
    if (relaxed) {
      const fast = new CpuKernels(...(await instantiate(shared ? RELAXED_SHARED_WASM_BASE64 : RELAXED_WASM_BASE64, memory)), memory, true, ps);
      if (fast.agreesWith(chosen)) chosen = fast;
      else if (want === true) throw new CpuBackendUnavailableError('relaxed SIMD validates but computes wrong results in this engine');
    }
    const all = [chosen];
    for (const [i, size] of more.entries()) {
      const m = makeMemory(i + 1, size.initialBytes, size.maximumBytes);
      all.push(new CpuKernels(await instantiateModule(chosen.module, m), chosen.module, m, chosen.relaxed, ps, i + 1));
    }
    if (shared) {
      ps.controls = [chosen.alloc(CONTROL_BYTES), chosen.alloc(CONTROL_BYTES)];
      const poolOptions: PoolOptions = {
        module: chosen.module, memory, exports: chosen.k as unknown as Record<string, unknown>, control: ps.controls[0], threads, kernels: KERNEL_NAMES,
        shards: all.slice(1).map((s) => ({ memory: s.memory, exports: s.k as unknown as Record<string, unknown> })),
      };
      try {
        ps.pool = await ThreadPool.start(poolOptions);
        ps.options = poolOptions;
      } catch (e) {
        fallback = `the worker threads did not start (${e instanceof Error ? e.message : String(e)})`;
      }
    }
    ps.fallback = fallback;
    return all;
  }

  /**
   * Threads that run each op (1: no pool). While a pool is being restarted after a worker died, ops
   * run here alone but this still says the pool's size: per-thread scratch is sized by it.
   */
  get threads(): number {
    return this.ps.pool?.threads ?? this.ps.options?.threads ?? 1;
  }

  /** Why `threads` is 1 although more were asked for (no cross-origin isolation, ...). */
  get threadingFallback(): string | undefined {
    return this.ps.fallback;
  }

  /** Pools started after a worker died (tests and diagnostics). */
  get poolRestarts(): number {
    return this.ps.restarts;
  }

  /** Resolves when no pool restart is under way (tests; the next op needs no waiting). */
  get poolReady(): Promise<void> {
    return this.ps.restarting ?? Promise.resolve();
  }

  /** Chunks of ops the pool's workers ran (0 without a pool): tests check they take part. */
  get workerChunks(): number {
    return this.ps.pool?.workerChunks ?? 0;
  }

  /** Stops the pool's workers (every shard's: they share it); the kernels keep working on the calling thread. */
  destroy(): void {
    this.ps.pool?.destroy();
    this.ps.pool = undefined;
    this.ps.options = undefined;
  }

  /**
   * Calls kernel `name` on the range in `args[range]`, `args[range + 1]`: split across the pool
   * when there is one and the range has two units or more, else right here. `scratch`: the index of
   * a per-thread scratch pointer argument (thread i gets it + i * scratchStride); a kernel with
   * scratch but no stride runs on this thread only.
   */
  private exec(name: KernelName, args: number[], range: number, grain: number, scratch = -1, scratchStride = 0): void {
    const start = args[range]!;
    const units = args[range + 1]! - start;
    const pool = this.ps.pool;
    if (pool && units >= 2 && (scratch < 0 || scratchStride > 0)) {
      try {
        pool.run(this.kernelBase + K[name], args, range, start, units, grain, scratch, scratchStride);
      } catch (e) {
        if (!(e instanceof CpuWorkerLostError)) throw e;
        this.ps.restart();
        if (e.duringOp) throw e;
        this.fns[K[name]]!(...args);
      }
    } else this.fns[K[name]]!(...args);
  }

  /**
   * Validating a relaxed-SIMD module is not enough: Node 20's flag-gated relaxed SIMD (V8 11.3)
   * returns wrong i8 x i7 dot sums in some register allocations, Chromium 156 is right. So before
   * the relaxed build is used, its module-level self-test and every integer-dot kernel run on
   * small fixed data must agree with the plain build (same memory, so the same bytes).
   */
  private agreesWith(plain: CpuKernels): boolean {
    const mark = this.mark();
    try {
      if (this.k.relaxedSelfTest(this.alloc(64)) !== 1) return false;
      const k = 512;
      const rows = 4;
      let seed = 12345;
      const rand = (): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed >>> 8;
      };
      // One token (the decode dots) and four (the prefill tiles, packed where the type has it).
      const tokens = 4;
      const x = this.allocF32(k * tokens);
      const xv = this.f32(x, k * tokens);
      for (let i = 0; i < k * tokens; i++) xv[i] = ((rand() % 2001) - 1000) / 250;
      const xq = this.alloc(this.q8aBytes(k, tokens));
      plain.quantizeQ8A({ ptr: x, stride: k }, xq, k, 0, tokens);
      const xk = this.alloc(this.q8kBytes(k, tokens));
      plain.quantizeQ8K({ ptr: x, stride: k }, xk, k, 0, tokens);
      const packBytes = Math.max(packedPrefillBytes(GgmlType.Q8_0, k), packedPrefillBytes(GgmlType.Q6_K, k));
      const pack = { scratch: this.alloc(packBytes), stride: packBytes };
      const ya = this.allocF32(rows * tokens);
      const yb = this.allocF32(rows * tokens);
      for (const type of new Set([...Q8A_WEIGHT_TYPES, ...Q8K_WEIGHT_TYPES])) {
        const bytes = this.rowBytes(type, k) * rows;
        const w = this.alloc(bytes);
        const wv = this.u8(w, bytes);
        for (let i = 0; i < bytes; i++) wv[i] = rand() & 0xff;
        // Finite f16 scales (0x2000..0x23ff: about 0.008) where each block keeps them.
        const { size, halves } = HALF_FIELDS[type]!;
        for (let b = 0; b < bytes; b += size) for (const o of halves) wv[b + o + 1] = 0x20 | (wv[b + o + 1]! & 3);
        for (const [q8k, n] of [[false, 1], [false, tokens], [true, 1], [true, tokens]] as const) {
          if (q8k ? !Q8K_WEIGHT_TYPES.includes(type) : !Q8A_WEIGHT_TYPES.includes(type)) continue;
          for (const [impl, y] of [[this, ya], [plain, yb]] as const) {
            const args = { type, w, k, y: { ptr: y, stride: rows }, tokens: n, rowStart: 0, rowEnd: rows };
            if (q8k) impl.matmulQ8K({ ...args, xq: xk, pack });
            else impl.matmulQ8A({ ...args, xq, pack });
          }
          const a = this.f32(ya, rows * n);
          const b = this.f32(yb, rows * n);
          for (let r = 0; r < rows * n; r++) {
            // Equal integer dots; relaxed_madd may fuse, so allow f32 rounding differences only.
            if (!(Math.abs(a[r]! - b[r]!) <= 1e-4 * (1 + Math.abs(b[r]!)))) return false;
          }
        }
      }
      return true;
    } finally {
      this.release(mark);
    }
  }

  // ---- memory -------------------------------------------------------------------------------

  /** Reserves `bytes` (aligned to 64, a cache line) and returns the byte pointer; grows memory. */
  alloc(bytes: number): number {
    const ptr = align(this.top, 64);
    const end = ptr + bytes;
    if (end > this.memory.buffer.byteLength) {
      const need = Math.ceil((end - this.memory.buffer.byteLength) / WASM_PAGE);
      try {
        this.memory.grow(need);
      } catch (e) {
        throw new RangeError(`CPU backend: cannot grow WebAssembly memory to ${end} bytes (${String(e)})`);
      }
    }
    this.top = end;
    return ptr;
  }

  allocF32(floats: number): number {
    return this.alloc(4 * floats);
  }

  /** The allocator's position, to `release` back to (stack-like scratch). */
  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }

  /** Views are only valid until the next `alloc` (growth replaces the buffer). */
  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  u32(ptr: number, length: number): Uint32Array {
    return new Uint32Array(this.memory.buffer, ptr, length);
  }

  u8(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, length);
  }

  /** Copies bytes (any typed array) to `ptr`. */
  write(ptr: number, data: ArrayBufferView): void {
    new Uint8Array(this.memory.buffer, ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Allocates and copies `data`; returns the pointer. */
  upload(data: ArrayBufferView): number {
    const ptr = this.alloc(data.byteLength);
    this.write(ptr, data);
    return ptr;
  }

  // ---- kernels ------------------------------------------------------------------------------

  /** Bytes of one row of `k` elements of `type` (0: unsupported type or k not whole blocks). */
  rowBytes(type: GgmlType, k: number): number {
    return this.k.rowBytes(type, k);
  }

  /** Dequantizes `n` elements (whole blocks) from the block at `src` to f32 at `dst`; bit-exact with llama.cpp. */
  dequantize(type: GgmlType, src: number, dst: number, n: number): void {
    checkType(type);
    this.k.dequantize(type, src, dst, n);
  }

  /**
   * y[t][r] = bias[r] + sum_i w[r][i] x[t][i], rows [rowStart, rowEnd) of the GGUF weight at `w`
   * (rows of k elements of `type`), f32 activations and accumulation. `scratch`: MATMUL_SCRATCH_FLOATS
   * floats, private to the caller (one per thread).
   */
  matmul(a: {
    type: GgmlType; w: number; k: number; x: F32Rows; y: F32Rows; tokens: number; bias?: number;
    rowStart: number; rowEnd: number; scratch: number; scratchStride?: number;
  }): void {
    checkType(a.type);
    this.exec('matmul', [a.type, a.w, a.k, at(a.x), a.x.stride, at(a.y), a.y.stride, a.tokens, a.bias ?? 0, a.rowStart, a.rowEnd, a.scratch], 9, ROW_GRAIN, 11, a.scratchStride);
  }

  /** Bytes of `rows` rows of k activations in Q8A (k % 32 == 0). */
  q8aBytes(k: number, rows: number): number {
    return (k / 32) * Q8A_BLOCK_BYTES * rows;
  }

  /** Quantizes activation rows [rowStart, rowEnd) to Q8A at `dst` (row r at dst + r * q8aBytes(k, 1)). */
  quantizeQ8A(x: F32Rows, dst: number, k: number, rowStart: number, rowEnd: number): void {
    if (k % 32 !== 0) throw new RangeError(`Q8A needs k % 32 == 0, got ${k}`);
    this.exec('quantizeQ8A', [at(x), x.stride, dst, k, rowStart, rowEnd], 4, 1);
  }

  /**
   * `matmul` with integer dot products on Q8A activations (`quantizeQ8A`), for Q8A_WEIGHT_TYPES.
   * `pack`: per-thread scratch (thread i at scratch + i * stride) that lets the relaxed build's
   * prefill of Q8_0 / Q4_0 / Q5_0 / IQ4_NL run packed (`packedPrefillBytes(type, k)` must fit the
   * stride; otherwise, and without it, the unpacked path runs: the same results bitwise, but for
   * IQ4_NL, whose one-token dot rounds its sums in another order).
   */
  matmulQ8A(a: { type: GgmlType; w: number; k: number; xq: number; y: F32Rows; tokens: number; bias?: number; rowStart: number; rowEnd: number; pack?: PackScratch }): void {
    if (!Q8A_WEIGHT_TYPES.includes(a.type)) throw new RangeError(`matmulQ8A does not support ${GgmlType[a.type]}`);
    this.matmulPacked('matmulQ8A', a);
  }

  /** The scratch argument a packed-prefill matmul gets: 0 (unpacked) unless this build packs the type and it fits. */
  private matmulPacked(name: 'matmulQ8A' | 'matmulQ8K', a: { type: GgmlType; w: number; k: number; xq: number; y: F32Rows; tokens: number; bias?: number; rowStart: number; rowEnd: number; pack?: PackScratch }): void {
    const need = packedPrefillBytes(a.type, a.k);
    const pack = this.relaxed && a.pack && need > 0 && need <= a.pack.stride ? a.pack : undefined;
    this.exec(name, [a.type, a.w, a.k, a.xq, at(a.y), a.y.stride, a.tokens, a.bias ?? 0, a.rowStart, a.rowEnd, pack?.scratch ?? 0], 8, ROW_GRAIN, pack ? 10 : -1, pack?.stride ?? 0);
  }

  /** Bytes of `rows` rows of k activations in Q8K (k % 256 == 0). */
  q8kBytes(k: number, rows: number): number {
    return (k / 256) * Q8K_BLOCK_BYTES * rows;
  }

  /**
   * Quantizes activation rows [rowStart, rowEnd) to Q8K at `dst` (row r at dst + r * q8kBytes(k, 1)):
   * one scale per 256 values, as llama.cpp's Q8_K.
   */
  quantizeQ8K(x: F32Rows, dst: number, k: number, rowStart: number, rowEnd: number): void {
    if (k % 256 !== 0) throw new RangeError(`Q8K needs k % 256 == 0, got ${k}`);
    this.exec('quantizeQ8K', [at(x), x.stride, dst, k, rowStart, rowEnd], 4, 1);
  }

  /**
   * Rewrites a Q4_0, Q5_0, Q8_0 or IQ4_NL matrix (rows % 4 == 0, k % 32 == 0) in place as Q4_0x4 /
   * Q5_0x4 / Q8_0x4 / IQ4_NLx4, four rows interleaved in the same bytes: the relaxed build's decode
   * layouts (assembly/kernels.ts; IQ4_NLx4 only where `unsignedDot`). Then only `matmulInterleaved`
   * and `embed` with the layout's code read it. `scratch`: nibbleX4PackBytes(k) bytes for Q4_0 /
   * Q5_0 / IQ4_NL; for Q8_0 one group's bytes (136 a block of 32), less than packedPrefillBytes(Q8_0, k);
   * for Q4_K and Q6_K (k % 256 == 0) kX4PackBytes(type, k).
   */
  packInterleaved(type: InterleavedType, w: number, rows: number, k: number, scratch: number): void {
    const name = `${GgmlType[type]}x4`;
    if (!this.relaxed) throw new RangeError(`${name} needs the relaxed-SIMD build`);
    const block = isKX4Type(type) ? 256 : 32;
    if (rows % 4 !== 0 || k % block !== 0) throw new RangeError(`${name} needs rows % 4 == 0 and k % ${block} == 0, got ${rows} x ${k}`);
    if (type === GgmlType.IQ4_NL && !this.unsignedDot) throw new RangeError(`${name} needs the unsigned-byte dot (AVX-VNNI)`);
    // IQ4_NL's blocks have Q4_0's bytes (f16 scale, 16 nibble bytes): the same interleaving.
    if (type === GgmlType.Q4_0 || type === GgmlType.IQ4_NL) this.k.packQ4_0x4(w, rows, k, scratch);
    else if (type === GgmlType.Q4_K) this.k.packQ4_Kx4(w, rows, k, scratch);
    else if (type === GgmlType.Q6_K) this.k.packQ6_Kx4(w, rows, k, scratch);
    else if (type === GgmlType.Q5_0) this.k.packQ5_0x4(w, rows, k, scratch);
    else this.k.packQ8_0x4(w, rows, k, scratch);
  }

  /**
   * `matmulQ8A` of a Q4_0x4 / Q5_0x4 / Q8_0x4 / IQ4_NLx4 matrix (rows [rowStart, rowEnd), multiples
   * of 4) on Q8A activations; `matmulQ8K` of a Q4_Kx4 / Q6_Kx4 matrix on Q8K activations. `pack`
   * (packedPrefillBytes(type, k) per thread): groups of four tokens run as the packed prefill;
   * Q8_0x4 needs it (each decode token is split into it), the others run without.
   */
  matmulInterleaved(a: { type: InterleavedType; w: number; k: number; xq: number; y: F32Rows; tokens: number; bias?: number; rowStart: number; rowEnd: number; pack?: PackScratch }): void {
    const name = `matmulInterleaved (${GgmlType[a.type]}x4)`;
    if (!this.relaxed) throw new RangeError(`${name} needs the relaxed-SIMD build`);
    if (a.rowStart % 4 !== 0 || a.rowEnd % 4 !== 0) throw new RangeError(`${name} rows ${a.rowStart}..${a.rowEnd} are not whole groups of four`);
    const need = packedPrefillBytes(a.type, a.k);
    const pack = a.pack && need <= a.pack.stride ? a.pack : undefined;
    if (!pack && a.type === GgmlType.Q8_0) throw new RangeError(`${name} needs a packed scratch of ${need} bytes per thread`);
    this.exec('matmulInterleaved', [a.type, a.w, a.k, a.xq, at(a.y), a.y.stride, a.tokens, a.bias ?? 0, a.rowStart, a.rowEnd, pack?.scratch ?? 0], 8, ROW_GRAIN, pack ? 10 : -1, pack?.stride ?? 0);
  }

  /** `matmul` with integer dots on Q8K activations (`quantizeQ8K`), for Q8K_WEIGHT_TYPES; `pack` as for matmulQ8A. */
  matmulQ8K(a: { type: GgmlType; w: number; k: number; xq: number; y: F32Rows; tokens: number; bias?: number; rowStart: number; rowEnd: number; pack?: PackScratch }): void {
    if (!Q8K_WEIGHT_TYPES.includes(a.type)) throw new RangeError(`matmulQ8K does not support ${GgmlType[a.type]}`);
    this.matmulPacked('matmulQ8K', a);
  }

  /** RMSNorm or LayerNorm of n-wide rows; weight/bias are f32 pointers (0 = none); in place allowed. */
  norm(a: { kind: 'rms' | 'layer'; x: F32Rows; y: F32Rows; n: number; eps: number; weight?: number; bias?: number; rowStart: number; rowEnd: number }): void {
    this.exec('norm', [a.kind === 'layer' ? 1 : 0, at(a.x), a.x.stride, at(a.y), a.y.stride, a.n, a.eps, a.weight ?? 0, a.bias ?? 0, a.rowStart, a.rowEnd], 9, 1);
  }

  /**
   * RoPE in place, ggml semantics (see webgpu/kernels/README.md): x row t is a token, heads at
   * `headStride` floats within it. positions: u32 pointer. corr: YaRN's correction dims.
   */
  rope(a: {
    x: F32Rows; headStride: number; heads: number; nRot: number; mode: 'normal' | 'neox'; positions: number;
    freqBase: number; freqScale?: number; extFactor?: number; attnFactor?: number; corr?: [number, number];
    freqFactors?: number; tokStart: number; tokEnd: number;
  }): void {
    if (a.nRot % 2 !== 0) throw new RangeError(`nRot must be even, got ${a.nRot}`);
    const corr = a.corr ?? [0, 0];
    this.exec('rope', [at(a.x), a.x.stride, a.headStride, a.heads, a.nRot, a.mode === 'neox' ? 2 : 0, a.positions, a.freqBase, a.freqScale ?? 1, a.extFactor ?? 0, a.attnFactor ?? 1, corr[0], corr[1], a.freqFactors ?? 0, a.tokStart, a.tokEnd], 14, 1);
  }

  /**
   * Attention for (token, head) pairs u = t * heads + h in [uStart, uEnd) over f32 K/V caches laid
   * out as the WebGPU ones ([capacity][kvHeads][headDim]). scratch: ATTENTION_SCRATCH_FLOATS_PER_KEY *
   * kvLength floats per caller. Chunks of the pool hold whole pairs of units (heads sharing a KV
   * head run two at a time).
   * `causal: false`: every key below kvLength is visible. `bias`: T5's relative position bias, a
   * [buckets][heads] f32 table and u32 bucket ids indexed by keyPos - queryPos + offset (pointers).
   */
  attention(a: {
    q: F32Rows; kCache: number; vCache: number; out: F32Rows; positions: number; heads: number; kvHeads: number;
    headDim: number; kvLength: number; scale?: number; softcap?: number; window?: number; causal?: boolean;
    bias?: { table: number; bucketIds: number; offset: number } | undefined; scratch: number;
    scratchStride?: number; uStart: number; uEnd: number;
  }): void {
    if (a.heads % a.kvHeads !== 0) throw new RangeError(`heads ${a.heads} not a multiple of kvHeads ${a.kvHeads}`);
    const bias = a.bias ? [a.bias.table, a.bias.bucketIds, a.bias.offset] : [0, 0, 0];
    this.exec('attention', [at(a.q), a.q.stride, a.kCache, a.vCache, at(a.out), a.out.stride, a.positions, a.heads, a.kvHeads, a.headDim, a.kvLength, a.scale ?? 1 / Math.sqrt(a.headDim), a.softcap ?? 0, a.window ?? 0, a.causal === false ? 0 : 1, ...bias, a.scratch, a.uStart, a.uEnd], 19, 2, 18, a.scratchStride);
  }

  softmax(a: { x: F32Rows; y: F32Rows; n: number; scale?: number; rowStart: number; rowEnd: number }): void {
    this.exec('softmax', [at(a.x), a.x.stride, at(a.y), a.y.stride, a.n, a.scale ?? 1, a.rowStart, a.rowEnd], 6, 1);
  }

  /** SwiGLU (`silu`) or GeGLU (`gelu`, ggml's tanh approximation): act(gate) * up. */
  glu(a: { activation: 'silu' | 'gelu'; gate: F32Rows; up: F32Rows; out: F32Rows; n: number; rowStart: number; rowEnd: number }): void {
    this.exec('glu', [a.activation === 'silu' ? 0 : 1, at(a.gate), a.gate.stride, at(a.up), a.up.stride, at(a.out), a.out.stride, a.n, a.rowStart, a.rowEnd], 8, 1);
  }

  /**
   * (a + b) * s, (a * b) * s, a * s, softcap s * tanh(a / s), or ReLU max(a, 0); b with stride 0
   * broadcasts one row. In place allowed.
   */
  elementwise(a: { op: 'add' | 'mul' | 'scale' | 'softcap' | 'relu'; a: F32Rows; b?: F32Rows; out: F32Rows; n: number; scale?: number; rowStart: number; rowEnd: number }): void {
    const op = { add: 0, mul: 1, scale: 2, softcap: 3, relu: 4 }[a.op];
    if (op < 2 && !a.b) throw new RangeError(`${a.op} needs b`);
    const b = a.b ?? a.a;
    this.exec('elementwise', [op, at(a.a), a.a.stride, at(b), b.stride, at(a.out), a.out.stride, a.n, a.scale ?? 1, a.rowStart, a.rowEnd], 9, 1);
  }

  /** out row t = table row ids[t] dequantized, times scale; zeros for ids >= rows. ids: u32 pointer. */
  embed(a: { type: GgmlType | InterleavedLayout; table: number; k: number; rows: number; ids: number; out: F32Rows; scale?: number; tokStart: number; tokEnd: number }): void {
    if (!INTERLEAVED_LAYOUT_CODES.includes(a.type)) checkType(a.type as GgmlType);
    this.exec('embed', [a.type, a.table, a.k, a.rows, a.ids, at(a.out), a.out.stride, a.scale ?? 1, a.tokStart, a.tokEnd], 8, 1);
  }

  /** u32 index of each row's largest value (first on ties) at `out`. */
  argmax(a: { x: F32Rows; n: number; out: number; rowStart: number; rowEnd: number }): void {
    this.exec('argmax', [at(a.x), a.x.stride, a.n, a.out, a.rowStart, a.rowEnd], 4, 1);
  }

  /**
   * Causal depthwise convolution with a rolling state (ggml_ssm_conv + bias + optional SiLU) of
   * channels [chStart, chEnd) over `tokens` rows of x into out; state [kernel - 1][channels] f32 at
   * `state`, oldest column first, updated. weight [channels][kernel]; bias 0 = none.
   */
  ssmConv(a: { x: F32Rows; out: F32Rows; tokens: number; kernel: number; channels: number; weight: number; bias?: number; silu: boolean; state: number; chStart: number; chEnd: number }): void {
    this.exec('ssmConv', [at(a.x), a.x.stride, at(a.out), a.out.stride, a.tokens, a.kernel, a.channels, a.weight, a.bias ?? 0, a.silu ? 1 : 0, a.state, a.chStart, a.chEnd], 11, 1);
  }

  /**
   * Mamba2's selective scan with the D skip (ggml_ssm_scan, scalar A per head) of heads
   * [hStart, hEnd) over `tokens` tokens: state [heads][headDim][stateSize] f32 at `state`, updated;
   * A, D, dtBias: f32 [heads]; head h reads group h / headsPerGroup of B and C.
   */
  ssmScan(a: {
    x: F32Rows; dt: F32Rows; B: F32Rows; C: F32Rows; y: F32Rows; tokens: number; headDim: number; stateSize: number; headsPerGroup: number;
    A: number; D: number; dtBias: number; state: number; hStart: number; hEnd: number;
  }): void {
    this.exec('ssmScan', [
      at(a.x), a.x.stride, at(a.dt), a.dt.stride, at(a.B), a.B.stride, at(a.C), a.C.stride, at(a.y), a.y.stride,
      a.tokens, a.headDim, a.stateSize, a.headsPerGroup, a.A, a.D, a.dtBias, a.state, a.hStart, a.hEnd,
    ], 18, 1);
  }

  /** Reads `bytes` (a multiple of 64) at `ptr`: the benchmark's memory-read baseline. */
  readBandwidth(ptr: number, bytes: number): number {
    return this.k.readBandwidth(ptr, bytes);
  }
}

/** Compiles and instantiates one build; the compiled module is kept for the pool's workers. */
async function instantiate(base64: string, memory: WebAssembly.Memory): Promise<[WebAssembly.Instance, WebAssembly.Module]> {
  const module = await WebAssembly.compile(decodeBase64(base64));
  return [await instantiateModule(module, memory), module];
}

function instantiateModule(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<WebAssembly.Instance> {
  return WebAssembly.instantiate(module, {
    env: {
      memory,
      abort: () => {
        throw new Error('CPU kernel abort');
      },
    },
  });
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function checkType(type: GgmlType): void {
  if (!CPU_WEIGHT_TYPES.includes(type)) throw new RangeError(`CPU kernels do not support ${GgmlType[type] ?? type}`);
}
