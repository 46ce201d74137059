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
  /** Name inside block `il`: `attn_q` is `blk.{il}.attn_q.weight` (or `.bias`; `ssm_a` has no suffix). */
  gguf: string;
  suffix?: 'bias' | 'none';
  /** GGUF order (ne0, the row length, first): a projection from n_in to n_out is [n_in, n_out]. */
  shape: (c: ModelConfig, layer: LayerConfig) => number[];
  /** Which models' blocks have it; without `when`, every model's every block does. */
  when?: (c: ModelConfig, layer: LayerConfig) => boolean;
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
/** An attention block (every block but a hybrid's recurrent ones). */
const attention = (_: ModelConfig, l: LayerConfig) => l.mixer === 'attention';
const separateQkv = (c: ModelConfig, l: LayerConfig) => attention(c, l) && !c.tensors.fusedQkv;
/** Blocks with an FFN (all but mamba2's). */
const ffn = (_: ModelConfig, l: LayerConfig) => l.nFf > 0;
const ssm = (_: ModelConfig, l: LayerConfig) => l.mixer === 'ssm';
const shortConv = (_: ModelConfig, l: LayerConfig) => l.mixer === 'shortconv';
/** ssm_in's output per token: z [inner], x B C [convDim], dt [heads]. */
const ssmProjWidth = (c: ModelConfig) => c.ssm!.inner + c.ssm!.convDim + c.ssm!.heads;
/** ffn_up holds [gate; up] stacked when fused (phi3). */
const upWidth = (c: ModelConfig, l: LayerConfig) => (c.fusedGateUp ? 2 * l.nFf : l.nFf);
const dense = (c: ModelConfig, l: LayerConfig) => !c.moe && ffn(c, l);
const experts = (c: ModelConfig, l: LayerConfig) => !!c.moe && ffn(c, l);
const sharedExpert = (c: ModelConfig, l: LayerConfig) => experts(c, l) && c.moe!.nFfShexp > 0;

/**
 * One block's tensors, keyed by their {@link LayerWeights} field. Shapes in the comments are the
 * matmul's [rows][k] (GGUF [k, rows]).
 */
export const LAYER_TENSORS = {
  /** f32[nEmbd] */
  attnNorm: { gguf: 'attn_norm', kind: 'vector', shape: (c) => [c.nEmbd] },
  // A Mamba2 mixer (mamba2, granitehybrid's recurrent layers; reference-mamba2.ts has the math):
  // ssm_in [z | x B C | dt], the causal conv over x B C (its weight [convDim][convKernel], a
  // vector: the conv op reads it as f32), the scan's dt bias, A and D per head, the gated group
  // norm [groups][inner / groups], ssm_out.
  ssmIn: { gguf: 'ssm_in', kind: 'matrix', when: ssm, shape: (c) => [c.nEmbd, ssmProjWidth(c)], reads: 'cur', writes: 'ssmProj' },
  ssmConv1d: { gguf: 'ssm_conv1d', kind: 'vector', when: ssm, shape: (c) => [c.ssm!.convKernel, c.ssm!.convDim] },
  ssmConv1dBias: { gguf: 'ssm_conv1d', suffix: 'bias', kind: 'vector', when: (c, l) => ssm(c, l) && c.tensors.ssmConvBias, shape: (c) => [c.ssm!.convDim] },
  ssmDtBias: { gguf: 'ssm_dt', suffix: 'bias', kind: 'vector', when: ssm, shape: (c) => [c.ssm!.heads] },
  ssmA: { gguf: 'ssm_a', suffix: 'none', kind: 'vector', when: ssm, shape: (c) => [1, c.ssm!.heads] },
  ssmD: { gguf: 'ssm_d', suffix: 'none', kind: 'vector', when: ssm, shape: (c) => [1, c.ssm!.heads] },
  ssmNorm: { gguf: 'ssm_norm', kind: 'vector', when: ssm, shape: (c) => [c.ssm!.inner / c.ssm!.groups, c.ssm!.groups] },
  ssmOut: { gguf: 'ssm_out', kind: 'matrix', when: ssm, shape: (c) => [c.ssm!.inner, c.nEmbd], reads: 'ssmY', writes: 'cur' },
  // LFM2's gated short convolution: in_proj [b | c | x], out = out_proj (c * conv(b * x)); the
  // conv weight [nEmbd][width] is a vector as above.
  shortConvIn: { gguf: 'shortconv.in_proj', kind: 'matrix', when: shortConv, shape: (c) => [c.nEmbd, 3 * c.nEmbd], reads: 'cur', writes: 'convProj' },
  shortConvKernel: { gguf: 'shortconv.conv', kind: 'vector', when: shortConv, shape: (c) => [c.shortConvWidth, c.nEmbd] },
  shortConvOut: { gguf: 'shortconv.out_proj', kind: 'matrix', when: shortConv, shape: (c) => [c.nEmbd, c.nEmbd], reads: 'convOut', writes: 'cur' },
  /** [qDim + kvDimK + kvDimV][nEmbd] when the file fuses q, k, v (phi3); else q, k, v. */
  qkv: { gguf: 'attn_qkv', kind: 'matrix', when: (c, l) => attention(c, l) && c.tensors.fusedQkv, shape: (c) => [c.nEmbd, qkvWidth(c)], reads: 'cur', writes: 'qkv' },
  qkvBias: { gguf: 'attn_qkv', suffix: 'bias', kind: 'vector', when: (c, l) => attention(c, l) && c.tensors.qkvBias, shape: (c) => [qkvWidth(c)] },
  /** [qDim][nEmbd], [kvDimK][nEmbd], [kvDimV][nEmbd] */
  q: { gguf: 'attn_q', kind: 'matrix', when: separateQkv, shape: (c) => [c.nEmbd, c.qDim], reads: 'cur', writes: 'q' },
  k: { gguf: 'attn_k', kind: 'matrix', when: separateQkv, shape: (c) => [c.nEmbd, c.kvDimK], reads: 'cur', writes: 'k' },
  v: { gguf: 'attn_v', kind: 'matrix', when: separateQkv, shape: (c) => [c.nEmbd, c.kvDimV], reads: 'cur', writes: 'v' },
  qBias: { gguf: 'attn_q', suffix: 'bias', kind: 'vector', when: (c, l) => attention(c, l) && c.tensors.qBias, shape: (c) => [c.qDim] },
  kBias: { gguf: 'attn_k', suffix: 'bias', kind: 'vector', when: (c, l) => attention(c, l) && c.tensors.kBias, shape: (c) => [c.kvDimK] },
  vBias: { gguf: 'attn_v', suffix: 'bias', kind: 'vector', when: (c, l) => attention(c, l) && c.tensors.vBias, shape: (c) => [c.kvDimV] },
  /** f32[headDimK], per-head RMS norms (qwen3, gemma3); f32[qDim] and f32[kvDimK] over whole rows (olmoe). */
  qNorm: { gguf: 'attn_q_norm', kind: 'vector', when: (c, l) => attention(c, l) && c.qkNorm, shape: (c) => [c.qkNormOver === 'row' ? c.qDim : c.headDimK] },
  kNorm: { gguf: 'attn_k_norm', kind: 'vector', when: (c, l) => attention(c, l) && c.qkNorm, shape: (c) => [c.qkNormOver === 'row' ? c.kvDimK : c.headDimK] },
  /** [nEmbd][nHead * headDimV] */
  attnOutput: { gguf: 'attn_output', kind: 'matrix', when: attention, shape: (c) => [c.nHead * c.headDimV, c.nEmbd], reads: 'attn', writes: 'cur' },
  attnOutputBias: { gguf: 'attn_output', suffix: 'bias', kind: 'vector', when: (c, l) => attention(c, l) && c.tensors.attnOutBias, shape: (c) => [c.nEmbd] },
  /** f32[nEmbd] (gemma) */
  postAttnNorm: { gguf: 'post_attention_norm', kind: 'vector', when: (c, l) => attention(c, l) && c.postNorms, shape: (c) => [c.nEmbd] },
  /** f32[nEmbd] */
  ffnNorm: { gguf: 'ffn_norm', kind: 'vector', when: ffn, shape: (c) => [c.nEmbd] },
  /** [nFf][nEmbd]; absent when ffnUp is fused [2 nFf][nEmbd] = [gate; up] (phi3). */
  ffnGate: { gguf: 'ffn_gate', kind: 'matrix', when: (c, l) => !c.fusedGateUp && dense(c, l), shape: (c, l) => [c.nEmbd, l.nFf], reads: 'cur', writes: 'gate' },
  /** [nFf][nEmbd], or [2 nFf][nEmbd] fused; the fused one writes gate and up side by side into `gate`. */
  ffnUp: { gguf: 'ffn_up', kind: 'matrix', when: dense, shape: (c, l) => [c.nEmbd, upWidth(c, l)], reads: 'cur', writes: (c) => (c.fusedGateUp ? 'gate' : 'up') },
  /** [nEmbd][nFf] */
  ffnDown: { gguf: 'ffn_down', kind: 'matrix', when: dense, shape: (c, l) => [l.nFf, c.nEmbd], reads: 'ffh', writes: 'cur' },
  // Mixture of experts (moe-config.ts): the router [nExpert][nEmbd], then each expert's gate, up and
  // down stacked expert after expert (GGUF [k, rows, nExpert]: expert e is rows e*rows ..< (e+1)*rows),
  // run by the backend's moeFfn on the tokens' gathered rows (moeX -> moeGate, moeUp -> moeH -> moeY).
  ffnGateInp: { gguf: 'ffn_gate_inp', kind: 'matrix', when: experts, shape: (c) => [c.nEmbd, c.moe!.nExpert], reads: 'cur', writes: 'moeLogits' },
  ffnGateExps: { gguf: 'ffn_gate_exps', kind: 'matrix', when: experts, shape: (c) => [c.nEmbd, c.moe!.nFfExp, c.moe!.nExpert], reads: 'moeX', writes: 'moeGate' },
  ffnDownExps: { gguf: 'ffn_down_exps', kind: 'matrix', when: experts, shape: (c) => [c.moe!.nFfExp, c.nEmbd, c.moe!.nExpert], reads: 'moeH', writes: 'moeY' },
  ffnUpExps: { gguf: 'ffn_up_exps', kind: 'matrix', when: experts, shape: (c) => [c.nEmbd, c.moe!.nFfExp, c.moe!.nExpert], reads: 'moeX', writes: 'moeUp' },
  /** f32[nEmbd]: the shared expert's sigmoid gate (qwen2moe). */
  ffnGateInpShexp: { gguf: 'ffn_gate_inp_shexp', kind: 'vector', when: (c, l) => experts(c, l) && c.moe!.sharedGate, shape: (c) => [c.nEmbd] },
  /** The shared expert, on every token: [nFfShexp][nEmbd] gate and up, [nEmbd][nFfShexp] down. */
  ffnGateShexp: { gguf: 'ffn_gate_shexp', kind: 'matrix', when: sharedExpert, shape: (c) => [c.nEmbd, c.moe!.nFfShexp], reads: 'cur', writes: 'moeGate' },
  ffnDownShexp: { gguf: 'ffn_down_shexp', kind: 'matrix', when: sharedExpert, shape: (c) => [c.moe!.nFfShexp, c.nEmbd], reads: 'moeH', writes: 'moeY' },
  ffnUpShexp: { gguf: 'ffn_up_shexp', kind: 'matrix', when: sharedExpert, shape: (c) => [c.nEmbd, c.moe!.nFfShexp], reads: 'cur', writes: 'moeUp' },
  ffnGateBias: { gguf: 'ffn_gate', suffix: 'bias', kind: 'vector', when: (c, l) => dense(c, l) && c.tensors.ffnGateBias, shape: (_, l) => [l.nFf] },
  ffnUpBias: { gguf: 'ffn_up', suffix: 'bias', kind: 'vector', when: (c, l) => dense(c, l) && c.tensors.ffnUpBias, shape: (c, l) => [upWidth(c, l)] },
  ffnDownBias: { gguf: 'ffn_down', suffix: 'bias', kind: 'vector', when: (c, l) => dense(c, l) && c.tensors.ffnDownBias, shape: (c) => [c.nEmbd] },
  /** f32[nEmbd] (gemma) */
  postFfnNorm: { gguf: 'post_ffw_norm', kind: 'vector', when: (c, l) => ffn(c, l) && c.postNorms, shape: (c) => [c.nEmbd] },
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

/** The entries block `layer` of a model of `config` has, in load order. */
export function layerTensorsOf(config: ModelConfig, layer: LayerConfig): [LayerField, LayerTensor][] {
  const all = Object.entries(LAYER_TENSORS) as [LayerField, LayerTensor][];
  return all.filter(([, e]) => e.when?.(config, layer) ?? true);
}

/** The GGUF name of an entry's tensor in block `il`: attn_q's in block 3 is `blk.3.attn_q.weight`. */
export function layerTensorName(il: number, entry: LayerTensor): string {
  return entry.suffix === 'none' ? `blk.${il}.${entry.gguf}` : `blk.${il}.${entry.gguf}.${entry.suffix ?? 'weight'}`;
}

/**
 * Floats per token of each activation the blocks' matmuls read or write, in first-use order: the
 * widest over every block (a per-layer FFN width sizes `gate`, `up`, `ffh` for the largest).
 * `seed` holds the buffers outside the table (the residual stream), first.
 */
export function layerActivationWidths(config: ModelConfig, seed: [ActivationName, number][]): Map<ActivationName, number> {
  const widths = new Map(seed);
  const grow = (name: ActivationName, width: number) => widths.set(name, Math.max(widths.get(name) ?? 0, width));
  for (const layer of config.layers) {
    for (const [, e] of layerTensorsOf(config, layer)) {
      if (e.kind !== 'matrix') continue;
      const [nIn, nOut] = e.shape(config, layer);
      grow(e.reads, nIn!);
      grow(typeof e.writes === 'function' ? e.writes(config) : e.writes, nOut!);
    }
  }
  return widths;
}
