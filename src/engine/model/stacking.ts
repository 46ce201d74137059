/**
 * Weights the loader stacks into one matrix where the file keeps them apart: q, k and v into one
 * [q; k; v] projection (as phi3's `attn_qkv`), and gate and up into one [gate; up] (as phi3's
 * `ffn_up`). A stacked projection is one matmul dispatch instead of three or two, and the
 * [gate; up] one lets the GPU apply the GLU as it stores (`Backend.gluMatmul`). The forward pass
 * already has both layouts (it follows the weights it gets), so stacking changes what is loaded,
 * never the model: the bytes are the file's, rows one after the other.
 *
 * The data allows it where the parts share one format (rows of one format concatenate; Q4_K_M
 * files keep attn_v in Q6_K in some blocks, whose v then stays apart), biases are on all parts or
 * none, and no per-head q/k norm reads q and k as buffers of their own (qwen3, gemma3).
 */
import type { GgufTensorInfo } from '../gguf/types.ts';
import type { ModelConfig } from './config.ts';
import { LAYER_TENSORS, layerTensorName, layerTensorsOf, type LayerField } from './layer-tensors.ts';

/** A field of a loaded block and the file's fields it is made of, in row order (one: a plain tensor). */
export interface BlockField {
  field: LayerField;
  parts: readonly LayerField[];
}

export interface StackedLoad {
  /** The config the loaded blocks follow: the file's, with the stacked layouts switched on. */
  config: ModelConfig;
  /** Per block, what to load into each field. */
  blocks: BlockField[][];
}

/**
 * Which of q|k|v and gate|up this file's tensors allow to stack (see the module comment). Where
 * q and k share a format in every block but v does not in some, those blocks stack q|k and keep v
 * apart: its matmul writes the v rows of the same [q | k | v] buffer.
 */
export function stackedLoad(config: ModelConfig, tensors: readonly GgufTensorInfo[]): StackedLoad {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const typeOf = (il: number, field: LayerField) => byName.get(layerTensorName(il, LAYER_TENSORS[field]))?.type;
  const sameType = (il: number, fields: readonly LayerField[]) => {
    const types = fields.map((f) => typeOf(il, f));
    return types[0] !== undefined && types.every((t) => t === types[0]);
  };
  // Blocks without the fields (a hybrid's recurrent ones, mamba2's FFN-less ones) do not count.
  const everyBlock = (fields: readonly LayerField[]) => config.layers.every((_, il) => !fields.some((f) => byName.has(layerTensorName(il, LAYER_TENSORS[f]))) || sameType(il, fields));
  const t = config.tensors;
  const qkvBiases = [t.qBias, t.kBias, t.vBias];
  const qkv = !t.fusedQkv && !config.qkNorm && (qkvBiases.every(Boolean) || !qkvBiases.some(Boolean)) && everyBlock(['q', 'k']);
  const gateUp = !config.fusedGateUp && t.ffnGateBias === t.ffnUpBias && everyBlock(['ffnGate', 'ffnUp']);
  const stacked: ModelConfig = {
    ...config,
    fusedGateUp: config.fusedGateUp || gateUp,
    tensors: {
      ...t,
      ...(qkv ? { fusedQkv: true, qkvBias: t.qBias, qBias: false, kBias: false, vBias: false } : {}),
      ...(gateUp ? { ffnGateBias: false } : {}),
    },
  };
  const blocks = config.layers.map((layer, il) => {
    const withV = sameType(il, ['q', 'k', 'v']);
    return layerTensorsOf(stacked, layer).flatMap(([field]): BlockField[] => {
      if (qkv && field === 'qkv') return withV ? [{ field, parts: ['q', 'k', 'v'] }] : [{ field, parts: ['q', 'k'] }, { field: 'v', parts: ['v'] }];
      if (qkv && field === 'qkvBias') return withV ? [{ field, parts: ['qBias', 'kBias', 'vBias'] }] : [{ field, parts: ['qBias', 'kBias'] }, { field: 'vBias', parts: ['vBias'] }];
      if (gateUp && field === 'ffnUp') return [{ field, parts: ['ffnGate', 'ffnUp'] }];
      if (gateUp && field === 'ffnUpBias') return [{ field, parts: ['ffnGateBias', 'ffnUpBias'] }];
      return [{ field, parts: [field] }];
    });
  });
  return { config: stacked, blocks };
}
