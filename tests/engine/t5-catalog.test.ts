/**
 * The catalog's encoder-decoder (Flan-T5) entries: marked as "transform" models, and their memory
 * estimates are the t5 memory plan (src/engine/model/t5-plan.ts) of the published models'
 * hyperparameters (the google/flan-t5-* config.json values: d_model, d_kv, num_heads, d_ff,
 * num_layers, num_decoder_layers, vocab_size 32128, 32 buckets, gated GELU, untied lm_head), at
 * the default capacities, with weights as the published Q8_0 files store them, plus the catalog's
 * margin (10% + 256 MiB of working buffers, as for every entry).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import type { GgufModel, GgufModelTensor } from '../../src/engine/gguf/split.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { t5Tensors, type T5ModelConfig } from '../../src/engine/model/t5-config.ts';
import { planT5Load } from '../../src/engine/model/t5-plan.ts';
import { parseCatalog } from '../../src/ui/catalog.ts';

const catalog = parseCatalog(JSON.parse(readFileSync(new URL('../../public/models.json', import.meta.url), 'utf8')));

/** The published configurations (huggingface config.json of google/flan-t5-small and -base). */
const FLAN_T5: Record<string, { embd: number; heads: number; headDim: number; ff: number; layers: number }> = {
  'flan-t5-small-q8_0': { embd: 512, heads: 6, headDim: 64, ff: 1024, layers: 8 },
  'flan-t5-base-q8_0': { embd: 768, heads: 12, headDim: 64, ff: 2048, layers: 12 },
};

/** A header with the tensors of a Flan-T5 of these sizes: matrices Q8_0, vectors F32 (as llama.cpp's convert writes --outtype q8_0). */
function flanHeader(h: (typeof FLAN_T5)[string]): GgufModel {
  const config: T5ModelConfig = {
    architecture: 't5', nEmbd: h.embd, nVocab: 32128, nEncLayer: h.layers, nDecLayer: h.layers, nHead: h.heads, headDim: h.headDim, nFf: h.ff,
    buckets: 32, normEps: 1e-6, contextLength: 512, decoderStart: 0, gatedGelu: true, tiedEmbeddings: false,
  };
  const source = bytesSource(new Uint8Array(0));
  const tensors: GgufModelTensor[] = t5Tensors(config)
    .filter((s) => !s.optional)
    .map((s) => {
      const elementCount = s.shape.reduce((a, b) => a * b, 1);
      const vector = s.vector === true;
      return { name: s.name, shape: s.shape, type: vector ? GgmlType.F32 : GgmlType.Q8_0, elementCount, byteSize: vector ? 4 * elementCount : (elementCount / 32) * 34, fileOffset: 0, part: 0, source } as GgufModelTensor;
    });
  const metadata = new Map<string, unknown>([
    ['general.architecture', 't5'],
    ['t5.embedding_length', h.embd],
    ['t5.attention.head_count', h.heads],
    ['t5.attention.key_length', h.headDim],
    ['t5.attention.value_length', h.headDim],
    ['t5.block_count', h.layers],
    ['t5.decoder_block_count', h.layers],
    ['t5.feed_forward_length', h.ff],
    ['t5.attention.relative_buckets_count', 32],
    ['t5.attention.layer_norm_rms_epsilon', 1e-6],
    ['t5.context_length', 512],
    ['t5.decoder_start_token_id', 0],
  ]);
  return { version: 3, metadata, metadataTypes: new Map(), tensors, tensorsByName: new Map(tensors.map((t) => [t.name, t])), fileSize: tensors.reduce((a, t) => a + t.byteSize, 0), sources: [source] } as unknown as GgufModel;
}

describe('catalog: encoder-decoder (transform) models', () => {
  it('lists Flan-T5 small and base as transform models with the t5 plan as their memory estimate', () => {
    const transform = catalog.filter((m) => m.mode === 'transform');
    expect(transform.map((m) => m.id).sort()).toEqual(Object.keys(FLAN_T5).sort());
    for (const m of transform) {
      const header = flanHeader(FLAN_T5[m.id]!);
      const { plan } = planT5Load(header, { kind: 'cpu', limits: { maxBufferBytes: 2 ** 31, memoryBudgetBytes: 2 ** 40 }, supportsWeight: () => true });
      expect(plan.inputCapacity).toBe(512);
      expect(m.memoryEstimate).toBe(Math.round(plan.totalBytes * 1.1) + 256 * 2 ** 20);
      // The file is the weights as stored, within a few percent (approxSize is "about").
      expect(Math.abs(m.approxSize - header.fileSize) / header.fileSize).toBeLessThan(0.05);
      expect(m.contextLength).toBe(512);
    }
  });
});
