/**
 * Models over one wasm32 memory (4 GiB): the CPU backend spreads the weight matrices over several
 * memories ("shards"), each an instance of the same kernels module, served by one thread pool.
 *
 * Placement: whole matrices, first fit in load order (a layer's matrices land together, so a
 * decode step crosses from one shard to the next only a few times). Shard 0 also holds everything
 * that is not a matrix weight: the KV cache, the activations, the norms and biases, the recurrent
 * state. A matmul on a matrix in another shard copies its input rows into that shard's staging
 * area, runs there on every thread, and copies the output rows back (backend.ts): a vector per
 * matmul in decode, next to megabytes of weights read.
 *
 * Why whole matrices rather than every matrix split by rows over all shards: the kernels and their
 * 4-token tiles run unchanged on one memory at a time on every thread (one pool, all threads on
 * each shard's part in turn), so results are bitwise those of one memory; a row split would copy
 * the input into every shard for every matmul and wake each shard's part separately. The cost of
 * whole matrices is the room a shard leaves unfilled when the next matrix does not fit: less than
 * the largest matrix per shard (the 8B Llama's output matrix: 0.4 GiB of 4), which the count below
 * allows for.
 *
 * The count is made from the plan before anything is downloaded, and every shard's memory is made
 * then, at its expected size, so a browser that cannot hold them fails at once (CpuMemoryError).
 */

/** The most memories (shards) a CPU backend makes by default: 8 x 4 GiB. */
export const CPU_MAX_SHARDS = 8;

/**
 * Bytes each shard beyond the first keeps beside its weights: the staging area (input and output
 * rows of a matmul, token chunks of at most STAGING_BYTES), per-thread matmul scratch, quantized
 * activations of a chunk, alignment.
 */
export const SHARD_OVERHEAD_BYTES = 32 << 20;

/** The staging area of a shard beyond the first: a matmul's input and output rows go through it in token chunks. */
export const STAGING_BYTES = 8 << 20;

/**
 * The buffers of a backend whose memories hold `shardBytes` each: 4 GiB memories get the constants
 * above; small ones (tests force shards with a few MiB) an eighth of a memory for shard 0's own
 * buffers and each other shard's overhead, a sixteenth for staging.
 */
export function shardBuffers(shardBytes: number, ownBytes: number): { own: number; overhead: number; staging: number } {
  return { own: Math.min(ownBytes, shardBytes / 8), overhead: Math.min(SHARD_OVERHEAD_BYTES, shardBytes / 8), staging: Math.min(STAGING_BYTES, Math.floor(shardBytes / 16 / 64) * 64) };
}

/** What the shard count is made from: the model's matrices as the CPU holds them, and the rest. */
export interface CpuLayout {
  /** Bytes of every matrix weight, in load order where known (the bound below holds for any order). */
  matrixBytes: readonly number[];
  /** The largest one matrix weight may be as loaded (stacked q|k|v, gate|up: their sum). */
  largestBytes: number;
  /** Everything shard 0 holds beside matrices: KV cache, activations, vectors, recurrent state. */
  residentBytes: number;
}

/**
 * The layout of a planned model: its tensors (GGUF infos) and its plan's total. Matrices are sized
 * as the CPU holds them (`weightBytes`: backend.ts `cpuWeightBytes`); a stacked weight (q|k|v,
 * gate|up of one layer: model/stacking.ts) counts as their sum for the largest. A matrix is what the loader uploads with `weight()`: two
 * or more dimensions above 1 (model/tensors.ts `isMatrix`, which this layer may not import).
 */
export function cpuLayout<T extends { name: string; type: number; shape: readonly number[] }>(
  tensors: readonly T[],
  totalBytes: number,
  weightBytes: (type: T['type'], shape: readonly number[]) => number,
): CpuLayout {
  const matrixBytes: number[] = [];
  const perStack = new Map<string, number>();
  let largest = 0;
  for (const t of tensors) {
    if (t.shape.filter((d) => d > 1).length < 2) continue;
    const bytes = weightBytes(t.type, t.shape);
    matrixBytes.push(bytes);
    largest = Math.max(largest, bytes);
    // The loader stacks a layer's q|k|v and gate|up into one weight where their formats agree.
    const stack = /^(blk\.\d+\.)(?:attn_[qkv]|ffn_(gate|up))\.weight$/.exec(t.name);
    if (stack) {
      const key = stack[1]! + (stack[2] ? 'ffn' : 'attn');
      perStack.set(key, (perStack.get(key) ?? 0) + bytes);
    }
  }
  for (const b of perStack.values()) largest = Math.max(largest, b);
  const weights = matrixBytes.reduce((a, b) => a + b, 0);
  return { matrixBytes, largestBytes: largest, residentBytes: Math.max(0, totalBytes - weights) };
}

/** How many shards, and about how full each will be (their memories are made that large up front). */
export interface ShardPlan {
  count: number;
  /** Expected bytes per shard (shard 0: its weights and residents). */
  bytes: number[];
  /** The most weight bytes each shard may take. */
  weightCaps: number[];
}

/**
 * The shards a layout needs with memories of `shardBytes` (wasm32: 4 GiB), shard 0 keeping room
 * for the residents and `ownBytes` (the backend's own buffers; `shardBuffers`). One shard when everything fits
 * in one. Otherwise the fewest n with sum over shards of (weight room - largest matrix) >= the
 * weights: first fit then places every matrix whatever the order (a matrix that fits nowhere
 * would find less than the largest free in every shard, so more than that sum already placed).
 * Undefined when more than `maxShards` would be needed.
 */
export function planShards(layout: CpuLayout, shardBytes: number, ownBytes: number, maxShards = CPU_MAX_SHARDS): ShardPlan | undefined {
  const { own: overheadBytes, overhead: shardOverhead } = shardBuffers(shardBytes, ownBytes);
  const weights = layout.matrixBytes.reduce((a, b) => a + b, 0);
  // Each matrix is 64-byte aligned; count that too.
  const aligned = weights + 64 * layout.matrixBytes.length;
  const cap0 = Math.max(0, shardBytes - overheadBytes - layout.residentBytes);
  if (aligned <= cap0) return { count: 1, bytes: [layout.residentBytes + aligned + overheadBytes], weightCaps: [cap0] };
  const caps = [cap0];
  let room = Math.max(0, cap0 - layout.largestBytes);
  while (room < aligned) {
    if (caps.length >= maxShards) return undefined;
    const cap = shardBytes - shardOverhead;
    if (cap <= layout.largestBytes) return undefined;
    caps.push(cap);
    room += cap - layout.largestBytes;
  }
  let left = aligned;
  const bytes = caps.map((cap, i) => {
    const fill = Math.min(cap, left);
    left -= fill;
    return i === 0 ? layout.residentBytes + overheadBytes + fill : shardOverhead + fill;
  });
  return { count: caps.length, bytes, weightCaps: caps };
}

let probed: number | undefined;

/**
 * How many wasm32 memories with a 4 GiB maximum this engine lets us make, up to `max` (made at one
 * page and dropped: a 64-bit engine reserves address space for each, a 32-bit one runs out after
 * one or two). Cached: it is a property of the engine. For the capability report and the catalog;
 * `CpuBackend.create` still makes the real ones at their real sizes before a download.
 */
export function probeShards(max = CPU_MAX_SHARDS): number {
  if (probed !== undefined) return Math.min(probed, max);
  const held: WebAssembly.Memory[] = [];
  try {
    while (held.length < max) held.push(new WebAssembly.Memory({ initial: 1, maximum: 65536 }));
  } catch {
    // This many and no more.
  }
  probed = held.length;
  return probed;
}
