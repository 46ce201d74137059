/**
 * Token embedding lookup: out[t, :] = scale * dequantized row ids[t] of a GGUF embedding table, in
 * any format the matmul kernels read (the same `weights` includes). Tables larger than one binding
 * are split by rows (see weights.ts); each part gets one dispatch and writes only the tokens whose
 * ids it holds. Ids at or past the table's row count produce a row of zeros: a corrupt or
 * adversarial id never reads out of bounds. The CPU reference is `embedReference` below.
 */
import { ggmlTypeName, type GgmlType } from '../../../gguf/ggml-types.ts';
import { SHADERS } from '../../../../shaders/index.ts';
import { kernelFamily, type KernelCache } from '../kernel.ts';
import { preprocessWgsl } from '../preprocess.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import type { GpuWeight } from '../weights.ts';
import { dispatchGrid } from './common.ts';
import { weightInclude } from './matmul.ts';

const WORKGROUP_SIZE = 64;

export function embedSupports(type: GgmlType): boolean {
  return weightInclude(type) !== undefined;
}

const EMBED = kernelFamily();

function compileEmbed(kernels: KernelCache, type: GgmlType) {
  const include = weightInclude(type);
  if (!include) throw new Error(`no embedding kernel for ${ggmlTypeName(type)} tables`);
  return kernels.get({
    name: `embed_${include.replace('weights_', '').replace('.wgsl', '')}`,
    wgsl: preprocessWgsl('embed.wgsl', SHADERS, { weights: include }),
    constants: { WORKGROUP_SIZE },
  });
}

export interface EmbedArgs {
  /** The embedding table: `rows` = vocabulary size, `k` = embedding size. */
  table: GpuWeight;
  /** `tokens` u32 token ids (a non-zero offset must be a multiple of minStorageBufferOffsetAlignment). */
  ids: BufferRange;
  /** Output, `tokens` rows of `outStride` floats (the first `table.k` are written). */
  out: BufferRange;
  tokens: number;
  outStride?: number;
  /** Multiplies every value (Gemma scales embeddings by sqrt(k)); default 1, which is exact. */
  scale?: number;
}

export function encodeEmbed(recorder: StepRecorder, kernels: KernelCache, maxGroupsPerDim: number, args: EmbedArgs): void {
  const { table, tokens } = args;
  if (tokens < 1) return;
  const kernel = kernels.variant(EMBED, table.type) ?? kernels.remember(EMBED, table.type, compileEmbed(kernels, table.type));
  const gx = Math.ceil(Math.ceil(table.k / 4) / WORKGROUP_SIZE);
  const [gy, gz] = dispatchGrid(tokens, maxGroupsPerDim);
  table.parts.forEach((part, i) => {
    recorder.dispatch(kernel, {
      params: {
        k: table.k,
        rows: part.rows,
        row_start: part.rowStart,
        total_rows: table.rows,
        write_missing: i === table.parts.length - 1 ? 1 : 0,
        tokens,
        out_stride: args.outStride ?? table.k,
        groups_y: gy,
        scale: args.scale ?? 1,
      },
      bind: { weights: part.buffer, ids: args.ids, out: args.out },
      workgroups: [gx, gy, gz],
      label: `embed ${table.name}`,
    });
  });
}

/**
 * CPU reference: rows `ids[t]` of the dequantized table `values` (rows x k), times `scale` in f32
 * arithmetic as the kernel does it; zeros for ids out of range.
 */
export function embedReference(values: ArrayLike<number>, k: number, rows: number, ids: ArrayLike<number>, scale = 1): Float32Array {
  const out = new Float32Array(ids.length * k);
  const s = Math.fround(scale);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (id >= rows) continue;
    for (let c = 0; c < k; c++) out[t * k + c] = Math.fround(values[id * k + c]! * s);
  }
  return out;
}
