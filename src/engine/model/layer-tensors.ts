/**
 * One block's tensors, described once. Each entry of {@link LAYER_TENSORS} is one GGUF tensor of a
 * transformer block: its name, its shape in terms of the config, which models have it, whether it
 * stays in the file's format (a matrix, read by the matmul kernels) or is widened to f32 at load (a
 * vector: norms, biases), and for a matrix the activations it reads and writes. From this table
 * come the block tensors a file must hold (`modelTensors`, tensors.ts), the {@link LayerWeights}
 * the forward pass gets and how the loader fills them, and the width of each activation buffer
 * (`scratchWidths`, loader.ts). A new tensor (an expert, an adapter pair) is one entry here plus
 * its use in forward.ts; a new activation it writes is a field of `Scratch`.
 *
 * Entries are in llama.cpp's load order (src/models/<arch>.cpp `load_arch_tensors`), which is the
 * order a file's missing or misshapen tensors are listed in.
 */
import type { Activation, Vector, Weight } from '../backend/ops.ts';
import type { LayerConfig, ModelConfig } from './config.ts';
import type { Scratch } from './loader.ts';

/** The activation buffers of `Scratch` a matmul can read from or write to. */
export type ActivationName = {
  [K in keyof Scratch]-?: NonNullable<Scratch[K]> extends Activation ? K : never;
}[keyof Scratch];

interface TensorEntry {
  /** Name inside block `il`: `attn_q` is `blk.{il}.attn_q.weight` (or `.bias`). */
  gguf: string;
  suffix?: 'bias';
  /** GGUF order (ne0, the row length, first): a projection from n_in to n_out is [n_in, n_out]. */
  shape: (c: ModelConfig, layer: LayerConfig) => number[];
  /** Which models have it; without `when`, every model's every block does. */
  when?: (c: ModelConfig) => boolean;
}

interface VectorEntry extends TensorEntry {
  kind: 'vector';
}

interface MatrixEntry extends TensorEntry {
  kind: 'matrix';
  /** Its input rows (shape[0] wide) and output rows (shape[1] wide): this sizes the scratch. */
  reads: ActivationName;
  writes: ActivationName | ((c: ModelConfig) => ActivationName);
}

export type LayerTensor = VectorEntry | MatrixEntry;

const qkvWidth = (c: ModelConfig) => c.qDim + c.kvDimK + c.kvDimV;
const separateQkv = (c: ModelConfig) => !c.tensors.fusedQkv;
/** ffn_up holds [gate; up] stacked when fused (phi3). */
const upWidth = (c: ModelConfig, l: LayerConfig) => (c.fusedGateUp ? 2 * l.nFf : l.nFf);
const dense = (c: ModelConfig) => !c.moe;
const sharedExpert = (c: ModelConfig) => (c.moe?.nFfShexp ?? 0) > 0;

/**
 * One block's tensors, keyed by their {@link LayerWeights} field. Shapes in the comments are the
 * matmul's [rows][k] (GGUF [k, rows]).
 */
export const LAYER_TENSORS = {
  /** f32[nEmbd] */
  attnNorm: { gguf: 'attn_norm', kind: 'vector', shape: (c) => [c.nEmbd] },
  /** [qDim + kvDimK + kvDimV][nEmbd] when the file fuses q, k, v (phi3); else q, k, v. */
  qkv: { gguf: 'attn_qkv', kind: 'matrix', when: (c) => c.tensors.fusedQkv, shape: (c) => [c.nEmbd, qkvWidth(c)], reads: 'cur', writes: 'qkv' },
  qkvBias: { gguf: 'attn_qkv', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.qkvBias, shape: (c) => [qkvWidth(c)] },
  /** [qDim][nEmbd], [kvDimK][nEmbd], [kvDimV][nEmbd] */
  q: { gguf: 'attn_q', kind: 'matrix', when: separateQkv, shape: (c) => [c.nEmbd, c.qDim], reads: 'cur', writes: 'q' },
  k: { gguf: 'attn_k', kind: 'matrix', when: separateQkv, shape: (c) => [c.nEmbd, c.kvDimK], reads: 'cur', writes: 'k' },
  v: { gguf: 'attn_v', kind: 'matrix', when: separateQkv, shape: (c) => [c.nEmbd, c.kvDimV], reads: 'cur', writes: 'v' },
  qBias: { gguf: 'attn_q', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.qBias, shape: (c) => [c.qDim] },
  kBias: { gguf: 'attn_k', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.kBias, shape: (c) => [c.kvDimK] },
  vBias: { gguf: 'attn_v', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.vBias, shape: (c) => [c.kvDimV] },
  /** f32[headDimK], per-head RMS norms (qwen3, gemma3); f32[qDim] and f32[kvDimK] over whole rows (olmoe). */
  qNorm: { gguf: 'attn_q_norm', kind: 'vector', when: (c) => c.qkNorm, shape: (c) => [c.qkNormOver === 'row' ? c.qDim : c.headDimK] },
  kNorm: { gguf: 'attn_k_norm', kind: 'vector', when: (c) => c.qkNorm, shape: (c) => [c.qkNormOver === 'row' ? c.kvDimK : c.headDimK] },
  /** [nEmbd][nHead * headDimV] */
  attnOutput: { gguf: 'attn_output', kind: 'matrix', shape: (c) => [c.nHead * c.headDimV, c.nEmbd], reads: 'attn', writes: 'cur' },
  attnOutputBias: { gguf: 'attn_output', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.attnOutBias, shape: (c) => [c.nEmbd] },
  /** f32[nEmbd] (gemma) */
  postAttnNorm: { gguf: 'post_attention_norm', kind: 'vector', when: (c) => c.postNorms, shape: (c) => [c.nEmbd] },
  /** f32[nEmbd] */
  ffnNorm: { gguf: 'ffn_norm', kind: 'vector', shape: (c) => [c.nEmbd] },
  /** [nFf][nEmbd]; absent when ffnUp is fused [2 nFf][nEmbd] = [gate; up] (phi3). */
  ffnGate: { gguf: 'ffn_gate', kind: 'matrix', when: (c) => !c.fusedGateUp && dense(c), shape: (c, l) => [c.nEmbd, l.nFf], reads: 'cur', writes: 'gate' },
  /** [nFf][nEmbd], or [2 nFf][nEmbd] fused; the fused one writes gate and up side by side into `gate`. */
  ffnUp: { gguf: 'ffn_up', kind: 'matrix', when: dense, shape: (c, l) => [c.nEmbd, upWidth(c, l)], reads: 'cur', writes: (c) => (c.fusedGateUp ? 'gate' : 'up') },
  /** [nEmbd][nFf] */
  ffnDown: { gguf: 'ffn_down', kind: 'matrix', when: dense, shape: (c, l) => [l.nFf, c.nEmbd], reads: 'ffh', writes: 'cur' },
  // Mixture of experts (moe-config.ts): the router [nExpert][nEmbd], then each expert's gate, up and
  // down stacked expert after expert (GGUF [k, rows, nExpert]: expert e is rows e*rows ..< (e+1)*rows),
  // run by the backend's moeFfn on the tokens' gathered rows (moeX -> moeGate, moeUp -> moeH -> moeY).
  ffnGateInp: { gguf: 'ffn_gate_inp', kind: 'matrix', when: (c) => !dense(c), shape: (c) => [c.nEmbd, c.moe!.nExpert], reads: 'cur', writes: 'moeLogits' },
  ffnGateExps: { gguf: 'ffn_gate_exps', kind: 'matrix', when: (c) => !dense(c), shape: (c) => [c.nEmbd, c.moe!.nFfExp, c.moe!.nExpert], reads: 'moeX', writes: 'moeGate' },
  ffnDownExps: { gguf: 'ffn_down_exps', kind: 'matrix', when: (c) => !dense(c), shape: (c) => [c.moe!.nFfExp, c.nEmbd, c.moe!.nExpert], reads: 'moeH', writes: 'moeY' },
  ffnUpExps: { gguf: 'ffn_up_exps', kind: 'matrix', when: (c) => !dense(c), shape: (c) => [c.nEmbd, c.moe!.nFfExp, c.moe!.nExpert], reads: 'moeX', writes: 'moeUp' },
  /** f32[nEmbd]: the shared expert's sigmoid gate (qwen2moe). */
  ffnGateInpShexp: { gguf: 'ffn_gate_inp_shexp', kind: 'vector', when: (c) => c.moe?.sharedGate ?? false, shape: (c) => [c.nEmbd] },
  /** The shared expert, on every token: [nFfShexp][nEmbd] gate and up, [nEmbd][nFfShexp] down. */
  ffnGateShexp: { gguf: 'ffn_gate_shexp', kind: 'matrix', when: sharedExpert, shape: (c) => [c.nEmbd, c.moe!.nFfShexp], reads: 'cur', writes: 'moeGate' },
  ffnDownShexp: { gguf: 'ffn_down_shexp', kind: 'matrix', when: sharedExpert, shape: (c) => [c.moe!.nFfShexp, c.nEmbd], reads: 'moeH', writes: 'moeY' },
  ffnUpShexp: { gguf: 'ffn_up_shexp', kind: 'matrix', when: sharedExpert, shape: (c) => [c.nEmbd, c.moe!.nFfShexp], reads: 'cur', writes: 'moeUp' },
  ffnGateBias: { gguf: 'ffn_gate', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.ffnGateBias, shape: (_, l) => [l.nFf] },
  ffnUpBias: { gguf: 'ffn_up', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.ffnUpBias, shape: (c, l) => [upWidth(c, l)] },
  ffnDownBias: { gguf: 'ffn_down', suffix: 'bias', kind: 'vector', when: (c) => c.tensors.ffnDownBias, shape: (c) => [c.nEmbd] },
  /** f32[nEmbd] (gemma) */
  postFfnNorm: { gguf: 'post_ffw_norm', kind: 'vector', when: (c) => c.postNorms, shape: (c) => [c.nEmbd] },
} as const satisfies Record<string, LayerTensor>;

type Table = typeof LAYER_TENSORS;
type LoadedAs<E> = E extends { kind: 'matrix' } ? Weight : Vector;

/**
 * One block's tensors as the forward pass gets them, one field per {@link LAYER_TENSORS} entry:
 * a `Weight` for a matrix, an f32 `Vector` otherwise, undefined where the model has none.
 */
export type LayerWeights = {
  [F in keyof Table]: Table[F] extends { when: unknown } ? LoadedAs<Table[F]> | undefined : LoadedAs<Table[F]>;
};

export type LayerField = keyof LayerWeights;

/** The entries a model of `config` has in every block, in load order. */
export function layerTensorsOf(config: ModelConfig): [LayerField, LayerTensor][] {
  const all = Object.entries(LAYER_TENSORS) as [LayerField, LayerTensor][];
  return all.filter(([, e]) => e.when?.(config) ?? true);
}

/** The GGUF name of an entry's tensor in block `il`: attn_q's in block 3 is `blk.3.attn_q.weight`. */
export function layerTensorName(il: number, entry: LayerTensor): string {
  return `blk.${il}.${entry.gguf}.${entry.suffix ?? 'weight'}`;
}

/**
 * Floats per token of each activation the blocks' matmuls read or write, in first-use order: the
 * widest over every block (a per-layer FFN width sizes `gate`, `up`, `ffh` for the largest).
 * `seed` holds the buffers outside the table (the residual stream), first.
 */
export function layerActivationWidths(config: ModelConfig, seed: [ActivationName, number][]): Map<ActivationName, number> {
  const widths = new Map(seed);
  const grow = (name: ActivationName, width: number) => widths.set(name, Math.max(widths.get(name) ?? 0, width));
  const entries = layerTensorsOf(config);
  for (const layer of config.layers) {
    for (const [, e] of entries) {
      if (e.kind !== 'matrix') continue;
      const [nIn, nOut] = e.shape(config, layer);
      grow(e.reads, nIn!);
      grow(typeof e.writes === 'function' ? e.writes(config) : e.writes, nOut!);
    }
  }
  return widths;
}
