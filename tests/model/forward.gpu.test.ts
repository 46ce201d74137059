/**
 * The GPU forward pass (src/engine/model/forward.ts on the WebGPU backend) against the exact
 * answer (the float64 reference) and llama.cpp's CPU logits, for every architecture but phi3
 * (forward-phi3.gpu.test.ts: its real vocabulary makes it slow) and every weight type; see
 * forward-harness.ts for the bars and what each case runs. Figures print as "[forward] ..." lines.
 */
import { expect } from 'vitest';
import { GgufValueType } from '../../src/engine/gguf/types.ts';
import { DIMS, WINDOW, forwardSuite, gemma3EditAtDims, type ArchCase } from './forward-harness.ts';

const ARCHS: ArchCase[] = [
  // llama3-style rope_freqs and the optional dense biases.
  { label: 'llama', options: { arch: 'llama', ...DIMS, ropeFreqs: true, biases: true }, check: (m) => expect(m.config.rope.factors).toBe('freqs') },
  { label: 'qwen2', options: { arch: 'qwen2', ...DIMS }, check: (m) => expect(m.config.tensors.qBias).toBe(true) },
  { label: 'qwen3', options: { arch: 'qwen3', ...DIMS, headDim: 64 }, check: (m) => expect(m.config.qkNorm).toBe(true) },
  // Gemma 1: Gemma 2B's attention (heads of 256, one KV head), a head size that is not embd / heads.
  {
    label: 'gemma',
    options: { arch: 'gemma', ...DIMS, kvHeads: 1, headDim: 256 },
    check: (m) => {
      expect([m.config.qDim, m.config.kvDimK, m.config.embeddingScale, m.config.activation, m.config.postNorms]).toEqual([1024, 256, 16, 'gelu', false]);
      expect(m.config.tensors.tiedEmbeddings).toBe(true);
    },
  },
  // Window 16 < 72 positions; the softcaps lowered to 2 and 5 so that they bite on a small model.
  {
    label: 'gemma2',
    options: { arch: 'gemma2', ...DIMS, slidingWindow: WINDOW },
    edit: { set: [['gemma2.attn_logit_softcapping', 2, GgufValueType.FLOAT32], ['gemma2.final_logit_softcapping', 5, GgufValueType.FLOAT32]] },
    check: (m) => {
      expect(m.config.layers.map((l) => l.slidingWindow)).toEqual([true, false]);
      expect([m.config.attnSoftcap, m.config.finalSoftcap]).toEqual([2, 5]);
    },
  },
  // 3 layers with pattern 3: two windowed layers (rope base 10000) and a global one (1e6, linear x8).
  {
    label: 'gemma3',
    options: { arch: 'gemma2', ...DIMS, layers: 3, slidingWindow: WINDOW },
    edit: gemma3EditAtDims(3),
    check: (m) => expect(m.config.layers.map((l) => l.slidingWindow)).toEqual([true, true, false]),
  },
  { label: 'granite', options: { arch: 'granite', ...DIMS }, check: (m) => expect(m.config.residualScale).not.toBe(1) },
];

/** Rope and scaling variants, F32. */
const VARIANTS: ArchCase[] = [
  {
    label: 'qwen2 yarn x4 (original context 32)',
    options: { arch: 'qwen2', ...DIMS },
    edit: {
      set: [
        ['qwen2.rope.scaling.type', 'yarn', GgufValueType.STRING],
        ['qwen2.rope.scaling.factor', 4, GgufValueType.FLOAT32],
        ['qwen2.rope.scaling.original_context_length', 32, GgufValueType.UINT32],
        ['qwen2.rope.scaling.attn_factor', 0.9, GgufValueType.FLOAT32],
      ],
    },
    check: (m) => expect(m.config.rope.extFactor).toBe(1),
  },
  { label: 'mistral (llama with a window llama.cpp ignores)', options: { arch: 'mistral', ...DIMS, slidingWindow: WINDOW } },
  {
    label: 'granite without rope',
    options: { arch: 'granite', ...DIMS },
    edit: { set: [['granite.rope.scaling.finetuned', 0, GgufValueType.BOOL]] },
    check: (m) => expect(m.config.rope.enabled).toBe(false),
  },
];

forwardSuite('GPU forward vs the float64 reference and llama.cpp', ARCHS.map((arch) => ({ arch })), VARIANTS);
