/**
 * Attention over a KV cache.
 *
 * KV cache layout: one K and one V buffer per layer (or a byte range of a bigger buffer), each
 * `capacity` positions of [n_kv_head][head_dim]: element (position, kv_head, d) at
 * `(position * n_kv_head + kv_head) * head_dim + d`. Cache slot = absolute token position, so a
 * token's k/v are written once (`encodeKvWrite`) and every later query reads them in place.
 * Elements are f32, or f16 where the device has `shader-f16` (`dtype: 'f16'`, the `kv` include
 * slot: same kernels, half the bytes; it cannot run on the CI adapter, so the f32 tests cover the
 * logic and the f16 variant is only compiled where the feature exists).
 *
 * Scores: scale * q.k (scale defaults to 1/sqrt(head_dim)), then softcap * tanh(score / softcap)
 * when a softcap is given (Gemma 2: llama.cpp caps q.k with q pre-scaled and softmax scale 1, which
 * is this with scale = the model's attention scale). Causal by absolute positions: key position p
 * is visible to a query at position qp when p <= qp, and with a sliding window w when qp - p < w.
 * Not causal (`causal: false`, T5's encoder and cross-attention): every key below kvLength is.
 * A relative position bias (`bias`, T5) then adds table[bucketIds[p - qp + offset] * heads + h] to
 * each score. Both are pipeline variants (the CAUSAL override and the `bias` include slot), so the
 * decoder-only kernels do no extra work per score.
 * Grouped-query: query head h reads kv head h / (n_head / n_kv_head).
 *
 * Two variants: decode (few queries; keys split into chunks across workgroups, partial softmax
 * states merged by a combine pass: flash-decoding; the chunk count is derived on the GPU from the
 * query positions and dispatched indirectly, so a recorded decode step can be replayed as the
 * cache grows) and prefill (tiles of queries, online softmax
 * over key tiles). Float64 reference: `attentionReference`.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import { assertPositiveInt, foldedGrid, shaderKernel, type RowView } from './common.ts';

export type KvDtype = 'f32' | 'f16';

export interface KvCacheLayout {
  /** Positions the cache holds (the context length). */
  capacity: number;
  kvHeads: number;
  headDim: number;
  dtype: KvDtype;
}

/** Bytes of one K (or V) buffer of one layer; f16 rounds up to whole 4-byte words. */
export function kvCacheBytes(layout: KvCacheLayout): number {
  const elements = layout.capacity * layout.kvHeads * layout.headDim;
  return layout.dtype === 'f16' ? Math.ceil(elements / 2) * 4 : elements * 4;
}

/** The cache element type a device supports best: f16 needs the `shader-f16` feature. */
export function kvDtypeFor(device: GPUDevice): KvDtype {
  return device.features.has('shader-f16') ? 'f16' : 'f32';
}

export function kvSlot(dtype: KvDtype): { slot: string; suffix: string } {
  return dtype === 'f16' ? { slot: 'kv_f16.wgsl', suffix: '_f16' } : { slot: 'kv_f32.wgsl', suffix: '' };
}

const WRITE_WORKGROUP = 256;
const KV_WRITE = kernelFamily();
const ATTENTION_PREFILL = kernelFamily();
const ATTENTION_DECODE = kernelFamily();
const ATTENTION_COMBINE = kernelFamily();
const ATTENTION_CHUNKS = kernelFamily();

export interface KvWriteArgs {
  cache: KvCacheLayout;
  kCache: GPUBuffer | BufferRange;
  vCache: GPUBuffer | BufferRange;
  /** New keys, `tokens` rows of kvHeads * headDim floats (e.g. the k slice of a fused qkv). */
  k: RowView;
  v: RowView;
  /** u32 per token: the cache slot (absolute position) of each new token. */
  positions: GPUBuffer | BufferRange;
  tokens: number;
}

export function encodeKvWrite(recorder: StepRecorder, kernels: KernelCache, args: KvWriteArgs): void {
  if (args.tokens < 1) return;
  const { cache } = args;
  const row = cache.kvHeads * cache.headDim;
  const kv = kvSlot(cache.dtype);
  const [gx, gy] = foldedGrid(Math.ceil((args.tokens * row) / WRITE_WORKGROUP));
  const dtype = cache.dtype === 'f16' ? 1 : 0;
  const kernel =
    kernels.variant(KV_WRITE, dtype) ??
    kernels.remember(KV_WRITE, dtype, shaderKernel(kernels, 'kv_write.wgsl', { name: `kv_write${kv.suffix}`, slots: { kv: kv.slot }, constants: { WORKGROUP_SIZE: WRITE_WORKGROUP } }));
  recorder.dispatch(kernel, {
    params: {
      n_tokens: args.tokens,
      n_kv_head: cache.kvHeads,
      head_dim: cache.headDim,
      k_stride: args.k.stride ?? row,
      k_offset: args.k.offset ?? 0,
      v_stride: args.v.stride ?? row,
      v_offset: args.v.offset ?? 0,
      capacity: cache.capacity,
      groups_x: gx,
    },
    bind: { positions: args.positions, k_src: args.k.buffer, v_src: args.v.buffer, k_cache: args.kCache, v_cache: args.vCache },
    workgroups: [gx, gy],
    label: 'kv_write',
  });
}

/** Keys per workgroup in the decode variant. */
export const DECODE_CHUNK = 256;
const DECODE_WORKGROUP = 64;
const PREFILL_WORKGROUP = 128;
/** Up to this many query tokens, the split-key decode variant; above, the tiled prefill one. */
export const DECODE_MAX_TOKENS = 4;

/** Scratch the decode variant needs, in floats: partial outputs and (m, l) pairs per chunk. */
export function decodeScratchFloats(tokens: number, heads: number, headDim: number, kvLength: number): { partialO: number; partialStats: number } {
  const chunks = Math.max(1, Math.ceil(kvLength / DECODE_CHUNK));
  return { partialO: tokens * heads * chunks * headDim, partialStats: tokens * heads * chunks * 2 };
}

/** The decode variant's indirect dispatch arguments (3 u32), written by attention_chunks.wgsl. */
export function createDecodeDispatchBuffer(device: GPUDevice): GPUBuffer {
  return device.createBuffer({ label: 'attention decode dispatch', size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.INDIRECT });
}

/**
 * T5's relative position bias on the device: the score of query head h at position qp for the key
 * at p gains table[bucketIds[p - qp + offset] * heads + h]. bucketIds covers every p - qp the
 * caller can meet (p - qp + offset >= 0).
 */
export interface AttentionBias {
  /** f32 [buckets][heads]. */
  table: GPUBuffer | BufferRange;
  /** u32 bucket per relative position + offset. */
  bucketIds: GPUBuffer | BufferRange;
  offset: number;
}

export interface AttentionArgs {
  cache: KvCacheLayout;
  kCache: GPUBuffer | BufferRange;
  vCache: GPUBuffer | BufferRange;
  /** Queries: `tokens` rows; head h of a row at h * headDim within it. */
  q: RowView;
  /** Output, laid out like q (a different buffer). */
  out: RowView;
  /** u32 per query token: its absolute position. */
  positions: GPUBuffer | BufferRange;
  tokens: number;
  heads: number;
  /**
   * Cache positions [0, kvLength) are read; must exceed every query position that should see
   * itself. Causal, a query never sees keys past its own position, so kvLength = capacity is always
   * right (the decode variant then still reads only the chunks the positions reach); not causal,
   * it is the number of keys.
   */
  kvLength: number;
  /** Default 1 / sqrt(headDim). */
  scale?: number;
  /** Logit softcap; 0 or absent means none. */
  softcap?: number;
  /** Sliding window; 0 or absent means none. Causal only. */
  window?: number;
  /**
   * false: every key below kvLength is visible, whatever the query's position (kvLength is then
   * the real length, not the capacity). Default true.
   */
  causal?: boolean;
  /** A relative position bias (T5), as `RelativeBias` in ops.ts; absent means none. */
  bias?: AttentionBias;
  /**
   * Required by the decode variant; sizes from `decodeScratchFloats`, `dispatch` from
   * `createDecodeDispatchBuffer`.
   */
  scratch?: { partialO: GPUBuffer; partialStats: GPUBuffer; dispatch: GPUBuffer };
  /**
   * The decode variant: `scratch.dispatch` already holds this step's chunk count (an earlier
   * layer's attention with the same positions, tokens, heads and kvLength computed it).
   */
  dispatchReady?: boolean;
  /** Default: decode up to DECODE_MAX_TOKENS query tokens, prefill above. */
  variant?: 'decode' | 'prefill';
}

/**
 * Query and key tile sizes for the prefill variant. Each invocation keeps at most 16 output
 * elements in registers, so BQ * headDim <= 16 * workgroup; BK * headDim <= 1024 keeps the K/V tile
 * at 4 KiB. With the q tile (8 KiB) that stays under the 16 KiB of workgroup memory every device has.
 */
export function prefillTiles(headDim: number): { bq: number; bk: number } {
  const bq = Math.max(1, Math.min(32, Math.floor((16 * PREFILL_WORKGROUP) / headDim)));
  const bk = Math.max(1, Math.min(32, Math.floor(1024 / headDim)));
  return { bq, bk };
}

export function encodeAttention(recorder: StepRecorder, kernels: KernelCache, args: AttentionArgs): void {
  const { cache, heads, tokens } = args;
  const headDim = cache.headDim;
  assertPositiveInt(heads, 'attention heads');
  if (heads % cache.kvHeads !== 0) throw new Error(`attention: ${heads} heads is not a multiple of ${cache.kvHeads} kv heads`);
  if (headDim > 1024) throw new RangeError(`attention: head_dim ${headDim} too large`);
  if (args.kvLength > cache.capacity) throw new RangeError(`attention: kvLength ${args.kvLength} > capacity ${cache.capacity}`);
  if (tokens < 1) return;
  const qStride = args.q.stride ?? heads * headDim;
  const outStride = args.out.stride ?? heads * headDim;
  const scale = args.scale ?? 1 / Math.sqrt(headDim);
  const softcap = args.softcap ?? 0;
  const causal = args.causal ?? true;
  const window = causal ? (args.window ?? 0) : 0;
  const bias = args.bias;
  const mode: AttentionMode = { causal, bias: bias !== undefined };
  const biasBind: Record<string, GPUBuffer | BufferRange> = bias ? { bias_table: bias.table, bias_buckets: bias.bucketIds } : {};
  const biasOffset = bias?.offset ?? 0;
  const variant = args.variant ?? (tokens <= DECODE_MAX_TOKENS ? 'decode' : 'prefill');

  if (variant === 'prefill') {
    const { bq, bk } = prefillTiles(headDim);
    const kernel = cacheKernel(kernels, ATTENTION_PREFILL, 'attention_prefill', cache, mode, { HEAD_DIM: headDim, BQ: bq, BK: bk, WORKGROUP_SIZE: PREFILL_WORKGROUP });
    recorder.dispatch(kernel, {
      params: {
        n_tokens: tokens,
        n_head: heads,
        n_kv_head: cache.kvHeads,
        q_stride: qStride,
        q_offset: args.q.offset ?? 0,
        out_stride: outStride,
        out_offset: args.out.offset ?? 0,
        kv_len: args.kvLength,
        window,
        scale,
        softcap,
        bias_offset: biasOffset,
      },
      bind: { q: args.q.buffer, positions: args.positions, k_cache: args.kCache, v_cache: args.vCache, out: args.out.buffer, ...biasBind },
      workgroups: [Math.ceil(tokens / bq), heads],
      label: 'attention prefill',
    });
    return;
  }

  if (!args.scratch) throw new Error('attention: the decode variant needs scratch buffers (decodeScratchFloats)');
  const chunks = Math.max(1, Math.ceil(args.kvLength / DECODE_CHUNK));
  const dispatch = args.scratch.dispatch;
  if (!args.dispatchReady) {
    const key = causal ? 1 : 0;
    const counter =
      kernels.variant(ATTENTION_CHUNKS, key) ??
      kernels.remember(ATTENTION_CHUNKS, key, shaderKernel(kernels, 'attention_chunks.wgsl', { constants: { CHUNK: DECODE_CHUNK, CAUSAL: key } }));
    recorder.dispatch(counter, {
      params: { n_tokens: tokens, n_head: heads, kv_len: args.kvLength, n_chunks: chunks },
      bind: { positions: args.positions, dispatch },
      workgroups: [1],
      label: 'attention chunks',
    });
  }
  const decode = cacheKernel(kernels, ATTENTION_DECODE, 'attention_decode', cache, mode, { HEAD_DIM: headDim, WORKGROUP_SIZE: DECODE_WORKGROUP, CHUNK: DECODE_CHUNK });
  recorder.dispatch(decode, {
    params: {
      n_head: heads,
      n_kv_head: cache.kvHeads,
      q_stride: qStride,
      q_offset: args.q.offset ?? 0,
      kv_len: args.kvLength,
      n_chunks: chunks,
      window,
      scale,
      softcap,
      bias_offset: biasOffset,
    },
    bind: {
      ...biasBind,
      q: args.q.buffer,
      positions: args.positions,
      k_cache: args.kCache,
      v_cache: args.vCache,
      partial_o: args.scratch.partialO,
      partial_stats: args.scratch.partialStats,
    },
    workgroups: [chunks, heads, tokens],
    indirect: { buffer: dispatch, offset: 0 },
    label: 'attention decode',
  });
  const combine =
    kernels.variant(ATTENTION_COMBINE, headDim) ??
    kernels.remember(ATTENTION_COMBINE, headDim, shaderKernel(kernels, 'attention_combine.wgsl', { constants: { HEAD_DIM: headDim, WORKGROUP_SIZE: DECODE_WORKGROUP } }));
  recorder.dispatch(combine, {
    params: { n_head: heads, n_chunks: chunks, out_stride: outStride, out_offset: args.out.offset ?? 0 },
    bind: { partial_o: args.scratch.partialO, partial_stats: args.scratch.partialStats, out: args.out.buffer, dispatch },
    workgroups: [heads, tokens],
    label: 'attention combine',
  });
}

interface AttentionMode {
  causal: boolean;
  bias: boolean;
}

/**
 * An attention kernel reading the cache through the `kv` slot and adding a bias through the `bias`
 * slot, one variant per (head_dim, dtype, causal, bias); `constants` are evaluated on every call but
 * only used on a miss.
 */
function cacheKernel(kernels: KernelCache, family: number, file: 'attention_prefill' | 'attention_decode', cache: KvCacheLayout, mode: AttentionMode, constants: Record<string, number>) {
  const key = ((cache.headDim * 2 + (cache.dtype === 'f16' ? 1 : 0)) * 2 + (mode.causal ? 1 : 0)) * 2 + (mode.bias ? 1 : 0);
  const hit = kernels.variant(family, key);
  if (hit) return hit;
  const kv = kvSlot(cache.dtype);
  // The kernel cache keys compiled pipelines by name and constants: the name carries the slots.
  const name = `${file}${kv.suffix}${mode.bias ? '_bias' : ''}`;
  const slots = { kv: kv.slot, bias: mode.bias ? 'attention_bias_relative.wgsl' : 'attention_bias_none.wgsl' };
  return kernels.remember(family, key, shaderKernel(kernels, `${file}.wgsl`, { name, slots, constants: { ...constants, CAUSAL: mode.causal ? 1 : 0 } }));
}

export interface AttentionReferenceArgs {
  /** [tokens][heads][headDim] */
  q: ArrayLike<number>;
  /** [capacity][kvHeads][headDim] */
  kCache: ArrayLike<number>;
  vCache: ArrayLike<number>;
  positions: ArrayLike<number>;
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  kvLength: number;
  scale: number;
  softcap?: number;
  window?: number;
  /** false: every key below kvLength is visible (T5's encoder and cross-attention). Default causal. */
  causal?: boolean;
  /** T5's relative position bias: table[bucketIds[p - qp + offset] * heads + h] joins each score. */
  bias?: { table: ArrayLike<number>; bucketIds: ArrayLike<number>; offset: number };
}

/** Float64 reference: softmax(mask(softcap(scale * q k^T) + bias)) v per query token and head. */
export function attentionReference(a: AttentionReferenceArgs): Float64Array {
  const { headDim, heads, kvHeads } = a;
  const out = new Float64Array(a.tokens * heads * headDim);
  const group = heads / kvHeads;
  for (let t = 0; t < a.tokens; t++) {
    const qp = a.positions[t]!;
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      const scores: number[] = [];
      const keys: number[] = [];
      for (let p = 0; p < a.kvLength; p++) {
        if (a.causal !== false && p > qp) continue;
        if (a.causal !== false && a.window && qp - p >= a.window) continue;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += a.q[(t * heads + h) * headDim + d]! * a.kCache[(p * kvHeads + kvh) * headDim + d]!;
        let score = dot * a.scale;
        if (a.softcap) score = a.softcap * Math.tanh(score / a.softcap);
        if (a.bias) score += a.bias.table[a.bias.bucketIds[p - qp + a.bias.offset]! * heads + h]!;
        scores.push(score);
        keys.push(p);
      }
      if (keys.length === 0) continue;
      const m = Math.max(...scores);
      const w = scores.map((s) => Math.exp(s - m));
      const sum = w.reduce((x, y) => x + y, 0);
      for (let d = 0; d < headDim; d++) {
        let acc = 0;
        for (let j = 0; j < keys.length; j++) acc += w[j]! * a.vCache[(keys[j]! * kvHeads + kvh) * headDim + d]!;
        out[(t * heads + h) * headDim + d] = acc / sum;
      }
    }
  }
  return out;
}
