/**
 * out[t, r] = sum_k x[t, k] * W[r, k] (+ bias[r]) for a GGUF weight W, dequantized on the fly.
 * Decode (few tokens) uses matvec.wgsl, prefill the tiled matmul.wgsl; both come in one variant
 * per weight format through the `weights` include slot (and matvec's `dot` slot). Split weights
 * dispatch once per part. How matvec spreads rows over invocations is a `MatvecStrategy`.
 * The float64 reference is `matmulReference` below.
 */
import { GgmlType, ggmlTypeName } from '../../../gguf/ggml-types.ts';
import { SHADERS } from '../../../../shaders/index.ts';
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { MatvecStrategy } from '../probe.ts';
import { preprocessWgsl } from '../preprocess.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import type { GpuWeight } from '../weights.ts';
import { dispatchGrid } from './common.ts';
import type { GluActivation } from './glu.ts';

/** Block-at-a-time dot products for matvec (the `dot` slot); other formats use dot_generic.wgsl. */
const DOT_INCLUDES: Partial<Record<GgmlType, string>> = {
  [GgmlType.Q8_0]: 'dot_q8_0.wgsl',
  [GgmlType.Q4_0]: 'dot_q4_0.wgsl',
  [GgmlType.Q4_K]: 'dot_q4_k.wgsl',
  [GgmlType.Q5_K]: 'dot_q5_k.wgsl',
  [GgmlType.Q6_K]: 'dot_q6_k.wgsl',
};

/** The WGSL include that dequantizes each weight format. */
const WEIGHT_INCLUDES: Partial<Record<GgmlType, string>> = {
  [GgmlType.F32]: 'weights_f32.wgsl',
  [GgmlType.F16]: 'weights_f16.wgsl',
  [GgmlType.BF16]: 'weights_bf16.wgsl',
  [GgmlType.Q8_0]: 'weights_q8_0.wgsl',
  [GgmlType.Q4_0]: 'weights_q4_0.wgsl',
  [GgmlType.Q4_1]: 'weights_q4_1.wgsl',
  [GgmlType.Q5_0]: 'weights_q5_0.wgsl',
  [GgmlType.Q5_1]: 'weights_q5_1.wgsl',
  [GgmlType.Q2_K]: 'weights_q2_k.wgsl',
  [GgmlType.Q3_K]: 'weights_q3_k.wgsl',
  [GgmlType.Q4_K]: 'weights_q4_k.wgsl',
  [GgmlType.Q5_K]: 'weights_q5_k.wgsl',
  [GgmlType.Q6_K]: 'weights_q6_k.wgsl',
  [GgmlType.IQ4_NL]: 'weights_iq4_nl.wgsl',
  [GgmlType.IQ4_XS]: 'weights_iq4_xs.wgsl',
};

/** The `weights` include for a format (w4/w1 over the raw GGUF bytes), or undefined if none. Shared by the embedding kernel. */
export function weightInclude(type: GgmlType): string | undefined {
  return WEIGHT_INCLUDES[type];
}

export function matmulSupports(type: GgmlType): boolean {
  return WEIGHT_INCLUDES[type] !== undefined;
}

export const MATMUL_TYPES: readonly GgmlType[] = Object.keys(WEIGHT_INCLUDES).map(Number);

/** Up to this many tokens, one matrix-vector pass per token beats a tiled matmul. */
const MATVEC_MAX_TOKENS = 4;
const MATMUL_TILE = 64;
/** matmul_rows.wgsl (prefill on software adapters): 64 invocations of 4 rows x 8 tokens each. */
const MATMUL_ROWS_WORKGROUP = 64;
const MATMUL_ROWS_PER_INVOCATION = 4;
const MATMUL_ROWS_TOKENS = 8;

const MATVEC_LAYOUTS: Record<MatvecStrategy, { threadsPerRow: number; rowsPerWorkgroup: number }> = {
  workgroup: { threadsPerRow: 16, rowsPerWorkgroup: 4 },
  // 64, not 32: a GPU holds a bounded number of workgroups per core (32 on NVIDIA), so 32-invocation
  // workgroups would cap occupancy at half, and a bandwidth-bound kernel needs it to hide latency.
  subgroup: { threadsPerRow: 64, rowsPerWorkgroup: 1 },
  invocation: { threadsPerRow: 1, rowsPerWorkgroup: 64 },
};

/**
 * The kernel for a shader and weight format. `vec4X` reads activations four floats per load
 * (x_vec4.wgsl; rows whose stride and length are multiples of 4), else one (x_f32.wgsl).
 */
const MATMUL = kernelFamily();
type MatmulShader = 'matvec.wgsl' | 'matvec_subgroup.wgsl' | 'matmul.wgsl' | 'matmul_rows.wgsl';
/** Shader and constants of each variant family member; its index is part of the typed key. */
const SHADER_VARIANTS: ReadonlyArray<{ shader: MatmulShader; constants?: Record<string, number> }> = [
  { shader: 'matvec.wgsl', constants: { THREADS_PER_ROW: MATVEC_LAYOUTS.workgroup.threadsPerRow, ROWS_PER_WORKGROUP: MATVEC_LAYOUTS.workgroup.rowsPerWorkgroup } },
  { shader: 'matvec.wgsl', constants: { THREADS_PER_ROW: MATVEC_LAYOUTS.invocation.threadsPerRow, ROWS_PER_WORKGROUP: MATVEC_LAYOUTS.invocation.rowsPerWorkgroup } },
  { shader: 'matvec_subgroup.wgsl', constants: { THREADS_PER_ROW: MATVEC_LAYOUTS.subgroup.threadsPerRow } },
  { shader: 'matmul_rows.wgsl', constants: { WORKGROUP_SIZE: MATMUL_ROWS_WORKGROUP } },
  { shader: 'matmul.wgsl' },
];
const MATVEC_VARIANT: Record<MatvecStrategy, number> = { workgroup: 0, invocation: 1, subgroup: 2 };
const MATMUL_ROWS_VARIANT = 3;
const MATMUL_TILED_VARIANT = 4;

/** matvec's GLU constant: 0 a plain product, else the activation applied as [gate; up] rows are stored. */
const GLU_CONSTANT: Record<'none' | GluActivation, number> = { none: 0, silu: 1, gelu: 2 };

/** The kernel of variant `which` (SHADER_VARIANTS) for a weight format, preprocessed and compiled once. */
function variant(kernels: KernelCache, which: number, type: GgmlType, vec4X: boolean, glu: 'none' | GluActivation = 'none') {
  const key = ((type * SHADER_VARIANTS.length + which) * 2 + (vec4X ? 1 : 0)) * 3 + GLU_CONSTANT[glu];
  const { shader, constants } = SHADER_VARIANTS[which]!;
  return (
    kernels.variant(MATMUL, key) ??
    kernels.remember(MATMUL, key, compileVariant(kernels, shader, type, glu === 'none' ? constants : { ...constants, GLU: GLU_CONSTANT[glu] }, vec4X, glu))
  );
}

function compileVariant(kernels: KernelCache, shader: MatmulShader, type: GgmlType, constants: Record<string, number> | undefined, vec4X: boolean, glu: 'none' | GluActivation) {
  const include = WEIGHT_INCLUDES[type];
  if (!include) throw new Error(`no matmul kernel for ${ggmlTypeName(type)} weights`);
  const base = shader.replace('.wgsl', '');
  return kernels.get({
    name: `${base}_${include.replace('weights_', '').replace('.wgsl', '')}${vec4X ? '_xv4' : ''}${glu === 'none' ? '' : `_${glu}`}`,
    wgsl: preprocessWgsl(shader, SHADERS, {
      weights: include,
      dot: DOT_INCLUDES[type] ?? 'dot_generic.wgsl',
      x: vec4X ? 'x_vec4.wgsl' : 'x_f32.wgsl',
    }),
    ...(constants ? { constants } : {}),
  });
}

export interface MatmulArgs {
  weight: GpuWeight;
  /** Activations, `tokens` rows of `xStride` floats (the first `weight.k` are used). */
  x: BufferRange;
  /** Output, `tokens` rows of `outStride` floats, row 0 at float `outOffset`. */
  out: BufferRange;
  tokens: number;
  outOffset?: number;
  xStride?: number;
  outStride?: number;
  bias?: GPUBuffer;
  /** Any storage buffer, bound where there is no bias (bindings cannot be empty). */
  dummy: GPUBuffer;
  /**
   * How matvec spreads rows over invocations; default `workgroup`, which works everywhere.
   * `subgroup` only on a device created with the `subgroups` feature (`kernelPaths.matvec`).
   * `invocation` (software adapters) also runs prefill without barriers (matmul_rows.wgsl).
   */
  matvec?: MatvecStrategy;
  /**
   * The weight is [gate; up] (2 n rows, one part): out gets n rows of act(gate) * up, the GLU
   * applied as the products are stored (bias: 2 n values, gate's then up's). Matvec only
   * (`gluMatmulFits`).
   */
  glu?: GluActivation;
}

/** Whether `encodeMatmul` can apply the GLU as it stores: a decode step and a [gate; up] weight in one buffer. */
export function gluMatmulFits(weight: GpuWeight, tokens: number): boolean {
  return tokens <= MATVEC_MAX_TOKENS && weight.parts.length === 1 && weight.rows % 2 === 0;
}

export function encodeMatmul(recorder: StepRecorder, kernels: KernelCache, maxGroupsPerDim: number, args: MatmulArgs): void {
  const { weight, tokens } = args;
  const xStride = args.xStride ?? weight.k;
  const outStride = args.outStride ?? weight.rows;
  if (tokens < 1) return;
  if (args.glu && !gluMatmulFits(weight, tokens)) throw new Error(`matmul ${weight.name}: the GLU store takes <= ${MATVEC_MAX_TOKENS} tokens and an even number of rows in one buffer`);
  const vec4X = weight.k % 4 === 0 && xStride % 4 === 0;
  for (const part of weight.parts) {
    const common = {
      k: weight.k,
      // With the GLU, the output rows: each pairs a gate row with the up row `rows` after it.
      rows: args.glu ? part.rows / 2 : part.rows,
      out_stride: outStride,
      out_offset: part.rowStart,
      out_base: args.outOffset ?? 0,
      x_stride: xStride,
      has_bias: args.bias ? 1 : 0,
      tokens,
    };
    const bind = { weights: part.buffer, x: args.x, bias: args.bias ?? args.dummy, out: args.out };
    if (tokens <= MATVEC_MAX_TOKENS) {
      const strategy = args.matvec ?? 'workgroup';
      const { rowsPerWorkgroup } = MATVEC_LAYOUTS[strategy];
      const [gx, gy] = dispatchGrid(Math.ceil(common.rows / rowsPerWorkgroup), maxGroupsPerDim);
      const kernel = variant(kernels, MATVEC_VARIANT[strategy], weight.type, vec4X, args.glu);
      recorder.dispatch(kernel, {
        params: { ...common, groups_x: gx },
        bind,
        workgroups: [gx, gy, tokens],
        label: `matvec ${weight.name}${args.glu ? ` ${args.glu}` : ''}`,
      });
    } else if (args.matvec === 'invocation') {
      const [gx, gy] = dispatchGrid(Math.ceil(part.rows / (MATMUL_ROWS_WORKGROUP * MATMUL_ROWS_PER_INVOCATION)), maxGroupsPerDim);
      recorder.dispatch(variant(kernels, MATMUL_ROWS_VARIANT, weight.type, vec4X), {
        params: { ...common, groups_x: gx },
        bind,
        workgroups: [gx, gy, Math.ceil(tokens / MATMUL_ROWS_TOKENS)],
        label: `matmul ${weight.name}`,
      });
    } else {
      const gx = Math.ceil(part.rows / MATMUL_TILE);
      recorder.dispatch(variant(kernels, MATMUL_TILED_VARIANT, weight.type, vec4X), {
        params: { ...common, groups_x: gx },
        bind,
        workgroups: [gx, Math.ceil(tokens / MATMUL_TILE)],
        label: `matmul ${weight.name}`,
      });
    }
  }
}

/** Float64 reference: `w` is the dequantized weight, rows x k, row-major. */
export function matmulReference(
  w: ArrayLike<number>,
  k: number,
  rows: number,
  x: ArrayLike<number>,
  tokens: number,
  bias?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(tokens * rows);
  for (let t = 0; t < tokens; t++) {
    for (let r = 0; r < rows; r++) {
      let sum = bias ? bias[r]! : 0;
      const wb = r * k;
      const xb = t * k;
      for (let i = 0; i < k; i++) sum += w[wb + i]! * x[xb + i]!;
      out[t * rows + r] = sum;
    }
  }
  return out;
}

const INDEXED = kernelFamily();
const GROUPED = kernelFamily();

/**
 * An expert-product kernel (matvec_indexed.wgsl or matmul_grouped.wgsl) for a weight format, with
 * the dense products' `weights`, `dot` and `x` slots; `layout` tells variants of one format apart.
 */
function expertKernel(kernels: KernelCache, family: number, shader: 'matvec_indexed.wgsl' | 'matmul_grouped.wgsl', type: GgmlType, vec4X: boolean, constants: Record<string, number>, layout = 0) {
  const include = WEIGHT_INCLUDES[type];
  if (!include) throw new Error(`no matmul kernel for ${ggmlTypeName(type)} weights`);
  const key = (type * 2 + (vec4X ? 1 : 0)) * 2 + layout;
  return (
    kernels.variant(family, key) ??
    kernels.remember(
      family,
      key,
      kernels.get({
        name: `${shader.replace('.wgsl', '')}_${include.replace('weights_', '').replace('.wgsl', '')}${vec4X ? '_xv4' : ''}`,
        wgsl: preprocessWgsl(shader, SHADERS, { weights: include, dot: DOT_INCLUDES[type] ?? 'dot_generic.wgsl', x: vec4X ? 'x_vec4.wgsl' : 'x_f32.wgsl' }),
        constants,
      }),
    )
  );
}

export interface IndexedMatvecArgs {
  /** n_expert matrices of `rows` rows stacked (GGUF [k, rows, n_expert]), any split into parts. */
  weight: GpuWeight;
  /** Rows of one expert's matrix. */
  rows: number;
  /** Expert ids, u32 per (token, slot): pair p uses matrix ids[pairBase + p]. */
  ids: GPUBuffer;
  /** Experts per token: pair p reads activation row (pairBase + p) / used. */
  used: number;
  pairBase: number;
  pairs: number;
  /** Subtracted from the activation row (pairBase + p) / used: per-pair activations of a chunk pass pairBase with used 1. */
  xRowBase?: number;
  x: BufferRange;
  xStride?: number;
  /** Output, `pairs` rows of `outStride` floats from float `outOffset`. */
  out: BufferRange;
  outStride?: number;
  outOffset?: number;
  matvec?: MatvecStrategy;
}

/** The uniforms matvec_indexed.wgsl and matmul_grouped.wgsl share, for one part of the stacked weight. */
function expertParams(args: Omit<IndexedMatvecArgs, 'ids'>, part: { rowStart: number; rows: number }, xStride: number, groupsX: number) {
  return {
    k: args.weight.k,
    rows: args.rows,
    used: args.used,
    pair_base: args.pairBase,
    row_start: part.rowStart,
    part_rows: part.rows,
    out_stride: args.outStride ?? args.rows,
    out_base: args.outOffset ?? 0,
    x_stride: xStride,
    x_row_base: args.xRowBase ?? 0,
    groups_x: groupsX,
  };
}

/**
 * The expert products of a mixture-of-experts FFN (matvec_indexed.wgsl): out[p] = W_{ids[p]} x[p / used],
 * reading only the chosen matrices' rows. One dispatch per part of the weight.
 */
export function encodeIndexedMatvec(recorder: StepRecorder, kernels: KernelCache, maxGroupsPerDim: number, args: IndexedMatvecArgs): void {
  const { weight, rows, pairs } = args;
  if (pairs < 1) return;
  if (weight.rows % rows !== 0) throw new Error(`indexed matvec ${weight.name}: ${weight.rows} rows are not a whole number of ${rows}-row matrices`);
  if (pairs > 65535) throw new RangeError(`indexed matvec ${weight.name}: ${pairs} pairs > 65535 per dispatch`);
  const xStride = args.xStride ?? weight.k;
  const vec4X = weight.k % 4 === 0 && xStride % 4 === 0;
  const layout = MATVEC_LAYOUTS[args.matvec === 'invocation' ? 'invocation' : 'workgroup'];
  const kernel = expertKernel(kernels, INDEXED, 'matvec_indexed.wgsl', weight.type, vec4X, { THREADS_PER_ROW: layout.threadsPerRow, ROWS_PER_WORKGROUP: layout.rowsPerWorkgroup }, layout.threadsPerRow === 1 ? 1 : 0);
  const [gx, gy] = dispatchGrid(Math.ceil(rows / layout.rowsPerWorkgroup), maxGroupsPerDim);
  for (const part of weight.parts) {
    recorder.dispatch(kernel, {
      params: expertParams(args, part, xStride, gx),
      bind: { weights: part.buffer, x: args.x, out: args.out, ids: args.ids },
      workgroups: [gx, gy, pairs],
      label: `matvec indexed ${weight.name}`,
    });
  }
}

/** Pairs per tile of the grouped expert products (matmul_grouped.wgsl's PAIRS). */
export const GROUPED_TILE_PAIRS = 8;
const GROUPED_WORKGROUP = 64;
const GROUPED_ROWS_PER_INVOCATION = 4;

/** The most tiles `pairs` pairs over `nExpert` experts cut into: each expert's last tile may be partial. */
export function groupedTiles(pairs: number, nExpert: number): number {
  return Math.ceil(pairs / GROUPED_TILE_PAIRS) + Math.min(nExpert, pairs);
}

export interface GroupedMatmulArgs extends Omit<IndexedMatvecArgs, 'matvec' | 'ids'> {
  /** The chunk's pairs bucketed by expert and the tiles over them (moe.ts `encodeMoeSort`). */
  order: GPUBuffer;
  tiles: GPUBuffer;
  /** Tiles the grid covers: `groupedTiles(pairs, nExpert)`. */
  maxTiles: number;
}

/**
 * The expert products of a mixture-of-experts prefill grouped by expert (matmul_grouped.wgsl): the
 * same result as `encodeIndexedMatvec`, but each workgroup takes one expert and up to 8 of the pairs
 * that chose it, so an expert's rows are read once per 8 pairs. The grid is `maxTiles` deep whatever
 * the routing; empty tiles exit. One dispatch per part of the weight.
 */
export function encodeGroupedMatmul(recorder: StepRecorder, kernels: KernelCache, maxGroupsPerDim: number, args: GroupedMatmulArgs): void {
  const { weight, rows, pairs } = args;
  if (pairs < 1) return;
  if (weight.rows % rows !== 0) throw new Error(`grouped matmul ${weight.name}: ${weight.rows} rows are not a whole number of ${rows}-row matrices`);
  if (args.maxTiles > 65535) throw new RangeError(`grouped matmul ${weight.name}: ${args.maxTiles} tiles > 65535 per dispatch`);
  const xStride = args.xStride ?? weight.k;
  const vec4X = weight.k % 4 === 0 && xStride % 4 === 0;
  const kernel = expertKernel(kernels, GROUPED, 'matmul_grouped.wgsl', weight.type, vec4X, { WORKGROUP_SIZE: GROUPED_WORKGROUP });
  const [gx, gy] = dispatchGrid(Math.ceil(rows / (GROUPED_WORKGROUP * GROUPED_ROWS_PER_INVOCATION)), maxGroupsPerDim);
  for (const part of weight.parts) {
    recorder.dispatch(kernel, {
      params: expertParams(args, part, xStride, gx),
      bind: { weights: part.buffer, x: args.x, out: args.out, order: args.order, tiles: args.tiles },
      workgroups: [gx, gy, args.maxTiles],
      label: `matmul grouped ${weight.name}`,
    });
  }
}

/** Float64 reference of encodeIndexedMatvec over dequantized stacked weights [n_expert * rows][k]. */
export function indexedMatvecReference(w: Float64Array | Float32Array, k: number, rows: number, ids: ArrayLike<number>, used: number, x: Float32Array, xStride: number): Float64Array {
  const out = new Float64Array(ids.length * rows);
  for (let p = 0; p < ids.length; p++) {
    const xb = Math.floor(p / used) * xStride;
    for (let r = 0; r < rows; r++) {
      const wb = (ids[p]! * rows + r) * k;
      let acc = 0;
      for (let i = 0; i < k; i++) acc += w[wb + i]! * x[xb + i]!;
      out[p * rows + r] = acc;
    }
  }
  return out;
}
