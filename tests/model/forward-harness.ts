/**
 * Shared by the forward-pass GPU test files (forward*.gpu.test.ts): the GPU forward pass
 * (src/engine/model/forward.ts on the WebGPU backend) against the exact answer (the float64 reference, src/testing/reference-forward.ts) and against llama.cpp's
 * CPU logits (f32 KV cache), on generated random-weight models of every architecture and weight
 * type: one prefill in chunks, token-by-token decode and a mix of step sizes must all give the
 * reference's logits; greedy generation on the GPU must pick the reference's tokens.
 *
 * Figures are printed as "[forward] arch type: ..." lines for the closing note.
 *
 * Bars: ours vs exact, mean KL <= 1e-4 and top-1 >= 99% on every file; ours vs llama.cpp on F32 and
 * F16 files, KL <= 1e-5 and top-1 >= 99%; on quantized files ours is at least as close to the
 * exact answer as llama.cpp is (llama.cpp's CPU quantizes activations to 8 bits for quantized dot
 * products; we dequantize weights exactly) and within KL 1e-2, top-1 93% of llama.cpp.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import type { RangedSource } from '../../src/engine/gguf/source.ts';
import { Model } from '../../src/engine/model/model.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { argmax, klDivergence, normalizedMse, topOneAgreement } from '../../src/testing/compare.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { llamaCppSourceDir, llamaRefLogits } from '../../src/testing/llama-ref.ts';
import { ReferenceSession, loadReferenceWeights, referenceForward, type ReferenceModel } from '../../src/testing/reference-forward.ts';
import { editedTestModel, gemma3Edit, type ModelEdit } from '../../src/testing/edit-model.ts';
import { q4kmRecipe, useMoreBits, type QuantRecipe, type TestModelOptions, type VocabSource } from '../../src/testing/make-model.ts';
import { GREEDY } from '../../src/engine/sampling/params.ts';

const TIMEOUT = 600_000;
/** Positions per model (the bar asks for 64 or more). */
const N_TOKENS = 100;
/** Tokens per GPU step: 100 tokens of prefill run as 32 + 32 + 32 + 4, through both matmul kernels. */
const BATCH = 32;
/** Positions of the token-by-token run. */
const DECODE_POSITIONS = 40;
const GREEDY_STEPS = 64;

function randomTokens(n: number, nVocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % nVocab);
  }
  return out;
}

async function vocabOf(name: string): Promise<VocabSource> {
  const src = await nodeFileSource(join(llamaCppSourceDir(), 'models', `ggml-vocab-${name}.gguf`));
  const file = await readGguf(src).finally(() => src.close());
  return { metadata: file.metadata, metadataTypes: file.metadataTypes };
}

/** Q5_K_M after llama.cpp's llama_tensor_get_type: Q5_K, with Q6_K for output and for attn_v / ffn_down where use_more_bits. */
const q5kmRecipe: QuantRecipe = (t, { nLayer }) => {
  if (t.role === 'vector') return GgmlType.F32;
  if (t.role === 'output') return GgmlType.Q6_K;
  if ((t.role === 'attn_v' || t.role === 'ffn_down') && useMoreBits(t.layer, nLayer)) return GgmlType.Q6_K;
  return GgmlType.Q5_K;
};

export const TYPES: Array<[string, string | QuantRecipe]> = [
  ['F32', 'f32'],
  ['F16', 'f16'],
  ['Q8_0', 'q8_0'],
  ['Q4_0', 'q4_0'],
  ['Q4_K_M', q4kmRecipe],
  ['Q5_K_M', q5kmRecipe],
  ['Q6_K', 'q6_k'],
];

/** Row lengths are 256 (embd, ff, heads * head_dim) so every K-quant applies without fallbacks. */
export const DIMS = { embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, seed: 7 } as const;
export const WINDOW = 16;

/** gemma3 from the generator's gemma2, at DIMS with window WINDOW. */
export function gemma3EditAtDims(layers: number): ModelEdit {
  return gemma3Edit(layers, DIMS.embd / DIMS.heads, WINDOW);
}

export interface ArchCase {
  label: string;
  options: Omit<TestModelOptions, 'quant'>;
  edit?: ModelEdit;
  /** Context the model (and llama.cpp, and the reference's rope choice) runs with. */
  nCtx?: number;
  check?: (m: ReferenceModel) => void;
}

const vocabs = new Map<string, VocabSource>();
async function vocabFor(arch: string): Promise<VocabSource | undefined> {
  // llama.cpp's phi3 loader needs phi3's special tokens: llama.cpp's phi-3 vocabulary (32064).
  // The rest use the generator's small SentencePiece-style one: a 32000-row output projection is
  // seconds per step on SwiftShader.
  const name = arch === 'phi3' ? 'phi-3' : undefined;
  if (!name) return undefined;
  if (!vocabs.has(name)) vocabs.set(name, await vocabOf(name));
  return vocabs.get(name);
}

let gpu: TestGpu;
let kernels: KernelCache;
let dir: string;

async function writeModel(name: string, options: TestModelOptions, edit: ModelEdit = {}): Promise<string> {
  const path = join(dir, `${name}.gguf`);
  const vocab = await vocabFor(options.arch);
  writeFileSync(path, editedTestModel({ ...options, ...(vocab ? { vocab } : {}) }, edit));
  return path;
}

interface Loaded {
  path: string;
  source: RangedSource;
  ref: ReferenceModel;
  model: Model;
}

async function load(name: string, c: ArchCase, quant: string | QuantRecipe): Promise<Loaded> {
  const path = await writeModel(name, { ...c.options, quant }, c.edit);
  const source = await nodeFileSource(path);
  const ref = await loadReferenceWeights(await readGguf(source), source);
  c.check?.(ref);
  const backend = new WebGpuBackend(gpu.device, { kernelPaths: gpu.kernelPaths, kernels });
  const model = await Model.load(backend, source, { contextLength: c.nCtx ?? 256, batch: BATCH });
  return { path, source, ref, model };
}

async function close(l: Loaded): Promise<void> {
  l.model.destroy();
  await l.source.close?.();
}

/** Evaluates `tokens` in steps of the given sizes (the last one repeated), returning every position's logits. */
async function evalInSteps(model: Model, tokens: number[], sizes: number[]): Promise<Float32Array> {
  const V = model.config.nVocab;
  const out = new Float32Array(tokens.length * V);
  model.reset();
  for (let at = 0, i = 0; at < tokens.length; i++) {
    const n = Math.min(sizes[Math.min(i, sizes.length - 1)]!, tokens.length - at);
    out.set(await model.eval(tokens.slice(at, at + n), { logits: 'all' }), at * V);
    at += n;
  }
  return out;
}

interface Figures {
  kl: number;
  top1: number;
  /** Normalized MSE of the logits: still sensitive where peaked distributions make KL tiny. */
  nmse: number;
}

function figures(reference: ArrayLike<number>, actual: ArrayLike<number>, nVocab: number): Figures {
  return { kl: klDivergence(reference, actual, nVocab), top1: topOneAgreement(reference, actual, nVocab), nmse: normalizedMse(actual, reference) };
}

const fmt = (f: Figures) => `KL ${f.kl.toExponential(2)}, top-1 ${(f.top1 * 100).toFixed(1)}%, logit NMSE ${f.nmse.toExponential(1)}`;
/**
 * Top-1 agreement with llama.cpp on quantized files: 93%, except where llama.cpp's own top-1 agrees
 * with the exact answer less often than that (its CPU rounds activations to 8 bits for quantized dot
 * products, which flips near-ties on a 32000-token vocabulary); ours is the exact answer to 1e-7, so
 * it can then agree with llama.cpp only as often as the exact answer does (one position of slack).
 */
function quantTop1Bar(llamaVsExactTop1: number, positions: number): number {
  return Math.min(0.93, llamaVsExactTop1 - 1 / positions);
}

/** Ours vs exact: the kernels compute in f32 on exactly dequantized weights. */
const NMSE_BAR = 1e-7;

/** Greedy continuation of `prompt` by the reference: `steps` tokens. */
function referenceGreedy(ref: ReferenceModel, prompt: number[], steps: number, nCtx: number): number[] {
  const session = new ReferenceSession(ref, { nCtx, ropeContext: Math.ceil(nCtx / 256) * 256 });
  const out: number[] = [];
  let logits = session.eval(prompt);
  const V = ref.config.nVocab;
  for (let i = 0; i < steps; i++) {
    const next = argmax(logits, logits.length - V, V);
    out.push(next);
    logits = session.eval([next]);
  }
  return out;
}

async function gpuGreedy(model: Model, prompt: number[], steps: number): Promise<number[]> {
  model.reset();
  const out: number[] = [];
  let next = await model.next(prompt, GREEDY, 0);
  for (let i = 0; i < steps; i++) {
    out.push(next);
    if (i + 1 < steps) next = await model.next([next], GREEDY, 0);
  }
  return out;
}


export interface SuiteCase {
  arch: ArchCase;
  /** Type names from {@link TYPES}; all of them by default. */
  types?: readonly string[];
  /** Types that also run a mixed-step evaluation (default F32 and Q4_K_M). */
  mixed?: readonly string[];
  /** Types that also run token-by-token decode and greedy generation (default F32). */
  decode?: readonly string[];
}

/** One describe block: every case and type against the reference and llama.cpp, then F32 variants (mixed steps). */
export function forwardSuite(title: string, cases: readonly SuiteCase[], variants: readonly ArchCase[] = []): void {
  beforeAll(async () => {
    gpu = await acquireTestGpu();
    kernels = new KernelCache(gpu.device);
    dir = mkdtempSync(join(tmpdir(), 'hearth-forward-'));
  });
  afterAll(() => {
    gpu?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  describe(title, () => {
  for (const { arch, types, mixed: mixedTypes = ['F32', 'Q4_K_M'], decode: decodeTypes = ['F32'] } of cases) {
    for (const [typeName, quant] of TYPES.filter(([t]) => !types || types.includes(t))) {
      it(`${arch.label} ${typeName}`, { timeout: TIMEOUT }, async () => {
        const t0 = performance.now();
        const l = await load(`${arch.label}-${typeName}`, arch, quant);
        const ms: string[] = [`load ${Math.round(performance.now() - t0)}`];
        const lines: string[] = [];
        const lap = (what: string) => ms.push(`${what} ${Math.round(performance.now() - t0)}`);
        try {
          const V = l.ref.config.nVocab;
          const nCtx = arch.nCtx ?? 256;
          const tokens = randomTokens(N_TOKENS, V, 5);
          const exact = referenceForward(l.ref, tokens, { nCtx });
          lap('reference');
          const prefill = await evalInSteps(l.model, tokens, [N_TOKENS]);
          lap('prefill');
          const ours = figures(exact, prefill, V);
          const llama = llamaRefLogits(l.path, tokens, { kvType: 'f32', threads: 2, nCtx });
          lap('llama.cpp');
          const llamaExact = figures(exact, llama.logits, V);
          const oursLlama = figures(llama.logits, prefill, V);
          lines.push(`prefill vs exact ${fmt(ours)}`, `llama.cpp vs exact ${fmt(llamaExact)}`, `ours vs llama.cpp ${fmt(oursLlama)}`);
          expect(ours.kl).toBeLessThanOrEqual(1e-4);
          expect(ours.top1).toBeGreaterThanOrEqual(0.99);
          expect(ours.nmse).toBeLessThanOrEqual(NMSE_BAR);
          if (typeName === 'F32' || typeName === 'F16') {
            expect(oursLlama.kl).toBeLessThanOrEqual(1e-5);
            expect(oursLlama.top1).toBeGreaterThanOrEqual(0.99);
          } else {
            expect(ours.kl).toBeLessThanOrEqual(llamaExact.kl);
            expect(oursLlama.kl).toBeLessThanOrEqual(1e-2);
            expect(oursLlama.top1).toBeGreaterThanOrEqual(quantTop1Bar(llamaExact.top1, tokens.length));
          }
          if (mixedTypes.includes(typeName)) {
            const mixed = figures(exact, await evalInSteps(l.model, tokens, [1, 7, 3, 33, 1, 2, 20]), V);
            lap('mixed');
            lines.push(`mixed steps vs exact ${fmt(mixed)}`);
            expect(mixed.kl).toBeLessThanOrEqual(1e-4);
            expect(mixed.top1).toBeGreaterThanOrEqual(0.99);
            expect(mixed.nmse).toBeLessThanOrEqual(NMSE_BAR);
          }
          if (decodeTypes.includes(typeName)) {
            // Decode: 8 tokens, then one at a time to position 40 (past the window of 16).
            const n = DECODE_POSITIONS;
            const decode = figures(exact.subarray(0, n * V), await evalInSteps(l.model, tokens.slice(0, n), [8, 1]), V);
            lap('decode');
            lines.push(`decode (${n} positions) vs exact ${fmt(decode)}`);
            expect(decode.kl).toBeLessThanOrEqual(1e-4);
            expect(decode.top1).toBeGreaterThanOrEqual(0.99);
            expect(decode.nmse).toBeLessThanOrEqual(NMSE_BAR);
            const prompt = tokens.slice(0, 8);
            const want = referenceGreedy(l.ref, prompt, GREEDY_STEPS, nCtx);
            lap('reference greedy');
            const got = await gpuGreedy(l.model, prompt, GREEDY_STEPS);
            lap('gpu greedy');
            lines.push(`greedy ${GREEDY_STEPS}: ${got.filter((t, i) => t === want[i]).length}/${GREEDY_STEPS} equal`);
            expect(got).toEqual(want);
          }
        } finally {
          console.log(`[forward] ${arch.label} ${typeName}: ${lines.join('; ')} (ms: ${ms.join(', ')})`);
          await close(l);
        }
      });
    }
  }

  for (const variant of variants) {
    it(`${variant.label} F32`, { timeout: TIMEOUT }, async () => {
      const l = await load(variant.label.replace(/[^a-z0-9]+/gi, '-'), variant, 'f32');
      try {
        const V = l.ref.config.nVocab;
        const nCtx = variant.nCtx ?? 256;
        const tokens = randomTokens(N_TOKENS, V, 5);
        const exact = referenceForward(l.ref, tokens, { nCtx });
        const mixed = await evalInSteps(l.model, tokens, [5, 1, 40, 2, 52]);
        const ours = figures(exact, mixed, V);
        const llama = llamaRefLogits(l.path, tokens, { kvType: 'f32', threads: 2, nCtx });
        const oursLlama = figures(llama.logits, mixed, V);
        console.log(`[forward] ${variant.label} F32: mixed vs exact ${fmt(ours)}; ours vs llama.cpp ${fmt(oursLlama)}`);
        expect(ours.kl).toBeLessThanOrEqual(1e-4);
        expect(ours.top1).toBeGreaterThanOrEqual(0.99);
        expect(ours.nmse).toBeLessThanOrEqual(NMSE_BAR);
        expect(oursLlama.kl).toBeLessThanOrEqual(1e-5);
        expect(oursLlama.top1).toBeGreaterThanOrEqual(0.99);
      } finally {
        await close(l);
      }
    });
  }
});
}
