/**
 * Which ggml type each tensor gets in a quantization mix: llama-quantize's rules
 * (src/llama-quant.cpp `llama_tensor_get_type` and its helpers), for the mixes the engine runs.
 *
 * The rules depend on the order tensors are visited in (attn_v and, without experts, ffn_down count
 * their position), which is the order llama.cpp's loader sorts its weights in: global tensors first,
 * then by block number, then by name. {@link llamaTensorOrder} gives that order; the output file
 * also stores its tensors in it.
 */
import { GgmlType, ggmlTypeInfo } from '../gguf/ggml-types.ts';
import type { GgufTensorInfo, GgufValue } from '../gguf/types.ts';
import { QuantizeError } from './errors.ts';

/** The mixes `hearth quantize` writes, by llama.cpp's names, with their llama_ftype ids. */
export const QUANT_MIXES = {
  Q8_0: { fileType: 7, defaultType: GgmlType.Q8_0 },
  Q6_K: { fileType: 18, defaultType: GgmlType.Q6_K },
  Q5_K_M: { fileType: 17, defaultType: GgmlType.Q5_K },
  Q4_K_M: { fileType: 15, defaultType: GgmlType.Q4_K },
  Q4_0: { fileType: 2, defaultType: GgmlType.Q4_0 },
} as const;

export type QuantMix = keyof typeof QUANT_MIXES;

export function isQuantMix(name: string): name is QuantMix {
  return Object.hasOwn(QUANT_MIXES, name);
}

/** The mix for a name given in any case ("q4_k_m"); throws a QuantizeError naming the choices. */
export function parseQuantMix(name: string): QuantMix {
  const upper = name.toUpperCase();
  if (isQuantMix(upper)) return upper;
  throw new QuantizeError(`unknown quantization type '${name}'; choose one of ${Object.keys(QUANT_MIXES).join(', ')}`, { type: name });
}

type Category =
  | 'token_embd'
  | 'attn_q'
  | 'attn_v'
  | 'attn_k'
  | 'attn_qkv'
  | 'attn_kv_b'
  | 'attn_output'
  | 'ffn_up'
  | 'ffn_gate'
  | 'ffn_down'
  | 'output'
  | 'other';

/** llama.cpp's broad tensor categories; the first match wins, in this order. */
function categoryOf(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  const contains: Array<[string, Category]> = [
    ['attn_qkv.weight', 'attn_qkv'],
    ['attn_kv_b.weight', 'attn_kv_b'],
    ['attn_v.weight', 'attn_v'],
    ['attn_k.weight', 'attn_k'],
    ['attn_q.weight', 'attn_q'],
    ['attn_output.weight', 'attn_output'],
    ['ffn_up', 'ffn_up'],
    ['ffn_gate', 'ffn_gate'],
    ['ffn_down', 'ffn_down'],
  ];
  for (const [part, category] of contains) if (name.includes(part)) return category;
  return 'other';
}

/** attn_v-like tensors, which llama.cpp treats as the most sensitive to quantization. */
function isAttnVLike(c: Category): boolean {
  return c === 'attn_v' || c === 'attn_qkv' || c === 'attn_kv_b';
}

/** Name parts of 2-D weights that llama.cpp never quantizes (small, or not matrices in use). */
const NEVER_QUANTIZED = [
  '_norm.weight', 'ffn_gate_inp.weight', 'ffn_gate_tid2eid.weight', 'altup', 'laurel', 'per_layer_model_proj',
  'ssm_conv1d', 'shortconv.conv.weight', 'indexer.k_proj.weight', 'indexer.q_proj.weight',
  'time_mix_first.weight', 'time_mix_w0.weight', 'time_mix_w1.weight', 'time_mix_w2.weight', 'time_mix_v0.weight',
  'time_mix_v1.weight', 'time_mix_v2.weight', 'time_mix_a0.weight', 'time_mix_a1.weight', 'time_mix_a2.weight',
  'time_mix_g1.weight', 'time_mix_g2.weight', 'time_mix_decay_w1.weight', 'time_mix_decay_w2.weight',
  'time_mix_lerp_fused.weight', 'attn_rel_b.weight', '.position_embd', 'sam.pos_embd', 'sam.neck.', 'sam.net_',
  '.rel_pos', '.patch_embd', '.patch_merger', 'a.rvq.codebook', 'mm.a.code_embd',
];

/** llama.cpp's tensor_allows_quantization: matrices (2-D or more) named "*weight", minus the exceptions. */
export function allowsQuantization(t: Pick<GgufTensorInfo, 'name' | 'shape'>): boolean {
  // ggml_n_dims ignores trailing dimensions of 1.
  let dims = t.shape.length;
  while (dims > 1 && t.shape[dims - 1] === 1) dims--;
  if (dims < 2) return false;
  const name = t.name;
  if (!name.endsWith('weight')) return false;
  if (name === 'position_embd.weight' || name === 'token_types.weight') return false;
  return !NEVER_QUANTIZED.some((part) => name.includes(part));
}

/** The block number of "blk.N.…", or -1. */
function blockOf(name: string): number {
  const m = /^blk\.(-?\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
}

/** llama.cpp's loader order (its weights map): block -1 (global) first, then by block, then by name. */
export function llamaTensorOrder<T extends { name: string }>(tensors: readonly T[]): T[] {
  const keyed = tensors.map((t) => ({ t, block: blockOf(t.name) }));
  keyed.sort((a, b) => a.block - b.block || (a.t.name < b.t.name ? -1 : a.t.name > b.t.name ? 1 : 0));
  return keyed.map((k) => k.t);
}

/** What the rules read from the model's metadata. */
export interface MixModelInfo {
  arch: string;
  nLayer: number;
  nExpert: number;
  /** llama.cpp's LLM_TYPE_70B: a few architectures at 80 layers get attn_v one step higher. */
  is70B: boolean;
}

function metaNumber(metadata: ReadonlyMap<string, GgufValue>, key: string): number | undefined {
  const v = metadata.get(key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  // Per-layer arrays (head counts of hybrid models): the first layer's value.
  if (ArrayBuffer.isView(v) && 'length' in v && (v as ArrayLike<number | bigint>).length > 0) return Number((v as ArrayLike<number | bigint>)[0]);
  return undefined;
}

export function mixModelInfo(metadata: ReadonlyMap<string, GgufValue>): MixModelInfo {
  const arch = metadata.get('general.architecture');
  if (typeof arch !== 'string') throw new QuantizeError('the model has no general.architecture', {});
  const nLayer = metaNumber(metadata, `${arch}.block_count`);
  if (nLayer === undefined || !Number.isInteger(nLayer) || nLayer < 0) {
    throw new QuantizeError(`the model has no valid ${arch}.block_count`, { arch });
  }
  const nExpert = metaNumber(metadata, `${arch}.expert_count`) ?? 0;
  const nHead = metaNumber(metadata, `${arch}.attention.head_count`);
  const nHeadKv = metaNumber(metadata, `${arch}.attention.head_count_kv`) ?? nHead;
  let is70B = false;
  if (arch === 'llama') is70B = nLayer === 80 && nHead !== nHeadKv;
  else if (arch === 'qwen2' || arch === 'deci' || arch === 'olmo') is70B = nLayer === 80;
  else if (arch === 'jais2') is70B = nLayer === 68;
  return { arch, nLayer, nExpert, is70B };
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between. */
export function useMoreBits(i: number, n: number): boolean {
  const eighth = Math.trunc(n / 8);
  return i < eighth || i >= Math.trunc((7 * n) / 8) || (i - eighth) % 3 === 2;
}

/**
 * llama.cpp's tensor_type_fallback: `type`, or when `ncols` is not a multiple of its block, the
 * smaller-block type llama-quantize uses instead (F16 when that does not fit either).
 */
export function fallbackType(type: GgmlType, ncols: number): GgmlType {
  const block = ggmlTypeInfo(type)!.blockSize;
  if (ncols % block === 0) return type;
  const next: Partial<Record<GgmlType, GgmlType>> = {
    [GgmlType.Q2_K]: GgmlType.Q4_0,
    [GgmlType.Q3_K]: GgmlType.Q4_0,
    [GgmlType.Q4_K]: GgmlType.Q5_0,
    [GgmlType.Q5_K]: GgmlType.Q5_1,
    [GgmlType.Q6_K]: GgmlType.Q8_0,
    [GgmlType.IQ4_XS]: GgmlType.IQ4_NL,
  };
  const fallback = next[type] ?? (block <= 32 ? type : undefined);
  if (fallback === undefined) throw new QuantizeError(`no fallback type for ${ggmlTypeInfo(type)!.name}`, {});
  return ncols % ggmlTypeInfo(fallback)!.blockSize === 0 ? fallback : GgmlType.F16;
}

export interface TensorTypeChoice {
  tensor: GgufTensorInfo;
  /** The type it is written in (its own type when it is not quantized). */
  type: GgmlType;
  /** The mix wanted a type whose block does not divide the row; `type` is the fallback. */
  fellBack: boolean;
}

export interface ChooseTypesOptions {
  /** An importance matrix will be used (it changes ffn_down of Q4_0 in the first layers). */
  hasImatrix?: boolean;
}

/**
 * Each tensor's type under `mix`, in llama.cpp's tensor order (the order to write them in).
 */
export function chooseTensorTypes(
  tensors: readonly GgufTensorInfo[],
  metadata: ReadonlyMap<string, GgufValue>,
  mix: QuantMix,
  options: ChooseTypesOptions = {},
): TensorTypeChoice[] {
  const model = mixModelInfo(metadata);
  const ordered = llamaTensorOrder(tensors);
  const categories = ordered.map((t) => categoryOf(t.name));
  const nAttnV = categories.filter(isAttnVLike).length;
  const tied = !categories.includes('output');
  const falcon = model.arch === 'falcon';
  const defaultType = QUANT_MIXES[mix].defaultType;
  let iAttnV = 0;
  let iFfnDown = 0;

  /** The layer a per-layer rule uses: the visit count without experts, the name's block with them. */
  const layerOf = (counter: number, name: string): number => {
    if (model.nExpert <= 1) return counter;
    const block = blockOf(name);
    if (block < 0 || block >= model.nLayer) throw new QuantizeError(`cannot tell the layer of tensor ${name}`, { tensor: name });
    return block;
  };

  const rule = (t: GgufTensorInfo, category: Category): GgmlType => {
    let type = defaultType as GgmlType;
    if (category === 'output' || (tied && category === 'token_embd')) {
      const block = ggmlTypeInfo(type)!.blockSize;
      if (falcon || t.shape[0]! % block !== 0) type = GgmlType.Q8_0;
      else if (type !== GgmlType.Q8_0) type = GgmlType.Q6_K;
    } else if (category === 'token_embd') {
      // None of these mixes changes an untied token embedding.
    } else if (isAttnVLike(category)) {
      if ((mix === 'Q4_K_M' || mix === 'Q5_K_M') && useMoreBits(iAttnV, nAttnV)) type = GgmlType.Q6_K;
      if (model.is70B && (type === GgmlType.Q3_K || type === GgmlType.Q4_K)) type = GgmlType.Q5_K;
      if (model.nExpert === 8) type = GgmlType.Q8_0;
      iAttnV++;
    } else if (category === 'attn_k') {
      if (model.nExpert === 8) type = GgmlType.Q8_0;
    } else if (category === 'ffn_down') {
      const layer = layerOf(iFfnDown, t.name);
      const n = model.nLayer;
      if (mix === 'Q4_K_M') {
        if (falcon) type = layer < Math.trunc(n / 16) ? GgmlType.Q6_K : useMoreBits(layer, n) ? GgmlType.Q5_K : GgmlType.Q4_K;
        else if (useMoreBits(layer, n)) type = GgmlType.Q6_K;
      } else if (mix === 'Q5_K_M') {
        if (useMoreBits(layer, n)) type = GgmlType.Q6_K;
      } else if (mix === 'Q4_0' && options.hasImatrix && layer < Math.trunc(n / 8)) {
        type = GgmlType.Q4_1;
      }
      iFfnDown++;
    } else if (category === 'attn_output') {
      if (!falcon && model.nExpert === 8 && mix === 'Q4_K_M') type = GgmlType.Q5_K;
    }
    return type;
  };

  return ordered.map((tensor, i) => {
    if (!allowsQuantization(tensor)) return { tensor, type: tensor.type, fellBack: false };
    const wanted = rule(tensor, categories[i]!);
    const type = fallbackType(wanted, tensor.shape[0]!);
    return { tensor, type, fellBack: type !== wanted };
  });
}
