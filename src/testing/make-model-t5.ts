/**
 * The encoder-decoder part of the test-model generator (src/testing/make-model.ts): llama.cpp's `t5`
 * architecture (T5, Flan-T5), its tensors and keys as llama_model_t5::load_arch_tensors /
 * load_arch_hparams read them and as its converter (conversion/t5.py) writes them, and a small
 * SentencePiece unigram ("t5", UGM) vocabulary.
 *
 * A T5 file holds an encoder stack (enc.blk.N.*: self-attention with a relative position bias,
 * FFN), a decoder stack (dec.blk.N.*: causal self-attention with its own bias, cross-attention over
 * the encoder's output, FFN), one final norm each (enc.output_norm, dec.output_norm) and a shared
 * token embedding. Original T5 has a ReLU FFN (ffn_up, ffn_down); Flan-T5 (T5 v1.1) a gated GELU
 * (ffn_gate too). llama.cpp reads the relative-attention bias of layer 0 for every layer when a
 * layer has none, as the Hugging Face checkpoints store it; the generator writes it for layer 0 only,
 * like the converter.
 */
import { GgufValueType, type GgufTypeInfo, type GgufValue } from '../engine/gguf/types.ts';
import type { Dims, TensorRole, TestModelOptions, VocabSource } from './make-model.ts';

type Init = { kind: 'normal'; std: number; mean?: number };
type Add = (name: string, role: TensorRole, layer: number, shape: number[], init: Init) => void;

/** T5's FFN: `relu` (original T5: up, ReLU, down) or `gated-gelu` (Flan-T5 / T5 v1.1: GELU(gate) * up, down). */
export type T5Ffn = 'relu' | 'gated-gelu';
export const T5_FFNS: readonly T5Ffn[] = ['relu', 'gated-gelu'];

/** Resolved T5 sizes beside the common {@link Dims}: decoder blocks, position buckets, FFN kind. */
export interface T5Dims {
  decoderLayers: number;
  buckets: number;
  ffn: T5Ffn;
  decoderStart: number;
}

export function t5Dims(o: TestModelOptions): T5Dims {
  return {
    decoderLayers: o.decoderLayers ?? o.layers,
    buckets: o.relBuckets ?? 32,
    ffn: o.t5Ffn ?? 'gated-gelu',
    decoderStart: o.decoderStartToken ?? 0,
  };
}

export function checkT5Options(o: TestModelOptions, d: Dims): void {
  const t = t5Dims(o);
  const positive = { embd: d.E, layers: d.L, decoderLayers: t.decoderLayers, heads: d.H, kvHeads: d.Hkv, headDim: d.D, ff: d.F, relBuckets: t.buckets };
  for (const [k, v] of Object.entries(positive)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`make-model: ${k} must be a positive integer, got ${v}`);
  }
  // llama.cpp's t5 loader sizes the query projection by the key/value heads: no grouped queries.
  if (d.H !== d.Hkv) throw new RangeError(`make-model: t5 needs kvHeads == heads (llama.cpp sizes attn_q by the kv heads), got ${d.Hkv} and ${d.H}`);
  // llama.cpp's per-layer tables are sized by block_count: more decoder blocks than encoder ones fail to load.
  if (t.decoderLayers > d.L) throw new RangeError(`make-model: t5 needs decoderLayers <= layers (llama.cpp sizes its per-layer tables by the encoder's block_count), got ${t.decoderLayers} > ${d.L}`);
  // llama.cpp halves the buckets for the encoder's two directions, then halves again for the exact range.
  if (t.buckets < 4) throw new RangeError(`make-model: relBuckets must be at least 4 (llama.cpp splits them by direction, then into exact and logarithmic halves), got ${t.buckets}`);
  if (!T5_FFNS.includes(t.ffn)) throw new RangeError(`make-model: t5Ffn must be one of ${T5_FFNS.join(', ')}, got '${t.ffn}'`);
  if (!Number.isSafeInteger(t.decoderStart) || t.decoderStart < 0 || t.decoderStart >= d.V) {
    throw new RangeError(`make-model: decoderStartToken must be a token id below ${d.V}, got ${t.decoderStart}`);
  }
  const other: Array<keyof TestModelOptions> = ['experts', 'expertsUsed', 'expertFf', 'sharedFf', 'ssmInner', 'ssmState', 'ssmGroups', 'ssmConv', 'ssmHeads', 'attnLayers', 'shortConv', 'slidingWindow'];
  for (const k of other) {
    if (o[k] !== undefined) throw new RangeError(`make-model: ${k} is not an option of t5`);
  }
}

/** T5 options set on another architecture are refused by name. */
export function refuseT5Options(o: TestModelOptions): void {
  for (const k of ['decoderLayers', 'relBuckets', 't5Ffn', 'decoderStartToken'] as const) {
    if (o[k] !== undefined) throw new RangeError(`make-model: ${k} is a t5 option, not ${o.arch}'s`);
  }
}

/**
 * The tensors, in the converter's order. Values: queries are scaled so that q.k (T5 does not divide
 * by sqrt(head dim)) has a standard deviation of about 1.5 over normalized inputs, as T5's own
 * initialization does (q ~ 1/sqrt(embd * head_dim)); unit relative biases, so positions matter as
 * much as content; the output projection gives logits of std ~ outputScale.
 */
export function planT5Tensors(o: TestModelOptions, d: Dims, add: Add): void {
  const { E, V, L, H, Hkv, D, F } = d;
  const t = t5Dims(o);
  const proj = (fanIn: number, gain = 1): Init => ({ kind: 'normal', std: gain / Math.sqrt(fanIn) });
  const query: Init = { kind: 'normal', std: 1.5 / Math.sqrt(E * D) };
  const norm: Init = { kind: 'normal', mean: 1, std: 0.1 };
  const relBias: Init = { kind: 'normal', std: 1 };
  const tied = o.tiedEmbeddings ?? false;
  const outputStd = (o.outputScale ?? 6) / Math.sqrt(E);
  if (tied) add('token_embd.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
  else add('token_embd.weight', 'token_embd', -1, [E, V], { kind: 'normal', std: 1 });
  const ffn = (b: string, i: number) => {
    if (t.ffn === 'gated-gelu') add(`${b}ffn_gate.weight`, 'ffn_gate', i, [E, F], proj(E));
    add(`${b}ffn_up.weight`, 'ffn_up', i, [E, F], proj(E));
    // ReLU keeps half the units (gated GELU about as many, smaller): a gain keeps the FFN's share.
    add(`${b}ffn_down.weight`, 'ffn_down', i, [F, E], proj(F, t.ffn === 'relu' ? Math.SQRT2 : 2));
  };
  const attention = (b: string, i: number, prefix: string) => {
    add(`${b}${prefix}_q.weight`, 'attn_q', i, [E, H * D], query);
    add(`${b}${prefix}_k.weight`, 'attn_k', i, [E, Hkv * D], proj(E));
    add(`${b}${prefix}_v.weight`, 'attn_v', i, [E, Hkv * D], proj(E));
    add(`${b}${prefix}_o.weight`, 'attn_output', i, [H * D, E], proj(H * D));
  };
  for (let i = 0; i < t.decoderLayers; i++) {
    const b = `dec.blk.${i}.`;
    add(`${b}attn_norm.weight`, 'vector', i, [E], norm);
    attention(b, i, 'attn');
    if (i === 0) add(`${b}attn_rel_b.weight`, 'vector', i, [H, t.buckets], relBias);
    add(`${b}cross_attn_norm.weight`, 'vector', i, [E], norm);
    attention(b, i, 'cross_attn');
    add(`${b}ffn_norm.weight`, 'vector', i, [E], norm);
    ffn(b, i);
  }
  add('dec.output_norm.weight', 'vector', -1, [E], norm);
  for (let i = 0; i < L; i++) {
    const b = `enc.blk.${i}.`;
    add(`${b}attn_norm.weight`, 'vector', i, [E], norm);
    attention(b, i, 'attn');
    if (i === 0) add(`${b}attn_rel_b.weight`, 'vector', i, [H, t.buckets], relBias);
    add(`${b}ffn_norm.weight`, 'vector', i, [E], norm);
    ffn(b, i);
  }
  add('enc.output_norm.weight', 'vector', -1, [E], norm);
  if (!tied) add('output.weight', 'output', -1, [E, V], { kind: 'normal', std: outputStd });
}

type MetadataEntry = [string, GgufValue, GgufValueType | GgufTypeInfo];

/** The t5.* keys conversion/t5.py writes (key/value lengths always: T5's d_kv need not be embd / heads). */
export function t5Metadata(o: TestModelOptions, d: Dims, fileType: number): MetadataEntry[] {
  const T = GgufValueType;
  const t = t5Dims(o);
  const k = (s: string) => `t5.${s}`;
  const eps = o.rmsEps ?? 1e-6;
  return [
    ['general.architecture', 't5', T.STRING],
    ['general.name', o.name ?? 'hearth random-weight test model', T.STRING],
    ['general.file_type', fileType, T.UINT32],
    ['general.quantization_version', 2, T.UINT32],
    [k('context_length'), o.ctx ?? 512, T.UINT32],
    [k('embedding_length'), d.E, T.UINT32],
    [k('feed_forward_length'), d.F, T.UINT32],
    [k('block_count'), d.L, T.UINT32],
    [k('decoder_block_count'), t.decoderLayers, T.UINT32],
    [k('attention.head_count'), d.H, T.UINT32],
    [k('attention.head_count_kv'), d.Hkv, T.UINT32],
    [k('attention.key_length'), d.D, T.UINT32],
    [k('attention.value_length'), d.D, T.UINT32],
    [k('attention.layer_norm_epsilon'), eps, T.FLOAT32],
    [k('attention.relative_buckets_count'), t.buckets, T.UINT32],
    [k('attention.layer_norm_rms_epsilon'), eps, T.FLOAT32],
    [k('decoder_start_token_id'), t.decoderStart, T.UINT32],
  ];
}

/** SentencePiece token types as GGUF stores them (llama_token_type). */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;

/**
 * A small unigram vocabulary laid out as T5's: <pad> 0, </s> 1, <unk> 2, then word pieces with
 * log-probability scores (the lone '▁', '▁' + letter, letters, digits and punctuation, a few
 * accented letters, a few pieces with capitals that have no piece alone, letter pairs, '▁' + pairs), then `extraIds` user-defined sentinels
 * <extra_id_0>... (T5's span-corruption tokens). No byte tokens (T5 has none: unknown characters
 * become <unk>). No precompiled charsmap unless given: llama.cpp then normalizes nothing.
 */
export function syntheticUgmVocab(options: { pieces?: number; extraIds?: number; charsmap?: Uint8Array; addSpacePrefix?: boolean; removeExtraWhitespaces?: boolean } = {}): VocabSource {
  const pieces = options.pieces ?? 320;
  const tokens = ['<pad>', '</s>', '<unk>'];
  const types = [CONTROL, CONTROL, UNKNOWN];
  const scores = [0, 0, 0];
  const letters = 'etaoinshrdlucmfwypvbgkjqxz';
  const candidates = ['▁'];
  for (const a of letters) candidates.push(`▁${a}`);
  for (const a of letters) candidates.push(a);
  for (const c of '.,!?\'"-:;()0123456789éèàüöçñß') candidates.push(c);
  // Pieces whose characters have no piece of their own: the Viterbi weighs them against <unk>.
  candidates.push('▁Th', 'He', '▁He', 'St', 'raß', '▁Wo', 'XY');
  for (let i = 0; i < 26 * 26; i++) {
    const pair = `${letters[Math.floor(i / 26)]}${letters[i % 26]}`;
    candidates.push(pair, `▁${pair}`);
  }
  // Scores fall with rank like a unigram model's log probabilities; distinct, so ties never decide.
  for (let i = 0; i < Math.min(pieces, candidates.length); i++) {
    tokens.push(candidates[i]!);
    types.push(NORMAL);
    scores.push(-2 - i * 0.037 - (candidates[i]!.length > 2 ? 0 : 0.5));
  }
  for (let i = 0; i < (options.extraIds ?? 2); i++) {
    tokens.push(`<extra_id_${i}>`);
    types.push(USER_DEFINED);
    scores.push(0);
  }
  const T = GgufValueType;
  const entries: Array<[string, GgufValue, GgufTypeInfo]> = [
    ['tokenizer.ggml.model', 't5', { type: T.STRING }],
    ['tokenizer.ggml.pre', 'default', { type: T.STRING }],
    ['tokenizer.ggml.tokens', tokens, { type: T.ARRAY, elementType: T.STRING }],
    ['tokenizer.ggml.scores', Float32Array.from(scores), { type: T.ARRAY, elementType: T.FLOAT32 }],
    ['tokenizer.ggml.token_type', Int32Array.from(types), { type: T.ARRAY, elementType: T.INT32 }],
    ['tokenizer.ggml.add_space_prefix', options.addSpacePrefix ?? true, { type: T.BOOL }],
    ['tokenizer.ggml.remove_extra_whitespaces', options.removeExtraWhitespaces ?? true, { type: T.BOOL }],
    ['tokenizer.ggml.eos_token_id', 1, { type: T.UINT32 }],
    ['tokenizer.ggml.unknown_token_id', 2, { type: T.UINT32 }],
    ['tokenizer.ggml.padding_token_id', 0, { type: T.UINT32 }],
    ['tokenizer.ggml.add_bos_token', false, { type: T.BOOL }],
    ['tokenizer.ggml.add_eos_token', true, { type: T.BOOL }],
  ];
  if (options.charsmap) entries.push(['tokenizer.ggml.precompiled_charsmap', options.charsmap, { type: T.ARRAY, elementType: T.UINT8 }]);
  return { metadata: new Map(entries.map(([key, v]) => [key, v])), metadataTypes: new Map(entries.map(([key, , ty]) => [key, ty])) };
}
