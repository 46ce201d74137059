/**
 * Random-weight GGUF models for parity tests: the tensor names, shapes and metadata keys llama.cpp
 * loads for each architecture (src/models/<arch>.cpp `load_arch_tensors` / `load_arch_hparams`),
 * any dimensions, a per-tensor quantization recipe, and a tokenizer copied from a vocab GGUF.
 *
 * Deterministic: every tensor draws from its own generator seeded by (seed, tensor name), so the
 * same seed gives the same weights whatever the quantization mix and tensor order. The output
 * projection is scaled so that logits have a standard deviation of about `outputScale` (default 6):
 * next-token distributions are then peaked (a clear top-1), where plain random weights give nearly
 * flat ones that hide bugs in the final layers and in sampling.
 *
 * Platform-agnostic: {@link planTestModel} gives the writer spec and a per-tensor data provider, so
 * a Node caller streams a big model to disk (src/node/gguf-file.ts) and a test builds a tiny one
 * in memory with {@link makeTestModel}.
 */
import { GgmlType, ggmlTypeByName, ggmlTypeInfo, ggmlTypeName } from '../engine/gguf/ggml-types.ts';
import { fallbackType, useMoreBits } from '../engine/compress/tensor-types.ts';
import { quantFormat } from '../engine/gguf/quants/index.ts';
import { GgufValueType, type GgufTensorInfo, type GgufTypeInfo, type GgufValue } from '../engine/gguf/types.ts';
import { writeGguf, type GgufInputValue, type GgufTensorSpec, type GgufWriteSpec, type TensorDataProvider } from '../engine/gguf/writer.ts';
import { checkT5Options, planT5Tensors, refuseT5Options, syntheticUgmVocab, t5Metadata, type T5Ffn } from './make-model-t5.ts';

/**
 * `mistral` is the llama architecture with `llama.attention.sliding_window` set, as Mistral 7B v0.1;
 * `mixtral` is the llama architecture with experts (ffn_gate_inp, ffn_{gate,up,down}_exps).
 */
export type TestArch = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'phi3' | 'gemma' | 'gemma2' | 'granite' | 'lfm2' | 'granitehybrid' | 't5' | MoeTestArch | SsmTestArch;
/** Architectures whose FFN is a mixture of experts (options `experts`, `expertsUsed`, `expertFf`, `sharedFf`). */
export type MoeTestArch = 'mixtral' | 'granitemoe' | 'qwen2moe' | 'qwen3moe' | 'olmoe';
export const MOE_TEST_ARCHS: readonly MoeTestArch[] = ['mixtral', 'granitemoe', 'qwen2moe', 'qwen3moe', 'olmoe'];
/**
 * State-space architectures: `mamba2` (no attention, no FFN: `heads` is the number of SSM heads,
 * `ssm.time_step_rank`, and `ff` is unused; options `ssmInner`, `ssmState`, `ssmGroups`, `ssmConv`).
 */
export type SsmTestArch = 'mamba2';
export const SSM_TEST_ARCHS: readonly SsmTestArch[] = ['mamba2'];
/**
 * Hybrids: `lfm2` has short-convolution blocks and GQA attention blocks (options `attnLayers`,
 * `shortConv`); `granitehybrid` (Granite 4.0-H) has Mamba2 blocks and attention blocks without
 * RoPE (options `attnLayers`, `ssmHeads`, `ssmState`, `ssmGroups`, `ssmConv`; d_inner is 2 * embd
 * as llama.cpp requires) and granite's scales. Each block is followed by a SwiGLU FFN.
 */
/**
 * `t5` is the encoder-decoder (src/testing/make-model-t5.ts): `layers` encoder blocks,
 * `decoderLayers` decoder blocks, options `t5Ffn`, `relBuckets`, `decoderStartToken`; its default
 * vocabulary is a SentencePiece unigram one ({@link syntheticUgmVocab}).
 */
export const TEST_ARCHS: readonly TestArch[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'phi3', 'gemma', 'gemma2', 'granite', 'lfm2', 'granitehybrid', 't5', ...MOE_TEST_ARCHS, ...SSM_TEST_ARCHS];

/** What a tensor is for; quantization recipes choose types by role. */
export type TensorRole =
  | 'token_embd'
  | 'output'
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_qkv'
  | 'attn_output'
  | 'ffn_gate'
  | 'ffn_up'
  | 'ffn_down'
  /** LFM2's short-convolution blocks: the in-projection (b, c, x) and the out-projection. */
  | 'shortconv_in'
  | 'shortconv_out'
  /** State-space blocks: the input projection (z, xBC, dt) and the output projection. */
  | 'ssm_in'
  | 'ssm_out'
  /** 1-D tensors: norms, biases, rope factors. Always F32 in llama.cpp's recipes. */
  | 'vector';

export const TENSOR_ROLES: readonly TensorRole[] = [
  'token_embd', 'output', 'attn_q', 'attn_k', 'attn_v', 'attn_qkv', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'shortconv_in', 'shortconv_out', 'ssm_in', 'ssm_out', 'vector',
];

export interface TensorPlan {
  name: string;
  role: TensorRole;
  /** Block index, or -1 for global tensors. */
  layer: number;
  shape: number[];
  /** How the values are drawn. */
  init: WeightInit;
}

type WeightInit =
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'ramp'; from: number; to: number };

/** Picks the stored type of each tensor. */
export type QuantRecipe = (tensor: TensorPlan, model: { nLayer: number }) => GgmlType;

/** A tokenizer: the `tokenizer.*` keys of a GGUF (all of them are copied). */
export interface VocabSource {
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufTypeInfo>;
}

export interface TestModelOptions {
  arch: TestArch;
  /** Hidden size (n_embd). */
  embd: number;
  layers: number;
  heads: number;
  /** Default: heads (no GQA). */
  kvHeads?: number;
  /**
   * Head dimension. Default embd / heads. llama.cpp requires heads * headDim == embd for qwen2 and
   * phi3 (their q projection is embd x embd); qwen3, gemma, gemma2, llama and granite allow any.
   */
  headDim?: number;
  /** Feed-forward size (n_ff). */
  ff: number;
  /** context_length. Default 4096 (131072 for phi3 with longRope). */
  ctx?: number;
  /** Tokenizer keys; default: a small SentencePiece-style vocabulary ({@link syntheticVocab}). */
  vocab?: VocabSource;
  /** A preset name ("q4_k_m", "f16", "q8_0", ...), "preset,role=type,..." or a function. Default "f32". */
  quant?: string | QuantRecipe;
  seed?: number;
  /**
   * Quantized matrices from sampled blocks (size and speed demos, e.g. an 8B-shaped file): each
   * matrix quantizes {@link SAMPLED_POOL_ROWS} random rows once, then every block of every row is
   * a copy of the block at its column in a randomly chosen pool row. Same types, sizes and value
   * statistics as the full path, about 100x faster for large files, but `values()` no longer
   * describes the bytes: not for parity tests.
   */
  sampledBlocks?: boolean;
  /** Standard deviation of the logits, about. Default 6. */
  outputScale?: number;
  /** No output.weight: logits use token_embd (always so for gemma and gemma2). */
  tiedEmbeddings?: boolean;
  /** Window for mistral (default 4096) and gemma2 (default 4096; llama.cpp's default for gemma2). */
  slidingWindow?: number;
  ropeFreqBase?: number;
  rmsEps?: number;
  /** llama: a llama3-style rope_freqs.weight tensor. */
  ropeFreqs?: boolean;
  /** phi3: long-context RoPE (rope_factors_long/short, original_context_length 4096, attn_factor). */
  longRope?: boolean;
  /** qwen2: q/k/v biases (default true, as Qwen2 has them); llama/mistral/granite: attn_output and ffn biases. */
  biases?: boolean;
  /** tokenizer.chat_template to set (overrides the vocab's). */
  chatTemplate?: string;
  name?: string;
  /** MoE archs: experts per block (default 8) and experts per token (default 2). */
  experts?: number;
  expertsUsed?: number;
  /** MoE archs: one expert's FFN width (default `ff`; written as expert_feed_forward_length for qwen2moe/qwen3moe). */
  expertFf?: number;
  /** Shared expert width: qwen2moe always has one (default `ff`); granitemoe when > 0 (default none). */
  sharedFf?: number;
  /** mamba2: d_inner (ssm.inner_size, default 2 * embd). */
  ssmInner?: number;
  /** mamba2: d_state (ssm.state_size, default 16). */
  ssmState?: number;
  /** mamba2: groups of B and C (ssm.group_count, default 1); divides heads. */
  ssmGroups?: number;
  /** mamba2: causal convolution width (ssm.conv_kernel, default 4). */
  ssmConv?: number;
  /** granitehybrid: SSM heads (ssm.time_step_rank, default `heads`). */
  ssmHeads?: number;
  /** lfm2, granitehybrid: the layers with attention (the others are short-convolution or Mamba2 blocks); default the odd ones. */
  attnLayers?: readonly number[];
  /** lfm2: the short convolution's width (shortconv.l_cache, default 3). */
  shortConv?: number;
  /** t5: decoder blocks (default `layers`, the encoder's). */
  decoderLayers?: number;
  /** t5: relative position buckets (attention.relative_buckets_count, default 32). */
  relBuckets?: number;
  /** t5: the FFN, 'gated-gelu' (Flan-T5, default) or 'relu' (original T5). */
  t5Ffn?: T5Ffn;
  /** t5: decoder_start_token_id (default 0, <pad>, as T5's). */
  decoderStartToken?: number;
}

const isMoe = (arch: TestArch): arch is MoeTestArch => (MOE_TEST_ARCHS as readonly string[]).includes(arch);
const isSsm = (arch: TestArch): arch is SsmTestArch => (SSM_TEST_ARCHS as readonly string[]).includes(arch);

/** Resolved Mamba2 sizes: d_inner, d_state, heads, head dim, groups, conv width. */
export interface SsmDims {
  inner: number;
  state: number;
  heads: number;
  headDim: number;
  groups: number;
  conv: number;
}

/** The SSM sizes of mamba2 and of granitehybrid's Mamba2 layers; undefined for other archs. */
function ssmDims(o: TestModelOptions): SsmDims | undefined {
  if (!isSsm(o.arch) && o.arch !== 'granitehybrid') return undefined;
  const inner = o.ssmInner ?? 2 * o.embd;
  const heads = o.arch === 'granitehybrid' ? (o.ssmHeads ?? o.heads) : o.heads;
  return { inner, state: o.ssmState ?? 16, heads, headDim: Math.floor(inner / heads), groups: o.ssmGroups ?? 1, conv: o.ssmConv ?? 4 };
}

/** Resolved MoE sizes of a test model: experts, used, expert width, shared width (0: none). */
interface MoeDims {
  X: number;
  U: number;
  FX: number;
  FS: number;
}

function moeDims(o: TestModelOptions): MoeDims | undefined {
  // granitehybrid: Granite 4.0-H Tiny/Small have experts, Micro has none.
  if (o.arch === 'granitehybrid' && o.experts !== undefined) {
    return { X: o.experts, U: o.expertsUsed ?? 2, FX: o.expertFf ?? o.ff, FS: o.sharedFf ?? 0 };
  }
  if (!isMoe(o.arch)) return undefined;
  const X = o.experts ?? 8;
  const U = o.expertsUsed ?? 2;
  const FX = o.expertFf ?? o.ff;
  const FS = o.arch === 'qwen2moe' ? (o.sharedFf ?? o.ff) : o.arch === 'granitemoe' ? (o.sharedFf ?? 0) : 0;
  return { X, U, FX, FS };
}

// ---------------------------------------------------------------- random numbers

/** FNV-1a of a string, to derive per-tensor seeds. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** xoshiro128**: fast, good enough for weights, reproducible on every platform. */
function xoshiro(seed: number): () => number {
  // splitmix32 spreads the seed over the 128-bit state.
  let z = seed >>> 0;
  const next32 = () => {
    z = (z + 0x9e3779b9) >>> 0;
    let t = z;
    t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
    t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
    return (t ^ (t >>> 16)) >>> 0;
  };
  let a = next32();
  let b = next32();
  let c = next32();
  let d = next32();
  const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

/** Standard normal values (Box-Muller, both outputs used). */
function fillNormal(out: Float32Array, next: () => number, mean: number, std: number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - next(); // (0, 1]
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = mean + r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = mean + r * Math.sin(2 * Math.PI * u2);
  }
}

// ---------------------------------------------------------------- quantization recipes

// The quantizer's own rules, so test recipes and `hearth quantize` cannot drift apart.
export { useMoreBits };

/**
 * A Q4_K_M-like mix, after llama.cpp's llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M: Q4_K
 * everywhere, Q6_K for output (and for token_embd when it is also the output), Q6_K for attn_v and
 * ffn_down in the layers useMoreBits picks, Q5_K for a fused attn_qkv, F32 for vectors.
 */
export const q4kmRecipe: QuantRecipe = (t, { nLayer }) => {
  switch (t.role) {
    case 'vector':
      return GgmlType.F32;
    case 'output':
      return GgmlType.Q6_K;
    case 'attn_v':
    case 'ffn_down':
      return useMoreBits(t.layer, nLayer) ? GgmlType.Q6_K : GgmlType.Q4_K;
    case 'attn_qkv':
      return GgmlType.Q5_K;
    default:
      return GgmlType.Q4_K;
  }
};

function uniformRecipe(type: GgmlType): QuantRecipe {
  return (t) => (t.role === 'vector' ? GgmlType.F32 : type);
}

/** llama_ftype values for general.file_type (llama.h). */
const FILE_TYPES: Record<string, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 12, q4_k: 15, q4_k_m: 15, q5_k: 17,
  q6_k: 18, iq4_nl: 25, iq4_xs: 30, bf16: 32,
};

/**
 * Parses a quantization argument: a preset ("f32", "f16", "bf16", "q8_0", "q4_k_m", any type name
 * for "all 2-D tensors of this type"), optionally followed by role overrides:
 * "q4_k_m,output=q8_0,token_embd=f16". Returns the recipe and the general.file_type to record.
 */
export function parseQuantSpec(spec: string): { recipe: QuantRecipe; fileType: number } {
  const [preset, ...overrides] = spec.split(',').map((s) => s.trim().toLowerCase());
  let base: QuantRecipe;
  if (preset === 'q4_k_m') base = q4kmRecipe;
  else {
    const type = ggmlTypeByName(preset ?? '');
    if (type === undefined) throw new RangeError(`unknown quantization '${preset}': use q4_k_m or a ggml type name (f32, f16, q8_0, q4_k, ...)`);
    base = uniformRecipe(type.type);
  }
  const roles = new Map<TensorRole, GgmlType>();
  for (const o of overrides) {
    const [role, typeName] = o.split('=');
    if (!TENSOR_ROLES.includes(role as TensorRole)) throw new RangeError(`unknown tensor role '${role}' (roles: ${TENSOR_ROLES.join(', ')})`);
    const type = ggmlTypeByName(typeName ?? '');
    if (!type) throw new RangeError(`unknown ggml type '${typeName}' for role ${role}`);
    roles.set(role as TensorRole, type.type);
  }
  const recipe: QuantRecipe = (t, m) => roles.get(t.role) ?? base(t, m);
  return { recipe, fileType: FILE_TYPES[preset!] ?? 7 };
}

// ---------------------------------------------------------------- vocabulary

/**
 * A small SentencePiece-style vocabulary llama.cpp accepts: <unk>, <s>, </s>, the 256 byte tokens
 * (<0x00>..<0xFF>, so byte fallback and the newline token exist), then `pieces` word pieces.
 */
export function syntheticVocab(pieces = 64): VocabSource {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
    scores.push(0);
  }
  const letters = 'etaoinshrdlucmfwypvbgkjqxz';
  for (let i = 0; tokens.length < 259 + pieces; i++) {
    const a = letters[i % 26]!;
    const b = letters[Math.floor(i / 26) % 26]!;
    tokens.push(i < 26 ? `▁${a}` : `${b}${a}`);
    types.push(1);
    scores.push(-1 - i);
  }
  return spmVocabSource(tokens, types, Float32Array.from(scores));
}

/** The tokenizer keys of a SentencePiece-style (llama) vocabulary: BOS 1, EOS 2, UNK 0, BOS added. */
export function spmVocabSource(tokens: string[], types: number[], scores: Float32Array): VocabSource {
  const T = GgufValueType;
  const entries: Array<[string, GgufValue, GgufTypeInfo]> = [
    ['tokenizer.ggml.model', 'llama', { type: T.STRING }],
    ['tokenizer.ggml.pre', 'default', { type: T.STRING }],
    ['tokenizer.ggml.tokens', tokens, { type: T.ARRAY, elementType: T.STRING }],
    ['tokenizer.ggml.scores', scores, { type: T.ARRAY, elementType: T.FLOAT32 }],
    ['tokenizer.ggml.token_type', Int32Array.from(types), { type: T.ARRAY, elementType: T.INT32 }],
    ['tokenizer.ggml.bos_token_id', 1, { type: T.UINT32 }],
    ['tokenizer.ggml.eos_token_id', 2, { type: T.UINT32 }],
    ['tokenizer.ggml.unknown_token_id', 0, { type: T.UINT32 }],
    ['tokenizer.ggml.add_bos_token', true, { type: T.BOOL }],
    ['tokenizer.ggml.add_eos_token', false, { type: T.BOOL }],
  ];
  return { metadata: new Map(entries.map(([k, v]) => [k, v])), metadataTypes: new Map(entries.map(([k, , t]) => [k, t])) };
}

// ---------------------------------------------------------------- the plan

/** Resolved dimensions: embd, vocab, layers, heads, kv heads, head dim, ff. */
export interface Dims {
  E: number;
  V: number;
  L: number;
  H: number;
  Hkv: number;
  D: number;
  F: number;
}

function checkDims(o: TestModelOptions, d: Dims): void {
  if (o.arch === 't5') return checkT5Options(o, d);
  refuseT5Options(o);
  if (o.ssmHeads !== undefined && o.arch !== 'granitehybrid') throw new RangeError(`make-model: ssmHeads is a granitehybrid option (mamba2: heads)`);
  const ssm = ssmDims(o);
  if (o.arch === 'mamba2') return checkSsmDims(o, d, ssm!);
  if (ssm) {
    checkSsmShape(d, ssm);
    if (ssm.inner !== 2 * d.E) throw new RangeError(`make-model: ${o.arch} needs ssmInner == 2 * embd (llama.cpp asserts it), got ${ssm.inner}`);
  } else if (o.ssmInner !== undefined || o.ssmState !== undefined || o.ssmGroups !== undefined || o.ssmConv !== undefined) {
    throw new RangeError(`make-model: ${o.arch} has no state-space layers (${[...SSM_TEST_ARCHS, 'granitehybrid'].join(', ')} do)`);
  }
  if (o.arch === 'lfm2' || o.arch === 'granitehybrid') {
    const attn = hybridAttnLayers(o);
    if (attn.some((i) => !Number.isSafeInteger(i) || i < 0 || i >= d.L)) throw new RangeError(`make-model: attnLayers must be layer indices in [0, ${d.L}), got ${attn.join(',')}`);
  } else if (o.attnLayers !== undefined) {
    throw new RangeError(`make-model: attnLayers is an option of the hybrids (lfm2, granitehybrid), not ${o.arch}'s`);
  }
  if (o.arch === 'lfm2') {
    // llama.cpp's lfm2 loader makes attn_q and attn_output embd x embd.
    if (d.H * d.D !== d.E) throw new RangeError(`make-model: lfm2 needs heads * headDim == embd (${d.H} * ${d.D} != ${d.E})`);
    const width = o.shortConv ?? 3;
    if (!Number.isSafeInteger(width) || width < 2) throw new RangeError(`make-model: shortConv must be an integer of at least 2 (llama.cpp keeps width - 1 past columns), got ${width}`);
  } else if (o.shortConv !== undefined) {
    throw new RangeError(`make-model: shortConv is an lfm2 option, not ${o.arch}'s`);
  }
  const positive = { embd: d.E, layers: d.L, heads: d.H, kvHeads: d.Hkv, headDim: d.D, ff: d.F };
  for (const [k, v] of Object.entries(positive)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`make-model: ${k} must be a positive integer, got ${v}`);
  }
  if (d.H % d.Hkv !== 0) throw new RangeError(`make-model: heads (${d.H}) must be a multiple of kvHeads (${d.Hkv})`);
  if (d.D % 2 !== 0) throw new RangeError(`make-model: headDim (${d.D}) must be even for RoPE`);
  if ((o.arch === 'qwen2' || o.arch === 'qwen2moe' || o.arch === 'phi3' || o.arch === 'olmoe') && d.H * d.D !== d.E) {
    throw new RangeError(`make-model: ${o.arch} needs heads * headDim == embd (${d.H} * ${d.D} != ${d.E})`);
  }
  if (d.V < 1) throw new RangeError('make-model: the vocabulary has no tokens');
  if (o.arch === 'olmoe' && d.Hkv !== d.H) throw new RangeError(`make-model: olmoe needs kvHeads == heads (its attn_k_norm is embd wide)`);
  const m = moeDims(o);
  if (m) {
    for (const [k, v] of Object.entries({ experts: m.X, expertsUsed: m.U, expertFf: m.FX })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`make-model: ${k} must be a positive integer, got ${v}`);
    }
    if (m.U > m.X) throw new RangeError(`make-model: expertsUsed (${m.U}) must be at most experts (${m.X})`);
    if (o.arch === 'mixtral' && m.FS > 0) throw new RangeError('make-model: mixtral has no shared expert');
  } else if (o.experts !== undefined || o.expertsUsed !== undefined || o.expertFf !== undefined || o.sharedFf !== undefined) {
    throw new RangeError(`make-model: ${o.arch} is not a mixture-of-experts architecture (${MOE_TEST_ARCHS.join(', ')} are)`);
  }
}

/** The SSM sizes llama.cpp's Mamba2 layer accepts. */
function checkSsmShape(d: Dims, s: SsmDims): void {
  const positive = { embd: d.E, layers: d.L, 'SSM heads': s.heads, ssmInner: s.inner, ssmState: s.state, ssmGroups: s.groups, ssmConv: s.conv };
  for (const [k, v] of Object.entries(positive)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`make-model: ${k} must be a positive integer, got ${v}`);
  }
  if (s.inner % s.heads !== 0) throw new RangeError(`make-model: ssmInner (${s.inner}) must be a multiple of the SSM heads (${s.heads})`);
  if (s.heads % s.groups !== 0) throw new RangeError(`make-model: the SSM heads (${s.heads}) must be a multiple of ssmGroups (${s.groups})`);
  if (s.conv < 2) throw new RangeError(`make-model: ssmConv must be at least 2 (llama.cpp keeps conv - 1 past columns), got ${s.conv}`);
}

function checkSsmDims(o: TestModelOptions, d: Dims, s: SsmDims): void {
  checkSsmShape(d, s);
  if (d.V < 1) throw new RangeError('make-model: the vocabulary has no tokens');
  if (o.kvHeads !== undefined || o.headDim !== undefined) throw new RangeError(`make-model: ${o.arch} has no attention (kvHeads, headDim); heads is its SSM head count`);
  if (o.experts !== undefined || o.expertsUsed !== undefined || o.expertFf !== undefined || o.sharedFf !== undefined) {
    throw new RangeError(`make-model: ${o.arch} is not a mixture-of-experts architecture (${MOE_TEST_ARCHS.join(', ')} are)`);
  }
}

/** A hybrid's attention layers (lfm2, granitehybrid): the ones asked for, or every odd layer. */
export function hybridAttnLayers(o: Pick<TestModelOptions, 'attnLayers' | 'layers'>): number[] {
  return o.attnLayers ? [...o.attnLayers] : Array.from({ length: o.layers }, (_, i) => i).filter((i) => i % 2 === 1);
}

/**
 * LFM2's tensors (llama.cpp's llama_model_lfm2::load_arch_tensors): per layer either attention
 * (q, k, v with per-head q/k norms, output) or a short convolution (in_proj to b, c, x; conv;
 * out_proj), then a SwiGLU FFN. The final norm is named token_embd_norm, as llama.cpp expects.
 */
function planLfm2Tensors(o: TestModelOptions, d: Dims, add: (name: string, role: TensorRole, layer: number, shape: number[], init: WeightInit) => void): void {
  const { E, V, L, Hkv, D, F } = d;
  const proj = (fanIn: number): WeightInit => ({ kind: 'normal', std: 1 / Math.sqrt(fanIn) });
  const norm: WeightInit = { kind: 'normal', mean: 1, std: 0.1 };
  const tied = o.tiedEmbeddings ?? false;
  const outputStd = (o.outputScale ?? 6) / Math.sqrt(E);
  const attn = new Set(hybridAttnLayers(o));
  const width = o.shortConv ?? 3;
  if (tied) add('token_embd.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
  else add('token_embd.weight', 'token_embd', -1, [E, V], { kind: 'normal', std: 1 });
  for (let i = 0; i < L; i++) {
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, 'vector', i, [E], norm);
    if (attn.has(i)) {
      add(`${b}attn_q.weight`, 'attn_q', i, [E, E], proj(E));
      add(`${b}attn_k.weight`, 'attn_k', i, [E, Hkv * D], proj(E));
      add(`${b}attn_v.weight`, 'attn_v', i, [E, Hkv * D], proj(E));
      add(`${b}attn_q_norm.weight`, 'vector', i, [D], norm);
      add(`${b}attn_k_norm.weight`, 'vector', i, [D], norm);
      add(`${b}attn_output.weight`, 'attn_output', i, [E, E], proj(E));
    } else {
      // b and c gate the convolution's input and output: unit-scale products keep it comparable
      // to attention; the kernel's taps sum to about 1 over the window.
      add(`${b}shortconv.in_proj.weight`, 'shortconv_in', i, [E, 3 * E], proj(E));
      add(`${b}shortconv.conv.weight`, 'vector', i, [width, E], proj(width));
      add(`${b}shortconv.out_proj.weight`, 'shortconv_out', i, [E, E], proj(E));
    }
    add(`${b}ffn_norm.weight`, 'vector', i, [E], norm);
    add(`${b}ffn_gate.weight`, 'ffn_gate', i, [E, F], proj(E));
    add(`${b}ffn_up.weight`, 'ffn_up', i, [E, F], proj(E));
    add(`${b}ffn_down.weight`, 'ffn_down', i, [F, E], proj(F));
  }
  add('token_embd_norm.weight', 'vector', -1, [E], norm);
  if (!tied) add('output.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
}

/**
 * Mamba2's tensors (llama.cpp's llama_model_mamba2::load_arch_tensors). The values make a model
 * whose state matters: dt = softplus(dt_proj + ssm_dt.bias) around 0.1, A = -exp(A_log) spread
 * over [-8, -1] by head (the file holds A, already negated), so each head remembers a few tokens
 * to a few tens of them.
 */
function planMamba2Tensors(o: TestModelOptions, d: Dims, s: SsmDims, add: (name: string, role: TensorRole, layer: number, shape: number[], init: WeightInit) => void): void {
  const { E, V, L } = d;
  const norm: WeightInit = { kind: 'normal', mean: 1, std: 0.1 };
  const tied = o.tiedEmbeddings ?? false;
  const outputStd = (o.outputScale ?? 6) / Math.sqrt(E);
  if (tied) add('token_embd.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
  else add('token_embd.weight', 'token_embd', -1, [E, V], { kind: 'normal', std: 1 });
  for (let i = 0; i < L; i++) {
    add(`blk.${i}.attn_norm.weight`, 'vector', i, [E], norm);
    addMamba2Mixer(i, E, s, add);
  }
  add('output_norm.weight', 'vector', -1, [E], norm);
  if (!tied) add('output.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
}

/**
 * One layer's experts. The router stays F32 (llama.cpp's quantizer never quantizes ffn_gate_inp:
 * role 'vector'); its weights give logits of standard deviation ~2 over normalized inputs: clear
 * but varied choices, so different tokens pick different experts.
 */
function addMoeFfn(i: number, E: number, moe: MoeDims, sharedGate: boolean, add: (name: string, role: TensorRole, layer: number, shape: number[], init: WeightInit) => void, downGain = 1): void {
  const { X, FX, FS } = moe;
  const b = `blk.${i}.`;
  const proj = (fanIn: number, gain = 1): WeightInit => ({ kind: 'normal', std: gain / Math.sqrt(fanIn) });
  add(`${b}ffn_gate_inp.weight`, 'vector', i, [E, X], { kind: 'normal', std: 2 / Math.sqrt(E) });
  add(`${b}ffn_gate_exps.weight`, 'ffn_gate', i, [E, FX, X], proj(E));
  add(`${b}ffn_down_exps.weight`, 'ffn_down', i, [FX, E, X], proj(FX, downGain));
  add(`${b}ffn_up_exps.weight`, 'ffn_up', i, [E, FX, X], proj(E));
  if (sharedGate) add(`${b}ffn_gate_inp_shexp.weight`, 'vector', i, [E], { kind: 'normal', std: 1 / Math.sqrt(E) });
  if (FS > 0) {
    add(`${b}ffn_gate_shexp.weight`, 'ffn_gate', i, [E, FS], proj(E));
    add(`${b}ffn_down_shexp.weight`, 'ffn_down', i, [FS, E], proj(FS, downGain));
    add(`${b}ffn_up_shexp.weight`, 'ffn_up', i, [E, FS], proj(E));
  }
}

/** One layer's Mamba2 mixer tensors (mamba2, granitehybrid). */
function addMamba2Mixer(i: number, E: number, s: SsmDims, add: (name: string, role: TensorRole, layer: number, shape: number[], init: WeightInit) => void, outGain = 1): void {
  const convDim = s.inner + 2 * s.groups * s.state;
  const inProj = s.inner + convDim + s.heads;
  const proj = (fanIn: number): WeightInit => ({ kind: 'normal', std: 1 / Math.sqrt(fanIn) });
  const norm: WeightInit = { kind: 'normal', mean: 1, std: 0.1 };
  const b = `blk.${i}.`;
  add(`${b}ssm_in.weight`, 'ssm_in', i, [E, inProj], proj(E));
  // llama.cpp's quantizer keeps the convolution, A, D and the norm in F32 (role 'vector').
  add(`${b}ssm_conv1d.weight`, 'vector', i, [s.conv, convDim], proj(s.conv));
  add(`${b}ssm_conv1d.bias`, 'vector', i, [convDim], { kind: 'normal', std: 0.1 });
  add(`${b}ssm_dt.bias`, 'vector', i, [s.heads], { kind: 'normal', mean: -2, std: 0.5 });
  add(`${b}ssm_a`, 'vector', i, [1, s.heads], { kind: 'ramp', from: -1, to: -8 });
  add(`${b}ssm_d`, 'vector', i, [1, s.heads], norm);
  add(`${b}ssm_norm.weight`, 'vector', i, [s.inner / s.groups, s.groups], norm);
  add(`${b}ssm_out.weight`, 'ssm_out', i, [s.inner, E], { kind: 'normal', std: outGain / Math.sqrt(s.inner) });
}

/**
 * Granite 4.0-H's tensors (llama.cpp's llama_model_granite_hybrid::load_arch_tensors): per layer
 * a Mamba2 mixer or attention (q, k, v, output; no RoPE), then a SwiGLU FFN; logits divided by
 * granite's logit_scale, so the output projection is scaled up by it. As in trained Granite
 * models, embeddings are small before embedding_scale and the blocks' output projections large
 * against residual_scale, so every block adds about as much as the embedding: with unit
 * embeddings (12 after scaling) and unit blocks (0.22 after scaling) the logits would hardly
 * depend on anything but the current token (a fresh state per token measured KL 2e-7 from the
 * full context).
 */
function planGraniteHybridTensors(o: TestModelOptions, d: Dims, s: SsmDims, add: (name: string, role: TensorRole, layer: number, shape: number[], init: WeightInit) => void): void {
  const { E, V, L, H, Hkv, D, F } = d;
  const proj = (fanIn: number): WeightInit => ({ kind: 'normal', std: 1 / Math.sqrt(fanIn) });
  const norm: WeightInit = { kind: 'normal', mean: 1, std: 0.1 };
  const tied = o.tiedEmbeddings ?? false;
  const outputStd = ((o.outputScale ?? 6) * GRANITE_LOGIT_SCALE) / Math.sqrt(E);
  const attn = new Set(hybridAttnLayers(o));
  const gain = 1 / GRANITE_RESIDUAL_SCALE;
  const moe = moeDims(o);
  if (tied) add('token_embd.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
  else add('token_embd.weight', 'token_embd', -1, [E, V], { kind: 'normal', std: 1 / GRANITE_EMBEDDING_SCALE });
  for (let i = 0; i < L; i++) {
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, 'vector', i, [E], norm);
    if (attn.has(i)) {
      add(`${b}attn_q.weight`, 'attn_q', i, [E, H * D], proj(E));
      add(`${b}attn_k.weight`, 'attn_k', i, [E, Hkv * D], proj(E));
      add(`${b}attn_v.weight`, 'attn_v', i, [E, Hkv * D], proj(E));
      add(`${b}attn_output.weight`, 'attn_output', i, [H * D, E], { kind: 'normal', std: gain / Math.sqrt(H * D) });
    } else {
      addMamba2Mixer(i, E, s, add, gain);
    }
    add(`${b}ffn_norm.weight`, 'vector', i, [E], norm);
    if (moe) {
      addMoeFfn(i, E, moe, false, add, gain);
      continue;
    }
    add(`${b}ffn_gate.weight`, 'ffn_gate', i, [E, F], proj(E));
    add(`${b}ffn_up.weight`, 'ffn_up', i, [E, F], proj(E));
    add(`${b}ffn_down.weight`, 'ffn_down', i, [F, E], { kind: 'normal', std: gain / Math.sqrt(F) });
  }
  add('output_norm.weight', 'vector', -1, [E], norm);
  if (!tied) add('output.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
}

/** The tensors llama.cpp's loader expects for `arch`, in the order a converter writes them. */
export function planTensors(o: TestModelOptions, d: Dims): TensorPlan[] {
  const { E, V, L, H, Hkv, D, F } = d;
  const out: TensorPlan[] = [];
  const outputScale = o.outputScale ?? 6;
  const granite = o.arch === 'granite' || o.arch === 'granitemoe';
  const logitScale = granite ? GRANITE_LOGIT_SCALE : 1;
  const tied = o.arch === 'gemma' || o.arch === 'gemma2' || (o.tiedEmbeddings ?? false);
  // Normalized hidden states have RMS ~1, so std(logit) ~ std(w) * sqrt(E): pick std(w) to make it
  // outputScale (granite divides logits by logit_scale, so scale up by it).
  const outputStd = (outputScale * logitScale) / Math.sqrt(E);
  const proj = (fanIn: number): WeightInit => ({ kind: 'normal', std: 1 / Math.sqrt(fanIn) });
  const norm: WeightInit = { kind: 'normal', mean: 1, std: 0.1 };
  const bias: WeightInit = { kind: 'normal', std: 0.1 };
  // Gemma 2 scales the (tied, so output-sized) embeddings by sqrt(embd); larger post-norm gains keep
  // the layers' contributions comparable to that, so the logits depend on more than the last token.
  const postNorm: WeightInit = { kind: 'normal', mean: 4, std: 0.4 };
  // Gemma 1 has the same scaled embeddings and no post-norms. Tied and scaled, a token's own
  // embedding dominates the residual (rms 6 against about 1 from each block) and every position
  // predicts its input token whatever the blocks do; a gain on the blocks' output projections
  // makes them count (measured at embd 64: 80 of 80 positions predict their input token with gain
  // 1 or 4, 35 of 80 with 16).
  const blockOut = (fanIn: number): WeightInit => ({ kind: 'normal', std: (o.arch === 'gemma' ? GEMMA_BLOCK_GAIN : 1) / Math.sqrt(fanIn) });
  const add = (name: string, role: TensorRole, layer: number, shape: number[], init: WeightInit) => out.push({ name, role, layer, shape, init });
  const ssm = ssmDims(o);
  if (o.arch === 'mamba2') {
    planMamba2Tensors(o, d, ssm!, add);
    return out;
  }
  if (o.arch === 'granitehybrid') {
    planGraniteHybridTensors(o, d, ssm!, add);
    return out;
  }
  if (o.arch === 'lfm2') {
    planLfm2Tensors(o, d, add);
    return out;
  }
  if (o.arch === 't5') {
    planT5Tensors(o, d, add);
    return out;
  }

  // A tied embedding is also the output projection: it gets the output's scale and, like in
  // llama.cpp's recipes, the output's quantization type (role 'output').
  if (tied) add('token_embd.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
  else add('token_embd.weight', 'token_embd', -1, [E, V], { kind: 'normal', std: 1 });
  if ((o.arch === 'llama' || o.arch === 'mixtral') && o.ropeFreqs) add('rope_freqs.weight', 'vector', -1, [D / 2], { kind: 'ramp', from: 1, to: 8 });
  if (o.arch === 'phi3' && o.longRope) {
    add('rope_factors_long.weight', 'vector', -1, [D / 2], { kind: 'ramp', from: 1, to: 16 });
    add('rope_factors_short.weight', 'vector', -1, [D / 2], { kind: 'ramp', from: 1, to: 1.5 });
  }
  const llamaLike = o.arch === 'llama' || o.arch === 'mistral' || o.arch === 'granite';
  const moe = moeDims(o);
  const extraBiases = llamaLike && (o.biases ?? false);
  for (let i = 0; i < L; i++) {
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, 'vector', i, [E], norm);
    if (o.arch === 'phi3') {
      add(`${b}attn_qkv.weight`, 'attn_qkv', i, [E, E + 2 * Hkv * D], proj(E));
      add(`${b}attn_output.weight`, 'attn_output', i, [E, E], proj(E));
    } else {
      add(`${b}attn_q.weight`, 'attn_q', i, [E, H * D], proj(E));
      add(`${b}attn_k.weight`, 'attn_k', i, [E, Hkv * D], proj(E));
      add(`${b}attn_v.weight`, 'attn_v', i, [E, Hkv * D], proj(E));
      if ((o.arch === 'qwen2' || o.arch === 'qwen2moe') && (o.biases ?? true)) {
        add(`${b}attn_q.bias`, 'vector', i, [H * D], bias);
        add(`${b}attn_k.bias`, 'vector', i, [Hkv * D], bias);
        add(`${b}attn_v.bias`, 'vector', i, [Hkv * D], bias);
      }
      if (o.arch === 'qwen3' || o.arch === 'qwen3moe') {
        add(`${b}attn_q_norm.weight`, 'vector', i, [D], norm);
        add(`${b}attn_k_norm.weight`, 'vector', i, [D], norm);
      }
      if (o.arch === 'olmoe') {
        add(`${b}attn_q_norm.weight`, 'vector', i, [E], norm);
        add(`${b}attn_k_norm.weight`, 'vector', i, [E], norm);
      }
      add(`${b}attn_output.weight`, 'attn_output', i, [H * D, E], blockOut(H * D));
      if (extraBiases) add(`${b}attn_output.bias`, 'vector', i, [E], bias);
    }
    if (o.arch === 'gemma2') add(`${b}post_attention_norm.weight`, 'vector', i, [E], postNorm);
    add(`${b}ffn_norm.weight`, 'vector', i, [E], norm);
    if (moe) {
      addMoeFfn(i, E, moe, o.arch === 'qwen2moe', add);
      continue;
    }
    if (o.arch === 'phi3') {
      add(`${b}ffn_up.weight`, 'ffn_up', i, [E, 2 * F], proj(E));
    } else {
      add(`${b}ffn_gate.weight`, 'ffn_gate', i, [E, F], proj(E));
      add(`${b}ffn_up.weight`, 'ffn_up', i, [E, F], proj(E));
    }
    add(`${b}ffn_down.weight`, 'ffn_down', i, [F, E], blockOut(F));
    if (extraBiases) {
      if (o.arch !== 'phi3') add(`${b}ffn_gate.bias`, 'vector', i, [F], bias);
      add(`${b}ffn_up.bias`, 'vector', i, [F], bias);
      add(`${b}ffn_down.bias`, 'vector', i, [E], bias);
    }
    if (o.arch === 'gemma2') add(`${b}post_ffw_norm.weight`, 'vector', i, [E], postNorm);
  }
  add('output_norm.weight', 'vector', -1, [E], norm);
  if (!tied) add('output.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
  return out;
}

const GRANITE_LOGIT_SCALE = 8;
const GRANITE_RESIDUAL_SCALE = 0.22;
const GRANITE_EMBEDDING_SCALE = 12;
/** Gain of gemma's attn_output and ffn_down, against the sqrt(embd)-scaled tied embeddings. */
const GEMMA_BLOCK_GAIN = 16;

/** Mamba2's keys as llama.cpp's converter writes them (feed_forward_length and head_count 0: unused, but read). */
function mamba2Metadata(o: TestModelOptions, d: Dims, s: SsmDims, fileType: number): MetadataEntry[] {
  const T = GgufValueType;
  const k = (key: string) => `${o.arch}.${key}`;
  return [
    ['general.architecture', o.arch, T.STRING],
    ['general.name', o.name ?? 'hearth random-weight test model', T.STRING],
    ['general.file_type', fileType, T.UINT32],
    ['general.quantization_version', 2, T.UINT32],
    [k('context_length'), o.ctx ?? 4096, T.UINT32],
    [k('embedding_length'), d.E, T.UINT32],
    [k('feed_forward_length'), 0, T.UINT32],
    [k('attention.head_count'), 0, T.UINT32],
    [k('block_count'), d.L, T.UINT32],
    ...ssmKeys(o.arch, s),
    [k('attention.layer_norm_rms_epsilon'), o.rmsEps ?? 1e-5, T.FLOAT32],
  ];
}

/** The ssm.* keys of llama.cpp's Mamba2 layers. */
function ssmKeys(arch: string, s: SsmDims): MetadataEntry[] {
  const T = GgufValueType;
  return [
    [`${arch}.ssm.conv_kernel`, s.conv, T.UINT32],
    [`${arch}.ssm.inner_size`, s.inner, T.UINT32],
    [`${arch}.ssm.state_size`, s.state, T.UINT32],
    [`${arch}.ssm.time_step_rank`, s.heads, T.UINT32],
    [`${arch}.ssm.group_count`, s.groups, T.UINT32],
  ];
}

/** A key, its value and its type (a plain type, or an array's element type). */
type MetadataEntry = [string, GgufValue, GgufValueType | GgufTypeInfo];

function archMetadata(o: TestModelOptions, d: Dims, fileType: number): MetadataEntry[] {
  const ssm = ssmDims(o);
  if (o.arch === 'mamba2') return mamba2Metadata(o, d, ssm!, fileType);
  if (o.arch === 't5') return t5Metadata(o, d, fileType);
  const T = GgufValueType;
  const arch = o.arch === 'mistral' || o.arch === 'mixtral' ? 'llama' : o.arch;
  const k = (s: string) => `${arch}.${s}`;
  const ctx = o.ctx ?? (o.arch === 'phi3' && o.longRope ? 131072 : 4096);
  const m: MetadataEntry[] = [
    ['general.architecture', arch, T.STRING],
    // Not the arch name: llama.cpp changes token attributes when general.name contains "phi3" and
    // then needs Phi-3's own special tokens in the vocabulary.
    ['general.name', o.name ?? 'hearth random-weight test model', T.STRING],
    ['general.file_type', fileType, T.UINT32],
    ['general.quantization_version', 2, T.UINT32],
    [k('context_length'), ctx, T.UINT32],
    [k('embedding_length'), d.E, T.UINT32],
    [k('block_count'), d.L, T.UINT32],
    [k('feed_forward_length'), d.F, T.UINT32],
    [k('attention.head_count'), d.H, T.UINT32],
    // lfm2: per layer, 0 for the short-convolution blocks (llama.cpp tells the layer kinds apart by it).
    o.arch === 'lfm2' || o.arch === 'granitehybrid'
      ? [k('attention.head_count_kv'), Int32Array.from({ length: d.L }, (_, i) => (hybridAttnLayers(o).includes(i) ? d.Hkv : 0)), { type: T.ARRAY, elementType: T.INT32 }]
      : [k('attention.head_count_kv'), d.Hkv, T.UINT32],
    [k('attention.layer_norm_rms_epsilon'), o.rmsEps ?? 1e-5, T.FLOAT32],
    [k('rope.freq_base'), o.ropeFreqBase ?? (o.arch.startsWith('qwen') || o.arch === 'lfm2' ? 1000000 : 10000), T.FLOAT32],
    [k('rope.dimension_count'), d.D, T.UINT32],
  ];
  // Gemma's converter always writes the head size (Gemma 7B: 256, not 3072 / 16).
  if (d.D * d.H !== d.E || o.arch === 'gemma' || o.arch === 'gemma2' || o.arch === 'qwen3' || o.arch === 'qwen3moe') {
    m.push([k('attention.key_length'), d.D, T.UINT32], [k('attention.value_length'), d.D, T.UINT32]);
  }
  if (o.arch === 'llama' || o.arch === 'mistral' || o.arch === 'mixtral' || o.arch === 'lfm2') m.push([k('vocab_size'), d.V, T.UINT32]);
  if (o.arch === 'lfm2') m.push([k('shortconv.l_cache'), o.shortConv ?? 3, T.UINT32]);
  const moe = moeDims(o);
  if (moe) {
    m.push([k('expert_count'), moe.X, T.UINT32], [k('expert_used_count'), moe.U, T.UINT32]);
    if (o.arch === 'qwen2moe' || o.arch === 'qwen3moe') m.push([k('expert_feed_forward_length'), moe.FX, T.UINT32]);
    else if (moe.FX !== d.F) throw new RangeError(`make-model: ${o.arch} experts are feed_forward_length wide; expertFf (${moe.FX}) must equal ff (${d.F})`);
    if (moe.FS > 0) m.push([k('expert_shared_feed_forward_length'), moe.FS, T.UINT32]);
  }
  if (o.arch === 'mistral') m.push([k('attention.sliding_window'), o.slidingWindow ?? 4096, T.UINT32]);
  if (o.arch === 'gemma2') {
    m.push(
      [k('attention.sliding_window'), o.slidingWindow ?? 4096, T.UINT32],
      [k('attn_logit_softcapping'), 50, T.FLOAT32],
      [k('final_logit_softcapping'), 30, T.FLOAT32],
    );
  }
  if (ssm) {
    // Granite 4.0-H: Mamba2 layers, and attention without RoPE (llama.cpp reads rope.scaling.finetuned as the switch).
    m.push(...ssmKeys(arch, ssm), [k('rope.scaling.finetuned'), false, T.BOOL]);
  }
  if (o.arch === 'granite' || o.arch === 'granitemoe' || o.arch === 'granitehybrid') {
    m.push(
      [k('logit_scale'), GRANITE_LOGIT_SCALE, T.FLOAT32],
      [k('residual_scale'), GRANITE_RESIDUAL_SCALE, T.FLOAT32],
      [k('embedding_scale'), GRANITE_EMBEDDING_SCALE, T.FLOAT32],
      [k('attention.scale'), 1 / d.D, T.FLOAT32],
    );
  }
  if (o.arch === 'phi3' && o.longRope) {
    const orig = 4096;
    m.push(
      [k('rope.scaling.original_context_length'), orig, T.UINT32],
      [k('rope.scaling.attn_factor'), Math.sqrt(1 + Math.log(ctx / orig) / Math.log(orig)), T.FLOAT32],
    );
  }
  return m;
}

export interface TestModelPlan {
  /** Writer input: metadata, types and tensor specs (shapes and chosen types). */
  spec: GgufWriteSpec & { tensors: GgufTensorSpec[] };
  /** Each tensor's role, layer and init, in file order. */
  tensors: Array<TensorPlan & { type: GgmlType }>;
  /** Produces one tensor's bytes (random values, then quantized); call in any order. */
  data: TensorDataProvider;
  /** Unquantized values of a tensor (what `data` quantizes). */
  values(name: string): Float32Array;
  dims: Dims;
}

/** Plans a model: metadata, tensor list with types, and a data provider. Nothing is generated yet. */
export function planTestModel(o: TestModelOptions): TestModelPlan {
  if (!TEST_ARCHS.includes(o.arch)) throw new RangeError(`make-model: unknown arch '${o.arch}' (${TEST_ARCHS.join(', ')})`);
  const vocab = o.vocab ?? (o.arch === 't5' ? syntheticUgmVocab() : syntheticVocab());
  const tokens = vocab.metadata.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens)) throw new RangeError('make-model: the vocab has no tokenizer.ggml.tokens string array');
  const H = o.heads;
  const ssm = ssmDims(o);
  const d: Dims = o.arch === 'mamba2' && ssm
    ? { E: o.embd, V: tokens.length, L: o.layers, H, Hkv: 0, D: ssm.headDim, F: 0 }
    : { E: o.embd, V: tokens.length, L: o.layers, H, Hkv: o.kvHeads ?? H, D: o.headDim ?? Math.floor(o.embd / H), F: o.ff };
  checkDims(o, d);

  const quant = o.quant ?? 'f32';
  const { recipe, fileType } = typeof quant === 'string' ? parseQuantSpec(quant) : { recipe: quant, fileType: 7 };
  const plans = planTensors(o, d);
  const tensors = plans.map((t) => {
    const wanted = t.shape.length === 1 ? GgmlType.F32 : recipe(t, { nLayer: d.L });
    const type = fallbackType(wanted, t.shape[0]!);
    if (t.shape.length > 1 && !quantFormat(type)?.quantize) {
      throw new RangeError(`make-model: no quantizer for ${ggmlTypeName(type)} (tensor ${t.name})`);
    }
    return { ...t, type };
  });

  const metadata = new Map<string, GgufInputValue>();
  const types = new Map<string, GgufTypeInfo>();
  for (const [key, value, type] of archMetadata(o, d, fileType)) {
    metadata.set(key, value);
    types.set(key, typeof type === 'number' ? { type } : type);
  }
  for (const [key, value] of vocab.metadata) {
    if (!key.startsWith('tokenizer.')) continue;
    metadata.set(key, value);
    types.set(key, vocab.metadataTypes.get(key)!);
  }
  if (o.chatTemplate !== undefined) {
    metadata.set('tokenizer.chat_template', o.chatTemplate);
    types.set('tokenizer.chat_template', { type: GgufValueType.STRING });
  }

  const seed = o.seed ?? 1;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const values = (name: string): Float32Array => {
    const t = byName.get(name);
    if (!t) throw new RangeError(`make-model: no tensor '${name}'`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    if (t.init.kind === 'ramp') {
      for (let i = 0; i < n; i++) out[i] = t.init.from + ((t.init.to - t.init.from) * i) / Math.max(1, n - 1);
    } else {
      fillNormal(out, xoshiro(hashString(`${seed}:${name}`)), t.init.mean ?? 0, t.init.std);
    }
    return out;
  };
  const data: TensorDataProvider = (info: GgufTensorInfo) => {
    const fmt = quantFormat(info.type)!;
    const t = byName.get(info.name)!;
    const [k, ...rest] = t.shape;
    const rows = rest.reduce((a, b) => a * b, 1);
    if (o.sampledBlocks && fmt.blockSize > 1 && t.init.kind !== 'ramp' && rows > SAMPLED_POOL_ROWS) {
      const pool = new Float32Array(SAMPLED_POOL_ROWS * k!);
      fillNormal(pool, xoshiro(hashString(`${seed}:${info.name}`)), t.init.mean ?? 0, t.init.std);
      return sampledBlockRows(fmt.quantize!(pool, pool.length), SAMPLED_POOL_ROWS, rows, fmt.typeSize, xoshiro(hashString(`${seed}:${info.name}:rows`)));
    }
    const v = values(info.name);
    return fmt.quantize!(v, v.length);
  };
  return {
    spec: {
      metadata,
      metadataTypes: types,
      tensors: tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape })),
    },
    tensors,
    data,
    values,
    dims: d,
  };
}

/** Rows of the pool a `sampledBlocks` matrix quantizes and draws its blocks from. */
export const SAMPLED_POOL_ROWS = 64;

/** `rows` rows, each block a copy of the same column's block of a random row of `pool` (`poolRows` rows of quantized blocks). */
function sampledBlockRows(pool: Uint8Array, poolRows: number, rows: number, blockBytes: number, next: () => number): Uint8Array {
  const rowBytes = pool.length / poolRows;
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) {
    const base = r * rowBytes;
    for (let b = 0; b < rowBytes; b += blockBytes) {
      const from = Math.floor(next() * poolRows) * rowBytes + b;
      out.set(pool.subarray(from, from + blockBytes), base + b);
    }
  }
  return out;
}

/** A whole test model in memory (small models; stream big ones with planTestModel + writeGgufFile). */
export function makeTestModel(o: TestModelOptions): Uint8Array {
  const plan = planTestModel(o);
  const layout = plan.spec.tensors.map((t, i) => {
    const info = { ...t, offset: 0, fileOffset: 0, byteSize: 0, elementCount: t.shape.reduce((a, b) => a * b, 1) };
    return { ...t, data: plan.data(info, i) as Uint8Array };
  });
  return writeGguf({ ...plan.spec, tensors: layout });
}
