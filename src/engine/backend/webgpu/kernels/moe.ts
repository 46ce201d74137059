/**
 * Mixture-of-experts routing, bucketing by expert and combining on the GPU (moe_route.wgsl,
 * moe_sort.wgsl, moe_combine.wgsl); the expert products between them are matmul.ts's
 * `encodeIndexedMatvec` (decode) and `encodeGroupedMatmul` (prefill, over moe_sort's buckets). Routing writes the chosen experts'
 * ids and weights to device buffers that the expert products read, so a decode step reads nothing
 * back. Float64 references beside each.
 */
import type { KernelCache } from '../kernel.ts';
import { kernelFamily } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { dispatchGrid, shaderKernel, type RowView } from './common.ts';

const ROUTE = kernelFamily();
const COMBINE = kernelFamily();
const SORT = kernelFamily();
const SORT_WORKGROUP = 256;
const ROUTE_WORKGROUP = 64;
const COMBINE_WORKGROUP = 256;

export interface MoeRouteArgs {
  /** Router logits, `tokens` rows of `logitsStride` floats (the first `nExpert` used). */
  logits: GPUBuffer;
  logitsStride: number;
  tokens: number;
  nExpert: number;
  used: number;
  gating: 'softmax' | 'sigmoid';
  normalize: boolean;
  /** Multiplier of the chosen weights; 0 means none (as llama.cpp's expert_weights_scale). */
  weightsScale: number;
  /** u32 [tokens][used] and f32 [tokens][used]. */
  ids: GPUBuffer;
  weights: GPUBuffer;
}

export function encodeMoeRoute(recorder: StepRecorder, kernels: KernelCache, args: MoeRouteArgs): void {
  if (args.tokens < 1) return;
  if (args.used < 1 || args.used > args.nExpert) throw new RangeError(`moe route: used ${args.used} must be between 1 and ${args.nExpert}`);
  const kernel = kernels.variant(ROUTE, 0) ?? kernels.remember(ROUTE, 0, shaderKernel(kernels, 'moe_route.wgsl', { constants: { WORKGROUP_SIZE: ROUTE_WORKGROUP } }));
  recorder.dispatch(kernel, {
    params: {
      tokens: args.tokens,
      n_expert: args.nExpert,
      used: args.used,
      logits_stride: args.logitsStride,
      gating: args.gating === 'softmax' ? 0 : 1,
      normalize: args.normalize ? 1 : 0,
      scale: args.weightsScale !== 0 ? args.weightsScale : 1,
    },
    bind: { logits: args.logits, ids: args.ids, weights: args.weights },
    workgroups: [Math.ceil(args.tokens / ROUTE_WORKGROUP)],
    label: 'moe route',
  });
}

export interface MoeSortArgs {
  /** Expert ids of all pairs (moe_route.wgsl); the chunk is pairs pairBase ..< pairBase + pairs. */
  ids: GPUBuffer;
  pairBase: number;
  pairs: number;
  nExpert: number;
  /** u32 [nExpert]: each expert's first index in `order` (scratch of the sort). */
  starts: GPUBuffer;
  /** u32 [pairs]: chunk-relative pair indices by expert, ascending within one. */
  order: GPUBuffer;
  /** vec4u [maxTiles]: (expert, first, end, 0) runs of `order` of up to `tile` pairs; the rest empty. */
  tiles: GPUBuffer;
  tile: number;
  maxTiles: number;
}

/** Buckets a chunk's pairs by expert on the device (moe_sort.wgsl, one workgroup) for `encodeGroupedMatmul`. */
export function encodeMoeSort(recorder: StepRecorder, kernels: KernelCache, args: MoeSortArgs): void {
  if (args.pairs < 1) return;
  const need = Math.ceil(args.pairs / args.tile) + Math.min(args.nExpert, args.pairs);
  if (args.maxTiles < need) throw new RangeError(`moe sort: ${args.maxTiles} tiles cannot hold ${args.pairs} pairs over ${args.nExpert} experts (${need})`);
  const kernel = kernels.variant(SORT, 0) ?? kernels.remember(SORT, 0, shaderKernel(kernels, 'moe_sort.wgsl', { constants: { WORKGROUP_SIZE: SORT_WORKGROUP } }));
  recorder.dispatch(kernel, {
    params: { pair_base: args.pairBase, pairs: args.pairs, n_expert: args.nExpert, tile: args.tile, max_tiles: args.maxTiles },
    bind: { ids: args.ids, starts: args.starts, order: args.order, tiles: args.tiles },
    workgroups: [1],
    label: 'moe sort',
  });
}

/** Float64-free reference of moe_sort.wgsl: order and the non-empty tiles (expert, first, end). */
export function moeSortReference(ids: ArrayLike<number>, pairBase: number, pairs: number, nExpert: number, tile: number): { order: number[]; tiles: Array<[number, number, number]> } {
  const order: number[] = [];
  const tiles: Array<[number, number, number]> = [];
  for (let e = 0; e < nExpert; e++) {
    const first = order.length;
    for (let p = 0; p < pairs; p++) if (ids[pairBase + p] === e) order.push(p);
    for (let s = first; s < order.length; s += tile) tiles.push([e, s, Math.min(s + tile, order.length)]);
  }
  return { order, tiles };
}

export interface MoeCombineArgs {
  /** Expert outputs of the chunk's pairs, [pairs][n]. */
  y: GPUBuffer;
  /** Routing weights of all tokens, [tokens][used]. */
  weights: GPUBuffer;
  used: number;
  n: number;
  /** The chunk: pairs pairBase ..< pairBase + pairs (pair p is token p / used); it may split a token's experts. */
  pairBase: number;
  pairs: number;
  /** Output rows (token t at offset + t * stride); read first when there is a shared expert. */
  out: RowView;
  /** 'plain': out holds the shared expert's output; 'gated': it is scaled by sigmoid(gate[t * gateStride]). */
  shared: 'none' | 'plain' | 'gated';
  gate?: GPUBuffer;
  gateStride?: number;
  dummy: GPUBuffer;
}

export function encodeMoeCombine(recorder: StepRecorder, kernels: KernelCache, maxGroupsPerDim: number, args: MoeCombineArgs): void {
  if (args.pairs < 1) return;
  if (args.shared === 'gated' && !args.gate) throw new Error('moe combine: a gated shared expert needs its gate logits');
  const kernel = kernels.variant(COMBINE, 0) ?? kernels.remember(COMBINE, 0, shaderKernel(kernels, 'moe_combine.wgsl', { constants: { WORKGROUP_SIZE: COMBINE_WORKGROUP } }));
  const tokens = Math.ceil((args.pairBase + args.pairs) / args.used) - Math.floor(args.pairBase / args.used);
  const [gx, gy] = dispatchGrid(Math.ceil((args.n * tokens) / COMBINE_WORKGROUP), maxGroupsPerDim);
  recorder.dispatch(kernel, {
    params: {
      n: args.n,
      pair_base: args.pairBase,
      pairs: args.pairs,
      used: args.used,
      out_stride: args.out.stride ?? args.n,
      out_offset: args.out.offset ?? 0,
      shared_mode: { none: 0, plain: 1, gated: 2 }[args.shared],
      gate_stride: args.gateStride ?? 1,
      groups_x: gx,
    },
    bind: { y: args.y, weights: args.weights, gate: args.gate ?? args.dummy, out: args.out.buffer },
    workgroups: [gx, gy],
    label: 'moe combine',
  });
}
