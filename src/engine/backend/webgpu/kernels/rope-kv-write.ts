/**
 * RoPE of q and k fused with the KV-cache write (rope_kv_write.wgsl): one dispatch for what
 * `encodeRope` twice and `encodeKvWrite` record as three. Same rotation as rope.wgsl (the shared
 * rope_common.wgsl), same cache layout and skipping of positions past the capacity as
 * kv_write.wgsl. q and k are rotated in place, since attention reads q and a tap may read both.
 * Float64 reference: `ropeKvWriteReference`.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import { kvSlot, type KvCacheLayout } from './attention.ts';
import { foldedGrid, shaderKernel, type RowView } from './common.ts';
import { ropeReference, ropeUniforms, type RopeParams } from './rope.ts';

const WORKGROUP_SIZE = 256;
const ROPE_KV_WRITE = kernelFamily();

export interface RopeKvWriteArgs extends RopeParams {
  cache: KvCacheLayout;
  kCache: GPUBuffer | BufferRange;
  vCache: GPUBuffer | BufferRange;
  /** `tokens` rows of `heads` heads of cache.headDim, rotated in place. */
  q: RowView;
  /** `tokens` rows of cache.kvHeads heads, rotated in place and stored. */
  k: RowView;
  /** Stored as they are. */
  v: RowView;
  heads: number;
  tokens: number;
  /** u32 per token: its absolute position, which is also its cache slot. */
  positions: GPUBuffer;
  /** f32[nRot / 2]: theta for pair p is divided by factor p. */
  freqFactors?: GPUBuffer;
  /** Any storage buffer, bound where freqFactors is absent. */
  dummy: GPUBuffer;
}

/**
 * Whether one dispatch can take these views: q, k and v in three buffers or all in one (one
 * writable binding per buffer), and whole pairs of dims per head.
 */
export function ropeKvWriteFits(q: RowView, k: RowView, v: RowView, headDim: number): boolean {
  const buffers = new Set([q.buffer, k.buffer, v.buffer]);
  return headDim % 2 === 0 && (buffers.size === 1 || buffers.size === 3) && [q, k, v].every((r) => !('buffer' in r.buffer));
}

export function encodeRopeKvWrite(recorder: StepRecorder, kernels: KernelCache, args: RopeKvWriteArgs): void {
  const { cache, nRot } = args;
  const headDim = cache.headDim;
  if (nRot % 2 !== 0 || nRot < 2 || nRot > headDim) throw new RangeError(`rope: n_rot ${nRot} must be even and <= head_dim ${headDim}`);
  if (!ropeKvWriteFits(args.q, args.k, args.v, headDim)) throw new Error('rope_kv_write: q, k and v must be three whole buffers or one, with an even head_dim');
  if (args.tokens < 1) return;
  const shared = args.q.buffer === args.k.buffer;
  const kv = kvSlot(cache.dtype);
  const key = (cache.dtype === 'f16' ? 2 : 0) + (shared ? 1 : 0);
  const kernel =
    kernels.variant(ROPE_KV_WRITE, key) ??
    kernels.remember(
      ROPE_KV_WRITE,
      key,
      shaderKernel(kernels, 'rope_kv_write.wgsl', {
        name: `rope_kv_write${kv.suffix}${shared ? '_shared' : ''}`,
        slots: { kv: kv.slot, qkv: shared ? 'rope_qkv_shared.wgsl' : 'rope_qkv_separate.wgsl' },
        constants: { WORKGROUP_SIZE },
      }),
    );
  const row = cache.kvHeads * headDim;
  const [gx, gy] = foldedGrid(Math.ceil((args.tokens * (args.heads + 2 * cache.kvHeads) * (headDim / 2)) / WORKGROUP_SIZE));
  recorder.dispatch(kernel, {
    params: {
      n_tokens: args.tokens,
      n_head: args.heads,
      n_kv_head: cache.kvHeads,
      head_dim: headDim,
      n_rot: nRot,
      q_stride: args.q.stride ?? args.heads * headDim,
      q_offset: args.q.offset ?? 0,
      k_stride: args.k.stride ?? row,
      k_offset: args.k.offset ?? 0,
      v_stride: args.v.stride ?? row,
      v_offset: args.v.offset ?? 0,
      ...ropeUniforms(args, args.freqFactors !== undefined),
      capacity: cache.capacity,
      groups_x: gx,
    },
    bind: {
      positions: args.positions,
      freq_factors: args.freqFactors ?? args.dummy,
      ...(shared ? { qkv: args.q.buffer } : { q: args.q.buffer, k: args.k.buffer, v: args.v.buffer }),
      k_cache: args.kCache,
      v_cache: args.vCache,
    },
    workgroups: [gx, gy],
    label: `rope_kv_write ${args.mode}`,
  });
}

/**
 * Float64 reference on contiguous q [tokens][heads][headDim], k and v [tokens][kvHeads][headDim]:
 * the rotated q and k, and the caches (`capacity` slots each, starting from `kCache`/`vCache`)
 * with the rotated k and the v rows at their positions.
 */
export function ropeKvWriteReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  tokens: number,
  heads: number,
  kvHeads: number,
  headDim: number,
  capacity: number,
  positions: ArrayLike<number>,
  params: RopeParams,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  freqFactors?: ArrayLike<number>,
): { q: Float64Array; k: Float64Array; kCache: Float64Array; vCache: Float64Array } {
  const qOut = ropeReference(q, tokens, heads, headDim, positions, params, freqFactors);
  const kOut = ropeReference(k, tokens, kvHeads, headDim, positions, params, freqFactors);
  const kc = Float64Array.from(kCache);
  const vc = Float64Array.from(vCache);
  const row = kvHeads * headDim;
  for (let t = 0; t < tokens; t++) {
    const pos = positions[t]!;
    if (pos >= capacity) continue;
    for (let e = 0; e < row; e++) {
      kc[pos * row + e] = kOut[t * row + e]!;
      vc[pos * row + e] = v[t * row + e]!;
    }
  }
  return { q: qOut, k: kOut, kCache: kc, vCache: vc };
}
