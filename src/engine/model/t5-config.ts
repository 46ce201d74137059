/**
 * llama.cpp's `t5` architecture (T5, Flan-T5) as the engine runs it: the hyperparameters and the
 * tensors of an encoder-decoder file (see t5-forward.ts for the graph). Checked here, before
 * anything is uploaded: a file whose keys or tensors do not add up is refused by name.
 */
import { findInteger, getInteger, getNumber, getString } from '../gguf/metadata.ts';
import type { GgufFile } from '../gguf/types.ts';
import { ModelConfigError, UnsupportedModelError } from './errors.ts';

export interface T5ModelConfig {
  architecture: 't5';
  nEmbd: number;
  nVocab: number;
  /** Encoder blocks (block_count). */
  nEncLayer: number;
  /** Decoder blocks (decoder_block_count, default block_count). */
  nDecLayer: number;
  nHead: number;
  headDim: number;
  nFf: number;
  /** attention.relative_buckets_count */
  buckets: number;
  normEps: number;
  /** The training context (context_length, default 512): the default input and output capacity. */
  contextLength: number;
  /** decoder_start_token_id; llama.cpp falls back to the padding token, then 0. */
  decoderStart: number;
  /** Flan-T5's gated GELU FFN (ffn_gate present) rather than original T5's ReLU. */
  gatedGelu: boolean;
  /** No output.weight: logits through token_embd (unscaled, as llama.cpp). */
  tiedEmbeddings: boolean;
}

/** Reads and checks a t5 file's hyperparameters and tensors. */
export function readT5Config(file: Pick<GgufFile, 'metadata' | 'metadataTypes' | 'tensors'>): T5ModelConfig {
  const arch = getString(file, 'general.architecture');
  if (arch !== 't5') throw new UnsupportedModelError(`expected a t5 (encoder-decoder) model, got '${arch}'`, { architecture: arch });
  const k = (s: string) => `t5.${s}`;
  const nEmbd = getInteger(file, k('embedding_length'));
  const nHead = getInteger(file, k('attention.head_count'));
  const nHeadKv = findInteger(file, k('attention.head_count_kv')) ?? nHead;
  const headDim = findInteger(file, k('attention.key_length')) ?? nEmbd / nHead;
  const valueLength = findInteger(file, k('attention.value_length')) ?? headDim;
  const nEncLayer = getInteger(file, k('block_count'));
  const embd = file.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embd) throw new ModelConfigError('t5: no token_embd.weight', { tensors: ['token_embd.weight'] });
  const start = findInteger(file, k('decoder_start_token_id')) ?? findInteger(file, 'tokenizer.ggml.padding_token_id') ?? 0;
  const config: T5ModelConfig = {
    architecture: 't5',
    nEmbd,
    nVocab: embd.shape[1] ?? 0,
    nEncLayer,
    nDecLayer: findInteger(file, k('decoder_block_count')) ?? nEncLayer,
    nHead,
    headDim,
    nFf: getInteger(file, k('feed_forward_length')),
    buckets: getInteger(file, k('attention.relative_buckets_count')),
    normEps: getNumber(file, k('attention.layer_norm_rms_epsilon')),
    contextLength: findInteger(file, k('context_length')) ?? 512,
    decoderStart: start,
    gatedGelu: file.tensors.some((t) => t.name === 'enc.blk.0.ffn_gate.weight'),
    tiedEmbeddings: !file.tensors.some((t) => t.name === 'output.weight'),
  };
  const bad = (what: string, key: string) => new ModelConfigError(`t5: ${what}`, { key });
  if (!Number.isInteger(headDim) || headDim < 1) throw bad(`head size ${headDim} is not a positive integer`, k('attention.key_length'));
  if (valueLength !== headDim) throw bad(`value length ${valueLength} differs from key length ${headDim}`, k('attention.value_length'));
  if (nHeadKv !== nHead) throw bad(`${nHeadKv} kv heads for ${nHead} heads (t5 has no grouped queries)`, k('attention.head_count_kv'));
  if (config.buckets < 4) throw bad(`${config.buckets} relative buckets (at least 4)`, k('attention.relative_buckets_count'));
  if (config.nDecLayer < 1 || nEncLayer < 1) throw bad(`${nEncLayer} encoder and ${config.nDecLayer} decoder blocks`, k('block_count'));
  if (!(config.normEps > 0)) throw bad(`norm epsilon ${config.normEps}`, k('attention.layer_norm_rms_epsilon'));
  if (config.decoderStart < 0 || config.decoderStart >= config.nVocab) throw bad(`decoder start token ${config.decoderStart} outside the vocabulary of ${config.nVocab}`, k('decoder_start_token_id'));
  checkT5Tensors(config, file);
  return config;
}

/** A tensor the forward pass reads: its GGUF shape, whether it may be absent. */
export interface T5TensorSpec {
  name: string;
  shape: number[];
  optional?: boolean;
  /** Uploaded as f32 values (norms, the relative position bias tables) rather than as a matrix. */
  vector?: boolean;
}

/** Every tensor the forward pass reads, with its GGUF shape; optional ones may be absent. */
export function t5Tensors(c: T5ModelConfig): T5TensorSpec[] {
  const { nEmbd: E, nVocab: V, nFf: F, buckets: B, nHead: H } = c;
  const A = c.nHead * c.headDim;
  const out: T5TensorSpec[] = [
    { name: 'token_embd.weight', shape: [E, V] },
    { name: 'enc.output_norm.weight', shape: [E], vector: true },
    { name: 'dec.output_norm.weight', shape: [E], vector: true },
  ];
  if (!c.tiedEmbeddings) out.push({ name: 'output.weight', shape: [E, V] });
  const block = (stack: 'enc' | 'dec', il: number) => {
    const b = `${stack}.blk.${il}.`;
    out.push(
      { name: `${b}attn_rel_b.weight`, shape: [H, B], optional: il > 0, vector: true },
      { name: `${b}attn_norm.weight`, shape: [E], vector: true },
      { name: `${b}attn_q.weight`, shape: [E, A] },
      { name: `${b}attn_k.weight`, shape: [E, A] },
      { name: `${b}attn_v.weight`, shape: [E, A] },
      { name: `${b}attn_o.weight`, shape: [A, E] },
      { name: `${b}ffn_norm.weight`, shape: [E], vector: true },
      { name: `${b}ffn_up.weight`, shape: [E, F] },
      { name: `${b}ffn_down.weight`, shape: [F, E] },
    );
    if (c.gatedGelu) out.push({ name: `${b}ffn_gate.weight`, shape: [E, F] });
    if (stack === 'dec') {
      out.push(
        { name: `${b}cross_attn_norm.weight`, shape: [E], vector: true },
        { name: `${b}cross_attn_q.weight`, shape: [E, A] },
        { name: `${b}cross_attn_k.weight`, shape: [E, A] },
        { name: `${b}cross_attn_v.weight`, shape: [E, A] },
        { name: `${b}cross_attn_o.weight`, shape: [A, E] },
      );
    }
  };
  for (let il = 0; il < c.nEncLayer; il++) block('enc', il);
  for (let il = 0; il < c.nDecLayer; il++) block('dec', il);
  return out;
}

function checkT5Tensors(c: T5ModelConfig, file: Pick<GgufFile, 'tensors'>): void {
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const problems: string[] = [];
  for (const spec of t5Tensors(c)) {
    const t = byName.get(spec.name);
    if (!t) {
      if (!spec.optional) problems.push(`${spec.name} missing`);
      continue;
    }
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) problems.push(`${spec.name} has shape [${t.shape.join(', ')}], expected [${spec.shape.join(', ')}]`);
  }
  if (problems.length) throw new ModelConfigError(`t5: ${problems.slice(0, 4).join('; ')}${problems.length > 4 ? ` (${problems.length} problems)` : ''}`, { tensors: problems });
}

/**
 * llama.cpp's llama_relative_position_bucket for a key at `keyPos` and a query at `queryPos`: T5's
 * buckets (exact below max_exact, logarithmic up to max_distance 128; both directions in the
 * encoder, only the past in the decoder), in llama.cpp's float32 steps (logf, a float product,
 * floorf) so the integer it picks agrees at the boundaries.
 */
export function relativePositionBucket(keyPos: number, queryPos: number, nBuckets: number, bidirectional: boolean): number {
  const maxDistance = 128;
  const n = bidirectional ? nBuckets >> 1 : nBuckets;
  const maxExact = n >> 1;
  let rel = keyPos - queryPos;
  let bucket = 0;
  if (bidirectional) {
    if (rel > 0) bucket += n;
    rel = Math.abs(rel);
  } else {
    rel = -Math.min(rel, 0);
  }
  if (rel < maxExact) return bucket + rel;
  const logf = Math.fround(Math.log(Math.fround(rel / maxExact)));
  const scaled = Math.fround(logf * (n - maxExact));
  const large = Math.floor(Math.fround(maxExact + scaled / Math.log(maxDistance / maxExact)));
  return bucket + Math.min(large, n - 1);
}
