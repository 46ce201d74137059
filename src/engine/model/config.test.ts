/**
 * readModelConfig and checkTensors on in-memory GGUF headers: derived values per architecture,
 * llama.cpp's defaults and quirks, and the errors for bad metadata and bad tensor lists. (The
 * configs of real generated files are checked against llama.cpp's logits in
 * tests/model/reference-forward.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { GgmlType } from '../gguf/ggml-types.ts';
import { GgufValueType, type GgufFile } from '../gguf/types.ts';
import { headerOnlyGguf as fileOf, smallModelMeta as meta, type Meta } from '../../testing/header-gguf.ts';
import { ARCHITECTURES, MAX_LAYERS, SUPPORTED_ARCHITECTURES, readModelConfig, type ModelConfig } from './config.ts';
import { ModelConfigError, UnsupportedModelError } from './errors.ts';
import { checkTensors, modelTensors } from './tensors.ts';


/** Reads the config, then builds the file again with exactly the tensors it expects. */
function withTensors(m: Meta, optional: string[] = []): { file: GgufFile; config: ModelConfig } {
  // Layer-0 tensors decide optional features, so seed them, then take the full expected list.
  const seed = fileOf(m, optional.map((name) => ({ name, shape: [1] })));
  const specs = modelTensors(readModelConfig(seed));
  const file = fileOf(m, specs.map((s) => ({ name: s.name, shape: s.shape })));
  return { file, config: readModelConfig(file) };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('readModelConfig: derived values', () => {
  it('llama: head sizes, GQA, rope and scale defaults, tied output, vocabulary from the tokens', () => {
    const c = readModelConfig(fileOf(meta('llama')));
    expect(c).toMatchObject({
      architecture: 'llama',
      nVocab: 100,
      nCtxTrain: 2048,
      nEmbd: 64,
      nLayer: 2,
      nHead: 4,
      nHeadKv: 2,
      gqaGroup: 2,
      headDimK: 16,
      headDimV: 16,
      qDim: 64,
      kvDimK: 32,
      kvDimV: 32,
      normEps: 1e-5,
      attentionScale: 0.25,
      embeddingScale: 1,
      residualScale: 1,
      logitDivisor: 1,
      slidingWindow: 0,
      attnSoftcap: 0,
      finalSoftcap: 0,
      activation: 'silu',
      fusedGateUp: false,
      qkNorm: false,
      postNorms: false,
    });
    expect(c.rope).toEqual({
      type: 'normal',
      enabled: true,
      nRot: 16,
      freqBase: 10000,
      freqScale: 1,
      freqBaseSwa: 10000,
      freqScaleSwa: 1,
      scalingType: 'linear',
      nCtxOrig: 2048,
      extFactor: 0,
      attnFactor: 1,
      betaFast: 32,
      betaSlow: 1,
      factors: 'none',
    });
    expect(c.layers).toEqual([
      { mixer: 'attention', kvLayer: 0, nFf: 96, slidingWindow: false },
      { mixer: 'attention', kvLayer: 1, nFf: 96, slidingWindow: false },
    ]);
    expect(c.tensors.tiedEmbeddings).toBe(true);
  });

  it('rope type per architecture follows llama.cpp: normal for llama and granite, neox for the rest', () => {
    const types = Object.fromEntries(SUPPORTED_ARCHITECTURES.map((a) => [a, ARCHITECTURES[a].ropeType]));
    expect(types).toEqual({
      llama: 'normal', granite: 'normal', qwen2: 'neox', qwen3: 'neox', phi3: 'neox', gemma: 'neox', gemma2: 'neox', gemma3: 'neox',
      granitemoe: 'normal', qwen2moe: 'neox', qwen3moe: 'neox', olmoe: 'neox',
      // mamba2 has no attention; granitehybrid's attention layers rotate as granite's, lfm2's as neox.
      lfm2: 'neox', granitehybrid: 'normal', mamba2: 'normal',
    });
  });

  it('hybrids: head_count_kv 0 marks a recurrent layer; the KV cache holds the attention layers only', () => {
    const lfm2 = readModelConfig(fileOf(meta('lfm2', { 'lfm2.block_count': 3, 'lfm2.attention.head_count_kv': Uint32Array.of(0, 2, 0) })));
    expect(lfm2.layers.map((l) => [l.mixer, l.kvLayer])).toEqual([['shortconv', -1], ['attention', 0], ['shortconv', -1]]);
    expect([lfm2.nKvLayers, lfm2.nHeadKv, lfm2.shortConvWidth, lfm2.outputNorm, lfm2.ssm]).toEqual([1, 2, 3, 'token_embd_norm.weight', undefined]);
    const granite = readModelConfig(fileOf(meta('granitehybrid')));
    expect(granite.layers.map((l) => l.mixer)).toEqual(['ssm', 'attention']);
    expect(granite.ssm).toEqual({ inner: 128, stateSize: 16, heads: 4, headDim: 32, groups: 2, convKernel: 4, convDim: 128 + 2 * 2 * 16 });
    expect([granite.logitDivisor, granite.rope.type]).toEqual([8, 'normal']);
    const mamba = readModelConfig(fileOf(meta('mamba2')));
    expect(mamba.layers.map((l) => [l.mixer, l.nFf])).toEqual([['ssm', 0], ['ssm', 0]]);
    expect([mamba.nKvLayers, mamba.nHead, mamba.qDim]).toEqual([0, 0, 0]);
    // Attention layers must agree on their heads; SSM heads must split into groups.
    expect(thrown(() => readModelConfig(fileOf(meta('lfm2', { 'lfm2.block_count': 3, 'lfm2.attention.head_count_kv': Uint32Array.of(0, 2, 4) })))).message).toContain('varies by layer');
    const groups = thrown(() => readModelConfig(fileOf(meta('mamba2', { 'mamba2.ssm.group_count': 3 }))));
    expect(groups).toBeInstanceOf(ModelConfigError);
    expect(groups.message).toContain('4 ssm heads are not a multiple of 3 groups');
    expect(thrown(() => readModelConfig(fileOf(meta('mamba2', { 'mamba2.ssm.state_size': undefined })))).message).toContain("'mamba2.ssm.state_size' is required");
  });

  it('head_count_kv defaults to head_count; key_length overrides the head size (qwen3)', () => {
    const c = readModelConfig(fileOf(meta('qwen3', { 'qwen3.attention.head_count_kv': undefined, 'qwen3.attention.key_length': 32, 'qwen3.attention.value_length': 32 })));
    expect([c.nHeadKv, c.gqaGroup, c.headDimK, c.qDim, c.kvDimK, c.rope.nRot, c.attentionScale]).toEqual([4, 1, 32, 128, 128, 32, 1 / Math.sqrt(32)]);
  });

  it('per-layer feed_forward_length arrays give per-layer widths', () => {
    const c = readModelConfig(fileOf(meta('llama', { 'llama.feed_forward_length': Uint32Array.of(96, 128) })));
    expect(c.layers.map((l) => l.nFf)).toEqual([96, 128]);
  });

  it('vocab_size is used when there are no tokens', () => {
    expect(readModelConfig(fileOf(meta('llama', { 'tokenizer.ggml.tokens': undefined, 'llama.vocab_size': 77 }))).nVocab).toBe(77);
  });

  it('rope scaling: linear factor, the legacy scale_linear key, none ignores the factor, yarn ends at attn_factor', () => {
    expect(readModelConfig(fileOf(meta('llama', { 'llama.rope.scaling.factor': 4 }))).rope.freqScale).toBe(0.25);
    expect(readModelConfig(fileOf(meta('llama', { 'llama.rope.scale_linear': 2 }))).rope.freqScale).toBe(0.5);
    expect(readModelConfig(fileOf(meta('llama', { 'llama.rope.scaling.type': 'none', 'llama.rope.scaling.factor': 8 }))).rope.freqScale).toBe(1);
    const yarn = readModelConfig(
      fileOf(meta('qwen2', { 'qwen2.rope.scaling.type': 'yarn', 'qwen2.rope.scaling.factor': 4, 'qwen2.rope.scaling.original_context_length': 512, 'qwen2.rope.scaling.attn_factor': 0.75 })),
    ).rope;
    expect(yarn).toMatchObject({ scalingType: 'yarn', freqScale: 0.25, extFactor: 1, nCtxOrig: 512 });
    // llama-context pre-divides by the (1 + 0.1 ln s) the rope op multiplies back in.
    expect(yarn.attnFactor * (1 + 0.1 * Math.log(4))).toBeCloseTo(0.75 * (1 + 0.1 * Math.log(4)), 12);
    expect(yarn.attnFactor).toBeCloseTo(0.75, 12);
  });

  it('llama3 rope_freqs and longrope factor tensors are detected as llama.cpp looks for them', () => {
    expect(withTensors(meta('llama'), ['rope_freqs.weight']).config.rope.factors).toBe('freqs');
    // llama reads long/short only with scaling type longrope; phi3 always.
    expect(readModelConfig(fileOf(meta('llama'), [{ name: 'rope_factors_long.weight', shape: [8] }])).rope.factors).toBe('none');
    expect(
      readModelConfig(fileOf(meta('llama', { 'llama.rope.scaling.type': 'longrope' }), [{ name: 'rope_factors_long.weight', shape: [8] }])).rope.factors,
    ).toBe('long-short');
    expect(readModelConfig(fileOf(meta('phi3'), [{ name: 'rope_factors_short.weight', shape: [8] }])).rope.factors).toBe('long-short');
  });

  it('llama (Mistral) and phi3 files with a sliding window get none, as in llama.cpp', () => {
    for (const arch of ['llama', 'phi3']) {
      const c = readModelConfig(fileOf(meta(arch, { [`${arch}.attention.sliding_window`]: 16 })));
      expect(c.slidingWindow, arch).toBe(0);
      expect(c.layers.every((l) => !l.slidingWindow), arch).toBe(true);
    }
  });

  it('qwen2: q/k/v biases and output bias detected; fused qkv detected', () => {
    const { config } = withTensors(meta('qwen2'), ['blk.0.attn_q.bias', 'blk.0.attn_k.bias', 'blk.0.attn_v.bias', 'output.bias', 'output.weight']);
    expect(config.tensors).toMatchObject({ qBias: true, kBias: true, vBias: true, outputBias: true, tiedEmbeddings: false, fusedQkv: false });
    const fused = readModelConfig(fileOf(meta('llama'), [{ name: 'blk.0.attn_qkv.weight', shape: [64, 128] }, { name: 'blk.0.attn_qkv.bias', shape: [128] }]));
    expect(fused.tensors).toMatchObject({ fusedQkv: true, qkvBias: true, qBias: false });
  });

  it('gemma (Gemma 1): sqrt(n_embd) embeddings, GeGLU, always tied, neox rope on part of a head; no window, softcaps or post-norms', () => {
    // Gemma 7B's shape in small: head size 32 is not n_embd / n_head = 16, and rope may cover less.
    const c = readModelConfig(fileOf(meta('gemma', {
      'gemma.block_count': 4,
      'gemma.attention.key_length': 32,
      'gemma.attention.value_length': 32,
      'gemma.rope.dimension_count': 16,
      'gemma.attention.sliding_window': 16,
    })));
    expect([c.embeddingScale, c.activation, c.postNorms, c.qkNorm, c.fusedGateUp]).toEqual([8, 'gelu', false, false, false]);
    expect([c.slidingWindow, c.attnSoftcap, c.finalSoftcap, c.residualScale, c.logitDivisor]).toEqual([0, 0, 0, 1, 1]);
    expect(c.layers.every((l) => !l.slidingWindow)).toBe(true);
    expect([c.headDimK, c.qDim, c.kvDimK, c.rope.nRot, c.rope.type, c.attentionScale]).toEqual([32, 128, 64, 16, 'neox', 1 / Math.sqrt(32)]);
    expect(c.tensors.tiedEmbeddings).toBe(true);
    // Gemma 1 has no per-layer post norms: a file is held to attn_norm and ffn_norm only.
    const names = modelTensors(c).map((s) => s.name);
    expect(names.filter((n) => n.startsWith('blk.0.'))).toEqual([
      'blk.0.attn_norm.weight', 'blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.0.attn_output.weight',
      'blk.0.ffn_norm.weight', 'blk.0.ffn_gate.weight', 'blk.0.ffn_up.weight', 'blk.0.ffn_down.weight',
    ]);
    expect(names).not.toContain('output.weight');
  });

  it('gemma2 defaults: window 4096 on even layers, softcaps 50 and 30, sqrt(n_embd) embeddings, always tied', () => {
    const c = readModelConfig(fileOf(meta('gemma2', { 'gemma2.block_count': 4, 'gemma2.feed_forward_length': 96 }), [{ name: 'output.weight', shape: [64, 100] }]));
    expect(c.slidingWindow).toBe(4096);
    expect(c.layers.map((l) => l.slidingWindow)).toEqual([true, false, true, false]);
    expect([c.attnSoftcap, c.finalSoftcap, c.embeddingScale, c.activation, c.postNorms]).toEqual([50, 30, 8, 'gelu', true]);
    expect(c.tensors.tiedEmbeddings).toBe(true);
    expect([c.rope.freqBaseSwa, c.rope.freqScaleSwa]).toEqual([10000, 1]);
  });

  it('gemma2 attention scale: 1/sqrt(head size), except 46-layer (27B) files use 1/sqrt(n_embd/n_head)', () => {
    const small = readModelConfig(fileOf(meta('gemma2', { 'gemma2.attention.key_length': 32, 'gemma2.attention.value_length': 32 })));
    expect(small.attentionScale).toBe(1 / Math.sqrt(32));
    const big = readModelConfig(
      fileOf(meta('gemma2', { 'gemma2.block_count': 46, 'gemma2.attention.key_length': 32, 'gemma2.attention.value_length': 32, 'gemma2.embedding_length': 144, 'gemma2.attention.head_count': 4 })),
    );
    expect(big.attentionScale).toBe(1 / 6);
  });

  it('gemma3: no window key means no sliding window; a window uses period 6, local rope base 10000 unscaled', () => {
    expect(readModelConfig(fileOf(meta('gemma3'))).layers.some((l) => l.slidingWindow)).toBe(false);
    const c = readModelConfig(
      fileOf(meta('gemma3', { 'gemma3.block_count': 7, 'gemma3.attention.sliding_window': 512, 'gemma3.rope.freq_base': 1e6, 'gemma3.rope.scaling.factor': 8 })),
    );
    expect(c.layers.map((l) => l.slidingWindow)).toEqual([true, true, true, true, true, false, true]);
    expect([c.rope.freqBase, c.rope.freqScale, c.rope.freqBaseSwa, c.rope.freqScaleSwa]).toEqual([1e6, 0.125, 10000, 1]);
    expect([c.attnSoftcap, c.finalSoftcap, c.qkNorm]).toEqual([0, 0, true]);
  });

  it('gemma3: an array sliding_window_pattern is skipped like llama.cpp does (period stays 6)', () => {
    const c = readModelConfig(
      fileOf(meta('gemma3', { 'gemma3.block_count': 7, 'gemma3.attention.sliding_window': 512, 'gemma3.attention.sliding_window_pattern': Uint32Array.of(1, 1, 1, 1, 1, 1, 1) })),
    );
    expect(c.layers.map((l) => l.slidingWindow)).toEqual([true, true, true, true, true, false, true]);
  });

  it('granite: multipliers from the file; attention.scale replaces 1/sqrt(d); rope can be switched off', () => {
    const c = readModelConfig(
      fileOf(meta('granite', { 'granite.embedding_scale': 12, 'granite.residual_scale': 0.22, 'granite.attention.scale': 0.0078125, 'granite.logit_scale': 8 })),
    );
    expect(c.embeddingScale).toBeCloseTo(12, 6);
    expect(c.residualScale).toBeCloseTo(0.22, 6);
    expect(c.attentionScale).toBeCloseTo(0.0078125, 9);
    expect(c.logitDivisor).toBe(8);
    expect(c.rope.enabled).toBe(true);
    expect(readModelConfig(fileOf(meta('granite', { 'granite.rope.scaling.finetuned': false }))).rope.enabled).toBe(false);
  });

  it('llama ignores attention.scale (only granite reads it)', () => {
    expect(readModelConfig(fileOf(meta('llama', { 'llama.attention.scale': 0.5 }))).attentionScale).toBe(0.25);
  });
});

describe('readModelConfig: errors', () => {
  it('an unknown architecture is UnsupportedModelError naming every supported one', () => {
    const e = thrown(() => readModelConfig(fileOf(meta('mamba'))));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.name).toBe('UnsupportedModelError');
    for (const a of SUPPORTED_ARCHITECTURES) expect(e.message).toContain(a);
    expect((e as UnsupportedModelError).detail?.supported).toEqual([...SUPPORTED_ARCHITECTURES]);
  });

  it('experts in an architecture without an MoE graph are unsupported (moe-config.test.ts has the MoE ones)', () => {
    expect(() => readModelConfig(fileOf(meta('qwen2', { 'qwen2.expert_count': 8 })))).toThrow(UnsupportedModelError);
  });

  it('a missing general.architecture or required key is ModelConfigError naming the key', () => {
    expect(() => readModelConfig(fileOf(meta('llama', { 'general.architecture': undefined })))).toThrow(/general\.architecture/);
    for (const key of ['llama.embedding_length', 'llama.block_count', 'llama.context_length', 'llama.attention.head_count', 'llama.feed_forward_length', 'llama.attention.layer_norm_rms_epsilon']) {
      const e = thrown(() => readModelConfig(fileOf(meta('llama', { [key]: undefined }))));
      expect(e, key).toBeInstanceOf(ModelConfigError);
      expect(e.message, key).toContain(key);
      expect((e as ModelConfigError).detail?.key, key).toBe(key);
    }
    expect(() => readModelConfig(fileOf(meta('granite', { 'granite.logit_scale': undefined })))).toThrow(/granite\.logit_scale/);
    expect(() => readModelConfig(fileOf(meta('llama', { 'tokenizer.ggml.tokens': undefined })))).toThrow(/vocabulary size/);
  });

  it('heads that do not divide, zero heads, and a wrong-typed key are rejected', () => {
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.attention.head_count': 6, 'llama.attention.head_count_kv': 4 })))).toThrow(/not a multiple/);
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.attention.head_count': 0 })))).toThrow(ModelConfigError);
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.block_count': 'two' })))).toThrow(/llama\.block_count/);
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.embedding_length': -64 })))).toThrow(/positive/);
  });

  it('inconsistent head geometry is rejected', () => {
    // llama.cpp: "invalid n_rot" for llama when rope does not cover the head.
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.rope.dimension_count': 8 })))).toThrow(/rope dimension count 8/);
    // qwen2 and phi3 size q as n_embd.
    expect(() => readModelConfig(fileOf(meta('qwen2', { 'qwen2.attention.key_length': 32, 'qwen2.attention.value_length': 32 })))).toThrow(/must equal the embedding length/);
    expect(() => readModelConfig(fileOf(meta('qwen3', { 'qwen3.attention.value_length': 32 })))).toThrow(/value head size/);
    expect(() => readModelConfig(fileOf(meta('phi3', { 'phi3.rope.dimension_count': 7 })))).toThrow(/even/);
  });

  it('per-layer arrays must have one entry per layer, and head counts must not vary', () => {
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.feed_forward_length': Uint32Array.of(96, 96, 96) })))).toThrow(/3 entries for 2 layers/);
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.attention.head_count_kv': Uint32Array.of(2, 4) })))).toThrow(/varies by layer/);
  });

  it('an unknown rope scaling type is rejected naming the known ones', () => {
    const e = thrown(() => readModelConfig(fileOf(meta('llama', { 'llama.rope.scaling.type': 'dynamic' }))));
    expect(e).toBeInstanceOf(ModelConfigError);
    expect(e.message).toMatch(/'dynamic'.*none, linear, yarn, longrope/);
  });

  it('vocab_size disagreeing with the token list is rejected', () => {
    expect(() => readModelConfig(fileOf(meta('llama', { 'llama.vocab_size': 101 })))).toThrow(/101.*100 tokens/);
  });
});

describe('sizes that drive allocations', () => {
  it('refuses a layer count or context over the limits before sizing anything by them', () => {
    for (const blocks of [MAX_LAYERS + 1, 1e6, 2 ** 32 - 1]) {
      const e = thrown(() => readModelConfig(fileOf(meta('llama', { 'llama.block_count': blocks }))));
      expect(e, String(blocks)).toBeInstanceOf(ModelConfigError);
      expect(e.message).toContain(`'llama.block_count' = ${blocks} is over the limit of ${MAX_LAYERS}`);
    }
    expect(thrown(() => readModelConfig(fileOf(meta('llama', { 'llama.context_length': 2 ** 31 }))))).toBeInstanceOf(ModelConfigError);
    expect(thrown(() => readModelConfig(fileOf(meta('llama', { 'llama.rope.scaling.original_context_length': 2 ** 31 }))))).toBeInstanceOf(ModelConfigError);
  });

  it('refuses a negative expert count by name', () => {
    const file = fileOf(meta('llama'));
    file.metadata.set('llama.expert_count', -3);
    file.metadataTypes.set('llama.expert_count', { type: GgufValueType.INT32 });
    expect(thrown(() => readModelConfig(file)).message).toMatch(/expert_count' = -3 must not be negative/);
  });

  it('holds the layer count to the blk.N tensors, and vocabulary and width to token_embd', () => {
    const { file } = withTensors(meta('llama'));
    // 300 layers are within the limit, but the file has tensors for 2.
    const more = readModelConfig(fileOf(meta('llama', { 'llama.block_count': 300 })));
    const e = thrown(() => checkTensors(more, file));
    expect(e).toBeInstanceOf(ModelConfigError);
    expect(e.message).toContain('block_count is 300 but the file has tensors for 2 blocks (blk.0 to blk.1)');
    const far = { ...file, tensors: [...file.tensors, { ...file.tensors[0]!, name: 'blk.4000000000.attn_q.weight' }] };
    expect(thrown(() => checkTensors(readModelConfig(file), far)).message).toContain('tensors for 4000000001 blocks');
    const vocab = readModelConfig(fileOf(meta('llama', { 'llama.vocab_size': 100, 'tokenizer.ggml.tokens': undefined })));
    const wrongRows = { ...file, tensors: file.tensors.map((t) => (t.name === 'token_embd.weight' ? { ...t, shape: [64, 5000] } : t)) };
    expect(thrown(() => checkTensors(vocab, wrongRows)).message).toContain('token_embd.weight is [64, 5000] but the metadata gives 64 embedding dimensions and 100 tokens');
  });
});

describe('checkTensors', () => {
  it('accepts exactly the expected tensors of every architecture', () => {
    for (const arch of SUPPORTED_ARCHITECTURES) {
      const { file, config } = withTensors(meta(arch));
      expect(() => checkTensors(config, file), arch).not.toThrow();
    }
  });

  it('names missing tensors, wrong shapes and tensors the model does not use', () => {
    const { file, config } = withTensors(meta('llama'));
    file.tensors = file.tensors.filter((t) => t.name !== 'blk.1.ffn_down.weight');
    file.tensors.find((t) => t.name === 'blk.0.attn_k.weight')!.shape = [64, 64];
    file.tensors.push({ ...file.tensors[0]!, name: 'blk.0.mystery.weight' });
    const e = thrown(() => checkTensors(config, file));
    expect(e).toBeInstanceOf(ModelConfigError);
    expect(e.message).toContain('missing tensors: blk.1.ffn_down.weight');
    expect(e.message).toContain('blk.0.attn_k.weight is [64, 64], expected [64, 32]');
    expect(e.message).toContain('blk.0.mystery.weight');
    expect((e as ModelConfigError).detail).toMatchObject({ missing: ['blk.1.ffn_down.weight'], unexpected: ['blk.0.mystery.weight'] });
  });

  it('gemma and gemma2 files with an output.weight are refused (llama.cpp never loads it)', () => {
    for (const arch of ['gemma', 'gemma2']) {
      const { file, config } = withTensors(meta(arch));
      file.tensors.push({ ...file.tensors[0]!, name: 'output.weight', shape: [64, 100] });
      expect(() => checkTensors(config, file), arch).toThrow(/does not use: output\.weight/);
    }
  });

  it('phi3 expects fused gate-up [n_embd, 2 n_ff]; qwen3 expects q/k norms of the head size', () => {
    const phi3 = modelTensors(readModelConfig(fileOf(meta('phi3'), [{ name: 'blk.0.attn_qkv.weight', shape: [64, 128] }])));
    expect(phi3.find((s) => s.name === 'blk.0.ffn_up.weight')!.shape).toEqual([64, 192]);
    expect(phi3.find((s) => s.name === 'blk.0.attn_qkv.weight')!.shape).toEqual([64, 128]);
    expect(phi3.some((s) => s.name === 'blk.0.ffn_gate.weight')).toBe(false);
    const qwen3 = modelTensors(readModelConfig(fileOf(meta('qwen3'))));
    expect(qwen3.find((s) => s.name === 'blk.1.attn_k_norm.weight')!.shape).toEqual([16]);
  });

  it('a tensor type without a decoder is UnsupportedModelError listing the supported types', () => {
    const { file, config } = withTensors(meta('llama'));
    file.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.type = GgmlType.IQ2_XXS;
    const e = thrown(() => checkTensors(config, file));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/blk\.0\.attn_q\.weight \(IQ2_XXS\).*supported types: .*Q4_K/);
  });
});
