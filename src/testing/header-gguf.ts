/**
 * Header-only GGUF files for config tests: metadata from a plain object, tensors by name and shape
 * (no data), so readModelConfig and checkTensors can be exercised without writing a file.
 */
import { GgmlType } from '../engine/gguf/ggml-types.ts';
import { GgufValueType, type GgufFile, type GgufTensorInfo, type GgufTypeInfo, type GgufValue } from '../engine/gguf/types.ts';

export type Meta = Record<string, GgufValue | undefined>;

/** A header-only GgufFile: numbers are stored as u32 when whole, f32 otherwise; number[] as u32 arrays. */
export function headerOnlyGguf(meta: Meta, tensors: Array<Pick<GgufTensorInfo, 'name' | 'shape'> & { type?: GgmlType }> = []): GgufFile {
  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufTypeInfo>();
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined) continue;
    metadata.set(k, v);
    if (typeof v === 'string') metadataTypes.set(k, { type: GgufValueType.STRING });
    else if (typeof v === 'boolean') metadataTypes.set(k, { type: GgufValueType.BOOL });
    else if (typeof v === 'number') metadataTypes.set(k, { type: Number.isInteger(v) ? GgufValueType.UINT32 : GgufValueType.FLOAT32 });
    else if (Array.isArray(v) && typeof v[0] === 'string') metadataTypes.set(k, { type: GgufValueType.ARRAY, elementType: GgufValueType.STRING });
    else if (v instanceof Uint32Array) metadataTypes.set(k, { type: GgufValueType.ARRAY, elementType: GgufValueType.UINT32 });
    else throw new Error(`test helper: unsupported value for ${k}`);
  }
  return {
    version: 3,
    metadata,
    metadataTypes,
    tensors: tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      type: t.type ?? GgmlType.F32,
      offset: 0,
      fileOffset: 0,
      byteSize: 0,
      elementCount: t.shape.reduce((a, b) => a * b, 1),
    })),
    alignment: 32,
    dataOffset: 0,
    fileSize: 0,
    invalidUtf8Keys: [],
  };
}

const TOKENS = Array.from({ length: 100 }, (_, i) => `t${i}`);

/**
 * A small model's metadata: 64 wide, 4 heads of 16, 2 KV heads, 2 layers, 100 tokens; with the keys
 * its architecture requires (granite's logit_scale; 4 experts, 2 used for the MoE ones).
 */
/** Mamba2 sizes: inner 128 in 4 heads of 32, state 16, 2 groups, conv 4. */
function ssmMeta(arch: string): Meta {
  return { [`${arch}.ssm.conv_kernel`]: 4, [`${arch}.ssm.inner_size`]: 128, [`${arch}.ssm.state_size`]: 16, [`${arch}.ssm.time_step_rank`]: 4, [`${arch}.ssm.group_count`]: 2 };
}

export function smallModelMeta(arch: string, extra: Meta = {}): Meta {
  return {
    'general.architecture': arch,
    'tokenizer.ggml.tokens': TOKENS,
    [`${arch}.context_length`]: 2048,
    [`${arch}.embedding_length`]: 64,
    [`${arch}.block_count`]: 2,
    [`${arch}.feed_forward_length`]: 96,
    [`${arch}.attention.head_count`]: 4,
    [`${arch}.attention.head_count_kv`]: 2,
    [`${arch}.attention.layer_norm_rms_epsilon`]: 1e-5,
    ...(arch === 'granite' || arch === 'granitemoe' ? { [`${arch}.logit_scale`]: 8 } : {}),
    ...(arch.endsWith('moe') ? { [`${arch}.expert_count`]: 4, [`${arch}.expert_used_count`]: 2 } : {}),
    ...(arch === 'olmoe' ? { 'olmoe.attention.head_count_kv': 4 } : {}),
    // Hybrids: layer 0 recurrent (head_count_kv 0), layer 1 attention; mamba2: every layer an SSM, no FFN.
    ...(arch === 'lfm2' ? { 'lfm2.attention.head_count_kv': Uint32Array.of(0, 2), 'lfm2.shortconv.l_cache': 3 } : {}),
    ...(arch === 'granitehybrid' || arch === 'mamba2' ? ssmMeta(arch) : {}),
    ...(arch === 'granitehybrid' ? { 'granitehybrid.logit_scale': 8, 'granitehybrid.attention.head_count_kv': Uint32Array.of(0, 2) } : {}),
    ...(arch === 'mamba2' ? { 'mamba2.feed_forward_length': 0, 'mamba2.attention.head_count': 0, 'mamba2.attention.head_count_kv': undefined } : {}),
    ...extra,
  };
}
