import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ggmlTypeName } from '../engine/gguf/ggml-types.ts';
import { getInteger, getNumber, getString, getStringArray } from '../engine/gguf/metadata.ts';
import { readGguf } from '../engine/gguf/reader.ts';
import { bytesSource } from '../engine/gguf/source.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import { llamaRefEncDecLogits } from './llama-ref.ts';
import { makeTestModel, planTestModel, type TestModelOptions } from './make-model.ts';
import { syntheticUgmVocab } from './make-model-t5.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hearth-make-model-t5-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const V = (syntheticUgmVocab().metadata.get('tokenizer.ggml.tokens') as string[]).length;
const INPUT = [40, 41, 100, 7, 250, 251, 1];
const DECODER = [0, 45, 90, 3, 200];

async function read(bytes: Uint8Array): Promise<GgufFile> {
  return readGguf(bytesSource(bytes));
}

function shapes(file: GgufFile, filter: (name: string) => boolean): Record<string, number[]> {
  return Object.fromEntries(file.tensors.filter((t) => filter(t.name)).map((t) => [t.name, t.shape]));
}

/** llama.cpp encodes `INPUT` and decodes `DECODER` with finite, peaked logits (std > 3, clear top tokens). */
function runsInLlama(path: string): void {
  const { logits, nVocab, decoderStart } = llamaRefEncDecLogits(path, INPUT, DECODER, { kvType: 'f32' });
  expect(nVocab).toBe(V);
  expect(decoderStart).toBe(0);
  let maxProbSum = 0;
  for (let r = 0; r < DECODER.length; r++) {
    const row = logits.subarray(r * nVocab, (r + 1) * nVocab);
    expect(row.every(Number.isFinite)).toBe(true);
    const max = Math.max(...row);
    const mean = row.reduce((a, b) => a + b, 0) / nVocab;
    const std = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / nVocab);
    expect(std).toBeGreaterThan(3);
    maxProbSum += 1 / row.reduce((a, b) => a + Math.exp(b - max), 0);
  }
  expect(maxProbSum / DECODER.length).toBeGreaterThan(0.25);
}

describe('t5 test models', () => {
  it.each(['gated-gelu', 'relu'] as const)('%s FFN: llama.cpp\'s encoder/decoder tensors and t5 keys, a unigram vocabulary, and llama.cpp runs it', { timeout: 120_000 }, async (t5Ffn) => {
    const options: TestModelOptions = { arch: 't5', embd: 64, layers: 3, decoderLayers: 2, heads: 4, headDim: 24, ff: 96, t5Ffn, relBuckets: 16 };
    const file = await read(makeTestModel(options));
    expect(getString(file, 'general.architecture')).toBe('t5');
    const key = (k: string) => getInteger(file, `t5.${k}`);
    expect([key('embedding_length'), key('block_count'), key('decoder_block_count'), key('attention.head_count'), key('attention.key_length'), key('attention.value_length')]).toEqual([64, 3, 2, 4, 24, 24]);
    expect([key('feed_forward_length'), key('attention.relative_buckets_count'), key('decoder_start_token_id'), key('context_length')]).toEqual([96, 16, 0, 512]);
    expect(getNumber(file, 't5.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-6, 12);
    expect(getString(file, 'tokenizer.ggml.model')).toBe('t5');
    expect(getStringArray(file, 'tokenizer.ggml.tokens').slice(0, 3)).toEqual(['<pad>', '</s>', '<unk>']);
    const gate = t5Ffn === 'gated-gelu' ? { 'ffn_gate.weight': [64, 96] } : {};
    const block = (p: string) => Object.fromEntries(Object.entries(shapes(file, (n) => n.startsWith(p))).map(([n, s]) => [n.slice(p.length), s]));
    expect(block('enc.blk.0.')).toEqual({
      'attn_norm.weight': [64], 'attn_q.weight': [64, 96], 'attn_k.weight': [64, 96], 'attn_v.weight': [64, 96], 'attn_o.weight': [96, 64], 'attn_rel_b.weight': [4, 16],
      'ffn_norm.weight': [64], 'ffn_up.weight': [64, 96], 'ffn_down.weight': [96, 64], ...gate,
    });
    // Only layer 0 holds the relative bias (llama.cpp falls back to it, as T5 checkpoints share it).
    expect(Object.keys(block('enc.blk.1.'))).not.toContain('attn_rel_b.weight');
    expect(block('enc.blk.2.')['attn_o.weight']).toEqual([96, 64]);
    expect(Object.keys(block('dec.blk.2.'))).toEqual([]);
    expect(block('dec.blk.1.')).toEqual({
      'attn_norm.weight': [64], 'attn_q.weight': [64, 96], 'attn_k.weight': [64, 96], 'attn_v.weight': [64, 96], 'attn_o.weight': [96, 64],
      'cross_attn_norm.weight': [64], 'cross_attn_q.weight': [64, 96], 'cross_attn_k.weight': [64, 96], 'cross_attn_v.weight': [64, 96], 'cross_attn_o.weight': [96, 64],
      'ffn_norm.weight': [64], 'ffn_up.weight': [64, 96], 'ffn_down.weight': [96, 64], ...gate,
    });
    expect(shape(file, 'dec.blk.0.attn_rel_b.weight')).toEqual([4, 16]);
    expect(shapes(file, (n) => !n.includes('blk.'))).toEqual({ 'token_embd.weight': [64, V], 'enc.output_norm.weight': [64], 'dec.output_norm.weight': [64], 'output.weight': [64, V] });
    const path = join(tmp, `${t5Ffn}.gguf`);
    writeFileSync(path, makeTestModel(options));
    runsInLlama(path);
  });

  it('hearth make-model --arch t5: original T5\'s ReLU FFN, tied output, a decoder start token, Q8_0 projections with F32 biases', { timeout: 120_000 }, async () => {
    const out = join(tmp, 't5-cli.gguf');
    const args = ['make-model', '--arch', 't5', '--out', out, '--embd', '64', '--layers', '2', '--dec-layers', '1', '--heads', '2', '--ff', '128', '--t5-ffn', 'relu', '--tied', '--rel-buckets', '8', '--quant', 'q8_0'];
    const r = spawnSync(process.execPath, ['bin/hearth.js', ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('t5-cli.gguf: t5, ');
    const file = await readGguf(bytesSource(new Uint8Array(readFileSync(out))));
    const types = Object.fromEntries(file.tensors.map((t) => [t.name, ggmlTypeName(t.type)]));
    expect(types).toMatchObject({ 'enc.blk.0.attn_q.weight': 'Q8_0', 'dec.blk.0.cross_attn_o.weight': 'Q8_0', 'enc.blk.0.attn_rel_b.weight': 'F32', 'dec.blk.0.ffn_norm.weight': 'F32' });
    expect(types['output.weight']).toBeUndefined();
    expect(types['dec.blk.0.ffn_gate.weight']).toBeUndefined();
    runsInLlama(out);

    const bad = spawnSync(process.execPath, ['bin/hearth.js', 'make-model', '--arch', 't5', '--out', join(tmp, 'x.gguf'), '--t5-ffn', 'swiglu'], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--t5-ffn must be one of relu, gated-gelu/);
  });

  it('llama-ref encdec refuses a decoder-only model and out-of-range ids by name', { timeout: 60_000 }, () => {
    const llama = join(tmp, 'llama.gguf');
    writeFileSync(llama, makeTestModel({ arch: 'llama', embd: 32, layers: 1, heads: 2, ff: 32 }));
    expect(() => llamaRefEncDecLogits(llama, [1, 2], [0])).toThrow(/not an encoder-decoder model/);
    const t5 = join(tmp, 't5-small.gguf');
    writeFileSync(t5, makeTestModel({ arch: 't5', embd: 16, layers: 1, heads: 2, ff: 16 }));
    expect(() => llamaRefEncDecLogits(t5, [1, V], [0])).toThrow(/out of range/);
    expect(() => llamaRefEncDecLogits(t5, [], [0])).toThrow(/needs input and decoder tokens/);
  });

  it('refuses shapes llama.cpp cannot load and t5 options on other architectures', () => {
    const base: TestModelOptions = { arch: 't5', embd: 32, layers: 1, heads: 4, ff: 64 };
    expect(() => planTestModel({ ...base, kvHeads: 2 })).toThrow(/kvHeads == heads/);
    expect(() => planTestModel({ ...base, relBuckets: 2 })).toThrow(/relBuckets must be at least 4/);
    expect(() => planTestModel({ ...base, decoderStartToken: 100000 })).toThrow(/decoderStartToken/);
    expect(() => planTestModel({ ...base, decoderLayers: 0 })).toThrow(/decoderLayers must be a positive integer/);
    expect(() => planTestModel({ ...base, decoderLayers: 2 })).toThrow(/decoderLayers <= layers/);
    expect(() => planTestModel({ ...base, experts: 4 })).toThrow(/experts is not an option of t5/);
    expect(() => planTestModel({ arch: 'llama', embd: 32, layers: 1, heads: 4, ff: 64, t5Ffn: 'relu' })).toThrow(/t5Ffn is a t5 option/);
  });
});

function shape(file: GgufFile, name: string): number[] {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`missing tensor ${name}`);
  return t.shape;
}
