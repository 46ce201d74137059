/**
 * The CPU backend: the op interface of ../ops.ts on the WebAssembly SIMD kernels (kernels.ts), on
 * a pool of worker threads where the platform allows (threads.ts; one thread otherwise). Every op
 * runs when it is called (there is no command buffer to record into), so `begin`/`submit` do
 * nothing and `read` returns at once.
 *
 * All handles are byte ranges of the one WebAssembly memory. Matmuls take the integer-dot path on
 * 8-bit activations, as llama.cpp's CPU backend does: `matmulQ8K` (one activation scale per 256)
 * for the K-quants at every batch size (Q3_K and Q2_K prefill there with relaxed SIMD only),
 * `matmulQ8A` (one per 32) for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (four tokens per pass in prefill);
 * IQ4_XS decodes on `matmulQ8K` and IQ4_NL on `matmulQ8A` too (one-token dots only); the f32 path
 * (each chunk of a weight row dequantized once for up to four tokens) otherwise.
 *
 * Every type of the GGUF quants registry has a kernel and keeps its file bytes (IQ4_NL and IQ4_XS
 * prefill, and Q3_K / Q2_K on plain SIMD, take the f32 path: each chunk of a row dequantized in L1).
 *
 * Threads: `create({ threads: n })` with n > 1 makes the memory shared and starts n - 1 workers
 * (threads.ts); every kernel call is then split by rows across them and the calling thread, with
 * results bitwise identical to one thread. Where threads cannot start (no cross-origin isolation,
 * ...) it runs on one thread and `threadingFallback` says why; `CpuBackend.threadingSupport()` says
 * so before creating one.
 */
import { GgmlType, byteSizeOf, ggmlTypeName } from '../../gguf/ggml-types.ts';
import type {
  Activation,
  AttentionOp,
  Backend,
  BackendLimits,
  ConvOp,
  DevicePenalties,
  ByteReader,
  IdBuffer,
  KvStorage,
  MoeFfnOp,
  Region,
  RopeOp,
  Rows,
  SsmScanOp,
  StepPlan,
  Vector,
  Weight,
} from '../ops.ts';
import { ATTENTION_SCRATCH_FLOATS_PER_KEY, CPU_WEIGHT_TYPES, CpuKernels, CpuMemoryError, MATMUL_SCRATCH_FLOATS, PACKED_PREFILL_SCRATCH_BYTES, packedPrefillBytes, type InterleavedLayout, type InterleavedType, interleavedLayout, isKX4Type, kX4PackBytes, nibbleX4PackBytes, Q8A_WEIGHT_TYPES, type PackScratch, Q8K_WEIGHT_TYPES, WASM32_MAX_BYTES, type CpuKernelsOptions, type F32Rows } from './kernels.ts';
import { CPU_MAX_SHARDS, cpuLayout, planShards, SHARD_OVERHEAD_BYTES, shardBuffers, type CpuLayout } from './shards.ts';
import { threadingSupport, type ThreadingSupport } from './threads.ts';
import { moeFfnOnHost, type MoeHost } from './moe.ts';
import { copyOnHost, ssmConvOnHost, ssmScanOnHost, zeroOnHost, type RecurrentHost } from './recurrent.ts';
import { yarnCorrDims } from '../rope-scaling.ts';
import { addNormInSteps, gluMatmulInSteps, ropeKvWriteInSteps } from '../fused-steps.ts';
import { applyPenalties, historyCounts } from '../../sampling/penalties.ts';
import { sampleRow } from '../../sampling/chain.ts';
import { applyTokenMask, type AllowedTokens } from '../../sampling/mask.ts';
import type { SamplingParams, TokenPenalties } from '../../sampling/params.ts';

export type { ThreadingSupport } from './threads.ts';

/**
 * Matmuls of at most this many tokens (decode) always take the integer dots; longer ones only where
 * `matmulActivations` says they beat the f32 path.
 */
export const Q8A_MAX_TOKENS = 3;

const PLAIN_PREFILL_ON_F32: readonly GgmlType[] = [GgmlType.Q4_1, GgmlType.Q5_1, GgmlType.Q3_K, GgmlType.Q2_K, GgmlType.IQ4_NL, GgmlType.IQ4_XS];

/**
 * The activations a matmul runs on when the backend quantizes them: 'q8k' (one scale per 256,
 * `matmulQ8K`), 'q8a' (one per 32, `matmulQ8A`), 'f32' (the f32 path: each chunk of a weight row
 * dequantized). Decode (at most Q8A_MAX_TOKENS tokens) always takes the integer dots. Prefill does
 * where they have four-token kernels that beat the f32 path: not Q4_1 / Q5_1 on plain SIMD (their
 * tiled kernel, the min term and Q5_1's fifth bits per token group, is slower than dequantizing),
 * nor Q3_K / Q2_K / IQ4_NL / IQ4_XS on plain SIMD (one-token dots only; the relaxed build packs
 * them). Interleaved matrices (`matmulInterleaved`) always take Q8A (Q4_0x4, Q5_0x4, Q8_0x4,
 * IQ4_NLx4) or Q8K (Q4_Kx4, Q6_Kx4).
 */
export function matmulActivations(type: GgmlType, k: number, tokens: number, relaxed: boolean): 'q8k' | 'q8a' | 'f32' {
  const decode = tokens <= Q8A_MAX_TOKENS;
  if (!decode && !relaxed && PLAIN_PREFILL_ON_F32.includes(type)) return 'f32';
  if (k % 256 === 0 && Q8K_WEIGHT_TYPES.includes(type)) return 'q8k';
  if (k % 32 === 0 && Q8A_WEIGHT_TYPES.includes(type)) return 'q8a';
  return 'f32';
}

/**
 * Bytes the backend takes beside the model plan's total (loader.ts `planMemory`: weights + KV cache
 * + activations): module data, per-thread matmul and attention scratch (up to 64 threads at a
 * 32k context take 8 MiB), the quantized-activation scratch of a batch, 64-byte alignment per
 * tensor, the pool's control block.
 */
export const CPU_BACKEND_OVERHEAD_BYTES = 32 << 20;

/**
 * Bytes the CPU backend holds for a weight of this type and shape: its GGUF bytes (every type is
 * read as stored). Static, so a memory plan can be made before the backend (whose shared memory is
 * sized from that plan) exists.
 */
export function cpuWeightBytes(type: GgmlType, shape: readonly number[]): number {
  if (!CPU_WEIGHT_TYPES.includes(type)) throw new RangeError(`the CPU backend cannot read type ${ggmlTypeName(type)}`);
  return byteSizeOf(type, shape.reduce((a, b) => a * b, 1));
}

/** The types the CPU kernels read. Static, as `cpuWeightBytes`, for a plan made before the backend exists. */
export function cpuSupportsWeight(type: GgmlType): boolean {
  return CPU_WEIGHT_TYPES.includes(type);
}

/**
 * The most a model may take over `shards` wasm32 memories: their 4 GiB each less the backend's own
 * buffers (shard 0's and each other shard's staging). Whole matrices per shard leave some room
 * unused (shards.ts): a model near the limit may need one memory more, which `CpuBackend.create`
 * says before the download.
 */
export function cpuMaxModelBytes(shards: number): number {
  return shards * WASM32_MAX_BYTES - CPU_BACKEND_OVERHEAD_BYTES - (shards - 1) * SHARD_OVERHEAD_BYTES;
}

/**
 * What a CPU load is planned against before the backend exists: CPU_MAX_SHARDS wasm32 memories
 * less what the backend itself takes, the CPU's weight sizes and types. How many memories the
 * weights take, and whether this engine can make them, is `CpuBackend.createFor`'s (from the plan).
 */
export const CPU_PLAN_TARGET: {
  kind: 'cpu';
  limits: { maxBufferBytes: number; memoryBudgetBytes: number };
  supportsWeight(type: GgmlType): boolean;
  weightBytes(type: GgmlType, shape: readonly number[]): number;
} = {
  kind: 'cpu',
  limits: { maxBufferBytes: 2 ** 31, memoryBudgetBytes: cpuMaxModelBytes(CPU_MAX_SHARDS) },
  supportsWeight: cpuSupportsWeight,
  weightBytes: cpuWeightBytes,
};

/** A model planned on CPU_PLAN_TARGET (the loader's PlannedLoad has these): what sizes a backend for it. */
export interface CpuPlanned {
  plan: { totalBytes: number };
  file?: { tensors: ReadonlyArray<{ name: string; type: GgmlType; shape: readonly number[] }> } | undefined;
}

export interface CpuBackendOptions extends CpuKernelsOptions {
  /**
   * Bytes the model may take; default 4 GiB (the most a wasm32 memory can address). With threads
   * this also sizes the shared memory's declared maximum (this + CPU_BACKEND_OVERHEAD_BYTES, at most
   * 4 GiB): pass the model plan's `totalBytes` so an engine that reserves a shared memory's maximum
   * up front reserves no more than the model needs.
   */
  memoryBudgetBytes?: number;
  /** false: always the f32 matmul path (for parity checks). Default true. */
  quantizedActivations?: boolean;
  /**
   * The model as planned (shards.ts `cpuLayout`): with it the backend makes as many memories
   * ("shards") as the weights need, up front. Without it, one memory, as before.
   */
  layout?: CpuLayout;
  /** The most one memory holds (default and cap: wasm32's 4 GiB). Tests pass a few MiB to force shards. */
  shardBytes?: number;
  /** The most memories the backend may make (default CPU_MAX_SHARDS). */
  maxShards?: number;
}

/** One memory of the backend and the buffers its matmuls need there. */
interface Shard {
  kernels: CpuKernels;
  /** One matmul chunk per thread, MATMUL_SCRATCH_FLOATS apart. */
  matmulScratch: number;
  /** The relaxed build's packed-prefill scratch, PACKED_PREFILL_SCRATCH_BYTES per thread (none on plain SIMD). */
  pack: PackScratch | undefined;
  xq: { ptr: number; bytes: number };
  /** Shards beyond the first: where a matmul's input and output rows are copied (STAGING_BYTES). */
  staging: number;
  /** The most bytes of this memory weights may fill (its `mark()` stays below). */
  weightCap: number;
}

class CpuWeight implements Weight {
  constructor(
    readonly name: string,
    readonly type: GgmlType,
    readonly k: number,
    readonly rows: number,
    readonly bytes: number,
    readonly ptr: number,
    /** The memory it lives in (shards.ts); 0 is the one with the activations. */
    readonly shard = 0,
    /** Q4_0 / Q5_0 / Q8_0 / IQ4_NL / Q4_K / Q6_K stored as their x4 layouts (four rows interleaved, the relaxed build's decode layouts). */
    readonly interleaved = false,
  ) {}
}

/** The type code `embed` reads a table by: its ggml type, or its interleaved layout. */
function tableType(w: CpuWeight): GgmlType | InterleavedLayout {
  return w.interleaved ? interleavedLayout(w.type as InterleavedType) : w.type;
}

/** A Vector, Activation or IdBuffer: `length` 4-byte elements at `ptr`. */
class CpuBuffer implements Vector, Activation, IdBuffer {
  constructor(
    readonly name: string,
    readonly length: number,
    readonly ptr: number,
  ) {}
  get floats(): number {
    return this.length;
  }
}

class CpuKv implements KvStorage {
  constructor(
    readonly layers: number,
    readonly capacity: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly bytes: number,
    /** Per layer: [capacity][kvHeads][headDim] f32, as the WebGPU cache. */
    readonly k: number[],
    readonly v: number[],
  ) {}
}

export class CpuBackend implements Backend {
  readonly kind = 'cpu' as const;
  readonly relativeAttention = true;
  readonly limits: BackendLimits;
  /** Shard 0's declared maximum: binding for a shared memory (threads); an unshared one grows to wasm32's 4 GiB. */
  private readonly maximumBytes: number;
  private readonly quantized: boolean;
  /** The memories (shards.ts): shard 0 holds the activations, KV cache and vectors, and weights while they fit. */
  private readonly shards: Shard[];
  /** Attention scores: `floats` per thread, one after another. */
  private attnScratch = { ptr: 0, floats: 0 };
  /** Bytes of each other shard's staging area (shards.ts `shardBuffers`). */
  private readonly stagingBytes: number;
  /** Shard 0's kernels (activations, KV cache, every op that is not on a weight). */
  readonly kernels: CpuKernels;

  private constructor(kernels: CpuKernels[], options: CpuBackendOptions, weightCaps: number[] | undefined, maximumBytes: number) {
    this.kernels = kernels[0]!;
    const budget = options.memoryBudgetBytes ?? (kernels.length > 1 ? kernels.length * WASM32_MAX_BYTES - CPU_BACKEND_OVERHEAD_BYTES : WASM32_MAX_BYTES);
    this.limits = { maxBufferBytes: 2 ** 31, memoryBudgetBytes: budget };
    this.maximumBytes = maximumBytes;
    this.quantized = options.quantizedActivations ?? true;
    this.stagingBytes = shardBuffers(Math.min(WASM32_MAX_BYTES, options.shardBytes ?? WASM32_MAX_BYTES), CPU_BACKEND_OVERHEAD_BYTES).staging;
    this.shards = kernels.map((k, i) => ({
      kernels: k,
      matmulScratch: k.allocF32(MATMUL_SCRATCH_FLOATS * k.threads),
      pack: k.relaxed ? { scratch: k.alloc(PACKED_PREFILL_SCRATCH_BYTES * k.threads), stride: PACKED_PREFILL_SCRATCH_BYTES } : undefined,
      xq: { ptr: 0, bytes: 0 },
      staging: i === 0 ? 0 : k.alloc(this.stagingBytes),
      weightCap: weightCaps?.[i] !== undefined ? k.mark() + weightCaps[i]! : Number.POSITIVE_INFINITY,
    }));
  }

  /**
   * `threads` (default 1): threads per op, this one included; see CpuKernelsOptions. In a browser
   * the pool needs a cross-origin isolated page; check `threadingSupport()` first, or read
   * `threads` / `threadingFallback` after.
   *
   * `layout` (the planned model): as many memories as its weights need are made now, at their
   * expected sizes, so a model this browser cannot hold fails here (CpuMemoryError), before its
   * download; more than `maxShards` would be needed: CpuMemoryError too.
   */
  static async create(options: CpuBackendOptions = {}): Promise<CpuBackend> {
    const shardBytes = Math.min(WASM32_MAX_BYTES, options.shardBytes ?? WASM32_MAX_BYTES);
    const maxShards = options.maxShards ?? CPU_MAX_SHARDS;
    const plan = options.layout && planShards(options.layout, shardBytes, CPU_BACKEND_OVERHEAD_BYTES, maxShards);
    if (options.layout && !plan) {
      const weights = options.layout.matrixBytes.reduce((a, b) => a + b, 0);
      throw new CpuMemoryError(
        `the model's weights (${weights} bytes, largest matrix ${options.layout.largestBytes}) need more than the ${maxShards} WebAssembly memories of ${shardBytes} bytes the CPU backend may make`,
        { weightBytes: weights, largestBytes: options.layout.largestBytes, residentBytes: options.layout.residentBytes, shardBytes, maxShards },
      );
    }
    const sharded = plan !== undefined && plan.count > 1;
    // One memory: declared as small as the model needs (32-bit engines reserve a shared maximum).
    const maximumBytes = sharded ? shardBytes : Math.min(shardBytes, (options.memoryBudgetBytes ?? WASM32_MAX_BYTES) + CPU_BACKEND_OVERHEAD_BYTES);
    const more = sharded ? plan.bytes.slice(1).map((b) => ({ initialBytes: Math.min(shardBytes, b), maximumBytes: shardBytes })) : [];
    // Shard 0 holds the residents whatever the shard size (tests use tiny shards): its memory may exceed it.
    const first = sharded ? { maximumBytes: Math.min(WASM32_MAX_BYTES, Math.max(shardBytes, plan.bytes[0]!)), initialBytes: Math.min(WASM32_MAX_BYTES, plan.bytes[0]!), ...options } : { maximumBytes, ...options };
    const kernels = await CpuKernels.createShards(first, more);
    return new CpuBackend(kernels, options, plan?.weightCaps, maximumBytes);
  }

  /**
   * A backend sized for a planned model: its memory budget is the plan's total (a shared memory
   * declares no more than it needs), and, with the file's tensors, as many memories as its weights
   * need are made now (CpuMemoryError, before any weight is read, when they cannot be).
   */
  static async createFor(planned: CpuPlanned, options: Omit<CpuBackendOptions, 'layout' | 'memoryBudgetBytes'> = {}): Promise<CpuBackend> {
    const layout = planned.file && cpuLayout(planned.file.tensors, planned.plan.totalBytes, cpuWeightBytes);
    return CpuBackend.create({ ...options, memoryBudgetBytes: planned.plan.totalBytes, ...(layout ? { layout } : {}) });
  }

  /** Memories the weights are spread over (1: one wasm32 memory, as before shards). */
  get shardCount(): number {
    return this.shards.length;
  }

  /** Bytes of all the backend's memories as they are now (each grows as it fills). */
  get memoryBytes(): number {
    return this.shards.reduce((n, sh) => n + sh.kernels.memory.buffer.byteLength, 0);
  }

  /** Whether `create({ threads })` can start workers here, and if not, why (for a capability page). */
  static threadingSupport(): ThreadingSupport {
    return threadingSupport();
  }

  /** Threads each op runs on (1 when the pool is off or could not start). */
  get threads(): number {
    return this.kernels.threads;
  }

  /** Why `threads` is 1 although more were asked for; undefined otherwise. */
  get threadingFallback(): string | undefined {
    return this.kernels.threadingFallback;
  }

  supportsWeight(type: GgmlType): boolean {
    return cpuSupportsWeight(type);
  }

  /** Bytes `weight()` will hold for a tensor of this type and shape (GGUF order, k first), before the 64-byte alignment: its GGUF bytes. */
  weightBytes(type: GgmlType, shape: readonly number[]): number {
    return cpuWeightBytes(type, shape);
  }

  // ---- allocation

  async weight(info: { name: string; type: GgmlType; shape: readonly number[] }, read: ByteReader): Promise<Weight> {
    if (!this.supportsWeight(info.type)) throw new RangeError(`${info.name}: the CPU backend cannot read type ${info.type}`);
    const [k, ...rest] = info.shape;
    if (k === undefined) throw new RangeError(`${info.name}: empty shape`);
    const rows = rest.reduce((a, b) => a * b, 1);
    const rowBytes = this.kernels.rowBytes(info.type, k);
    if (rowBytes === 0) throw new RangeError(`${info.name}: k = ${k} is not a whole number of blocks`);
    const bytes = rowBytes * rows;
    const shard = this.place(info.name, bytes);
    const kernels = this.shards[shard]!.kernels;
    const ptr = kernels.alloc(bytes);
    const CHUNK = 16 << 20;
    for (let off = 0; off < bytes; off += CHUNK) {
      const part = await read(off, Math.min(CHUNK, bytes - off));
      if (part.length !== Math.min(CHUNK, bytes - off)) throw new RangeError(`${info.name}: short read at ${off}`);
      kernels.write(ptr + off, part);
    }
    if (this.interleavesRows(info.type, info.shape, k, rows)) {
      // Rewritten in place, same bytes: the relaxed build's Q5_0 decode is 2x faster, Q8_0's
      // 1.4x, Q4_0's up to 2x (on short rows), Q4_K's 1.25x and Q6_K's 1.5x four rows at a time.
      kernels.packInterleaved(info.type as InterleavedType, ptr, rows, k, this.shards[shard]!.pack!.scratch);
      return new CpuWeight(info.name, info.type, k, rows, bytes, ptr, shard, true);
    }
    return new CpuWeight(info.name, info.type, k, rows, bytes, ptr, shard);
  }

  /**
   * Whether a Q4_0 / Q5_0 / Q8_0 / IQ4_NL / Q4_K / Q6_K matrix is stored as Q4_0x4 / Q5_0x4 /
   * Q8_0x4 / IQ4_NLx4 / Q4_Kx4 / Q6_Kx4: relaxed SIMD (its packed scratch exists), 8-bit activations, a 2-D matrix
   * (expert stacks are viewed by rows) of whole four-row groups, rows whose packing fits the scratch.
   */
  private interleavesRows(type: GgmlType, shape: readonly number[], k: number, rows: number): boolean {
    if (!this.quantized || !this.kernels.relaxed || shape.length !== 2 || rows % 4 !== 0 || k % 32 !== 0) return false;
    if (type === GgmlType.Q4_0 || type === GgmlType.Q5_0) return nibbleX4PackBytes(k) <= PACKED_PREFILL_SCRATCH_BYTES;
    // IQ4_NLx4's decode needs the unsigned-byte dot (its levels + 128 are the unsigned operand).
    if (type === GgmlType.IQ4_NL) return this.kernels.unsignedDot && nibbleX4PackBytes(k) <= PACKED_PREFILL_SCRATCH_BYTES;
    // Q4_Kx4 / Q6_Kx4: 1.25x / 1.5x the one-row K-quant decodes (no hsum4I, no kmask).
    if (isKX4Type(type)) return k % 256 === 0 && kX4PackBytes(type, k) <= PACKED_PREFILL_SCRATCH_BYTES;
    // Q8_0x4's matmul needs the packed-prefill bytes, more than its pack's (272 vs 136 a block).
    return type === GgmlType.Q8_0 && packedPrefillBytes(GgmlType.Q8_0, k) <= PACKED_PREFILL_SCRATCH_BYTES;
  }

  /**
   * The shard a weight of `bytes` goes to: the first with room under its cap (first fit in load
   * order; shards.ts says why that always fits a planned model). One shard: always it.
   */
  private place(name: string, bytes: number): number {
    if (this.shards.length === 1) return 0;
    const s = this.shards.findIndex((sh) => Math.ceil(sh.kernels.mark() / 64) * 64 + bytes <= sh.weightCap);
    if (s < 0) {
      throw new CpuMemoryError(`${name}: no room for ${bytes} bytes in any of the CPU backend's ${this.shards.length} memories (the model is larger than planned)`, {
        tensor: name,
        bytes,
        shards: this.shards.length,
      });
    }
    return s;
  }

  /** Room left: shard 0's to its maximum, plus every other shard's to its weight cap. */
  memoryLeft(): number {
    const shared = typeof SharedArrayBuffer !== 'undefined' && this.kernels.memory.buffer instanceof SharedArrayBuffer;
    let left = (shared ? this.maximumBytes : WASM32_MAX_BYTES) - this.kernels.mark();
    for (const sh of this.shards.slice(1)) left += Math.max(0, sh.weightCap - sh.kernels.mark());
    return left;
  }

  /**
   * The allocator is a bump pointer into one WebAssembly memory (which never shrinks): the items
   * are freed only when they are the latest allocations, together, so the top moves back to the
   * first of them; otherwise nothing is freed (0) until the backend is destroyed.
   */
  free(items: ReadonlyArray<Weight | Activation>): number {
    const regions = items
      .map((item) => (item instanceof CpuWeight ? { ptr: item.ptr, bytes: item.bytes, shard: item.shard } : item instanceof CpuBuffer ? { ptr: item.ptr, bytes: 4 * item.length, shard: 0 } : undefined))
      .filter((r) => r !== undefined)
      .sort((a, b) => a.ptr - b.ptr);
    if (regions.length === 0 || regions.length !== items.length) return 0;
    // All in one memory, whose allocator they top.
    const kernels = this.shards[regions[0]!.shard]!.kernels;
    if (regions.some((r) => r.shard !== regions[0]!.shard)) return 0;
    // Contiguous up to the top: each region starts where the previous one ended (64-byte aligned).
    for (let i = 1; i < regions.length; i++) {
      const end = regions[i - 1]!.ptr + regions[i - 1]!.bytes;
      if (regions[i]!.ptr !== Math.ceil(end / 64) * 64) return 0;
    }
    const last = regions.at(-1)!;
    const top = kernels.mark();
    if (last.ptr + last.bytes !== top) return 0;
    kernels.release(regions[0]!.ptr);
    return top - regions[0]!.ptr;
  }

  vector(name: string, values: Float32Array): Vector {
    return new CpuBuffer(name, values.length, this.kernels.upload(values));
  }

  activation(name: string, floats: number): Activation {
    return new CpuBuffer(name, floats, this.kernels.allocF32(floats));
  }

  ids(name: string, length: number): IdBuffer {
    return new CpuBuffer(name, length, this.kernels.alloc(4 * length));
  }

  kvStorage(layout: { layers: number; capacity: number; kvHeads: number; headDim: number }): KvStorage {
    const bytes = layout.capacity * layout.kvHeads * layout.headDim * 4;
    const k: number[] = [];
    const v: number[] = [];
    for (let il = 0; il < layout.layers; il++) {
      k.push(this.kernels.alloc(bytes));
      v.push(this.kernels.alloc(bytes));
    }
    this.scratchFor(ATTENTION_SCRATCH_FLOATS_PER_KEY * layout.capacity);
    return new CpuKv(layout.layers, layout.capacity, layout.kvHeads, layout.headDim, 2 * layout.layers * bytes, k, v);
  }

  /** Attention scores scratch (one per thread), grown at load time (kvStorage) so a step allocates nothing. */
  private scratchFor(floats: number): number {
    if (this.attnScratch.floats < floats) this.attnScratch = { ptr: this.kernels.allocF32(floats * this.kernels.threads), floats };
    return this.attnScratch.ptr;
  }

  /** A shard's quantized-activation scratch, grown to `bytes` (at load time for shard 0's batch, by the first step). */
  private q8aScratch(sh: Shard, bytes: number): number {
    if (sh.xq.bytes < bytes) sh.xq = { ptr: sh.kernels.alloc(bytes), bytes };
    return sh.xq.ptr;
  }

  // ---- a step

  begin(): void {}

  writeIds(target: IdBuffer, values: Uint32Array): void {
    const t = target as CpuBuffer;
    if (values.length > t.length) throw new RangeError(`${t.name}: ${values.length} ids > ${t.length}`);
    this.kernels.write(t.ptr, values);
  }

  embed(table: Weight, ids: IdBuffer, out: Rows, tokens: number, scale: number): void {
    const w = table as CpuWeight;
    if (w.shard === 0) {
      this.kernels.embed({ type: tableType(w), table: w.ptr, k: w.k, rows: w.rows, ids: (ids as CpuBuffer).ptr, out: rows(out), scale, tokStart: 0, tokEnd: tokens });
      return;
    }
    // The table is in another memory: its ids in, its rows out, through that shard's staging.
    const sh = this.shards[w.shard]!;
    const chunk = Math.floor(this.stagingBytes / (4 * (w.k + 1)));
    if (chunk < 1) throw new RangeError(`${w.name}: a row of ${w.k} floats does not fit the ${this.stagingBytes}-byte staging area`);
    const idsPtr = (ids as CpuBuffer).ptr;
    for (let t0 = 0; t0 < tokens; t0 += chunk) {
      const n = Math.min(chunk, tokens - t0);
      sh.kernels.write(sh.staging, this.kernels.u32(idsPtr + 4 * t0, n));
      const y = sh.staging + 4 * n;
      sh.kernels.embed({ type: tableType(w), table: w.ptr, k: w.k, rows: w.rows, ids: sh.staging, out: { ptr: y, stride: w.k }, scale, tokStart: 0, tokEnd: n });
      copyRows(sh.kernels, { ptr: y, stride: w.k }, this.kernels, rowsAt(rows(out), t0), w.k, n);
    }
  }

  norm(kind: 'rms' | 'layer', x: Rows, out: Rows, n: number, count: number, eps: number, weight?: Vector, bias?: Vector): void {
    this.kernels.norm({ kind, x: rows(x), y: rows(out), n, eps, weight: ptr(weight), bias: ptr(bias), rowStart: 0, rowEnd: count });
  }

  // The fused ops: each op runs at once here, so a fused one is its parts in turn.
  addNorm(x: Rows, cur: Rows, n: number, count: number, eps: number, weight?: Vector, scale = 1): void {
    addNormInSteps(this, x, cur, n, count, eps, weight, scale);
  }

  matmul(w: Weight, x: Rows, out: Rows, tokens: number, bias?: Vector): void {
    const cw = w as CpuWeight;
    if (cw.shard === 0) {
      this.matmulIn(this.shards[0]!, cw, rows(x), rows(out), tokens, ptr(bias), tokens);
      return;
    }
    // The weight is in another memory: its input rows in and its output rows out through that
    // shard's staging, in token chunks of a multiple of 4 (the kernels' 4-token tiles fall as in
    // one call, so the result is bitwise the unsharded one), the bias copied beside them.
    const sh = this.shards[cw.shard]!;
    const biasFloats = bias ? cw.rows : 0;
    const perToken = 4 * (cw.k + cw.rows);
    const fit = Math.floor((this.stagingBytes - 4 * biasFloats) / perToken);
    if (fit < 1) throw new RangeError(`${cw.name}: one token's ${cw.k} inputs and ${cw.rows} outputs do not fit the ${this.stagingBytes}-byte staging area`);
    const chunk = fit >= 4 ? fit - (fit % 4) : fit;
    const xs = { ptr: sh.staging + 4 * biasFloats, stride: cw.k };
    const ys = { ptr: xs.ptr + 4 * cw.k * Math.min(chunk, tokens), stride: cw.rows };
    if (bias) copyRows(this.kernels, { ptr: (bias as CpuBuffer).ptr, stride: 0 }, sh.kernels, { ptr: sh.staging, stride: 0 }, cw.rows, 1);
    for (let t0 = 0; t0 < tokens; t0 += chunk) {
      const n = Math.min(chunk, tokens - t0);
      copyRows(this.kernels, rowsAt(rows(x), t0), sh.kernels, xs, cw.k, n);
      this.matmulIn(sh, cw, xs, ys, n, bias ? sh.staging : 0, tokens);
      copyRows(sh.kernels, ys, this.kernels, rowsAt(rows(out), t0), cw.rows, n);
    }
  }

  /**
   * The matmul on the shard that holds the weight, x and y in that shard's memory. `pathTokens`:
   * the whole call's token count, which picks the path (a chunk of a longer call takes the same).
   */
  private matmulIn(sh: Shard, cw: CpuWeight, x: F32Rows, y: F32Rows, tokens: number, bias: number, pathTokens: number): void {
    const kernels = sh.kernels;
    const activations = this.quantized ? matmulActivations(cw.type, cw.k, pathTokens, kernels.relaxed) : 'f32';
    if (cw.interleaved) {
      // Q4_Kx4 / Q6_Kx4 on Q8K activations, the 32-block layouts on Q8A.
      const q8k = isKX4Type(cw.type);
      const xq = this.q8aScratch(sh, q8k ? kernels.q8kBytes(cw.k, tokens) : kernels.q8aBytes(cw.k, tokens));
      if (q8k) kernels.quantizeQ8K(x, xq, cw.k, 0, tokens);
      else kernels.quantizeQ8A(x, xq, cw.k, 0, tokens);
      kernels.matmulInterleaved({ type: cw.type as InterleavedType, w: cw.ptr, k: cw.k, xq, y, tokens, bias, rowStart: 0, rowEnd: cw.rows, pack: sh.pack });
      return;
    }
    if (activations === 'q8k') {
      // K-quants: one activation scale per 256 (llama.cpp's Q8_K), integer sub-block scales; four
      // tokens per pass over the weights for prefill (as fast as the f32 path on plain SIMD,
      // faster with relaxed SIMD). The one-token dots: 3-7x the f32 path in decode.
      const xq = this.q8aScratch(sh, kernels.q8kBytes(cw.k, tokens));
      kernels.quantizeQ8K(x, xq, cw.k, 0, tokens);
      kernels.matmulQ8K({ type: cw.type, w: cw.ptr, k: cw.k, xq, y, tokens, bias, rowStart: 0, rowEnd: cw.rows, pack: sh.pack });
      return;
    }
    if (activations === 'q8a') {
      const xq = this.q8aScratch(sh, kernels.q8aBytes(cw.k, tokens));
      kernels.quantizeQ8A(x, xq, cw.k, 0, tokens);
      kernels.matmulQ8A({ type: cw.type, w: cw.ptr, k: cw.k, xq, y, tokens, bias, rowStart: 0, rowEnd: cw.rows, pack: sh.pack });
      return;
    }
    kernels.matmul({
      type: cw.type, w: cw.ptr, k: cw.k, x, y, tokens, bias, rowStart: 0, rowEnd: cw.rows,
      scratch: sh.matmulScratch, scratchStride: 4 * MATMUL_SCRATCH_FLOATS,
    });
  }

  rope(x: Rows, tokens: number, heads: number, headDim: number, positions: IdBuffer, op: RopeOp): void {
    if (op.nRot % 2 !== 0 || op.nRot < 2 || op.nRot > headDim) throw new RangeError(`rope: n_rot ${op.nRot} must be even and <= head_dim ${headDim}`);
    const corr = op.extFactor !== 0 ? yarnCorrDims(op.nRot, op.origCtx, op.freqBase, op.betaFast, op.betaSlow) : undefined;
    this.kernels.rope({
      x: rows(x), headStride: headDim, heads, nRot: op.nRot, mode: op.mode, positions: (positions as CpuBuffer).ptr,
      freqBase: op.freqBase, freqScale: op.freqScale, extFactor: op.extFactor, attnFactor: op.attnFactor, corr,
      freqFactors: ptr(op.factors), tokStart: 0, tokEnd: tokens,
    });
  }

  kvWrite(cache: KvStorage, layer: number, k: Rows, v: Rows, positions: IdBuffer, tokens: number): void {
    const kv = cache as CpuKv;
    const width = kv.kvHeads * kv.headDim;
    const pos = this.kernels.u32((positions as CpuBuffer).ptr, tokens);
    const mem = new Float32Array(this.kernels.memory.buffer);
    for (let t = 0; t < tokens; t++) {
      const p = pos[t]!;
      if (p >= kv.capacity) continue; // as the WebGPU kv_write: past the cache is skipped
      for (const [src, dst] of [[k, kv.k[layer]!], [v, kv.v[layer]!]] as const) {
        const from = (src.t as CpuBuffer).ptr / 4 + (src.offset ?? 0) + t * src.stride;
        mem.copyWithin(dst / 4 + p * width, from, from + width);
      }
    }
  }

  ropeKvWrite(cache: KvStorage, layer: number, q: Rows, k: Rows, v: Rows, heads: number, positions: IdBuffer, tokens: number, op: RopeOp): void {
    ropeKvWriteInSteps(this, cache, layer, q, k, v, heads, positions, tokens, op);
  }

  attention(cache: KvStorage, layer: number, q: Rows, out: Rows, positions: IdBuffer, tokens: number, heads: number, kvLength: number, op: AttentionOp): void {
    const kv = cache as CpuKv;
    this.kernels.attention({
      q: rows(q), kCache: kv.k[layer]!, vCache: kv.v[layer]!, out: rows(out), positions: (positions as CpuBuffer).ptr,
      heads, kvHeads: kv.kvHeads, headDim: kv.headDim, kvLength, scale: op.scale, softcap: op.softcap, window: op.window, causal: op.causal,
      bias: op.bias && { table: ptr(op.bias.table), bucketIds: (op.bias.bucketIds as CpuBuffer).ptr, offset: op.bias.offset },
      scratch: this.scratchFor(ATTENTION_SCRATCH_FLOATS_PER_KEY * kvLength), scratchStride: 4 * this.attnScratch.floats, uStart: 0, uEnd: tokens * heads,
    });
  }

  gluMatmul(activation: 'silu' | 'gelu', w: Weight, x: Rows, gateUp: Rows, out: Rows, tokens: number, bias?: Vector): void {
    gluMatmulInSteps(this, activation, w, x, gateUp, out, tokens, bias);
  }

  glu(activation: 'silu' | 'gelu', gate: Rows, up: Rows, out: Rows, n: number, count: number): void {
    this.kernels.glu({ activation, gate: rows(gate), up: rows(up), out: rows(out), n, rowStart: 0, rowEnd: count });
  }

  moeFfn(x: Rows, out: Rows, tokens: number, op: MoeFfnOp): void {
    moeFfnOnHost(this.moeHost, x, out, tokens, op);
  }

  private readonly moeHost: MoeHost = {
    backend: this,
    view: (t) => this.view(t),
    rowsOf: (w, first, count) => {
      const cw = w as CpuWeight;
      if (first < 0 || count < 1 || first + count > cw.rows) throw new RangeError(`${cw.name}: rows ${first}..${first + count} outside 0..${cw.rows}`);
      if (cw.interleaved) throw new RangeError(`${cw.name}: rows of an interleaved (${GgmlType[cw.type]}x4) matrix cannot be viewed one by one`);
      const rowBytes = cw.bytes / cw.rows;
      return new CpuWeight(`${cw.name}[${first}..${first + count})`, cw.type, cw.k, count, rowBytes * count, cw.ptr + rowBytes * first, cw.shard);
    },
  };

  // ---- state-space hybrids (recurrent.ts)

  ssmConv(x: Rows, out: Rows, tokens: number, op: ConvOp): void {
    ssmConvOnHost(this.recurrentHost, x, out, tokens, op);
  }

  ssmScan(x: Rows, dt: Rows, B: Rows, C: Rows, y: Rows, tokens: number, op: SsmScanOp): void {
    ssmScanOnHost(this.recurrentHost, x, dt, B, C, y, tokens, op);
  }

  /** y = y * silu(z) (the GLU kernel, in place on its `up`), then each group RMS-normalized (sums in f64) times its part of weight. */
  gatedNorm(y: Rows, z: Rows, n: number, count: number, groups: number, eps: number, weight: Vector): void {
    if (groups < 1 || n % groups !== 0) throw new RangeError(`gatedNorm: ${n} values do not split into ${groups} groups`);
    if (weight.length !== n) throw new RangeError(`gatedNorm: weight of ${weight.length} floats is not ${n}`);
    this.kernels.glu({ activation: 'silu', gate: rows(z), up: rows(y), out: rows(y), n, rowStart: 0, rowEnd: count });
    const width = n / groups;
    for (let g = 0; g < groups; g++) {
      const part = { ...rows(y), offset: (y.offset ?? 0) + g * width };
      this.kernels.norm({ kind: 'rms', x: part, y: part, n: width, eps, weight: ptr(weight) + 4 * g * width, rowStart: 0, rowEnd: count });
    }
  }

  relu(x: Rows, out: Rows, n: number, count: number): void {
    this.kernels.elementwise({ op: 'relu', a: rows(x), out: rows(out), n, rowStart: 0, rowEnd: count });
  }

  mul(a: Rows, b: Rows, out: Rows, n: number, count: number): void {
    this.kernels.elementwise({ op: 'mul', a: rows(a), b: rows(b), out: rows(out), n, rowStart: 0, rowEnd: count });
  }

  copy(from: Region, to: Region): void {
    copyOnHost(this.recurrentHost, from, to);
  }

  zero(region: Region): void {
    zeroOnHost(this.recurrentHost, region);
  }

  private get recurrentHost(): RecurrentHost {
    return { kernels: this.kernels, ptr: (t) => (t as CpuBuffer).ptr };
  }

  add(a: Rows, b: Rows, out: Rows, n: number, count: number, scale = 1): void {
    this.kernels.elementwise({ op: 'add', a: rows(a), b: rows(b), out: rows(out), n, scale, rowStart: 0, rowEnd: count });
  }

  scale(a: Rows, out: Rows, n: number, count: number, scale: number): void {
    this.kernels.elementwise({ op: 'scale', a: rows(a), out: rows(out), n, scale, rowStart: 0, rowEnd: count });
  }

  softcap(x: Rows, n: number, count: number, cap: number): void {
    this.kernels.elementwise({ op: 'softcap', a: rows(x), out: rows(x), n, scale: cap, rowStart: 0, rowEnd: count });
  }

  sample(
    logits: Rows,
    vocab: number,
    count: number,
    params: SamplingParams,
    u: readonly number[],
    out: IdBuffer,
    penalties?: TokenPenalties | DevicePenalties,
    allowed?: AllowedTokens,
  ): void {
    const o = (out as CpuBuffer).ptr;
    const base = (logits.t as CpuBuffer).ptr + 4 * (logits.offset ?? 0);
    if (penalties && 'history' in penalties) {
      if (count !== 1) throw new RangeError('sample: penalties from a device history take one row');
      const n = penalties.params.lastN;
      const history = this.kernels.u32((penalties.history as CpuBuffer).ptr, n);
      const position = this.kernels.u32((penalties.positions as CpuBuffer).ptr + 4 * penalties.last, 1)[0]!;
      history[position % n] = this.kernels.u32((penalties.tokens as CpuBuffer).ptr + 4 * penalties.last, 1)[0]!;
      applyPenalties(this.kernels.f32(base, vocab), historyCounts(history), penalties.params);
    } else if (penalties) {
      for (let r = 0; r < count; r++) applyPenalties(this.kernels.f32(base + 4 * r * logits.stride, vocab), penalties.counts, penalties.params);
    }
    if (allowed) {
      if (count !== 1) throw new RangeError('sample: a token mask takes one row');
      applyTokenMask(this.kernels.f32(base, vocab), allowed);
    }
    if (params.temperature <= 0 || params.topK === 1) {
      this.kernels.argmax({ x: rows(logits), n: vocab, out: o, rowStart: 0, rowEnd: count });
      return;
    }
    if (u.length < count) throw new RangeError(`sample: ${count} rows need ${count} uniforms, got ${u.length}`);
    for (let r = 0; r < count; r++) {
      const token = sampleRow(this.kernels.f32(base + 4 * r * logits.stride, vocab), params, u[r]!);
      this.kernels.u32(o + 4 * r, 1)[0] = token;
    }
  }

  submit(): void {}

  /** Ops run when called: there is nothing to capture, and so never a plan to replay. */
  capture(): StepPlan | undefined {
    return undefined;
  }

  replay(_plan: StepPlan, _u: readonly number[]): void {
    throw new Error('the CPU backend runs ops when called; it has no plans to replay');
  }

  /**
   * The floats of an activation (or vector), in place: for tests and debugging taps, valid until the
   * next allocation (a memory growth replaces the buffer).
   */
  view(t: Activation | Vector): Float32Array {
    const b = t as CpuBuffer;
    return this.kernels.f32(b.ptr, b.length);
  }

  // ---- results

  async read(t: Activation, floats: number, offset = 0): Promise<Float32Array> {
    return this.kernels.f32((t as CpuBuffer).ptr + 4 * offset, floats).slice();
  }

  async readIds(t: IdBuffer, count: number): Promise<Uint32Array> {
    return this.kernels.u32((t as CpuBuffer).ptr, count).slice();
  }

  /** The step already ran: the ids are there now. */
  readIdsAsync(t: IdBuffer, count: number): Promise<Uint32Array> {
    return Promise.resolve(this.kernels.u32((t as CpuBuffer).ptr, count).slice());
  }

  destroy(): void {
    // The memory goes with the instance; nothing to release one by one. The workers must stop.
    this.kernels.destroy();
  }
}

/** Rows from row `t` on. */
function rowsAt(r: F32Rows, t: number): F32Rows {
  return { ptr: r.ptr, stride: r.stride, offset: (r.offset ?? 0) + t * r.stride };
}

/** Copies `count` rows of `n` floats between two memories (row views in each). */
function copyRows(from: CpuKernels, src: F32Rows, to: CpuKernels, dst: F32Rows, n: number, count: number): void {
  const a = new Float32Array(from.memory.buffer);
  const b = new Float32Array(to.memory.buffer);
  for (let t = 0; t < count; t++) {
    const s = src.ptr / 4 + (src.offset ?? 0) + t * src.stride;
    b.set(a.subarray(s, s + n), dst.ptr / 4 + (dst.offset ?? 0) + t * dst.stride);
  }
}

function rows(r: Rows): F32Rows {
  return { ptr: (r.t as CpuBuffer).ptr, stride: r.stride, offset: r.offset ?? 0 };
}

function ptr(v: Vector | undefined): number {
  return v ? (v as CpuBuffer).ptr : 0;
}
