/**
 * Split GGUF models (llama.cpp gguf-split) on WebGPU (Dawn): the split model's logits are bitwise
 * those of the whole file, and the engine loads one from each kind of source (several local files,
 * several URLs or one part's URL, the model store) and answers as the whole file does.
 */
import 'fake-indexeddb/auto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatCompletionRequest, ModelInfo, ModelSource } from '../../src/engine/api.ts';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { Engine } from '../../src/engine/engine.ts';
import { bytesSource, type RangedSource } from '../../src/engine/gguf/source.ts';
import { openGgufModel, type GgufModel } from '../../src/engine/gguf/split.ts';
import { Model } from '../../src/engine/model/model.ts';
import { ModelStore } from '../../src/engine/store/index.ts';
import { nodeGpu, nodeProbeOptions } from '../../src/node/webgpu.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';
import { splitGguf, type GgufPart } from '../../src/testing/split-gguf.ts';

const TOKENS = [1, 17, 5, 42, 9, 33, 2, 60, 11, 7, 28, 50, 3, 19];
const GREEDY: ChatCompletionRequest = { messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0, max_tokens: 8 };

let whole: Uint8Array<ArrayBuffer>;
let parts: GgufPart[];
let server: Server;
let baseUrl: string;

/** Serves `parts` with Range support, as a static file host does. */
function serve(files: GgufPart[]): Promise<Server> {
  const byPath = new Map(files.map((p) => [`/${p.name}`, p.bytes]));
  const s = createServer((req, res) => {
    const bytes = byPath.get(req.url ?? '');
    if (!bytes) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(200, { 'Content-Length': bytes.length, 'Accept-Ranges': 'bytes' }).end(bytes);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(m[2] === undefined ? bytes.length - 1 : Number(m[2]), bytes.length - 1);
    res
      .writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${bytes.length}`, 'Accept-Ranges': 'bytes' })
      .end(bytes.subarray(start, end + 1));
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

beforeAll(async () => {
  whole = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11, quant: 'q8_0' }) as Uint8Array<ArrayBuffer>;
  parts = await splitGguf(whole, 3, 'tiny');
  server = await serve(parts);
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

describe('split models on WebGPU', () => {
  let gpu: TestGpu;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.destroy());

  async function logits(source: RangedSource | GgufModel): Promise<Float32Array> {
    const model = await Model.load(new WebGpuBackend(gpu.device, { kernelPaths: gpu.kernelPaths }), source, { contextLength: 64, batch: 8 });
    try {
      return await model.eval(TOKENS, { logits: 'all' });
    } finally {
      model.destroy();
    }
  }

  it('gives logits bitwise identical to the whole file', async () => {
    const t0 = performance.now();
    const expected = await logits(bytesSource(whole, 'tiny.gguf'));
    const t1 = performance.now();
    const split = await logits(await openGgufModel([parts[1]!, parts[2]!, parts[0]!].map((p) => bytesSource(p.bytes, p.name))));
    const t2 = performance.now();
    console.log(`[split load] whole file ${(t1 - t0).toFixed(0)} ms (first load: compiles the pipelines), 3 parts ${(t2 - t1).toFixed(0)} ms (load + ${TOKENS.length}-token eval)`);
    expect(expected.every(Number.isFinite)).toBe(true);
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    expect(bytes(split).equals(bytes(expected))).toBe(true);
  });
});

describe('the engine loads a split model from every kind of source', () => {
  const store = new ModelStore({ dbName: 'split-load-gpu-test', chunkBytes: 4096, storage: null });
  const engine = new Engine({ gpu: nodeGpu(), runtime: 'test', probeOptions: nodeProbeOptions(), store });
  let reference: { info: ModelInfo; text: string };
  const total = () => parts.reduce((n, p) => n + p.bytes.length, 0);

  async function run(source: ModelSource): Promise<{ info: ModelInfo; text: string }> {
    const info = await engine.loadModel(source, { contextLength: 128 });
    const reply = await engine.chatCompletion(GREEDY);
    return { info, text: reply.choices[0].message.content ?? '' };
  }

  beforeAll(async () => {
    reference = await run({ kind: 'file', file: new Blob([whole]), name: 'tiny.gguf' });
    expect(reference.text.length).toBeGreaterThan(0);
  });
  afterAll(async () => {
    await engine.unloadModel();
  });

  const same = (got: { info: ModelInfo; text: string }) => {
    expect(got.text).toBe(reference.text);
    expect(got.info.fileSize).toBe(total());
    expect(got.info).toMatchObject({ parameterCount: reference.info.parameterCount, quantization: reference.info.quantization, architecture: 'llama' });
  };

  it('several local files, in any order', async () => {
    const files = [parts[2]!, parts[0]!, parts[1]!].map((p) => ({ file: new Blob([p.bytes]), name: p.name }));
    same(await run({ kind: 'file', files }));
  });

  it('several URLs, and one part standing for all', async () => {
    same(await run({ kind: 'url', urls: parts.map((p) => `${baseUrl}/${p.name}`) }));
    same(await run({ kind: 'url', urls: [`${baseUrl}/${parts[0]!.name}`] }));
  });

  it('the model store, copied and read in place', async () => {
    const files = parts.map((p) => new File([p.bytes], p.name));
    const copied = await engine.importModelFile(files, { copy: true, name: 'tiny split' });
    expect((await store.get(copied.id))?.parts).toBe(3);
    same(await run({ kind: 'cached', id: copied.id }));
    const inPlace = await engine.importModelFile(files, { copy: false, name: 'tiny split (in place)' });
    same(await run({ kind: 'cached', id: inPlace.id }));
  });

  it('names what is wrong when a part is missing, and keeps the model in use', async () => {
    const before = await engine.status();
    expect(before.state).toBe('ready');
    const error = await engine.loadModel({ kind: 'url', urls: [parts[0]!, parts[2]!].map((p) => `${baseUrl}/${p.name}`) }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('GgufFormatError');
    expect((error as Error).message).toMatch(/missing: part 2 of 3/);
    // A failed load leaves the model that was answering loaded (#19): the error is the call's.
    expect(await engine.status()).toEqual(before);
  });
});
