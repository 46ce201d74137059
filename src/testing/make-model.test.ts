import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeName } from '../engine/gguf/ggml-types.ts';
import { getInteger, getNumber, getString, getStringArray } from '../engine/gguf/metadata.ts';
import { quantFormat } from '../engine/gguf/quants/index.ts';
import { readGguf } from '../engine/gguf/reader.ts';
import { bytesSource } from '../engine/gguf/source.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import { nodeFileSource } from '../node/file-source.ts';
import { argmax } from './compare.ts';
import { llamaCppSourceDir, llamaRefLogits } from './llama-ref.ts';
import { MOE_TEST_ARCHS, SSM_TEST_ARCHS, TEST_ARCHS, makeTestModel, parseQuantSpec, planTestModel, syntheticVocab, useMoreBits, type MoeTestArch, type SsmTestArch, type TestArch, type TestModelOptions } from './make-model.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hearth-make-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SMALL = { embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128 } as const;

/** Per-layer tensor names (suffixes after blk.N.) that llama.cpp's loader takes for each arch, as set up here. */
type DenseTestArch = Exclude<TestArch, MoeTestArch | SsmTestArch | 'lfm2' | 'granitehybrid' | 't5'>;
const LAYER_TENSORS: Record<DenseTestArch, string[]> = {
  llama: ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'],
  mistral: ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'],
  granite: ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'],
  qwen2: ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_q.bias', 'attn_k.bias', 'attn_v.bias', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'],
  qwen3: ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_q_norm', 'attn_k_norm', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'],
  phi3: ['attn_norm', 'attn_qkv', 'attn_output', 'ffn_norm', 'ffn_up', 'ffn_down'],
  gemma: ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'],
  gemma2: ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'post_attention_norm', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down', 'post_ffw_norm'],
};

function expectedNames(arch: DenseTestArch, layers: number, extraGlobal: string[] = []): string[] {
  const names = ['token_embd.weight', ...extraGlobal, 'output_norm.weight', ...(arch === 'gemma' || arch === 'gemma2' ? [] : ['output.weight'])];
  for (let i = 0; i < layers; i++) {
    for (const t of LAYER_TENSORS[arch]) names.push(`blk.${i}.${t.includes('.') ? t : `${t}.weight`}`);
  }
  return names.sort();
}

async function read(bytes: Uint8Array): Promise<GgufFile> {
  return readGguf(bytesSource(bytes));
}

function shape(file: GgufFile, name: string): number[] {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`missing tensor ${name}`);
  return t.shape;
}

/** Softmax statistics of each row of llama.cpp's logits. */
function logitStats(logits: Float32Array, nVocab: number) {
  const rows = logits.length / nVocab;
  const maxProb: number[] = [];
  const std: number[] = [];
  let finite = true;
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * nVocab, (r + 1) * nVocab);
    let max = -Infinity;
    let sum = 0;
    let sum2 = 0;
    for (const x of row) {
      if (!Number.isFinite(x)) finite = false;
      max = Math.max(max, x);
      sum += x;
      sum2 += x * x;
    }
    let z = 0;
    for (const x of row) z += Math.exp(x - max);
    maxProb.push(1 / z);
    std.push(Math.sqrt(sum2 / nVocab - (sum / nVocab) ** 2));
  }
  return { finite, maxProb, std, meanMaxProb: maxProb.reduce((a, b) => a + b, 0) / rows };
}

const syntheticVocabSize = () => (syntheticVocab().metadata.get('tokenizer.ggml.tokens') as string[]).length;

/** `hearth make-model --arch ARCH ...flags` writes a file llama.cpp runs with peaked, finite logits. */
function cliModelRunsInLlama(arch: TestArch, flags: string[], nVocabWanted: number): void {
  const out = join(tmp, `${arch}-cli.gguf`);
  const r = spawnSync(process.execPath, ['bin/hearth.js', 'make-model', '--arch', arch, '--out', out, ...flags], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.stdout).toContain(`${arch}-cli.gguf: ${arch}, `);
  const { logits, nVocab } = llamaRefLogits(out, [1, 300, 301, 10, 302, 303, 259]);
  expect(nVocab).toBe(nVocabWanted);
  const stats = logitStats(logits, nVocab);
  expect(stats.finite).toBe(true);
  for (const s of stats.std) expect(s).toBeGreaterThan(3);
  expect(stats.meanMaxProb).toBeGreaterThan(0.25);
}

describe('test-model generator', () => {
  it.each(TEST_ARCHS.filter((a): a is DenseTestArch => !(MOE_TEST_ARCHS as readonly string[]).includes(a) && !(SSM_TEST_ARCHS as readonly string[]).includes(a) && a !== 'lfm2' && a !== 'granitehybrid' && a !== 't5'))('%s: the tensors and keys llama.cpp expects, and llama.cpp runs it with peaked logits', { timeout: 120_000 }, async (arch) => {
    const options: TestModelOptions = { arch, ...SMALL, ...(arch === 'phi3' ? { longRope: true } : {}), ...(arch === 'llama' ? { ropeFreqs: true } : {}) };
    const bytes = makeTestModel(options);
    const file = await read(bytes);
    const prefix = arch === 'mistral' ? 'llama' : arch;
    const extra = arch === 'phi3' ? ['rope_factors_long.weight', 'rope_factors_short.weight'] : arch === 'llama' ? ['rope_freqs.weight'] : [];
    expect(file.tensors.map((t) => t.name).sort()).toEqual(expectedNames(arch, 2, extra));

    const V = syntheticVocab().metadata.get('tokenizer.ggml.tokens') as string[];
    expect(getString(file, 'general.architecture')).toBe(prefix);
    expect(getInteger(file, `${prefix}.embedding_length`)).toBe(64);
    expect(getInteger(file, `${prefix}.block_count`)).toBe(2);
    expect(getInteger(file, `${prefix}.attention.head_count_kv`)).toBe(2);
    expect(getStringArray(file, 'tokenizer.ggml.tokens')).toEqual(V);
    expect(shape(file, 'token_embd.weight')).toEqual([64, V.length]);
    if (arch === 'phi3') {
      expect(shape(file, 'blk.1.attn_qkv.weight')).toEqual([64, 64 + 2 * 2 * 16]);
      expect(shape(file, 'blk.0.ffn_up.weight')).toEqual([64, 256]);
      expect(shape(file, 'rope_factors_long.weight')).toEqual([8]);
      expect(getInteger(file, 'phi3.rope.scaling.original_context_length')).toBe(4096);
    } else {
      expect(shape(file, 'blk.1.attn_k.weight')).toEqual([64, 2 * 16]);
      expect(shape(file, 'blk.1.ffn_down.weight')).toEqual([128, 64]);
    }
    if (arch === 'mistral') expect(getInteger(file, 'llama.attention.sliding_window')).toBe(4096);
    if (arch === 'gemma2') expect(getNumber(file, 'gemma2.final_logit_softcapping')).toBe(30);
    if (arch === 'granite') expect(getNumber(file, 'granite.logit_scale')).toBe(8);
    if (arch === 'qwen3' || arch === 'gemma') expect(getInteger(file, `${arch}.attention.key_length`)).toBe(16);
    if (arch === 'gemma') expect(file.metadata.has('gemma.attention.sliding_window') || file.metadata.has('gemma.final_logit_softcapping')).toBe(false);
    expect(file.tensors.every((t) => t.type === GgmlType.F32)).toBe(true);

    const path = join(tmp, `${arch}.gguf`);
    writeFileSync(path, bytes);
    const { logits, nVocab } = llamaRefLogits(path, [1, 300, 301, 10, 302, 303, 259]);
    expect(nVocab).toBe(V.length);
    const stats = logitStats(logits, nVocab);
    expect(stats.finite).toBe(true);
    for (const s of stats.std) expect(s).toBeGreaterThan(3);
    for (const s of stats.std) expect(s).toBeLessThan(9);
    // Peaked: on average the top token takes a good share of the probability (flat would be 1/323).
    expect(stats.meanMaxProb).toBeGreaterThan(0.25);
  });

  it('gemma: the blocks matter, not just the tied, scaled embedding of the input token', { timeout: 120_000 }, () => {
    // Without the gain on its blocks' outputs every position's top-1 was its own input token.
    const path = join(tmp, 'gemma-self.gguf');
    writeFileSync(path, makeTestModel({ arch: 'gemma', ...SMALL, seed: 7 }));
    const tokens = Array.from({ length: 60 }, (_, i) => 3 + ((i * 7919 + 13) % 320));
    const { logits, nVocab } = llamaRefLogits(path, tokens);
    const self = tokens.filter((t, i) => argmax(logits, i * nVocab, nVocab) === t).length;
    expect(self / tokens.length).toBeLessThan(0.6);
  });

  it('is deterministic per seed, and a tensor has the same values whatever its type', async () => {
    const base: TestModelOptions = { arch: 'qwen3', ...SMALL, seed: 7 };
    const a = Buffer.from(makeTestModel(base));
    // Buffer.equals, not toEqual: deep equality over 10^5 elements is slow.
    expect(a.equals(makeTestModel(base))).toBe(true);
    expect(a.equals(makeTestModel({ ...base, seed: 8 }))).toBe(false);
    const f32 = planTestModel(base);
    const q8 = planTestModel({ ...base, quant: 'q8_0' });
    expect(q8.values('blk.1.ffn_up.weight')).toEqual(f32.values('blk.1.ffn_up.weight'));
    expect(q8.values('blk.1.ffn_up.weight')).not.toEqual(f32.values('blk.0.ffn_up.weight'));
    const q8file = await read(makeTestModel({ ...base, quant: 'q8_0' }));
    const t = q8file.tensors.find((x) => x.name === 'blk.1.ffn_up.weight')!;
    expect(t.type).toBe(GgmlType.Q8_0);
    const stored = (await bytesSource(makeTestModel({ ...base, quant: 'q8_0' })).read(t.fileOffset, t.byteSize)).slice();
    expect(Buffer.from(stored).equals(quantFormat(GgmlType.Q8_0)!.quantize!(f32.values('blk.1.ffn_up.weight')))).toBe(true);
  });

  it('q4_k_m follows llama.cpp\'s recipe (Q6_K output and some attn_v/ffn_down, F32 vectors), with fallbacks', () => {
    const plan = planTestModel({ arch: 'llama', embd: 256, layers: 8, heads: 4, kvHeads: 2, ff: 512, quant: 'q4_k_m' });
    const type = (name: string) => ggmlTypeName(plan.tensors.find((t) => t.name === name)!.type);
    expect(type('output.weight')).toBe('Q6_K');
    expect(type('token_embd.weight')).toBe('Q4_K');
    expect(type('blk.2.attn_q.weight')).toBe('Q4_K');
    expect(type('blk.2.ffn_norm.weight')).toBe('F32');
    const moreBits = [0, 1, 2, 3, 4, 5, 6, 7].filter((i) => useMoreBits(i, 8));
    expect(moreBits).toEqual([0, 3, 6, 7]);
    for (let i = 0; i < 8; i++) {
      const want = moreBits.includes(i) ? 'Q6_K' : 'Q4_K';
      expect(type(`blk.${i}.attn_v.weight`)).toBe(want);
      expect(type(`blk.${i}.ffn_down.weight`)).toBe(want);
    }
    // Rows of 64 do not fit 256-element blocks: llama.cpp falls back to Q5_0 (Q4_K) and Q8_0 (Q6_K).
    const small = planTestModel({ arch: 'phi3', ...SMALL, quant: 'q4_k_m' });
    const smallType = (name: string) => ggmlTypeName(small.tensors.find((t) => t.name === name)!.type);
    expect(smallType('output.weight')).toBe('Q8_0');
    expect(smallType('blk.0.attn_qkv.weight')).toBe('Q5_1');
    expect(smallType('blk.0.ffn_up.weight')).toBe('Q5_0');
    // Gemma 2's tied embedding is its output projection, so it gets the output's type.
    const gemma = planTestModel({ arch: 'gemma2', embd: 256, layers: 1, heads: 2, ff: 256, quant: 'q4_k_m' });
    expect(ggmlTypeName(gemma.tensors.find((t) => t.name === 'token_embd.weight')!.type)).toBe('Q6_K');
    // Role overrides.
    const custom = planTestModel({ arch: 'llama', ...SMALL, quant: 'f16,output=q8_0,attn_v=f32' });
    expect(ggmlTypeName(custom.tensors.find((t) => t.name === 'output.weight')!.type)).toBe('Q8_0');
    expect(ggmlTypeName(custom.tensors.find((t) => t.name === 'blk.0.attn_v.weight')!.type)).toBe('F32');
    expect(ggmlTypeName(custom.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.type)).toBe('F16');
    expect(parseQuantSpec('q4_k_m').fileType).toBe(15);
    expect(() => parseQuantSpec('q4_k_x')).toThrow(/unknown quantization/);
    expect(() => parseQuantSpec('f16,attn=q8_0')).toThrow(/unknown tensor role/);
  });

  it('MoE archs: router, 3-D expert tensors and shared experts with llama.cpp\'s names, shapes and keys', async () => {
    const q2 = await read(makeTestModel({ arch: 'qwen2moe', ...SMALL, experts: 6, expertsUsed: 3, expertFf: 32, sharedFf: 48 }));
    expect(getString(q2, 'general.architecture')).toBe('qwen2moe');
    expect([getInteger(q2, 'qwen2moe.expert_count'), getInteger(q2, 'qwen2moe.expert_used_count')]).toEqual([6, 3]);
    expect(getInteger(q2, 'qwen2moe.expert_feed_forward_length')).toBe(32);
    expect(getInteger(q2, 'qwen2moe.expert_shared_feed_forward_length')).toBe(48);
    expect(shape(q2, 'blk.1.ffn_gate_inp.weight')).toEqual([64, 6]);
    expect(shape(q2, 'blk.1.ffn_gate_exps.weight')).toEqual([64, 32, 6]);
    expect(shape(q2, 'blk.1.ffn_down_exps.weight')).toEqual([32, 64, 6]);
    expect(shape(q2, 'blk.1.ffn_gate_inp_shexp.weight')).toEqual([64]);
    expect(shape(q2, 'blk.1.ffn_up_shexp.weight')).toEqual([64, 48]);
    expect(q2.tensors.some((t) => t.name === 'blk.0.ffn_up.weight')).toBe(false);
    const mixtral = await read(makeTestModel({ arch: 'mixtral', ...SMALL, quant: 'q8_0' }));
    expect(getString(mixtral, 'general.architecture')).toBe('llama');
    expect(getInteger(mixtral, 'llama.expert_count')).toBe(8);
    // The router stays F32 as llama.cpp's quantizer leaves it; the experts take the recipe's type.
    expect(mixtral.tensors.find((t) => t.name === 'blk.0.ffn_gate_inp.weight')!.type).toBe(GgmlType.F32);
    expect(mixtral.tensors.find((t) => t.name === 'blk.0.ffn_up_exps.weight')!.type).toBe(GgmlType.Q8_0);
    expect(mixtral.tensors.some((t) => t.name.includes('shexp'))).toBe(false);
    expect(() => planTestModel({ arch: 'qwen3moe', ...SMALL, experts: 4, expertsUsed: 5 })).toThrow(/expertsUsed/);
    expect(() => planTestModel({ arch: 'llama', ...SMALL, experts: 4 })).toThrow(/not a mixture-of-experts/);
    expect(() => planTestModel({ arch: 'granitemoe', ...SMALL, expertFf: 32 })).toThrow(/expertFf/);
  });

  it('mamba2: llama.cpp\'s SSM tensors and keys with any groups, and llama.cpp runs it (the CLI too) with peaked logits', { timeout: 120_000 }, async () => {
    // embd 48, d_inner 96 in 6 heads of 16, 3 groups of B/C with d_state 8, conv width 3.
    const options: TestModelOptions = { arch: 'mamba2', embd: 48, layers: 2, heads: 6, ff: 0, ssmInner: 96, ssmState: 8, ssmGroups: 3, ssmConv: 3 };
    const file = await read(makeTestModel(options));
    const V = syntheticVocabSize();
    expect(getString(file, 'general.architecture')).toBe('mamba2');
    const key = (k: string) => getInteger(file, `mamba2.${k}`);
    expect([key('ssm.conv_kernel'), key('ssm.inner_size'), key('ssm.state_size'), key('ssm.time_step_rank'), key('ssm.group_count')]).toEqual([3, 96, 8, 6, 3]);
    expect([key('embedding_length'), key('block_count'), key('feed_forward_length'), key('attention.head_count')]).toEqual([48, 2, 0, 0]);
    expect(getNumber(file, 'mamba2.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-5, 10);
    const convDim = 96 + 2 * 3 * 8;
    const shapes = Object.fromEntries(file.tensors.filter((t) => t.name.startsWith('blk.1.') || !t.name.startsWith('blk.')).map((t) => [t.name, t.shape]));
    expect(shapes).toEqual({
      'token_embd.weight': [48, V],
      'blk.1.attn_norm.weight': [48],
      'blk.1.ssm_in.weight': [48, 96 + convDim + 6],
      'blk.1.ssm_conv1d.weight': [3, convDim],
      'blk.1.ssm_conv1d.bias': [convDim],
      'blk.1.ssm_dt.bias': [6],
      'blk.1.ssm_a': [1, 6],
      'blk.1.ssm_d': [1, 6],
      'blk.1.ssm_norm.weight': [32, 3],
      'blk.1.ssm_out.weight': [96, 48],
      'output_norm.weight': [48],
      'output.weight': [48, V],
    });
    // The file holds A = -exp(A_log): every value negative.
    const a = planTestModel(options).values('blk.0.ssm_a');
    expect(Math.max(...a)).toBeLessThan(0);
    // Q8_0 quantizes the projections only; llama.cpp's quantizer keeps conv, A, D and norms in F32.
    const q8 = await read(makeTestModel({ ...options, embd: 64, ssmInner: 192, heads: 6, quant: 'q8_0' }));
    const types = Object.fromEntries(q8.tensors.filter((t) => t.name.startsWith('blk.0.')).map((t) => [t.name.slice(6), ggmlTypeName(t.type)]));
    expect(types).toMatchObject({ 'ssm_in.weight': 'Q8_0', 'ssm_out.weight': 'Q8_0', 'ssm_conv1d.weight': 'F32', ssm_a: 'F32', ssm_d: 'F32', 'ssm_norm.weight': 'F32' });

    cliModelRunsInLlama('mamba2', ['--embd', '48', '--layers', '2', '--heads', '6', '--ssm-inner', '96', '--ssm-state', '8', '--ssm-groups', '3', '--ssm-conv', '3'], V);
    expect(() => planTestModel({ ...options, ssmGroups: 4 })).toThrow(/multiple of ssmGroups/);
    expect(() => planTestModel({ ...options, ssmInner: 100 })).toThrow(/multiple of the SSM heads/);
    expect(() => planTestModel({ arch: 'llama', ...SMALL, ssmState: 8 })).toThrow(/has no state-space layers/);
  });

  it('lfm2: short-convolution and attention layers with llama.cpp\'s names, per-layer kv heads, and llama.cpp runs it (the CLI too)', { timeout: 120_000 }, async () => {
    const options: TestModelOptions = { arch: 'lfm2', embd: 64, layers: 4, heads: 4, kvHeads: 2, ff: 96, attnLayers: [1, 2], shortConv: 4 };
    const file = await read(makeTestModel(options));
    expect(getString(file, 'general.architecture')).toBe('lfm2');
    expect([...(file.metadata.get('lfm2.attention.head_count_kv') as Int32Array)]).toEqual([0, 2, 2, 0]);
    expect(getInteger(file, 'lfm2.shortconv.l_cache')).toBe(4);
    const names = file.tensors.map((t) => t.name);
    expect(names).toContain('token_embd_norm.weight');
    expect(names).not.toContain('output_norm.weight');
    expect(shape(file, 'blk.0.shortconv.in_proj.weight')).toEqual([64, 192]);
    expect(shape(file, 'blk.0.shortconv.conv.weight')).toEqual([4, 64]);
    expect(shape(file, 'blk.0.shortconv.out_proj.weight')).toEqual([64, 64]);
    expect(names.filter((n) => n.startsWith('blk.0.attn_')).sort()).toEqual(['blk.0.attn_norm.weight']);
    expect(shape(file, 'blk.1.attn_k.weight')).toEqual([64, 32]);
    expect(shape(file, 'blk.2.attn_q_norm.weight')).toEqual([16]);
    expect(names.some((n) => n.startsWith('blk.1.shortconv'))).toBe(false);
    expect(shape(file, 'blk.3.ffn_down.weight')).toEqual([96, 64]);

    cliModelRunsInLlama('lfm2', ['--embd', '64', '--layers', '4', '--heads', '4', '--kv-heads', '2', '--ff', '96', '--attn-layers', '1,2', '--short-conv', '4'], syntheticVocabSize());
    expect(() => planTestModel({ ...options, attnLayers: [4] })).toThrow(/attnLayers/);
    expect(() => planTestModel({ ...options, headDim: 8 })).toThrow(/heads \* headDim == embd/);
    expect(() => planTestModel({ arch: 'llama', ...SMALL, shortConv: 3 })).toThrow(/shortConv is an lfm2 option/);
  });

  it('granitehybrid: Mamba2 and attention layers, granite scales, no RoPE, and llama.cpp runs it (the CLI too)', { timeout: 120_000 }, async () => {
    const options: TestModelOptions = { arch: 'granitehybrid', embd: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 12, ff: 48, attnLayers: [1], ssmHeads: 8, ssmState: 8, ssmGroups: 2 };
    const file = await read(makeTestModel(options));
    expect(getString(file, 'general.architecture')).toBe('granitehybrid');
    expect([...(file.metadata.get('granitehybrid.attention.head_count_kv') as Int32Array)]).toEqual([0, 2, 0]);
    const key = (k: string) => getInteger(file, `granitehybrid.${k}`);
    expect([key('ssm.inner_size'), key('ssm.time_step_rank'), key('ssm.state_size'), key('ssm.group_count'), key('ssm.conv_kernel')]).toEqual([64, 8, 8, 2, 4]);
    expect(file.metadata.get('granitehybrid.rope.scaling.finetuned')).toBe(false);
    expect(getNumber(file, 'granitehybrid.logit_scale')).toBe(8);
    expect(shape(file, 'blk.0.ssm_in.weight')).toEqual([32, 64 + 64 + 2 * 2 * 8 + 8]);
    expect(shape(file, 'blk.2.ssm_norm.weight')).toEqual([32, 2]);
    expect(shape(file, 'blk.1.attn_q.weight')).toEqual([32, 48]);
    expect(shape(file, 'blk.1.attn_output.weight')).toEqual([48, 32]);
    expect(file.tensors.some((t) => t.name.startsWith('blk.1.ssm_'))).toBe(false);
    expect(shape(file, 'blk.0.ffn_down.weight')).toEqual([48, 32]);
    cliModelRunsInLlama('granitehybrid', ['--embd', '32', '--layers', '3', '--heads', '4', '--kv-heads', '2', '--head-dim', '12', '--ff', '48', '--attn-layers', '1', '--ssm-heads', '8', '--ssm-state', '8', '--ssm-groups', '2'], syntheticVocabSize());
    // Granite 4.0-H Tiny's shape: experts and an ungated shared expert in every layer.
    const moe = await read(makeTestModel({ ...options, experts: 4, expertsUsed: 2, sharedFf: 40 }));
    expect([getInteger(moe, 'granitehybrid.expert_count'), getInteger(moe, 'granitehybrid.expert_used_count'), getInteger(moe, 'granitehybrid.expert_shared_feed_forward_length')]).toEqual([4, 2, 40]);
    expect(shape(moe, 'blk.0.ffn_gate_exps.weight')).toEqual([32, 48, 4]);
    expect(shape(moe, 'blk.1.ffn_down_shexp.weight')).toEqual([40, 32]);
    expect(moe.tensors.some((t) => t.name === 'blk.0.ffn_gate.weight' || t.name.endsWith('ffn_gate_inp_shexp.weight'))).toBe(false);
    expect(() => planTestModel({ ...options, ssmInner: 32 })).toThrow(/ssmInner == 2 \* embd/);
    expect(() => planTestModel({ ...options, ssmHeads: 6 })).toThrow(/multiple of ssmGroups|multiple of the SSM heads/);
    expect(() => planTestModel({ arch: 'mamba2', embd: 32, layers: 1, heads: 4, ff: 0, ssmHeads: 4 })).toThrow(/ssmHeads is a granitehybrid option/);
  });

  it('rejects impossible dimensions', () => {
    expect(() => planTestModel({ arch: 'qwen2', ...SMALL, headDim: 32 })).toThrow(/heads \* headDim == embd/);
    expect(() => planTestModel({ arch: 'llama', ...SMALL, kvHeads: 3 })).toThrow(/multiple of kvHeads/);
    expect(() => planTestModel({ arch: 'llama', ...SMALL, layers: 0 })).toThrow(/positive integer/);
  });

  it('hearth make-model writes a Q4_K_M model with a real vocab that llama.cpp runs', { timeout: 180_000 }, async () => {
    const out = join(tmp, 'cli.gguf');
    const vocab = join(llamaCppSourceDir(), 'models', 'ggml-vocab-phi-3.gguf');
    const r = spawnSync(
      process.execPath,
      ['bin/hearth.js', 'make-model', '--arch', 'phi3', '--out', out, '--vocab', vocab, '--embd', '256', '--heads', '4', '--kv-heads', '2', '--ff', '256', '--layers', '2', '--quant', 'q4_k_m', '--seed', '3'],
      { encoding: 'utf8', timeout: 170_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/cli\.gguf: phi3, .* tensors \(.*Q4_K.*\), vocab 32064/);
    const source = await nodeFileSource(out);
    const file = await readGguf(source).finally(() => source.close());
    expect(getStringArray(file, 'tokenizer.ggml.tokens')).toContain('<|endoftext|>');
    expect(getInteger(file, 'general.file_type')).toBe(15);
    expect(file.tensors.find((t) => t.name === 'blk.1.attn_qkv.weight')!.type).toBe(GgmlType.Q5_K);
    const { logits, nVocab } = llamaRefLogits(out, [1, 15043, 3186, 29991]);
    expect(nVocab).toBe(32064);
    expect(logitStats(logits, nVocab).finite).toBe(true);
  });
});

describe('make-model sampledBlocks (fast large files)', () => {
  const o: TestModelOptions = { arch: 'llama', embd: 256, layers: 1, heads: 4, ff: 512, quant: 'q4_k_m', seed: 9 };
  const bytesOf = (plan: ReturnType<typeof planTestModel>, i: number) => {
    const t = plan.spec.tensors[i]!;
    return plan.data({ ...t, offset: 0, fileOffset: 0, byteSize: 0, elementCount: t.shape.reduce((a, b) => a * b, 1) }, i) as Uint8Array;
  };

  it('gives the same tensors, types and sizes as the full path, each block one of its pool rows at its column, with like statistics', () => {
    const full = planTestModel(o);
    const fast = planTestModel({ ...o, sampledBlocks: true });
    expect(fast.spec.tensors).toEqual(full.spec.tensors);
    let sampled = 0;
    for (let i = 0; i < full.spec.tensors.length; i++) {
      const t = full.spec.tensors[i]!;
      const a = bytesOf(full, i);
      const b = bytesOf(fast, i);
      expect(b.length, t.name).toBe(a.length);
      expect(bytesOf(fast, i), `${t.name}: reproducible`).toEqual(b);
      const fmt = quantFormat(t.type)!;
      const rows = t.shape.slice(1).reduce((x, y) => x * y, 1);
      if (t.shape.length < 2 || fmt.blockSize === 1 || rows <= 64) continue;
      sampled++;
      // Blocks repeat (drawn from 64 rows), and the values keep the full path's spread.
      const rowBytes = b.length / rows;
      const col0 = new Set<string>();
      for (let r = 0; r < rows; r++) col0.add(b.subarray(r * rowBytes, r * rowBytes + fmt.typeSize).join());
      expect(col0.size, t.name).toBeLessThanOrEqual(64);
      const std = (bytes: Uint8Array) => {
        const v = new Float32Array(t.shape[0]! * rows);
        fmt.dequantize(bytes, v, v.length);
        return Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
      };
      expect(std(b) / std(a), t.name).toBeGreaterThan(0.8);
      expect(std(b) / std(a), t.name).toBeLessThan(1.25);
    }
    expect(sampled).toBeGreaterThan(0);
  });
});
