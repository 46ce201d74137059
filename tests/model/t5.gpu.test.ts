/**
 * The encoder-decoder forward (src/engine/model/t5-forward.ts) on the WebGPU backend against
 * llama.cpp's llama_encode + llama_decode (tools/llama-ref encdec) and the float64 reference
 * (src/testing/reference-t5.ts) on generated t5 files (src/testing/make-model.ts --arch t5), as
 * tests/model/t5-cpu.test.ts does on the CPU. The WebGPU backend keeps activations in f32, so every
 * file, quantized or not, is held to the exact answer over its own (dequantized) weights. Bars, per
 * decoder position:
 *   every file: within KL 1e-5 of the float64 reference everywhere, top-1 >= 99%.
 *   F32: ReLU T5 within KL 1e-5 of llama.cpp everywhere; gated-GELU Flan-T5 on average (llama.cpp's
 *   CPU GELU goes through an f16 table: tests/model/reference-t5.test.ts measures it).
 *   Q8_0, Q4_K_M: at least as close to the exact answer as llama.cpp is (mean and max KL).
 * The decoder runs in pieces of 1, 3 and 36 tokens (the decode kernels' and the prefill kernels'
 * causal, biased attention; 36 crosses the decoder batch), the encoder on 48 tokens (prefill,
 * not causal) and on 3 (the decode kernel, not causal); `hearth generate --backend webgpu` on a
 * t5 file generates the reference's greedy tokens. Figures are "[t5 webgpu]" lines.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { T5Model } from '../../src/engine/model/t5-forward.ts';
import { t5Transform } from '../../src/engine/generate/t5-transform.ts';
import { GREEDY } from '../../src/engine/sampling/params.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import type { TestModelOptions } from '../../src/testing/make-model.ts';
import { tokensFor } from '../../src/testing/random.ts';
import { loadT5Reference } from '../../src/testing/reference-t5.ts';
import { BAR, F32_CASES, compare, expectF32Parity, expectGreedyArgmax, show, t5Case, t5Logits, writeT5Model } from './t5-harness.ts';

const TIMEOUT = 180_000;
/** 1 and 3 tokens: the decode attention kernels; 36: prefill's, over two decoder batches of 32. */
const PIECES = [1, 3, 36];

const CASES: Array<{ label: string; options: TestModelOptions }> = [
  ...F32_CASES,
  { label: 'Flan-T5 (gated GELU) Q8_0, embd 256, 2+1 layers, 4 heads x 64', options: { arch: 't5', embd: 256, layers: 2, decoderLayers: 1, heads: 4, headDim: 64, ff: 256, quant: 'q8_0', seed: 44 } },
  { label: 'T5 (ReLU) Q4_K_M, embd 256, 2+1 layers, 4 heads x 64, tied', options: { arch: 't5', embd: 256, layers: 2, decoderLayers: 1, heads: 4, headDim: 64, ff: 256, t5Ffn: 'relu', tiedEmbeddings: true, quant: 'q4_k_m', seed: 45 } },
];

let dir: string;
let gpu: TestGpu;
let kernels: KernelCache;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-t5-gpu-'));
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function generate(name: string, options: TestModelOptions): string {
  return writeT5Model(dir, name, options);
}

/** Our logits on a fresh WebGPU backend, the decoder fed in `pieces`. */
async function ours(path: string, input: number[], decoder: number[], pieces: number[]): Promise<Float32Array> {
  const backend = new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths });
  try {
    return await t5Logits(backend, path, input, decoder, pieces);
  } finally {
    backend.destroy();
  }
}

describe('t5 on the WebGPU backend', () => {
  it.each(CASES.map((c, i) => [c.label, i] as const))('%s: encode + decode against llama.cpp and the float64 reference', { timeout: TIMEOUT }, async (label, i) => {
    const { options } = CASES[i]!;
    const path = generate(`case-${i}`, options);
    const { reference, input, decoder, llama, exact } = await t5Case(path, i);
    const V = reference.config.nVocab;
    const gpuLogits = await ours(path, input, decoder, PIECES);
    const vsLlama = compare(llama, gpuLogits, V);
    const vsExact = compare(exact, gpuLogits, V);
    const llamaVsExact = compare(exact, llama, V);
    console.log(`[t5 webgpu] ${label}: vs llama.cpp ${show(vsLlama)}; vs float64 ${show(vsExact)}; llama.cpp vs float64 ${show(llamaVsExact)}`);
    expect(gpuLogits.every(Number.isFinite)).toBe(true);
    expectF32Parity(vsExact, vsLlama, options.quant !== undefined, reference.config.gatedGelu);
    if (options.quant) {
      // llama.cpp's CPU rounds the activations of quantized products to 8 bits; ours stay f32.
      expect(vsExact.meanKl).toBeLessThanOrEqual(llamaVsExact.meanKl);
      expect(vsExact.maxKl).toBeLessThanOrEqual(llamaVsExact.maxKl);
      expect(vsLlama.top1).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('a 3-token input (the decode kernel, not causal, with the bias) and greedy t5Transform follow the float64 reference', { timeout: TIMEOUT }, async () => {
    const path = generate('short', CASES[1]!.options);
    const reference = await loadT5Reference(path);
    const V = reference.config.nVocab;
    const input = tokensFor(3, V, 800);
    const backend = new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths });
    const source = await nodeFileSource(path);
    try {
      const model = await T5Model.load(backend, source, { inputCapacity: 32, outputCapacity: 32 });
      const out = await t5Transform(model, input, { maxTokens: 10, sampling: GREEDY, isEnd: () => false });
      expect(out.tokens).toHaveLength(10);
      const decoder = [reference.config.decoderStart ?? 0, ...out.tokens.slice(0, -1)];
      const exact = expectGreedyArgmax(reference, input, out.tokens);
      await model.encode(input);
      const logits = await model.decode(decoder);
      const figures = compare(exact, logits, V);
      console.log(`[t5 webgpu] 3-token input: vs float64 ${show(figures)}`);
      expect(figures.maxKl).toBeLessThanOrEqual(BAR);
    } finally {
      await source.close();
      backend.destroy();
    }
  });

  it('hearth generate --backend webgpu on a t5 file: greedy tokens are the float64 reference\'s argmax', { timeout: TIMEOUT }, async () => {
    const path = generate('cli', { arch: 't5', embd: 64, layers: 2, heads: 4, ff: 128, seed: 12 });
    const prompt = 'translate English to German: the house is small';
    const r = spawnSync(process.execPath, ['bin/hearth.js', 'generate', path, '--prompt', prompt, '-n', '8', '--temperature', '0', '--json', '--backend', 'webgpu'], { encoding: 'utf8', timeout: TIMEOUT });
    expect(r.stderr).toMatch(/t5: \d+ input tokens, 8 output tokens/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: number[]; input_tokens: number };
    const file = await readGguf(bytesSource(readFileSync(path)));
    const input = Tokenizer.fromGgufMetadata(file.metadata).encode(prompt, { addSpecial: true, parseSpecial: false });
    expect(out.input_tokens).toBe(input.length);
    const reference = await loadT5Reference(path);
    expect(out.tokens).toHaveLength(8);
    expectGreedyArgmax(reference, input, out.tokens);
  });
});
