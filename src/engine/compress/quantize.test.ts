/**
 * `quantizeChunks` against llama-quantize (`llama_model_quantize` through tools/llama-ref) on
 * generated models: the whole output file must be byte-identical (metadata, tensor order, types
 * and quantized bytes), across architectures, mixes, sources (F32, F16, quantized) and shapes whose
 * rows are not a multiple of 256 (k-quant fallbacks) or of 32 (F16 fallback).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgmlType, ggmlTypeName } from '../gguf/ggml-types.ts';
import { readGguf } from '../gguf/reader.ts';
import { bytesSource } from '../gguf/source.ts';
import { llamaRefQuantizeModel } from '../../testing/llama-ref.ts';
import { makeTestModel, type TestModelOptions } from '../../testing/make-model.ts';
import { QuantizeError } from './errors.ts';
import { planQuantize, quantizeChunks, type QuantizeOptions } from './quantize.ts';
import { chooseTensorTypes, QUANT_MIXES, type QuantMix } from './tensor-types.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-quantize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function quantizeInMemory(model: Uint8Array, mix: QuantMix, options: QuantizeOptions = {}): Promise<Uint8Array> {
  const source = bytesSource(model);
  const file = await readGguf(source);
  const plan = planQuantize(file, mix, { hasImatrix: options.imatrix !== undefined });
  const parts: Uint8Array[] = [];
  for await (const chunk of quantizeChunks(source, file, plan, options)) parts.push(chunk.slice());
  return new Uint8Array(Buffer.concat(parts));
}

/** The first differing tensor (name, our type, theirs) or byte offset, for a readable failure. */
async function describeDifference(ours: Uint8Array, theirs: Uint8Array): Promise<string> {
  const a = await readGguf(bytesSource(ours));
  const b = await readGguf(bytesSource(theirs));
  for (let i = 0; i < Math.max(a.tensors.length, b.tensors.length); i++) {
    const x = a.tensors[i];
    const y = b.tensors[i];
    if (!x || !y || x.name !== y.name || x.type !== y.type) {
      return `tensor ${i}: ours ${x?.name} ${x && ggmlTypeName(x.type)}, llama.cpp ${y?.name} ${y && ggmlTypeName(y.type)}`;
    }
    const xb = ours.subarray(x.fileOffset, x.fileOffset + x.byteSize);
    const yb = theirs.subarray(y.fileOffset, y.fileOffset + y.byteSize);
    const at = xb.findIndex((v, k) => v !== yb[k]);
    if (at >= 0 || x.fileOffset !== y.fileOffset) return `tensor ${x.name} (${ggmlTypeName(x.type)}) differs at byte ${at}, offsets ${x.fileOffset} / ${y.fileOffset}`;
  }
  const at = ours.findIndex((v, k) => v !== theirs[k]);
  return `sizes ${ours.length} / ${theirs.length}, first difference at byte ${at} (header)`;
}

async function expectSameAsLlamaCpp(name: string, options: TestModelOptions, mix: QuantMix, allowRequantize = false): Promise<Uint8Array> {
  const model = makeTestModel(options);
  const input = join(dir, `${name}.gguf`);
  const output = join(dir, `${name}-${mix}.gguf`);
  writeFileSync(input, model);
  llamaRefQuantizeModel(input, output, mix, { allowRequantize, threads: 1 });
  const theirs = new Uint8Array(readFileSync(output));
  const ours = await quantizeInMemory(model, mix, { slabBytes: 50_000 });
  const same = ours.length === theirs.length && ours.every((v, i) => v === theirs[i]);
  expect(same, same ? '' : await describeDifference(ours, theirs)).toBe(true);
  return ours;
}

const MIXES = Object.keys(QUANT_MIXES) as QuantMix[];

// Generous timeouts: llama.cpp and our quantizers run on a shared, loaded machine.
describe('quantize: byte-identical to llama-quantize', { timeout: 120_000 }, () => {
  // 8 layers: use_more_bits picks layers 0, 3, 6, 7 for the _M mixes' attn_v and ffn_down.
  const llama: TestModelOptions = { arch: 'llama', embd: 256, layers: 8, heads: 4, kvHeads: 2, ff: 256, seed: 3 };

  it.each(MIXES)('llama, F32 source, %s', async (mix) => {
    const out = await expectSameAsLlamaCpp('llama', llama, mix);
    // The rules did pick mixed types where the mix says so.
    const types = new Set((await readGguf(bytesSource(out))).tensors.map((t) => t.type));
    if (mix === 'Q4_K_M') expect([...types].sort()).toEqual([GgmlType.F32, GgmlType.Q4_K, GgmlType.Q6_K].sort());
  });

  it('qwen2 (biases, tied output), F16 source, rows of 384: k-quant fallbacks', async () => {
    const qwen2: TestModelOptions = { arch: 'qwen2', embd: 384, layers: 2, heads: 4, kvHeads: 2, ff: 384, quant: 'f16', tiedEmbeddings: true };
    await expectSameAsLlamaCpp('qwen2', qwen2, 'Q4_K_M');
    await expectSameAsLlamaCpp('qwen2', qwen2, 'Q5_K_M');
    await expectSameAsLlamaCpp('qwen2', qwen2, 'Q6_K');
  });

  it('phi3 (fused qkv) and gemma2 (tied embeddings)', async () => {
    await expectSameAsLlamaCpp('phi3', { arch: 'phi3', embd: 256, layers: 2, heads: 4, ff: 256 }, 'Q4_K_M');
    await expectSameAsLlamaCpp('gemma2', { arch: 'gemma2', embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256 }, 'Q4_0');
    await expectSameAsLlamaCpp('qwen3', { arch: 'qwen3', embd: 256, layers: 3, heads: 4, kvHeads: 2, headDim: 80, ff: 256 }, 'Q5_K_M');
  });

  it('rows not a multiple of 32 stay F16', async () => {
    const out = await expectSameAsLlamaCpp('odd', { arch: 'llama', embd: 256, layers: 2, heads: 4, ff: 272 }, 'Q4_K_M');
    const down = (await readGguf(bytesSource(out))).tensors.find((t) => t.name === 'blk.1.ffn_down.weight')!;
    expect(ggmlTypeName(down.type)).toBe('F16');
  });

  it('requantizes a quantized source (llama-quantize --allow-requantize)', async () => {
    await expectSameAsLlamaCpp('q8', { ...llama, layers: 2, quant: 'q8_0' }, 'Q4_K_M', true);
  });
});

describe('quantize: streaming and errors', () => {
  it('reports progress up to the file size and stops when cancelled', async () => {
    const model = makeTestModel({ arch: 'llama', embd: 256, layers: 2, heads: 4, ff: 512 });
    const source = bytesSource(model);
    const file = await readGguf(source);
    const plan = planQuantize(file, 'Q8_0');
    let last = 0;
    let size = 0;
    for await (const chunk of quantizeChunks(source, file, plan, { onProgress: (p) => (last = p.bytesDone) })) size += chunk.length;
    expect(size).toBe(plan.layout.fileSize);
    expect(last).toBe(plan.layout.fileSize);

    const controller = new AbortController();
    const run = async () => {
      for await (const _ of quantizeChunks(source, file, plan, { signal: controller.signal, slabBytes: 10_000 })) controller.abort();
    };
    await expect(run()).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('keeps each slab of rows small', async () => {
    const model = makeTestModel({ arch: 'llama', embd: 256, layers: 1, heads: 4, ff: 512 });
    const source = bytesSource(model);
    const file = await readGguf(source);
    const plan = planQuantize(file, 'Q6_K');
    let largest = 0;
    let first = true;
    for await (const chunk of quantizeChunks(source, file, plan, { slabBytes: 8192 })) {
      if (!first) largest = Math.max(largest, chunk.length);
      first = false;
    }
    // A row of 256 F32 values and its Q6_K form take 2,258 bytes with the float copy: 3 per slab.
    expect(largest).toBeLessThanOrEqual(3 * 256 * 4);
  });

  it('rejects an unknown architecture layout with a named error', () => {
    expect(() => chooseTensorTypes([], new Map(), 'Q8_0')).toThrow(QuantizeError);
  });
});

describe('quantize with an importance matrix: byte-identical to llama-quantize', { timeout: 120_000 }, () => {
  /** Positive weights for every matrix (ne0 values), as llama-imatrix would give. */
  function imatrixFor(model: Uint8Array): Promise<Map<string, Float32Array>> {
    return readGguf(bytesSource(model)).then((file) => {
      const m = new Map<string, Float32Array>();
      for (const t of file.tensors) {
        if (t.shape.length < 2) continue;
        const w = new Float32Array(t.shape[0]!);
        for (let i = 0; i < w.length; i++) w[i] = Math.fround(0.05 + ((i * 31 + t.name.length * 7) % 53) / 9);
        m.set(t.name, w);
      }
      return m;
    });
  }

  // Q4_K_M with rows of 384 (Q5_0 fallbacks) and Q4_0 over 8 layers (layer 0's ffn_down becomes
  // Q4_1 with an imatrix); the weighted Q5_K and Q6_K are checked alone in gguf/quants/weighted.test.ts.
  it.each([
    ['Q4_K_M', 2, 384],
    ['Q4_0', 8, 256],
  ] as const)('llama, %s', async (mix, layers, ff) => {
    const model = makeTestModel({ arch: 'llama', embd: 256, layers, heads: 4, kvHeads: 2, ff, seed: 5 });
    const imatrix = await imatrixFor(model);
    const input = join(dir, `im-${mix}.gguf`);
    const output = join(dir, `im-${mix}-out.gguf`);
    writeFileSync(input, model);
    llamaRefQuantizeModel(input, output, mix, { imatrix, threads: 1 });
    const theirs = new Uint8Array(readFileSync(output));
    const ours = await quantizeInMemory(model, mix, { imatrix });
    const same = ours.length === theirs.length && ours.every((v, i) => v === theirs[i]);
    expect(same, same ? '' : await describeDifference(ours, theirs)).toBe(true);
    // The weights did change the bytes: without them the file differs.
    const plain = await quantizeInMemory(model, mix);
    expect(plain.length === ours.length && plain.every((v, i) => v === ours[i])).toBe(false);
  });
});
