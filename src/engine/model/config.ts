/**
 * `ModelConfig`: everything the forward pass needs to know about a model, read from GGUF metadata
 * through one key table ({@link KEYS}) and one table of per-architecture rules ({@link ARCHITECTURES}),
 * validated, with every derived quantity (head sizes, KV width, rope type, attention scale, sliding
 * window layers, tied embeddings, biases) computed here once so the forward pass only reads flags.
 *
 * The rules are llama.cpp's (src/llama-model.cpp `load_hparams`, src/models/<arch>.cpp
 * `load_arch_hparams` and graph builders, src/llama-context.cpp for the rope parameters), including
 * the places where llama.cpp ignores a key a file carries; those are called out where they happen.
 */
import { GgufValueType, type GgufFile, type GgufTensorInfo } from '../gguf/types.ts';
import { ModelConfigError, UnsupportedModelError } from './errors.ts';
import { readMoeConfig, type MoeConfig, type MoeRules } from './moe-config.ts';

// ---------------------------------------------------------------- architectures

/** The `general.architecture` values we run. */
export const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2', 'qwen3', 'phi3', 'gemma', 'gemma2', 'gemma3', 'granite', 'granitemoe', 'qwen2moe', 'qwen3moe', 'olmoe', 'lfm2', 'granitehybrid', 'mamba2'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/**
 * How rope pairs dimensions: `normal` rotates (x[2i], x[2i+1]) (GGML_ROPE_TYPE_NORM), `neox`
 * rotates (x[i], x[i + nRot/2]) (GGML_ROPE_TYPE_NEOX). Chosen by architecture, never by a key
 * (llama.cpp `llama_model_rope_type`).
 */
export type RopeType = 'normal' | 'neox';

/** `{arch}.rope.scaling.type` (llama.cpp `llama_rope_scaling_type`); absent means `linear`. */
export type RopeScalingType = 'none' | 'linear' | 'yarn' | 'longrope';
const ROPE_SCALING_TYPES: readonly RopeScalingType[] = ['none', 'linear', 'yarn', 'longrope'];

/**
 * Sliding-window attention: which layers attend to a window, how wide, and the rope those layers use.
 * Defaults apply where the file has no `attention.sliding_window` / `sliding_window_pattern` key.
 */
interface SlidingWindowRule {
  /**
   * The window when the file has no key; `'keyed'`: layers slide only when the file gives a
   * positive window (a non-positive one switches sliding off rather than failing).
   */
  window: number | 'keyed';
  /** Every `period`-th layer (the last of each period) attends fully; 0 means every layer slides. */
  period: number;
  /**
   * Rope of the sliding layers without a `rope.freq_base_swa` key: `'as-full'` takes the full
   * layers' base and scale; `'unscaled-base-10000'` starts from base 10000 and scale 1, so a model's
   * rope scaling applies to its full-attention layers only.
   */
  rope: 'as-full' | 'unscaled-base-10000';
}

/**
 * The architecture rules that are not in the file, named after what they do; {@link ARCHITECTURES}
 * says which architecture follows which.
 */
interface ArchRules {
  ropeType: RopeType;
  /** llama.cpp's graph asserts rope covers the whole head (llama, qwen2, qwen3, granite). */
  fullRotary: boolean;
  /** q and attn_output are sized n_embd, not n_head * head_dim (qwen2, phi3 loaders). */
  qWidthIsEmbd: boolean;
  /** RMS norms of q and k per head before rope (attn_q_norm / attn_k_norm). */
  qkNorm: boolean;
  /** What those norms cover: each head (`'head'`), or the whole q and k row of a token (`'row'`: olmoe). */
  qkNormOver: 'head' | 'row';
  /** RMS norms after attention and after the FFN, before each residual add (gemma). */
  postNorms: boolean;
  /** GLU activation: SiLU (SwiGLU) or GELU with the tanh approximation (GeGLU). */
  activation: 'silu' | 'gelu';
  /** ffn_up holds [gate; up] stacked, 2 * n_ff rows, and there is no ffn_gate (phi3). */
  fusedGateUp: boolean;
  /** Sliding-window attention, or none (phi3 files may carry a window, but llama.cpp disables it). */
  slidingWindow: SlidingWindowRule | 'none';
  /**
   * Attention scale: 1/sqrt(head size) (`'head-dim'`), or the file's `attention.scale` when set and
   * non-zero (`'keyed'`).
   */
  attnScale: 'head-dim' | 'keyed';
  /**
   * A layer count at which the attention scale is 1/sqrt(n_embd / n_head) instead: llama.cpp does
   * not read query_pre_attn_scalar but keys the rule on the layer count of the models that need it
   * (gemma2 27B: 46 layers, gemma3 27B: 62). 0: never.
   */
  attnScaleEmbdPerHeadAtLayers: number;
  /**
   * Multipliers: `'sqrt-embd'` scales the token embeddings by sqrt(n_embd); `'keyed'` reads
   * `embedding_scale` and `residual_scale` (0 or absent: none) and the required `logit_scale`, the
   * logits' divisor.
   */
  scales: 'none' | 'sqrt-embd' | 'keyed';
  /**
   * Softcapping: `'attn-and-final'` always caps attention scores and final logits (defaults 50 and
   * 30); `'final-if-keyed'` caps the final logits only when the file gives a cap.
   */
  softcap: 'none' | 'attn-and-final' | 'final-if-keyed';
  /** `rope.scaling.finetuned = false` turns rope off altogether (default on). */
  ropeSwitchedByFinetuned: boolean;
  /** output.weight is never read; the output shares token_embd (gemma, gemma2 loaders). */
  alwaysTied: boolean;
  /** Optional `output.bias` (qwen2, phi3). */
  outputBias: boolean;
  /** Optional attn_output.bias and ffn_{up,gate,down}.bias (llama, granite loaders). */
  denseBiases: boolean;
  /** Which rope-frequency tensors the loader looks for. */
  ropeFactorTensors: 'none' | 'freqs-or-long-short' | 'long-short';
  /** Mixture-of-experts rules (moe-config.ts), or none: the architecture has no expert layers. */
  moe: MoeRules | 'none';
  /**
   * Recurrent layers (state-space hybrids): `'none'`; `'ssm'` or `'shortconv'`: the layers whose
   * `attention.head_count_kv` is 0 are Mamba2 mixers (granitehybrid) or gated short convolutions
   * (lfm2), the others attention; `'ssm-only'`: every layer is a Mamba2 mixer (mamba2).
   */
  recurrent: 'none' | 'ssm' | 'shortconv' | 'ssm-only';
  /** Blocks have an FFN after the mixer (all but mamba2). */
  ffn: boolean;
  /** The final norm's tensor: `output_norm` (lfm2: `token_embd_norm`). */
  outputNorm: string;
}

const BASE: ArchRules = {
  ropeType: 'normal',
  fullRotary: true,
  qWidthIsEmbd: false,
  qkNorm: false,
  qkNormOver: 'head',
  postNorms: false,
  activation: 'silu',
  fusedGateUp: false,
  slidingWindow: 'none',
  attnScale: 'head-dim',
  attnScaleEmbdPerHeadAtLayers: 0,
  scales: 'none',
  softcap: 'none',
  ropeSwitchedByFinetuned: false,
  alwaysTied: false,
  outputBias: false,
  denseBiases: false,
  ropeFactorTensors: 'none',
  moe: 'none',
  recurrent: 'none',
  ffn: true,
  outputNorm: 'output_norm.weight',
};

/** Per-architecture rules, from llama.cpp's src/models/<arch>.cpp. */
export const ARCHITECTURES: Readonly<Record<Architecture, Readonly<ArchRules>>> = {
  // Llama 2/3.x, Mistral, and anything converted as "llama". llama.cpp's llama graph has no
  // sliding window: a Mistral file's `llama.attention.sliding_window` is not read at all.
  // Mixtral-style llama files carry ffn_gate_inp and ffn_{gate,up,down}_exps (norm_w true).
  llama: { ...BASE, denseBiases: true, ropeFactorTensors: 'freqs-or-long-short', moe: { normalize: true, expertFf: 'ff', shared: 'keyed', required: false } },
  qwen2: { ...BASE, ropeType: 'neox', qWidthIsEmbd: true, outputBias: true },
  qwen3: { ...BASE, ropeType: 'neox', qkNorm: true },
  // phi3: fused qkv and gate-up; a sliding_window key is read and then switched off (llama.cpp PR 13676).
  phi3: { ...BASE, ropeType: 'neox', fullRotary: false, qWidthIsEmbd: true, fusedGateUp: true, outputBias: true, ropeFactorTensors: 'long-short' },
  // gemma (Gemma 1, 2B/7B): gemma2 without its window, softcaps and post-norms; the output is
  // token_embd. The converter bakes the +1 of Gemma's RMS norm into the stored weights, so the
  // norms are plain ones.
  gemma: { ...BASE, ropeType: 'neox', fullRotary: false, activation: 'gelu', scales: 'sqrt-embd', alwaysTied: true },
  // gemma2 always alternates sliding and full layers.
  gemma2: {
    ...BASE, ropeType: 'neox', fullRotary: false, postNorms: true, activation: 'gelu',
    slidingWindow: { window: 4096, period: 2, rope: 'as-full' }, attnScaleEmbdPerHeadAtLayers: 46,
    scales: 'sqrt-embd', softcap: 'attn-and-final', alwaysTied: true,
  },
  // gemma3 slides only when the file gives a window.
  gemma3: {
    ...BASE, ropeType: 'neox', fullRotary: false, qkNorm: true, postNorms: true, activation: 'gelu',
    slidingWindow: { window: 'keyed', period: 6, rope: 'unscaled-base-10000' }, attnScaleEmbdPerHeadAtLayers: 62,
    scales: 'sqrt-embd', softcap: 'final-if-keyed',
  },
  granite: {
    ...BASE, attnScale: 'keyed', scales: 'keyed', ropeSwitchedByFinetuned: true, denseBiases: true, ropeFactorTensors: 'freqs-or-long-short',
    moe: { normalize: true, expertFf: 'ff', shared: 'keyed', required: false },
  },
  // granitemoe runs llama.cpp's granite graph with experts (and a shared expert when keyed).
  granitemoe: {
    ...BASE, attnScale: 'keyed', scales: 'keyed', ropeSwitchedByFinetuned: true, ropeFactorTensors: 'freqs-or-long-short',
    moe: { normalize: true, expertFf: 'ff', shared: 'keyed', required: true },
  },
  // qwen2moe: qwen2's attention; experts not renormalized; a shared expert with a sigmoid gate.
  qwen2moe: { ...BASE, ropeType: 'neox', qWidthIsEmbd: true, moe: { normalize: false, expertFf: 'keyed-or-ff-per-used', shared: 'gated', required: true } },
  qwen3moe: { ...BASE, ropeType: 'neox', qkNorm: true, moe: { normalize: true, expertFf: 'keyed-or-ff-per-used', shared: 'none', required: true } },
  // olmoe: q and k RMS-normed over the whole row (attn_q_norm / attn_k_norm are n_embd wide); experts not renormalized.
  olmoe: { ...BASE, ropeType: 'neox', qWidthIsEmbd: true, qkNorm: true, qkNormOver: 'row', moe: { normalize: false, expertFf: 'ff', shared: 'none', required: true } },
  // lfm2 (LiquidAI LFM2): gated short convolutions and GQA attention layers with per-head q/k norms;
  // a keyed sliding window applies to every attention layer; the final norm is token_embd_norm.
  lfm2: {
    ...BASE, ropeType: 'neox', qkNorm: true, recurrent: 'shortconv', outputNorm: 'token_embd_norm.weight',
    slidingWindow: { window: 'keyed', period: 0, rope: 'as-full' },
  },
  // granitehybrid (Granite 4.0-H): Mamba2 and attention layers, granite's scales and its rope
  // switch; experts (Tiny, Small) with an ungated shared expert when keyed.
  granitehybrid: {
    ...BASE, attnScale: 'keyed', scales: 'keyed', ropeSwitchedByFinetuned: true, recurrent: 'ssm',
    moe: { normalize: true, expertFf: 'ff', shared: 'keyed', required: false },
  },
  // mamba2: Mamba2 mixers only, no attention and no FFN.
  mamba2: { ...BASE, recurrent: 'ssm-only', ffn: false },
};

// ---------------------------------------------------------------- the key table

type KeyKind = 'int' | 'float' | 'string' | 'bool' | 'int-or-array';

interface KeySpec {
  /** Key after `{arch}.` (or the full key when `global`). */
  key: string;
  kind: KeyKind;
  global?: boolean;
}

/**
 * Every GGUF key we read, in one place (names as llama.cpp's src/llama-arch.cpp `LLM_KV_NAMES`).
 * Which ones are required and their defaults are decided in {@link readModelConfig}, following
 * llama.cpp: most are optional with a default.
 */
export const KEYS = {
  architecture: { key: 'general.architecture', kind: 'string', global: true },
  name: { key: 'general.name', kind: 'string', global: true },
  tokens: { key: 'tokenizer.ggml.tokens', kind: 'string', global: true },
  contextLength: { key: 'context_length', kind: 'int' },
  embeddingLength: { key: 'embedding_length', kind: 'int' },
  blockCount: { key: 'block_count', kind: 'int' },
  feedForwardLength: { key: 'feed_forward_length', kind: 'int-or-array' },
  expertCount: { key: 'expert_count', kind: 'int' },
  expertUsedCount: { key: 'expert_used_count', kind: 'int-or-array' },
  expertFeedForwardLength: { key: 'expert_feed_forward_length', kind: 'int-or-array' },
  expertSharedFeedForwardLength: { key: 'expert_shared_feed_forward_length', kind: 'int' },
  headCount: { key: 'attention.head_count', kind: 'int-or-array' },
  headCountKv: { key: 'attention.head_count_kv', kind: 'int-or-array' },
  ssmConvKernel: { key: 'ssm.conv_kernel', kind: 'int' },
  ssmInnerSize: { key: 'ssm.inner_size', kind: 'int' },
  ssmStateSize: { key: 'ssm.state_size', kind: 'int' },
  ssmTimeStepRank: { key: 'ssm.time_step_rank', kind: 'int' },
  ssmGroupCount: { key: 'ssm.group_count', kind: 'int' },
  shortConvCache: { key: 'shortconv.l_cache', kind: 'int' },
  keyLength: { key: 'attention.key_length', kind: 'int' },
  valueLength: { key: 'attention.value_length', kind: 'int' },
  rmsEps: { key: 'attention.layer_norm_rms_epsilon', kind: 'float' },
  slidingWindow: { key: 'attention.sliding_window', kind: 'int' },
  slidingWindowPattern: { key: 'attention.sliding_window_pattern', kind: 'int' },
  attentionScale: { key: 'attention.scale', kind: 'float' },
  ropeDimensionCount: { key: 'rope.dimension_count', kind: 'int' },
  ropeFreqBase: { key: 'rope.freq_base', kind: 'float' },
  ropeFreqBaseSwa: { key: 'rope.freq_base_swa', kind: 'float' },
  ropeScalingType: { key: 'rope.scaling.type', kind: 'string' },
  ropeScalingFactor: { key: 'rope.scaling.factor', kind: 'float' },
  ropeScaleLinear: { key: 'rope.scale_linear', kind: 'float' },
  ropeScalingAttnFactor: { key: 'rope.scaling.attn_factor', kind: 'float' },
  ropeScalingOrigCtx: { key: 'rope.scaling.original_context_length', kind: 'int' },
  ropeScalingFinetuned: { key: 'rope.scaling.finetuned', kind: 'bool' },
  vocabSize: { key: 'vocab_size', kind: 'int' },
  attnLogitSoftcapping: { key: 'attn_logit_softcapping', kind: 'float' },
  finalLogitSoftcapping: { key: 'final_logit_softcapping', kind: 'float' },
  logitScale: { key: 'logit_scale', kind: 'float' },
  residualScale: { key: 'residual_scale', kind: 'float' },
  embeddingScale: { key: 'embedding_scale', kind: 'float' },
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof KEYS;

// ---------------------------------------------------------------- the config

/** Rope parameters as llama.cpp hands them to `ggml_rope_ext` (after llama-context's derivations). */
export interface RopeConfig {
  type: RopeType;
  /** False only for granite files with `rope.scaling.finetuned = false`: no positional rotation at all. */
  enabled: boolean;
  /** Rotated dimensions per head (even, <= headDimK); the rest pass through. */
  nRot: number;
  /** Base and scale (1 / scaling factor) for full-attention layers. */
  freqBase: number;
  freqScale: number;
  /** Base and scale for sliding-window layers (gemma2: same as global unless keyed; gemma3: 10000 and 1 unless keyed). */
  freqBaseSwa: number;
  freqScaleSwa: number;
  scalingType: RopeScalingType;
  /** Context the model was trained with before scaling (yarn correction dims, phi3 long/short switch). */
  nCtxOrig: number;
  /** YaRN mix: 1 for yarn, 0 otherwise. */
  extFactor: number;
  /** Magnitude handed to the rope op (llama.cpp `cparams.yarn_attn_factor`, includes `rope.scaling.attn_factor`). */
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
  /**
   * Per-frequency divisors from tensors: `freqs` is llama3's `rope_freqs.weight` [nRot/2], `long-short`
   * is phi3's `rope_factors_long/short.weight` [nRot/2] (long when the context exceeds nCtxOrig).
   */
  factors: 'none' | 'freqs' | 'long-short';
}

/** What mixes a block's tokens: attention over the KV cache, or a recurrent state (hybrids). */
export type LayerMixer = 'attention' | 'ssm' | 'shortconv';

export interface LayerConfig {
  mixer: LayerMixer;
  /** The layer's index among the attention layers (its KV cache layer); -1 for a recurrent one. */
  kvLayer: number;
  /** FFN hidden width (GGUF allows a per-layer array); 0: no FFN (mamba2). */
  nFf: number;
  /** True where attention sees only the last `slidingWindow` positions. */
  slidingWindow: boolean;
}

/** Which optional tensors the file has; they decide code paths, so they are part of the config. */
export interface TensorFeatures {
  /** `output.weight` absent (or ignored, gemma2): logits use `token_embd.weight`. */
  tiedEmbeddings: boolean;
  /** `attn_qkv.weight` [nEmbd, qDim + 2 kvDim] instead of attn_q/k/v. */
  fusedQkv: boolean;
  /** Bias on the fused `attn_qkv` (only with fusedQkv). */
  qkvBias: boolean;
  /** Biases on separate attn_q / attn_k / attn_v (qwen2 has all three; optional for every architecture). */
  qBias: boolean;
  kBias: boolean;
  vBias: boolean;
  attnOutBias: boolean;
  /** Biases on ffn_up, ffn_gate, ffn_down (all three optional independently). */
  ffnUpBias: boolean;
  ffnGateBias: boolean;
  ffnDownBias: boolean;
  outputBias: boolean;
  /** Bias of the Mamba2 conv (ssm_conv1d.bias: required in mamba2, optional in granitehybrid). */
  ssmConvBias: boolean;
}

/**
 * A model's hyperparameters. Shapes are in GGUF order (ne0, the row length, first), so a projection
 * from nEmbd to qDim is stored as [nEmbd, qDim].
 */
export interface ModelConfig {
  architecture: Architecture;
  name: string | undefined;
  /** Tokens in the vocabulary = rows of token_embd [nEmbd, nVocab]. */
  nVocab: number;
  /** Context length the model was trained with (`{arch}.context_length`). */
  nCtxTrain: number;
  /** Residual stream width. */
  nEmbd: number;
  nLayer: number;
  /** Query heads and key/value heads (uniform over layers; nHead % nHeadKv == 0). */
  nHead: number;
  nHeadKv: number;
  /** Query heads sharing one KV head: nHead / nHeadKv. */
  gqaGroup: number;
  /** Per-head sizes of q/k and of v. */
  headDimK: number;
  headDimV: number;
  /** Width of q: nHead * headDimK; attn_output maps nHead * headDimV back to nEmbd. */
  qDim: number;
  /** Widths of k and v per token (the KV cache row sizes): nHeadKv * headDimK, nHeadKv * headDimV. */
  kvDimK: number;
  kvDimV: number;
  /** Per-layer FFN width and sliding-window flag, [nLayer]. */
  layers: LayerConfig[];
  /** RMS norm epsilon. */
  normEps: number;
  rope: RopeConfig;
  /** Multiplier of q·k before softcap and softmax. */
  attentionScale: number;
  /** Window for sliding-window layers: a query at p sees keys at p - slidingWindow < p' <= p. 0 when none. */
  slidingWindow: number;
  /** tanh softcap of attention scores (`c * tanh(s / c)`), 0 when off. */
  attnSoftcap: number;
  /** tanh softcap of the final logits, 0 when off. */
  finalSoftcap: number;
  /** Multiplier of token embeddings (gemma: sqrt(nEmbd); granite: embedding_scale), 1 when none. */
  embeddingScale: number;
  /** Multiplier of each block's attention and FFN output before the residual add (granite), 1 when none. */
  residualScale: number;
  /** Divisor of the logits (granite `logit_scale`), 1 when none. */
  logitDivisor: number;
  activation: 'silu' | 'gelu';
  fusedGateUp: boolean;
  qkNorm: boolean;
  /** Whether the q/k norms cover each head or a token's whole q and k rows (olmoe). */
  qkNormOver: 'head' | 'row';
  postNorms: boolean;
  tensors: TensorFeatures;
  /** Mixture-of-experts FFN (moe-config.ts); undefined for a dense model. */
  moe: MoeConfig | undefined;
  /** Layers with attention: the KV cache holds this many layers (nLayer unless a hybrid). */
  nKvLayers: number;
  /** The Mamba2 mixers' sizes (mamba2, granitehybrid); undefined without such layers. */
  ssm: SsmConfig | undefined;
  /** The short convolution's width (lfm2 `shortconv.l_cache`); 0 without such layers. */
  shortConvWidth: number;
  /** The final norm's tensor name. */
  outputNorm: string;
}

/** A Mamba2 mixer's sizes (llama.cpp's ssm_* hyperparameters). */
export interface SsmConfig {
  /** d_inner: the width of x, z and y. */
  inner: number;
  /** d_state: the length of B, C and each state row. */
  stateSize: number;
  /** SSM heads (`ssm.time_step_rank`); inner = heads * headDim. */
  heads: number;
  headDim: number;
  /** Heads share B and C in this many groups. */
  groups: number;
  /** The causal convolution's width (its state keeps convKernel - 1 columns). */
  convKernel: number;
  /** Channels of the convolution: x, B and C = inner + 2 * groups * stateSize. */
  convDim: number;
}

// ---------------------------------------------------------------- reading keys

function fail(message: string, detail: Record<string, unknown>): never {
  throw new ModelConfigError(message, detail);
}

function fullKey(arch: string, spec: KeySpec): string {
  return spec.global ? spec.key : `${arch}.${spec.key}`;
}

function toNumber(key: string, v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) fail(`${key} = ${v} is out of range`, { key });
    return Number(v);
  }
  return fail(`GGUF key '${key}' should be a number, found ${typeof v}`, { key });
}

/** What the configuration is read from: one file's header, or a split model's (`GgufModel`). */
export type GgufHeader = Pick<GgufFile, 'metadata' | 'metadataTypes' | 'tensors'>;

/** Reads keys of one file for one architecture, with the types the table declares. */
class KeyReader {
  constructor(
    private readonly file: GgufHeader,
    private readonly arch: string,
  ) {}

  key(name: ConfigKey): string {
    return fullKey(this.arch, KEYS[name]);
  }

  has(name: ConfigKey): boolean {
    return this.file.metadata.has(this.key(name));
  }

  private isArray(name: ConfigKey): boolean {
    return this.file.metadataTypes.get(this.key(name))?.type === GgufValueType.ARRAY;
  }

  int(name: ConfigKey): number | undefined {
    const key = this.key(name);
    const v = this.file.metadata.get(key);
    if (v === undefined) return undefined;
    const n = toNumber(key, v);
    if (!Number.isInteger(n)) fail(`GGUF key '${key}' = ${n} should be an integer`, { key, value: n });
    return n;
  }

  float(name: ConfigKey): number | undefined {
    const key = this.key(name);
    const v = this.file.metadata.get(key);
    return v === undefined ? undefined : toNumber(key, v);
  }

  string(name: ConfigKey): string | undefined {
    const key = this.key(name);
    const v = this.file.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') fail(`GGUF key '${key}' should be a string`, { key });
    return v;
  }

  bool(name: ConfigKey): boolean | undefined {
    const key = this.key(name);
    const v = this.file.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') fail(`GGUF key '${key}' should be a bool`, { key });
    return v;
  }

  /** A scalar, or an array of one value per layer (llama.cpp `get_key_or_arr`). */
  perLayer(name: ConfigKey, nLayer: number): number[] | undefined {
    const key = this.key(name);
    const v = this.file.metadata.get(key);
    if (v === undefined) return undefined;
    if (!this.isArray(name)) return new Array<number>(nLayer).fill(this.int(name)!);
    if (!isArrayLike(v)) fail(`GGUF key '${key}' should be numeric`, { key });
    if (v.length !== nLayer) fail(`GGUF key '${key}' has ${v.length} entries for ${nLayer} layers`, { key, length: v.length, nLayer });
    return Array.from(v as ArrayLike<number | bigint>, (x) => {
      const n = toNumber(key, x);
      if (!Number.isInteger(n)) fail(`GGUF key '${key}' holds ${n}, expected integers`, { key });
      return n;
    });
  }

  /** A scalar; an array is skipped as llama.cpp's scalar `get_key_or_arr` does (returns undefined). */
  scalarOrIgnoredArray(name: ConfigKey): number | undefined {
    return this.isArray(name) ? undefined : this.int(name);
  }

  required<T>(name: ConfigKey, value: T | undefined): T {
    if (value === undefined) fail(`GGUF key '${this.key(name)}' is required for ${this.arch} models and is missing`, { key: this.key(name) });
    return value;
  }

  tokenCount(): number | undefined {
    const key = KEYS.tokens.key;
    const v = this.file.metadata.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) fail(`GGUF key '${key}' should be an array of strings`, { key });
    return v.length;
  }
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || ArrayBuffer.isView(v);
}

function positiveInt(reader: KeyReader, name: ConfigKey, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) fail(`GGUF key '${reader.key(name)}' = ${v} must be a positive integer`, { key: reader.key(name), value: v });
  return v;
}

/**
 * Most layers a model may have: llama.cpp's LLAMA_MAX_LAYERS. The largest published models have
 * about 130; per-layer arrays and tensor lists are sized by this count.
 */
export const MAX_LAYERS = 512;

/** Longest training context we accept (2^28 tokens; published models go up to 10M). */
export const MAX_CONTEXT_LENGTH = 2 ** 28;

function atMost(reader: KeyReader, name: ConfigKey, v: number, max: number): number {
  if (v > max) fail(`GGUF key '${reader.key(name)}' = ${v} is over the limit of ${max}`, { key: reader.key(name), value: v, max });
  return v;
}

function positiveFloat(reader: KeyReader, name: ConfigKey, v: number): number {
  if (!Number.isFinite(v) || v <= 0) fail(`GGUF key '${reader.key(name)}' = ${v} must be a positive number`, { key: reader.key(name), value: v });
  return v;
}

// ---------------------------------------------------------------- readModelConfig

/**
 * Reads and validates a model's configuration from a parsed GGUF file. Throws
 * {@link UnsupportedModelError} for an architecture we do not run (naming the ones we do) and
 * {@link ModelConfigError} for a supported one whose metadata is missing or inconsistent. Tensor
 * shapes and types are checked separately by `checkTensors` (tensors.ts).
 */
export function readModelConfig(file: GgufHeader): ModelConfig {
  const archValue = file.metadata.get(KEYS.architecture.key);
  if (typeof archValue !== 'string') {
    fail(`GGUF key 'general.architecture' is missing or not a string; cannot tell what model this is`, { key: KEYS.architecture.key });
  }
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(archValue)) {
    throw new UnsupportedModelError(
      `architecture '${archValue}' is not supported; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}` +
        // Encoder-decoder files run through their own forward (t5-forward.ts), not a chat model's.
        (archValue === 't5' ? ' (t5 is encoder-decoder: it runs as text to text, `hearth generate` on the CPU backend, not as a chat model)' : ''),
      { architecture: archValue, supported: [...SUPPORTED_ARCHITECTURES] },
    );
  }
  const arch = archValue as Architecture;
  const rules = ARCHITECTURES[arch];
  const r = new KeyReader(file, arch);

  const experts = r.int('expertCount') ?? 0;
  if (experts < 0) fail(`GGUF key '${r.key('expertCount')}' = ${experts} must not be negative`, { key: r.key('expertCount'), value: experts });
  if (experts > 0 && rules.moe === 'none') {
    throw new UnsupportedModelError(`mixture-of-experts ${arch} models (${experts} experts) are not supported; supported: dense ${SUPPORTED_ARCHITECTURES.join(', ')}`, {
      architecture: arch,
      experts,
      supported: [...SUPPORTED_ARCHITECTURES],
    });
  }

  // Sizes. llama.cpp requires context_length, embedding_length and block_count; head_count and
  // feed_forward_length are optional there only for non-transformer architectures.
  // Bounded before anything is sized by them: a hostile block_count of 2^32-1 must be an error
  // here, not an array of that length.
  const nCtxTrain = atMost(r, 'contextLength', positiveInt(r, 'contextLength', r.required('contextLength', r.int('contextLength'))), MAX_CONTEXT_LENGTH);
  const nEmbd = positiveInt(r, 'embeddingLength', r.required('embeddingLength', r.int('embeddingLength')));
  const nLayer = atMost(r, 'blockCount', positiveInt(r, 'blockCount', r.required('blockCount', r.int('blockCount'))), MAX_LAYERS);
  // mamba2 has no FFN (its feed_forward_length is 0).
  const nFf = rules.ffn ? r.required('feedForwardLength', r.perLayer('feedForwardLength', nLayer)) : new Array<number>(nLayer).fill(0);
  if (rules.ffn) nFf.forEach((v) => positiveInt(r, 'feedForwardLength', v));
  const mixers = readMixers(r, rules, nLayer);
  const attentionLayers = mixers.flatMap((m, il) => (m === 'attention' ? [il] : []));
  const kvLayerOf = mixers.map((m, il) => (m === 'attention' ? attentionLayers.indexOf(il) : -1));
  let nHead = 0;
  let nHeadKv = 0;
  let headDimK = 0;
  let headDimV = 0;
  let nRot = 0;
  if (attentionLayers.length > 0) {
    const heads = r.required('headCount', r.perLayer('headCount', nLayer));
    // head_count_kv defaults to head_count (llama.cpp copies the array before reading the key).
    const headsKv = r.perLayer('headCountKv', nLayer) ?? heads;
    // A hybrid's recurrent layers have no heads: the attention layers' counts must agree.
    nHead = uniform(r, 'headCount', attentionLayers.map((il) => heads[il]!));
    nHeadKv = uniform(r, 'headCountKv', attentionLayers.map((il) => headsKv[il]!));
    positiveInt(r, 'headCount', nHead);
    positiveInt(r, 'headCountKv', nHeadKv);
    if (nHead % nHeadKv !== 0) {
      fail(`${arch}: ${nHead} attention heads are not a multiple of ${nHeadKv} key/value heads`, { key: r.key('headCountKv'), nHead, nHeadKv });
    }
    // Head sizes default to n_embd / n_head (integer division, as llama.cpp).
    const headDimDefault = Math.floor(nEmbd / nHead);
    headDimK = positiveInt(r, 'keyLength', r.int('keyLength') ?? headDimDefault);
    headDimV = positiveInt(r, 'valueLength', r.int('valueLength') ?? headDimDefault);
    nRot = r.int('ropeDimensionCount') ?? headDimK;
    positiveInt(r, 'ropeDimensionCount', nRot);
    if (nRot % 2 !== 0 || nRot > headDimK) {
      fail(`${arch}: rope dimension count ${nRot} must be even and at most the head size ${headDimK}`, { key: r.key('ropeDimensionCount'), nRot, headDimK });
    }
    if (rules.fullRotary && nRot !== headDimK) {
      fail(`${arch}: rope dimension count ${nRot} must equal the head size ${headDimK} (llama.cpp: invalid n_rot)`, { key: r.key('ropeDimensionCount'), nRot, headDimK });
    }
    // Every graph we follow sizes attn_output and the KV cache with one head size.
    if (headDimK !== headDimV) {
      fail(`${arch}: key head size ${headDimK} differs from value head size ${headDimV}`, { key: r.key('valueLength'), headDimK, headDimV });
    }
    if (rules.qWidthIsEmbd && nHead * headDimK !== nEmbd) {
      fail(`${arch}: ${nHead} heads x ${headDimK} = ${nHead * headDimK} must equal the embedding length ${nEmbd}`, { key: r.key('headCount'), nHead, headDimK, nEmbd });
    }
    // Row-wide q/k norms have one n_embd-wide weight for both (llama.cpp's olmoe loader).
    if (rules.qkNorm && rules.qkNormOver === 'row' && nHeadKv * headDimK !== nEmbd) {
      fail(`${arch}: key/value width ${nHeadKv} x ${headDimK} must equal the embedding length ${nEmbd} (attn_k_norm is ${nEmbd} wide)`, { key: r.key('headCountKv'), nHeadKv, headDimK, nEmbd });
    }
  }
  const ssm = mixers.includes('ssm') ? readSsm(r, arch) : undefined;
  const shortConvWidth = mixers.includes('shortconv') ? r.required('shortConvCache', r.int('shortConvCache')) : 0;
  if (mixers.includes('shortconv') && (shortConvWidth < 1 || shortConvWidth > 64)) {
    fail(`${arch}: short convolution width ${shortConvWidth} must be in 1..64`, { key: r.key('shortConvCache'), value: shortConvWidth });
  }
  const normEps = positiveFloat(r, 'rmsEps', r.required('rmsEps', r.float('rmsEps')));

  const tokenCount = r.tokenCount();
  const vocabSize = r.int('vocabSize');
  if (tokenCount !== undefined && vocabSize !== undefined && tokenCount !== vocabSize) {
    fail(`${arch}: ${r.key('vocabSize')} = ${vocabSize} but the vocabulary has ${tokenCount} tokens`, { key: r.key('vocabSize'), vocabSize, tokenCount });
  }
  const nVocab = tokenCount ?? vocabSize;
  if (nVocab === undefined) fail(`${arch}: neither tokenizer.ggml.tokens nor ${r.key('vocabSize')} gives the vocabulary size`, { key: r.key('vocabSize') });
  if (nVocab <= 0) fail(`${arch}: empty vocabulary`, { key: KEYS.tokens.key });

  const rope = readRope(r, arch, rules, nCtxTrain, nRot, file.tensors);

  // Sliding windows.
  let slidingWindow = 0;
  let swaPeriod = 0;
  const swa = rules.slidingWindow;
  if (swa !== 'none') {
    const w = r.int('slidingWindow');
    if (swa.window !== 'keyed') {
      // A keyed window of 0 or less is kept, then refused below.
      slidingWindow = w ?? swa.window;
      swaPeriod = r.scalarOrIgnoredArray('slidingWindowPattern') ?? swa.period;
    } else if (w !== undefined && w > 0) {
      slidingWindow = w;
      swaPeriod = r.scalarOrIgnoredArray('slidingWindowPattern') ?? swa.period;
    }
  }
  if (slidingWindow < 0) fail(`${arch}: sliding window ${slidingWindow} must be positive`, { key: r.key('slidingWindow') });
  if (swaPeriod < 0) fail(`${arch}: sliding window pattern ${swaPeriod} must not be negative`, { key: r.key('slidingWindowPattern') });
  const layers: LayerConfig[] = nFf.map((ff, il) => ({
    mixer: mixers[il]!,
    kvLayer: kvLayerOf[il]!,
    nFf: ff,
    // llama_hparams::set_swa_pattern(n_pattern, dense_first = false): every n-th layer (the last
    // of each period) is full attention; period 0 means all layers slide.
    slidingWindow: mixers[il] === 'attention' && slidingWindow > 0 && (swaPeriod === 0 || il % swaPeriod < swaPeriod - 1),
  }));

  // Attention scale, softcaps, multipliers.
  let attentionScale = headDimK > 0 ? 1 / Math.sqrt(headDimK) : 1;
  if (rules.attnScaleEmbdPerHeadAtLayers !== 0 && nLayer === rules.attnScaleEmbdPerHeadAtLayers) {
    attentionScale = 1 / Math.sqrt(Math.floor(nEmbd / nHead));
  }
  if (rules.attnScale === 'keyed') {
    const s = r.float('attentionScale') ?? 0;
    if (!Number.isFinite(s)) fail(`${arch}: attention scale ${s} is not finite`, { key: r.key('attentionScale') });
    if (s !== 0) attentionScale = s;
  }

  let attnSoftcap = 0;
  let finalSoftcap = 0;
  if (rules.softcap === 'attn-and-final') {
    attnSoftcap = r.float('attnLogitSoftcapping') ?? 50;
    finalSoftcap = r.float('finalLogitSoftcapping') ?? 30;
    positiveFloat(r, 'attnLogitSoftcapping', attnSoftcap);
    positiveFloat(r, 'finalLogitSoftcapping', finalSoftcap);
  } else if (rules.softcap === 'final-if-keyed') {
    finalSoftcap = r.float('finalLogitSoftcapping') ?? 0;
    if (!Number.isFinite(finalSoftcap) || finalSoftcap < 0) fail(`${arch}: final logit softcap ${finalSoftcap} is invalid`, { key: r.key('finalLogitSoftcapping') });
  }

  let embeddingScale = 1;
  let residualScale = 1;
  let logitDivisor = 1;
  if (rules.scales === 'sqrt-embd') embeddingScale = Math.sqrt(nEmbd);
  if (rules.scales === 'keyed') {
    const e = r.float('embeddingScale') ?? 0;
    const s = r.float('residualScale') ?? 0;
    // logit_scale is required by llama.cpp's granite loader, the one that reads these keys.
    const l = r.required('logitScale', r.float('logitScale'));
    for (const [name, v] of [['embeddingScale', e], ['residualScale', s]] as const) {
      if (!Number.isFinite(v)) fail(`${arch}: ${r.key(name)} = ${v} is not finite`, { key: r.key(name) });
    }
    if (!Number.isFinite(l) || l === 0) fail(`${arch}: ${r.key('logitScale')} = ${l} must be a non-zero number`, { key: r.key('logitScale') });
    // 0 means "not set" for the two optional ones (llama.cpp skips the multiply).
    if (e !== 0) embeddingScale = e;
    if (s !== 0) residualScale = s;
    logitDivisor = l;
  }

  const moe = rules.moe === 'none' ? undefined : readMoeConfig(arch, rules.moe, r, nLayer, nFf);
  const tensors = readTensorFeatures(file.tensors, rules, mixers);

  return {
    architecture: arch,
    name: r.string('name'),
    nVocab,
    nCtxTrain,
    nEmbd,
    nLayer,
    nHead,
    nHeadKv,
    gqaGroup: nHeadKv > 0 ? nHead / nHeadKv : 1,
    headDimK,
    headDimV,
    qDim: nHead * headDimK,
    kvDimK: nHeadKv * headDimK,
    kvDimV: nHeadKv * headDimV,
    layers,
    normEps,
    rope,
    attentionScale,
    slidingWindow,
    attnSoftcap,
    finalSoftcap,
    embeddingScale,
    residualScale,
    logitDivisor,
    activation: rules.activation,
    fusedGateUp: rules.fusedGateUp,
    qkNorm: rules.qkNorm,
    qkNormOver: rules.qkNormOver,
    postNorms: rules.postNorms,
    tensors,
    moe,
    nKvLayers: attentionLayers.length,
    ssm,
    shortConvWidth,
    outputNorm: rules.outputNorm,
  };
}

/**
 * Each layer's mixer: attention, or for a hybrid the recurrent kind where head_count_kv is 0
 * (llama.cpp's `is_recr_impl[il] = n_head_kv(il) == 0`); every layer for mamba2.
 */
function readMixers(r: KeyReader, rules: ArchRules, nLayer: number): LayerMixer[] {
  if (rules.recurrent === 'none') return new Array<LayerMixer>(nLayer).fill('attention');
  if (rules.recurrent === 'ssm-only') return new Array<LayerMixer>(nLayer).fill('ssm');
  const kind = rules.recurrent;
  const headsKv = r.required('headCountKv', r.perLayer('headCountKv', nLayer));
  return headsKv.map((h) => {
    if (h < 0) fail(`GGUF key '${r.key('headCountKv')}' holds ${h}; a layer has 0 (recurrent) or more key/value heads`, { key: r.key('headCountKv') });
    return h === 0 ? kind : 'attention';
  });
}

/** The Mamba2 sizes (llama.cpp's ssm_d_conv, ssm_d_inner, ssm_d_state, ssm_dt_rank, ssm_n_group), checked. */
function readSsm(r: KeyReader, arch: Architecture): SsmConfig {
  const get = (name: 'ssmConvKernel' | 'ssmInnerSize' | 'ssmStateSize' | 'ssmTimeStepRank' | 'ssmGroupCount') => positiveInt(r, name, r.required(name, r.int(name)));
  const convKernel = atMost(r, 'ssmConvKernel', get('ssmConvKernel'), 64);
  const inner = get('ssmInnerSize');
  const stateSize = get('ssmStateSize');
  const heads = get('ssmTimeStepRank');
  const groups = get('ssmGroupCount');
  if (inner % heads !== 0) fail(`${arch}: ssm inner size ${inner} is not a multiple of its ${heads} heads`, { key: r.key('ssmTimeStepRank'), inner, heads });
  if (heads % groups !== 0) fail(`${arch}: ${heads} ssm heads are not a multiple of ${groups} groups`, { key: r.key('ssmGroupCount'), heads, groups });
  return { inner, stateSize, heads, headDim: inner / heads, groups, convKernel, convDim: inner + 2 * groups * stateSize };
}

function uniform(r: KeyReader, name: ConfigKey, values: number[]): number {
  const first = values[0]!;
  if (values.some((v) => v !== first)) {
    fail(`GGUF key '${r.key(name)}' varies by layer (${values.join(', ')}); only uniform head counts are supported`, { key: r.key(name) });
  }
  return first;
}

function readRope(r: KeyReader, arch: Architecture, rules: ArchRules, nCtxTrain: number, nRot: number, tensors: GgufTensorInfo[]): RopeConfig {
  const freqBase = positiveFloat(r, 'ropeFreqBase', r.float('ropeFreqBase') ?? 10000);
  const scalingName = r.string('ropeScalingType') ?? 'linear';
  if (!(ROPE_SCALING_TYPES as readonly string[]).includes(scalingName)) {
    fail(`${arch}: unknown rope scaling type '${scalingName}'; known: ${ROPE_SCALING_TYPES.join(', ')}`, { key: r.key('ropeScalingType'), value: scalingName });
  }
  const scalingType = scalingName as RopeScalingType;
  // rope.scaling.factor, else the old rope.scale_linear; 0 or absent means no scaling.
  const factor = r.float('ropeScalingFactor') ?? r.float('ropeScaleLinear') ?? 0;
  if (!Number.isFinite(factor) || factor < 0) fail(`${arch}: rope scaling factor ${factor} is invalid`, { key: r.key('ropeScalingFactor') });
  // llama-context: a scaling type of 'none' never scales, whatever the factor says.
  const freqScale = scalingType === 'none' || factor === 0 ? 1 : 1 / factor;
  const ropeAttnFactor = r.float('ropeScalingAttnFactor') ?? 1;
  if (!Number.isFinite(ropeAttnFactor) || ropeAttnFactor <= 0) fail(`${arch}: rope attn_factor ${ropeAttnFactor} is invalid`, { key: r.key('ropeScalingAttnFactor') });
  const nCtxOrig = r.int('ropeScalingOrigCtx') ?? nCtxTrain;
  atMost(r, 'ropeScalingOrigCtx', positiveInt(r, 'ropeScalingOrigCtx', nCtxOrig), MAX_CONTEXT_LENGTH);

  // llama-context.cpp: YaRN turns on the ramp (ext_factor 1) and pre-divides the magnitude that the
  // rope op multiplies back in, so a plain YaRN model ends with magnitude rope.scaling.attn_factor.
  const extFactor = scalingType === 'yarn' ? 1 : 0;
  let attnFactor = 1;
  if (extFactor !== 0) {
    const f = 1 / freqScale;
    const mscale = f <= 1 ? 1 : 0.1 * Math.log(f) + 1;
    attnFactor = mscale / (1 + 0.1 * Math.log(f));
  }
  attnFactor *= ropeAttnFactor;

  let freqBaseSwa = freqBase;
  let freqScaleSwa = freqScale;
  const swaRope = rules.slidingWindow === 'none' ? 'none' : rules.slidingWindow.rope;
  if (swaRope === 'as-full') {
    freqBaseSwa = r.float('ropeFreqBaseSwa') ?? freqBase;
  } else if (swaRope === 'unscaled-base-10000') {
    // From the hparams defaults (10000, scale 1), not from the full layers' values: gemma3 4B+'s
    // linear scaling applies to its full-attention layers only.
    freqBaseSwa = r.float('ropeFreqBaseSwa') ?? 10000;
    freqScaleSwa = 1;
  }
  positiveFloat(r, 'ropeFreqBaseSwa', freqBaseSwa);

  const enabled = rules.ropeSwitchedByFinetuned ? (r.bool('ropeScalingFinetuned') ?? true) : true;

  const names = new Set(tensors.map((t) => t.name));
  let factors: RopeConfig['factors'] = 'none';
  if (rules.ropeFactorTensors === 'freqs-or-long-short') {
    // llama/granite look for long/short only when the scaling type is longrope, else rope_freqs.
    if (scalingType === 'longrope') {
      if (names.has('rope_factors_long.weight') || names.has('rope_factors_short.weight')) factors = 'long-short';
    } else if (names.has('rope_freqs.weight')) {
      factors = 'freqs';
    }
  } else if (rules.ropeFactorTensors === 'long-short') {
    if (names.has('rope_factors_long.weight') || names.has('rope_factors_short.weight')) factors = 'long-short';
  }

  return {
    type: rules.ropeType,
    enabled,
    nRot,
    freqBase,
    freqScale,
    freqBaseSwa,
    freqScaleSwa,
    scalingType,
    nCtxOrig,
    extFactor,
    attnFactor,
    betaFast: 32,
    betaSlow: 1,
    factors,
  };
}

/** Optional tensors, read off the first block of each kind (a hybrid's block 0 may be recurrent). */
function readTensorFeatures(tensors: GgufTensorInfo[], rules: ArchRules, mixers: readonly LayerMixer[]): TensorFeatures {
  const names = new Set(tensors.map((t) => t.name));
  const has = (n: string) => names.has(n);
  const attn = `blk.${Math.max(0, mixers.indexOf('attention'))}.`;
  const ssm = `blk.${Math.max(0, mixers.indexOf('ssm'))}.`;
  const fusedQkv = has(`${attn}attn_qkv.weight`);
  return {
    tiedEmbeddings: rules.alwaysTied || !has('output.weight'),
    fusedQkv,
    qkvBias: fusedQkv && has(`${attn}attn_qkv.bias`),
    qBias: !fusedQkv && has(`${attn}attn_q.bias`),
    kBias: !fusedQkv && has(`${attn}attn_k.bias`),
    vBias: !fusedQkv && has(`${attn}attn_v.bias`),
    attnOutBias: (rules.denseBiases || rules.recurrent === 'ssm') && has(`${attn}attn_output.bias`),
    ffnUpBias: rules.denseBiases && has('blk.0.ffn_up.bias'),
    ffnGateBias: rules.denseBiases && has('blk.0.ffn_gate.bias'),
    ffnDownBias: rules.denseBiases && has('blk.0.ffn_down.bias'),
    outputBias: rules.outputBias && has('output.bias'),
    ssmConvBias: rules.recurrent === 'ssm-only' || has(`${ssm}ssm_conv1d.bias`),
  };
}
