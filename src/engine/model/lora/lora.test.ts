/**
 * LoRA adapters: the file rules (named errors for each broken one), and adapters applied at run
 * time on the CPU backend against the float64 reference with the same adapters, for every target
 * llama.cpp routes through an adapter: separate and stacked q/k/v and gate/up (the loader stacks
 * them, the adapters name the file's tensors), phi3's fused qkv and [gate; up], biases, output,
 * token embeddings under granite's embedding scale; several adapters at their own scales;
 * switching adapters between steps.
 */
import { describe, expect, it } from 'vitest';
import { readGguf } from '../../gguf/reader.ts';
import { bytesSource } from '../../gguf/source.ts';
import { writeGguf } from '../../gguf/writer.ts';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { CpuBackend } from '../../backend/cpu/backend.ts';
import { Model } from '../model.ts';
import { readModelConfig } from '../config.ts';
import { klDivergence, topOneAgreement } from '../../../testing/compare.ts';
import { makeTestModel, type TestArch, type TestModelOptions } from '../../../testing/make-model.ts';
import { makeRandomLora } from '../../../testing/make-lora.ts';
import { loadReferenceWeights, referenceForward } from '../../../testing/reference-forward.ts';
import { readLoraFile, loraScale, type LoraTargetName } from './adapter-file.ts';
import { readLoraData, writeLoraGguf, type LoraAdapterData } from './adapter-data.ts';
import { AdapterFormatError, AdapterMismatchError, UnsupportedAdapterError } from './errors.ts';

const DIMS = { embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, seed: 5 } as const;
const ALL_BLOCK: LoraTargetName[] = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'];

function model(arch: TestArch, extra: Partial<TestModelOptions> = {}) {
  const bytes = makeTestModel({ arch, ...DIMS, ...extra });
  return { bytes, source: bytesSource(bytes, `${arch}.gguf`) };
}

function tokensFor(n: number, vocab: number, seed = 7): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

async function configOf(bytes: Uint8Array) {
  return readModelConfig(await readGguf(bytesSource(bytes)));
}

/** Round trip through the GGUF form, as a file from disk would come. */
async function viaFile(data: LoraAdapterData, base: Awaited<ReturnType<typeof configOf>>): Promise<LoraAdapterData> {
  const bytes = writeLoraGguf(data);
  const src = bytesSource(bytes);
  return readLoraData(readLoraFile(await readGguf(src), base), src);
}

describe('LoRA adapter files', () => {
  it('round-trips, and llama.cpp scale rule: alpha / rank, or the scale alone when alpha is 0', async () => {
    const { bytes } = model('llama');
    const config = await configOf(bytes);
    const data = makeRandomLora(config, { rank: 4, alpha: 8, targets: ['attn_q', 'output'] });
    const back = await viaFile(data, config);
    expect(back.alpha).toBe(8);
    expect(back.targets.map((t) => t.base)).toEqual(['blk.0.attn_q.weight', 'blk.1.attn_q.weight', 'output.weight']);
    expect(back.targets[0]!.a).toEqual(data.targets[0]!.a);
    expect(back.targets[2]!.b).toEqual(data.targets[2]!.b);
    expect(loraScale(8, 4, 0.5)).toBe(1);
    expect(loraScale(0, 4, 0.5)).toBe(0.5);
  });

  it('rejects broken and mismatched adapters by name', async () => {
    const { bytes } = model('llama');
    const config = await configOf(bytes);
    const good = makeRandomLora(config, { rank: 4, targets: ['attn_q'] });
    const header = async (spec: Parameters<typeof writeGguf>[0]) => readGguf(bytesSource(writeGguf(spec)));
    const base = await readGguf(bytesSource(writeLoraGguf(good)));
    const withMeta = (patch: Record<string, string | number>, drop: string[] = []) => {
      const metadata = new Map(base.metadata);
      for (const k of drop) metadata.delete(k);
      for (const [k, v] of Object.entries(patch)) metadata.set(k, v);
      const types = new Map(base.metadataTypes);
      for (const k of drop) types.delete(k);
      for (const k of Object.keys(patch)) types.delete(k);
      return { ...base, metadata, metadataTypes: types };
    };
    const f32 = (name: string, shape: number[]) => ({ name, type: GgmlType.F32, shape, data: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) });
    const check = (file: Parameters<typeof readLoraFile>[0], error: new (...a: never[]) => Error, message: RegExp) => {
      let thrown: unknown;
      try {
        readLoraFile(file, config);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(error);
      expect((thrown as Error).message).toMatch(message);
    };
    check(withMeta({ 'general.type': 'model' }), AdapterFormatError, /general\.type is 'model'/);
    check(withMeta({}, ['general.type']), AdapterFormatError, /general\.type is missing/);
    check(withMeta({ 'adapter.type': 'control_vector' }), AdapterFormatError, /only 'lora'/);
    check(withMeta({ 'general.architecture': 'qwen2' }), AdapterMismatchError, /for 'qwen2' models; the model in use is 'llama'/);
    check(withMeta({ 'adapter.lora.alpha': -1 }), AdapterFormatError, /alpha is -1/);
    const meta = { 'general.type': 'adapter', 'general.architecture': 'llama', 'adapter.type': 'lora', 'adapter.lora.alpha': 4 };
    check(await header({ metadata: meta, tensors: [f32('blk.0.attn_q.weight.lora_a', [64, 4])] }), AdapterFormatError, /no \.lora_b/);
    check(await header({ metadata: meta, tensors: [f32('blk.0.attn_q.weight.delta', [64, 4])] }), AdapterFormatError, /neither a \.lora_a/);
    check(
      await header({ metadata: meta, tensors: [f32('blk.9.attn_q.weight.lora_a', [64, 4]), f32('blk.9.attn_q.weight.lora_b', [4, 64])] }),
      AdapterMismatchError,
      /'blk\.9\.attn_q\.weight', which the llama model does not have/,
    );
    check(
      await header({ metadata: meta, tensors: [f32('blk.0.attn_q.weight.lora_a', [32, 4]), f32('blk.0.attn_q.weight.lora_b', [4, 64])] }),
      AdapterMismatchError,
      /blk\.0\.attn_q\.weight is \[64, 64\] in the model/,
    );
    check(
      await header({ metadata: meta, tensors: [f32('blk.0.attn_norm.weight.lora_a', [64, 1]), f32('blk.0.attn_norm.weight.lora_b', [1, 1])] }),
      UnsupportedAdapterError,
      /attn_norm\.weight'; adapters on it are not supported/,
    );
    check(await header({ metadata: meta, tensors: [f32('blk.0.attn_q.weight.lora_a', [64, 65]), f32('blk.0.attn_q.weight.lora_b', [65, 64])] }), AdapterFormatError, /rank 65 must be 1\.\.64/);
    // Tied embeddings (gemma2): an adapter on token_embd would also be the output's.
    const gemma = await configOf(model('gemma2').bytes);
    const gemmaMeta = { ...meta, 'general.architecture': 'gemma2' };
    expect(() =>
      readLoraFile(
        { metadata: new Map(Object.entries(gemmaMeta)), metadataTypes: new Map(), tensors: [
          { ...f32('token_embd.weight.lora_a', [4, gemma.nVocab]), offset: 0, fileOffset: 0, byteSize: 0, elementCount: 0 },
          { ...f32('token_embd.weight.lora_b', [4, 64]), offset: 0, fileOffset: 0, byteSize: 0, elementCount: 0 },
        ] },
        gemma,
      ),
    ).toThrow(UnsupportedAdapterError);
    // Non-finite weights are found when the data is read.
    const nan = makeRandomLora(config, { rank: 4, targets: ['attn_q'] });
    nan.targets[1]!.b[3] = Number.NaN;
    await expect(viaFile(nan, config)).rejects.toThrow(AdapterFormatError);
  });
});

interface Case {
  arch: TestArch;
  label: string;
  extra?: Partial<TestModelOptions>;
  targets: LoraTargetName[];
}

const CASES: Case[] = [
  // llama F32: the loader stacks q|k|v and gate|up; adapters land in the stacked buffers' views.
  { arch: 'llama', label: 'every block target, output, token_embd', targets: [...ALL_BLOCK, 'output', 'token_embd'] },
  // phi3: the file's own fused attn_qkv and [gate; up] ffn_up.
  { arch: 'phi3', label: 'fused qkv and gate-up', targets: ['attn_qkv', 'attn_output', 'ffn_up', 'ffn_down', 'output'] },
  // qwen2: q/k/v biases; Q8_0 base, so gate|up and q|k|v stay quantized under the adapter.
  { arch: 'qwen2', label: 'biases, Q8_0 base', extra: { quant: 'q8_0' }, targets: ['attn_q', 'attn_v', 'ffn_gate', 'ffn_down'] },
  // granite: embedding and residual scales, token embeddings adapted.
  { arch: 'granite', label: 'embedding scale', targets: ['token_embd', 'attn_k', 'ffn_up'] },
  // qwen3: per-head q/k norms after the adapted q and k (nothing stacked).
  { arch: 'qwen3', label: 'q/k norms', targets: ['attn_q', 'attn_k', 'ffn_gate'] },
];

describe('LoRA on the CPU backend vs the float64 reference', () => {
  it.each(CASES)('$arch: $label', { timeout: 60_000 }, async ({ arch, extra, targets }) => {
    const { bytes, source } = model(arch, extra);
    const ref = await loadReferenceWeights(await readGguf(source), source);
    const config = ref.config;
    const V = config.nVocab;
    const one = await viaFile(makeRandomLora(config, { rank: 8, alpha: 16, targets, seed: 3 }), config);
    const two = await viaFile(makeRandomLora(config, { rank: 4, alpha: 0, targets: targets.slice(0, 2), seed: 4 }), config);
    const tokens = tokensFor(24, V);
    const adapters = [
      { data: one, scale: 0.75 },
      { data: two, scale: -0.5 },
    ];
    const exact = referenceForward(ref, tokens, { nCtx: 64, adapters });
    const exactBase = referenceForward(ref, tokens, { nCtx: 64 });

    const backend = await CpuBackend.create({ relaxed: false, quantizedActivations: false, threads: 1 });
    const m = await Model.load(backend, bytesSource(bytes), { contextLength: 64, batch: 8 });
    const l1 = await m.loadAdapter(one, 'one');
    const l2 = await m.loadAdapter(bytesSource(writeLoraGguf(two)), 'two');
    const run = async () => {
      m.reset();
      // Prefill in chunks of the batch, then decode token by token.
      const out = new Float32Array(tokens.length * V);
      out.set(await m.eval(tokens.slice(0, 16), { logits: 'all' }), 0);
      for (let t = 16; t < tokens.length; t++) out.set(await m.eval([tokens[t]!], { logits: 'all' }), t * V);
      return out;
    };
    m.setAdapters([
      { lora: l1, scale: 0.75 },
      { lora: l2, scale: -0.5 },
    ]);
    const adapted = await run();
    m.setAdapters([]);
    const base = await run();
    m.destroy();

    const kl = klDivergence(exact, adapted, V);
    const top1 = topOneAgreement(exact, adapted, V);
    const moved = klDivergence(exactBase, exact, V);
    console.log(`[lora cpu] ${arch}: KL vs exact ${kl.toExponential(2)}, top-1 ${(top1 * 100).toFixed(1)}%, adapter moves the logits by KL ${moved.toExponential(2)}`);
    expect(kl).toBeLessThanOrEqual(1e-6);
    expect(top1).toBeGreaterThanOrEqual(0.99);
    // The adapters change the answer clearly, and detaching them gives the base model back.
    expect(moved).toBeGreaterThan(1e-2);
    expect(klDivergence(exactBase, base, V)).toBeLessThanOrEqual(1e-6);
  });
});
