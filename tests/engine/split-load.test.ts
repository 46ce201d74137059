/**
 * Split GGUF models (llama.cpp gguf-split) load through the same loader as one file: on the CPU
 * backend, a generated model split into parts gives logits bitwise identical to the whole file's,
 * whatever order the parts are given in; parts that do not make a whole model fail with a named
 * GgufFormatError that says what is wrong.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/engine/backend/cpu/backend.ts';
import { GgufFormatError } from '../../src/engine/gguf/errors.ts';
import { bytesSource, type RangedSource } from '../../src/engine/gguf/source.ts';
import { openGgufModel } from '../../src/engine/gguf/split.ts';
import { describeModel } from '../../src/engine/model-info.ts';
import { Model } from '../../src/engine/model/model.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { splitGguf, type GgufPart } from '../../src/testing/split-gguf.ts';

const TOKENS = [1, 17, 5, 42, 9, 33, 2, 60, 11, 7, 28, 50];

let whole: Uint8Array<ArrayBuffer>;
let parts3: GgufPart[];

const sourceOf = (p: GgufPart): RangedSource => bytesSource(p.bytes, p.name);

async function logits(source: RangedSource | Awaited<ReturnType<typeof openGgufModel>>): Promise<Float32Array> {
  const backend = await CpuBackend.create({ relaxed: false });
  const model = await Model.load(backend, source, { contextLength: 64, batch: 8 });
  try {
    return await model.eval(TOKENS, { logits: 'all' });
  } finally {
    model.destroy();
  }
}

const bytesOf = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

async function formatError(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GgufFormatError);
  return error as Error;
}

beforeAll(async () => {
  whole = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 256, seed: 23, quant: 'q8_0' }) as Uint8Array<ArrayBuffer>;
  parts3 = await splitGguf(whole, 3, 'tiny');
});

describe('split models on the CPU backend', () => {
  it('splits like gguf-split: metadata in the first part, tensors spread over all', async () => {
    expect(parts3.map((p) => p.name)).toEqual(['tiny-00001-of-00003.gguf', 'tiny-00002-of-00003.gguf', 'tiny-00003-of-00003.gguf']);
    const model = await openGgufModel(parts3.map(sourceOf));
    expect(new Set(model.tensors.map((t) => t.part))).toEqual(new Set([0, 1, 2]));
    expect(model.metadata.get('general.architecture')).toBe('llama');
    expect(model.parts[1]!.metadata.has('general.architecture')).toBe(false);
  });

  it('gives logits bitwise identical to the whole file, parts in any order', async () => {
    const expected = await logits(bytesSource(whole, 'tiny.gguf'));
    expect(expected.length % TOKENS.length).toBe(0);
    expect(expected.every(Number.isFinite) && new Set(expected).size > expected.length / 2).toBe(true);
    const inOrder = await logits(await openGgufModel(parts3.map(sourceOf)));
    expect(bytesOf(inOrder).equals(bytesOf(expected))).toBe(true);
    const shuffled = await logits(await openGgufModel([parts3[2]!, parts3[0]!, parts3[1]!].map(sourceOf)));
    expect(bytesOf(shuffled).equals(bytesOf(expected))).toBe(true);
    const two = await logits(await openGgufModel((await splitGguf(whole, 2, 'tiny')).map(sourceOf)));
    expect(bytesOf(two).equals(bytesOf(expected))).toBe(true);

    // The comparison can fail: one changed weight byte in the last part changes the logits.
    const last = await openGgufModel(parts3.map(sourceOf));
    const t = last.tensors.find((x) => x.part === 2 && x.shape[1]! > 1)!;
    const corrupt = parts3[2]!.bytes.slice();
    corrupt[t.fileOffset + 3]! ^= 0x10;
    const changed = await logits(await openGgufModel([parts3[0]!, parts3[1]!, { ...parts3[2]!, bytes: corrupt }].map(sourceOf)));
    expect(bytesOf(changed).equals(bytesOf(expected))).toBe(false);
  });

  it('describes a split model with the size of all its parts', async () => {
    const model = await openGgufModel(parts3.map(sourceOf));
    const details = { fileName: 'tiny', contextLength: 64, trainedContextLength: 256, hasChatTemplate: false, templateFallback: undefined, backend: 'cpu' as const };
    const info = describeModel(model, details);
    expect(info.fileSize).toBe(parts3.reduce((n, p) => n + p.bytes.length, 0));
    expect(info.fileSize).toBeGreaterThan(whole.length);
    expect(info.parameterCount).toBe(describeModel(await openGgufModel([bytesSource(whole)]), details).parameterCount);
  });

  it('rejects a missing part, a part of another split and a lone part, naming the problem', async () => {
    const missing = await formatError(openGgufModel([parts3[0]!, parts3[2]!].map(sourceOf)));
    expect(missing.message).toMatch(/says the model has 3 parts, but 2 were given \(missing: part 2 of 3\)/);

    const parts2 = await splitGguf(whole, 2, 'tiny');
    const mixed = await formatError(openGgufModel([parts3[0]!, parts2[1]!, parts3[2]!].map(sourceOf)));
    expect(mixed.message).toMatch(/tiny-00002-of-00002.gguf says the model has 2 parts, but 3 were given/);

    const lone = await formatError(logits(sourceOf(parts3[1]!)));
    expect(lone.message).toMatch(/tiny-00002-of-00003.gguf says the model has 3 parts, but 1 were given \(missing: parts 1, 3 of 3\)/);
  });
});
