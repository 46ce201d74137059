/**
 * LoRA parity with llama.cpp (tools/llama-ref: llama_adapter_lora_init, llama_set_adapters_lora)
 * for the same base, adapters and scales: an F32 base within KL 1e-5 and top-1 99% of llama.cpp;
 * a quantized base (Q8_0, Q4_K_M) at least as close to the exact float64 answer (the reference
 * with the same adapters) as llama.cpp is. Plus a held-out adapter drawn fresh each run (rank,
 * alpha, targets, scale), printed with its seed. Figures are printed as "[lora parity]" lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../gguf/reader.ts';
import { bytesSource } from '../../gguf/source.ts';
import { CpuBackend } from '../../backend/cpu/backend.ts';
import { Model } from '../model.ts';
import { klDivergence, topOneAgreement } from '../../../testing/compare.ts';
import { llamaRefLogits } from '../../../testing/llama-ref.ts';
import { makeTestModel, q4kmRecipe, type QuantRecipe, type TestArch } from '../../../testing/make-model.ts';
import { makeRandomLora } from '../../../testing/make-lora.ts';
import { freshSeed, mulberry32, tokensFor } from '../../../testing/random.ts';
import { loadReferenceWeights, referenceForward } from '../../../testing/reference-forward.ts';
import { LORA_TARGET_NAMES, type LoraTargetName } from './adapter-file.ts';
import { writeLoraGguf, type LoraAdapterData } from './adapter-data.ts';

const DIMS = { embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, seed: 9 } as const;
const N_TOKENS = 24;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-lora-parity-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Adapter {
  data: LoraAdapterData;
  scale: number;
}

/** Our CPU logits (f32 or 8-bit activations): prefill of 16, then decode. */
async function ours(bytes: Uint8Array, adapters: Adapter[], tokens: number[], quantizedActivations: boolean): Promise<Float32Array> {
  const backend = await CpuBackend.create({ relaxed: false, quantizedActivations, threads: 1 });
  const m = await Model.load(backend, bytesSource(bytes), { contextLength: 64, batch: 16 });
  try {
    const active = [];
    for (const [i, a] of adapters.entries()) active.push({ lora: await m.loadAdapter(bytesSource(writeLoraGguf(a.data)), `a${i}`), scale: a.scale });
    m.setAdapters(active);
    const V = m.config.nVocab;
    const out = new Float32Array(tokens.length * V);
    out.set(await m.eval(tokens.slice(0, 16), { logits: 'all' }), 0);
    for (let t = 16; t < tokens.length; t++) out.set(await m.eval([tokens[t]!], { logits: 'all' }), t * V);
    return out;
  } finally {
    m.destroy();
  }
}

async function compare(name: string, arch: TestArch, quant: string | QuantRecipe, adapters: Adapter[]) {
  const bytes = makeTestModel({ arch, ...DIMS, quant });
  const modelPath = join(dir, `${name}.gguf`);
  writeFileSync(modelPath, bytes);
  const loras = adapters.map((a, i) => {
    const path = join(dir, `${name}-lora${i}.gguf`);
    writeFileSync(path, writeLoraGguf(a.data));
    return { path, scale: a.scale };
  });
  const src = bytesSource(bytes);
  const ref = await loadReferenceWeights(await readGguf(src), src);
  const V = ref.config.nVocab;
  const tokens = tokensFor(N_TOKENS, V);
  const exact = referenceForward(ref, tokens, { nCtx: 64, adapters });
  const base = referenceForward(ref, tokens, { nCtx: 64 });
  const llama = llamaRefLogits(modelPath, tokens, { kvType: 'f32', threads: 1, nCtx: 256, loras }).logits;
  const f32 = await ours(bytes, adapters, tokens, false);
  const q8 = await ours(bytes, adapters, tokens, true);
  const kl = (a: ArrayLike<number>, b: ArrayLike<number>) => klDivergence(a, b, V);
  const figures = {
    adapterMoves: kl(base, exact),
    llamaVsExact: kl(exact, llama),
    oursVsExact: kl(exact, f32),
    ours8bitVsExact: kl(exact, q8),
    oursVsLlama: kl(llama, f32),
    top1VsLlama: topOneAgreement(llama, f32, V),
  };
  console.log(`[lora parity] ${name}: ${Object.entries(figures).map(([k, v]) => `${k} ${k.startsWith('top1') ? v.toFixed(3) : v.toExponential(2)}`).join(', ')}`);
  // The adapters matter: a comparison that passes without them would prove nothing.
  expect(figures.adapterMoves).toBeGreaterThan(1e-3);
  return figures;
}

const ALL: LoraTargetName[] = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output', 'token_embd'];

describe('LoRA vs llama.cpp', () => {
  it.each([
    ['llama', ALL],
    ['phi3', ['attn_qkv', 'attn_output', 'ffn_up', 'ffn_down', 'output']],
    ['qwen2', ['attn_q', 'attn_k', 'attn_v', 'ffn_gate', 'ffn_down', 'token_embd']],
  ] as Array<[TestArch, LoraTargetName[]]>)('%s F32 base, two adapters: within KL 1e-5 of llama.cpp', { timeout: 120_000 }, async (arch, targets) => {
    const config = (await loadReferenceWeights(...(await (async () => {
      const b = bytesSource(makeTestModel({ arch, ...DIMS }));
      return [await readGguf(b), b] as const;
    })()))).config;
    const adapters = [
      { data: makeRandomLora(config, { rank: 8, alpha: 16, targets, seed: 1 }), scale: 0.8 },
      { data: makeRandomLora(config, { rank: 4, alpha: 0, targets: targets.slice(0, 3), seed: 2 }), scale: -0.3 },
    ];
    const f = await compare(`${arch}-f32`, arch, 'f32', adapters);
    expect(f.oursVsLlama).toBeLessThanOrEqual(1e-5);
    expect(f.top1VsLlama).toBeGreaterThanOrEqual(0.99);
  });

  it.each([
    ['Q8_0', 'q8_0'],
    ['Q4_K_M', q4kmRecipe],
  ] as Array<[string, string | QuantRecipe]>)('llama %s base: at least as close to the exact answer as llama.cpp', { timeout: 120_000 }, async (label, quant) => {
    const b = bytesSource(makeTestModel({ arch: 'llama', ...DIMS, quant }));
    const config = (await loadReferenceWeights(await readGguf(b), b)).config;
    const adapters = [{ data: makeRandomLora(config, { rank: 16, alpha: 32, targets: ALL, seed: 5 }), scale: 1 }];
    const f = await compare(`llama-${label}`, 'llama', quant, adapters);
    expect(f.oursVsExact).toBeLessThanOrEqual(f.llamaVsExact);
    // 8-bit activations are llama.cpp's own scheme: the same distance, within rounding.
    expect(f.ours8bitVsExact).toBeLessThanOrEqual(f.llamaVsExact * 1.5);
  });

  it('a held-out adapter (fresh rank, alpha, targets and scale each run)', { timeout: 120_000 }, async () => {
    const seed = freshSeed('lora held-out adapter');
    const next = mulberry32(seed);
    const arch: TestArch = (['llama', 'qwen2', 'granite', 'qwen3'] as const)[Math.floor(next() * 4)]!;
    const b = bytesSource(makeTestModel({ arch, ...DIMS }));
    const config = (await loadReferenceWeights(await readGguf(b), b)).config;
    const candidates = LORA_TARGET_NAMES.filter((t) => t !== 'attn_qkv' && !(t === 'token_embd' && config.tensors.tiedEmbeddings));
    const targets = candidates.filter(() => next() < 0.5);
    // ffn_down adds straight into the residual stream: with it the adapter always moves the logits
    // past the check's 1e-3 (a draw of only attn_k at rank 1 and a small gain once did not).
    if (!targets.includes('ffn_down')) targets.push('ffn_down');
    const rank = 1 + Math.floor(next() * 32);
    // alpha/rank is the adapter's gain: drawn in [0.5, 2.5) so that the adapter always moves the logits (alpha 0 means a gain of 1).
    const alpha = next() < 0.2 ? 0 : Math.max(1, Math.round(rank * (0.5 + 2 * next())));
    // A scale near zero would leave nothing to compare: its size is drawn from [0.3, 1.3), its sign at random.
    const scale = Math.round((next() < 0.3 ? -1 : 1) * (0.3 + next()) * 100) / 100;
    console.log(`[lora parity] held-out: ${arch}, rank ${rank}, alpha ${alpha}, scale ${scale}, targets ${targets.join(',')}`);
    const data = makeRandomLora(config, { rank, alpha, targets, seed, gain: 0.25 + next() });
    const f = await compare(`held-out-${arch}`, arch, 'f32', [{ data, scale }]);
    expect(f.oursVsLlama).toBeLessThanOrEqual(1e-5);
    expect(f.top1VsLlama).toBeGreaterThanOrEqual(0.99);
  });
});
