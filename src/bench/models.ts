/**
 * The benchmark's models: random-weight GGUF files with the exact shapes of real models (five dense, one mixture of experts, one hybrid)
 * (vocabulary size, layers, heads, KV heads, feed-forward size, tied embeddings), in three
 * quantization mixes. Decode and prefill speed depend on the shapes and the storage types, never on
 * the values, so these stand in for the real files without a download.
 *
 * Node-only (writes files). Generated once into a cache directory and reused.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ggmlTypeName } from '../engine/gguf/ggml-types.ts';
import { writeGgufFile } from '../node/gguf-file.ts';
import { FIRST_WORD_ID, WORD_LETTERS } from './prompt.ts';
import { planTestModel, spmVocabSource, type TestArch, type TestModelOptions, type VocabSource } from '../testing/make-model.ts';

/** A real model's shape, as its GGUF records it. */
export interface ModelShape {
  id: string;
  /** The model it imitates. */
  name: string;
  arch: TestArch;
  /** n_embd */
  embd: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** n_ff */
  ff: number;
  /** Rows of token_embd (the tokenizer's size, padded as the real file pads it). */
  vocab: number;
  /** No output.weight: the logits reuse token_embd. */
  tied: boolean;
  /** Trained context (context_length). */
  ctx: number;
  /** llama3-style rope_freqs.weight (Llama 3.x). */
  ropeFreqs?: boolean;
  /** Phi-3.5's long-context RoPE factors. */
  longRope?: boolean;
  /** A mixture of experts: experts per block, used per token (ff is one expert's width). */
  experts?: number;
  expertsUsed?: number;
  /** A hybrid (lfm2): the attention layers (the rest are short convolutions of width `shortConv`). */
  attnLayers?: readonly number[];
  shortConv?: number;
}

/** From each model's config.json / GGUF header (head dim is embd / heads for all of them). */
export const MODEL_SHAPES: readonly ModelShape[] = [
  { id: 'qwen2.5-0.5b', name: 'Qwen2.5-0.5B-Instruct', arch: 'qwen2', embd: 896, layers: 24, heads: 14, kvHeads: 2, ff: 4864, vocab: 151936, tied: true, ctx: 32768 },
  { id: 'llama-3.2-1b', name: 'Llama-3.2-1B-Instruct', arch: 'llama', embd: 2048, layers: 16, heads: 32, kvHeads: 8, ff: 8192, vocab: 128256, tied: true, ctx: 131072, ropeFreqs: true },
  { id: 'qwen2.5-1.5b', name: 'Qwen2.5-1.5B-Instruct', arch: 'qwen2', embd: 1536, layers: 28, heads: 12, kvHeads: 2, ff: 8960, vocab: 151936, tied: true, ctx: 32768 },
  { id: 'phi-3.5-mini', name: 'Phi-3.5-mini-instruct', arch: 'phi3', embd: 3072, layers: 32, heads: 32, kvHeads: 32, ff: 8192, vocab: 32064, tied: false, ctx: 131072, longRope: true },
  { id: 'llama-3.1-8b', name: 'Llama-3.1-8B-Instruct', arch: 'llama', embd: 4096, layers: 32, heads: 32, kvHeads: 8, ff: 14336, vocab: 128256, tied: false, ctx: 131072, ropeFreqs: true },
  // Granite 3.1 3B-A800M: 40 experts of width 512, 8 per token; its dense peer by active size is Llama-3.2-1B.
  {
    id: 'granite-3b-a800m', name: 'granite-3.1-3b-a800m-instruct', arch: 'granitemoe', embd: 1536, layers: 32, heads: 24, kvHeads: 8, ff: 512, vocab: 49155, tied: true, ctx: 131072,
    experts: 40, expertsUsed: 8,
  },
  // LFM2-1.2B: 10 gated short-convolution layers and 6 attention layers; the shape of Llama-3.2-1B
  // otherwise (embd, heads, ff), so decode against context length compares the two directly.
  {
    id: 'lfm2-1.2b', name: 'LFM2-1.2B', arch: 'lfm2', embd: 2048, layers: 16, heads: 32, kvHeads: 8, ff: 8192, vocab: 65536, tied: true, ctx: 128000,
    attnLayers: [2, 5, 8, 10, 12, 14], shortConv: 3,
  },
];

/**
 * The mixes: llama.cpp's Q4_K_M recipe, and all matrices in Q8_0 or F16 (the full bench's three);
 * and, asked for by name, all matrices in Q3_K, Q2_K or IQ4_XS (the low-bit types of the files
 * people pick for 7-8B models on small machines).
 */
export const BENCH_QUANTS = ['q4_k_m', 'q8_0', 'f16', 'q3_k', 'q2_k', 'iq4_xs'] as const;
/** The mixes `hearth bench --full` runs. */
export const FULL_BENCH_QUANTS: readonly BenchQuant[] = ['q4_k_m', 'q8_0', 'f16'];
export type BenchQuant = (typeof BENCH_QUANTS)[number];

export function modelShape(id: string): ModelShape {
  const shape = MODEL_SHAPES.find((m) => m.id === id);
  if (!shape) throw new RangeError(`unknown bench model '${id}' (${MODEL_SHAPES.map((m) => m.id).join(', ')})`);
  return shape;
}

/** Parameters of the shape (every tensor's elements), to check the table against the published sizes. */
export function paramCount(m: ModelShape): number {
  const D = m.embd / m.heads;
  const kv = m.kvHeads * D;
  const attn = m.arch === 'phi3' ? m.embd * (m.embd + 2 * kv) + m.embd * m.embd : 2 * m.embd * m.embd + 2 * m.embd * kv;
  // Gate, up and down (phi3 fuses gate and up into one [2 ff][embd] matrix, the same count); a
  // mixture of experts has that per expert, and its router.
  const ffn = m.experts ? m.experts * 3 * m.embd * m.ff + m.embd * m.experts : 3 * m.embd * m.ff;
  const biases = m.arch === 'qwen2' ? m.embd + 2 * kv : 0;
  const perLayer = attn + ffn + biases + 2 * m.embd;
  const embeddings = m.vocab * m.embd * (m.tied ? 1 : 2);
  const ropeExtras = (m.ropeFreqs ? D / 2 : 0) + (m.longRope ? D : 0);
  if (m.attnLayers) {
    // lfm2: per-head q/k norms in attention layers; in_proj [3 embd], the conv and out_proj in the others.
    const convLayer = 3 * m.embd * m.embd + m.embd * (m.shortConv ?? 3) + m.embd * m.embd + ffn + 2 * m.embd;
    const attnLayer = attn + 2 * D + ffn + 2 * m.embd;
    const nAttn = m.attnLayers.length;
    return nAttn * attnLayer + (m.layers - nAttn) * convLayer + embeddings + m.embd;
  }
  return m.layers * perLayer + embeddings + m.embd + ropeExtras;
}

export function modelOptions(m: ModelShape, quant: string, vocab: VocabSource): TestModelOptions {
  return {
    arch: m.arch,
    embd: m.embd,
    layers: m.layers,
    heads: m.heads,
    kvHeads: m.kvHeads,
    ff: m.ff,
    ctx: m.ctx,
    vocab,
    quant,
    tiedEmbeddings: m.tied,
    ropeFreqs: m.ropeFreqs ?? false,
    longRope: m.longRope ?? false,
    ...(m.experts ? { experts: m.experts, expertsUsed: m.expertsUsed ?? 1 } : {}),
    ...(m.attnLayers ? { attnLayers: m.attnLayers, shortConv: m.shortConv ?? 3 } : {}),
    name: `hearth bench ${m.id} ${quant}`,
  };
}

/**
 * A SentencePiece-style vocabulary of exactly `size` distinct tokens: <unk>, <s>, </s>, the 256
 * byte tokens, 26 one-letter words "▁a".."▁z", then letter strings without "▁" (so no merge ever
 * joins two words: a prompt of n words is n tokens plus BOS in every tokenizer).
 */
export function benchVocab(size: number): VocabSource {
  if (size < FIRST_WORD_ID + 26) throw new RangeError(`vocab ${size} is too small`);
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (const c of WORD_LETTERS) {
    tokens.push(`▁${c}`);
    types.push(1);
  }
  // Strings of two or more letters, in bijective base 26 from "aa": distinct by construction.
  for (let i = 26; tokens.length < size; i++) {
    let s = '';
    for (let n = i + 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(97 + ((n - 1) % 26)) + s;
    tokens.push(s);
    types.push(1);
  }
  const scores = Float32Array.from(tokens, (_, i) => (i < FIRST_WORD_ID ? 0 : -1 - (i - FIRST_WORD_ID) / 64));
  return spmVocabSource(tokens, types, scores);
}

/**
 * The cached file's name. "-sampled": its quantized matrices are sampled blocks (below); files
 * from before that (full quantization, same types and sizes) keep their old name and are not
 * taken for these.
 */
export function benchModelFile(m: ModelShape, quant: string): string {
  return `${m.id}-${quant}-sampled.gguf`;
}

/**
 * The model's GGUF in `dir`, generated (streamed one tensor at a time) when missing. writeGgufFile
 * renames a finished file into place, so an interrupted run never leaves one that looks done.
 * Quantized matrices are `sampledBlocks` (blocks drawn from 64 quantized random rows): the same
 * types, shapes and bytes as full quantization, written in minutes rather than the ~25 min an
 * LFM2-1.2B took; bench files measure speed, not output quality.
 */
export async function ensureBenchModel(dir: string, m: ModelShape, quant: string, log: (line: string) => void): Promise<string> {
  const path = join(dir, benchModelFile(m, quant));
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const plan = planTestModel({ ...modelOptions(m, quant, benchVocab(m.vocab)), sampledBlocks: true });
  const mix = new Map<string, number>();
  for (const t of plan.tensors) mix.set(ggmlTypeName(t.type), (mix.get(ggmlTypeName(t.type)) ?? 0) + 1);
  log(`generating ${path} (${[...mix].map(([t, n]) => `${n} ${t}`).join(', ')}) ...`);
  const t0 = performance.now();
  await writeGgufFile(path, plan.spec, plan.data);
  log(`  ${(statSync(path).size / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return path;
}
