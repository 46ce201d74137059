import 'fake-indexeddb/auto';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { GgmlType } from '../gguf/ggml-types.ts';
import { openGgufModel } from '../gguf/split.ts';
import { writeGguf } from '../gguf/writer.ts';
import { describeModel } from '../model-info.ts';
import { DownloadError, DownloadInProgressError, IntegrityError, ModelNotFoundError, StorageQuotaError } from './errors.ts';
import { ModelStore, type DownloadProgress, type ModelStoreOptions, type StorageManagerLike } from './model-store.ts';
import { makeTestGguf, randomBytes } from '../../testing/store-fixtures.ts';
import { fakeLocks } from '../../testing/fake-locks.ts';
import { blobSource } from '../gguf/source.ts';
import { validateGguf } from './verify.ts';
import { writeLoraGguf } from '../model/lora/adapter-data.ts';
import { get as idbGet, set as idbSet, createStore } from 'idb-keyval';

const CHUNK = 4096;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Behaviour {
  /** Ignore Range headers and answer 200 with the whole file. */
  ignoreRange?: boolean;
  /** Close the body after this many bytes, for the first `cutTimes` requests. */
  cutAfter?: number;
  cutTimes?: number;
  /** Answer this status to the first `statusTimes` requests (all when undefined). */
  status?: number;
  statusTimes?: number;
  /** Claim this total size in Content-Range / Content-Length. */
  claimSize?: number;
  /** Flip a byte of the body at this offset. */
  corruptAt?: number;
  /** Send this many bytes of the body, then nothing more (until aborted), for the first `stallTimes` requests. */
  stallAfter?: number;
  stallTimes?: number;
  /** Never answer the first `silentTimes` requests (until aborted). */
  silentTimes?: number;
  /** Send this ETag and honour If-Range: a request whose If-Range differs gets the whole file (200). */
  etag?: string;
}

/** Resolves when `signal` aborts; never otherwise. */
const untilAborted = (signal: AbortSignal | undefined) =>
  new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')), { once: true }));

/** An in-memory HTTP server with Range support and configurable faults. Logs every Range asked. */
function fakeServer(files: Record<string, Uint8Array>, behaviour: Record<string, Behaviour> = {}) {
  const log: Array<{ url: string; range: string | null; status: number; ifRange?: string | null }> = [];
  const counts = new Map<string, number>();
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const signal = init?.signal ?? undefined;
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const n = (counts.get(url) ?? 0) + 1;
    counts.set(url, n);
    const b = behaviour[url] ?? {};
    const range = new Headers(init?.headers).get('Range');
    const ifRange = new Headers(init?.headers).get('If-Range');
    let file = files[url];
    if (b.silentTimes !== undefined && n <= b.silentTimes) {
      log.push({ url, range, status: 0 });
      return untilAborted(signal);
    }
    if (b.status !== undefined && (b.statusTimes === undefined || n <= b.statusTimes)) {
      log.push({ url, range, status: b.status });
      return new Response('nope', { status: b.status });
    }
    if (!file) {
      log.push({ url, range, status: 404 });
      return new Response('not found', { status: 404 });
    }
    if (b.corruptAt !== undefined) {
      file = file.slice();
      file[b.corruptAt] = file[b.corruptAt]! ^ 0xff;
    }
    const total = b.claimSize ?? file.length;
    let start = 0;
    let end = total - 1;
    let status = 200;
    const headers = new Headers();
    if (b.etag) headers.set('ETag', b.etag);
    const rangeValid = ifRange === null || ifRange === b.etag;
    const match = range && !b.ignoreRange && rangeValid ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
    if (match) {
      start = Number(match[1]);
      end = match[2] ? Math.min(Number(match[2]), total - 1) : total - 1;
      if (start >= total) {
        log.push({ url, range, status: 416 });
        return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${total}` } });
      }
      status = 206;
      headers.set('Content-Range', `bytes ${start}-${end}/${total}`);
    }
    headers.set('Content-Length', String(end - start + 1));
    log.push({ url, range, status, ifRange });
    let body = file.subarray(start, Math.min(end + 1, file.length));
    const cut = b.cutAfter !== undefined && n <= (b.cutTimes ?? Infinity);
    if (cut) body = body.subarray(0, b.cutAfter);
    const stallAt = b.stallAfter !== undefined && n <= (b.stallTimes ?? Infinity) ? b.stallAfter : Infinity;
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (signal?.aborted) return controller.error(new DOMException('aborted', 'AbortError'));
        if (at >= stallAt) return untilAborted(signal).catch((error: unknown) => controller.error(error));
        if (at >= body.length) {
          if (cut) controller.error(new TypeError('network error: connection reset'));
          else controller.close();
          return;
        }
        const piece = body.slice(at, at + 1000);
        at += piece.length;
        controller.enqueue(piece);
      },
    });
    return new Response(stream, { status, headers });
  }) as typeof fetch;
  return { fetch: fetchFn, log };
}

let dbCounter = 0;
function makeStore(options: ModelStoreOptions = {}) {
  return new ModelStore({
    dbName: `store-test-${++dbCounter}`,
    chunkBytes: CHUNK,
    storage: null,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    ...options,
  });
}

async function readAll(store: ModelStore, id: string, part = 0): Promise<Uint8Array> {
  const source = await store.source(id, part);
  return source.read(0, source.size);
}

const MODEL = makeTestGguf(60_000, 3);
const URL_A = 'https://hub.example/org/repo/resolve/main/model-f16.gguf';

const restore: Array<() => void> = [];
afterEach(() => restore.splice(0).forEach((f) => f()));

describe('ModelStore download', () => {
  it('stores a model in chunks, verifies it, and reads any range back', async () => {
    const server = fakeServer({ [URL_A]: MODEL });
    const store = makeStore({ fetch: server.fetch });
    const progress: DownloadProgress[] = [];
    const model = await store.download(
      { id: 'm', urls: [URL_A], size: MODEL.length, sha256: sha(MODEL) },
      { onProgress: (p) => progress.push(p) },
    );
    expect(model).toMatchObject({ id: 'm', name: 'model-f16.gguf', state: 'complete', size: MODEL.length, storedBytes: MODEL.length });
    expect(model.quantization).toBe('F16');
    expect(model.sha256).toEqual([sha(MODEL)]);
    expect(progress.at(-1)?.phase).toBe('verifying');
    expect(progress.some((p) => p.phase === 'downloading' && p.bytes > 0 && p.total === MODEL.length)).toBe(true);

    const source = await store.source('m');
    expect(source.size).toBe(MODEL.length);
    expect(sha(await source.read(0, source.size))).toBe(sha(MODEL));
    // Ranges inside one chunk, across boundaries, at the very end, many at once.
    const ranges = [[0, 1], [CHUNK - 3, 7], [CHUNK * 2, CHUNK], [5, CHUNK * 3 + 11], [MODEL.length - 9, 9], [MODEL.length, 0]] as const;
    const reads = await Promise.all([...ranges, ...ranges].map(([o, l]) => source.read(o, l)));
    reads.forEach((bytes, i) => {
      const [o, l] = ranges[i % ranges.length]!;
      expect(Array.from(bytes), `read ${o}+${l}`).toEqual(Array.from(MODEL.subarray(o, o + l)));
    });
    await expect(source.read(MODEL.length - 1, 2)).rejects.toThrow(/outside/);
    expect((await openGgufModel(await store.sources('m'))).tensors.length).toBe(4);
  });

  it('pauses on abort, keeps every byte received (the unfinished chunk too), and resumes with a Range request', async () => {
    const server = fakeServer({ [URL_A]: MODEL });
    // A clock that moves 1 s per reading, so no progress event is throttled away.
    let clock = 0;
    const store = makeStore({ fetch: server.fetch, now: () => (clock += 1000) });
    const controller = new AbortController();
    const entry = { id: 'm', urls: [URL_A], sha256: sha(MODEL) };
    let pausedAt = 0;
    const paused = store.download(entry, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytes > 25_000 && !controller.signal.aborted) {
          pausedAt = p.bytes;
          controller.abort();
        }
      },
    });
    await expect(paused).rejects.toMatchObject({ name: 'AbortError' });
    const [partial] = await store.list();
    expect(partial).toMatchObject({ id: 'm', state: 'partial', size: MODEL.length });
    // Everything that arrived before the pause, not only whole chunks (issue 28 item 10).
    expect(partial!.storedBytes).toBe(pausedAt);
    expect(partial!.storedBytes % CHUNK).not.toBe(0);
    await expect(store.source('m')).rejects.toBeInstanceOf(ModelNotFoundError);

    // A new store object stands for a reload: nothing in memory, only IndexedDB.
    const reloaded = new ModelStore({ dbName: `store-test-${dbCounter}`, chunkBytes: CHUNK, storage: null, fetch: server.fetch });
    const model = await reloaded.download(entry);
    expect(model.state).toBe('complete');
    expect(server.log.at(-1)!.range).toBe(`bytes=${partial!.storedBytes}-`);
    expect(sha(await readAll(reloaded, 'm'))).toBe(sha(MODEL));
  });

  it('retries a connection cut halfway and continues from the stored bytes', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { cutAfter: 30_000, cutTimes: 3 } });
    const store = makeStore({ fetch: server.fetch, retry: { attempts: 2, baseDelayMs: 1 } });
    const retries: DownloadProgress[] = [];
    const model = await store.download({ id: 'm', urls: [URL_A], sha256: sha(MODEL) }, { onProgress: (p) => p.phase === 'retrying' && retries.push(p) });
    expect(model.state).toBe('complete');
    // The probe counts as the first request (cut, but it only needs the headers).
    const starts = server.log.slice(1).map((r) => Number(/bytes=(\d+)-/.exec(r.range!)![1]));
    expect(starts[0]).toBe(0);
    expect(starts[1]).toBe(Math.floor(30_000 / CHUNK) * CHUNK);
    expect(starts[2]).toBeGreaterThan(starts[1]!);
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries[0]!.reason).toMatch(/connection lost/);
    expect(sha(await readAll(store, 'm'))).toBe(sha(MODEL));
  });

  it('gives up with a DownloadError that keeps the partial download when the connection keeps failing', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { cutAfter: 100 } });
    const store = makeStore({ fetch: server.fetch });
    const error = await store.download({ id: 'm', urls: [URL_A] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    // Nothing was stored (the cut comes before the first chunk): no promise of a resume (issue 28 item 10).
    expect((error as DownloadError).message).toEqual(expect.stringMatching(/failed 3 times in a row.*Nothing was stored: try again later/));
    expect((await store.get('m'))?.state).toBe('partial');
    expect(await store.delete('m', { partialOnly: true })).toBe(true);
    expect(await store.list()).toEqual([]);
  });

  it('handles a server that ignores Range: resumes by skipping the stored bytes of a 200', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { ignoreRange: true, cutAfter: 20_000, cutTimes: 2 } });
    const store = makeStore({ fetch: server.fetch });
    const model = await store.download({ id: 'm', urls: [URL_A], size: MODEL.length, sha256: sha(MODEL) });
    expect(model.state).toBe('complete');
    expect(server.log.every((r) => r.status === 200)).toBe(true);
    expect(sha(await readAll(store, 'm'))).toBe(sha(MODEL));
  });

  it('fails at once on 404 and 403 with an actionable message, retries 500', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { 'https://x/forbidden.gguf': { status: 403 }, [URL_A]: { status: 500, statusTimes: 2 } });
    const store = makeStore({ fetch: server.fetch });
    await expect(store.download({ id: 'a', urls: ['https://x/missing.gguf'] })).rejects.toThrow(/not found on the server \(404\)/);
    await expect(store.download({ id: 'b', urls: ['https://x/forbidden.gguf'] })).rejects.toThrow(/refused access.*gated/);
    expect(server.log.filter((r) => r.url.startsWith('https://x/')).length).toBe(2);
    const model = await store.download({ id: 'c', urls: [URL_A] });
    expect(model.state).toBe('complete');
    expect(server.log.filter((r) => r.url === URL_A && r.status === 500).length).toBe(2);
    await expect(makeStore({ fetch: fakeServer({}, { [URL_A]: { status: 500 } }).fetch }).download({ id: 'd', urls: [URL_A] })).rejects.toBeInstanceOf(
      DownloadError,
    );
  });

  it('deletes a download whose SHA-256 does not match and says so', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { corruptAt: 40_000 } });
    const store = makeStore({ fetch: server.fetch });
    const error = await store.download({ id: 'm', urls: [URL_A], sha256: sha(MODEL) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toMatch(/corrupted: its SHA-256 is [0-9a-f]{64}, expected/);
    expect(await store.list()).toEqual([]);
  });

  it('refuses a file whose size differs from the catalog before downloading anything', async () => {
    const server = fakeServer({ [URL_A]: MODEL });
    const store = makeStore({ fetch: server.fetch });
    await expect(store.download({ id: 'm', urls: [URL_A], size: MODEL.length + 1 })).rejects.toThrow(/catalog says/);
    expect(server.log.length).toBe(1);
    expect(await store.list()).toEqual([]);
  });

  it('catches a server that lies about the length: a short file is not a complete GGUF', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { claimSize: MODEL.length - 5000 } });
    const store = makeStore({ fetch: server.fetch });
    await expect(store.download({ id: 'm', urls: [URL_A] })).rejects.toThrow(/not a usable GGUF model.*extends past the end/);
    expect(await store.list()).toEqual([]);
    // Claiming more than it sends: every attempt ends early, the partial stays for a resume.
    const liar = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { claimSize: MODEL.length + 5000 } });
    const store2 = makeStore({ fetch: liar.fetch });
    await expect(store2.download({ id: 'm', urls: [URL_A] })).rejects.toThrow(/connection closed after/);
  });

  it('refuses a download that does not fit the storage estimate, and asks for persistence with the first model', async () => {
    const calls: string[] = [];
    const storage = (quota: number): StorageManagerLike => ({
      estimate: async () => (calls.push('estimate'), { usage: 1000, quota }),
      persisted: async () => (calls.push('persisted'), false),
      persist: async () => (calls.push('persist'), true),
    });
    const server = fakeServer({ [URL_A]: MODEL });
    const small = makeStore({ fetch: server.fetch, storage: storage(MODEL.length / 2) });
    const error = await small.download({ id: 'm', urls: [URL_A] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageQuotaError);
    expect((error as Error).message).toMatch(/needs 48\.3 KiB more.*only 23\.2 KiB more/);
    expect(await small.list()).toEqual([]);
    expect(calls).not.toContain('persist');

    const big = makeStore({ fetch: server.fetch, storage: storage(1e9) });
    await big.download({ id: 'm', urls: [URL_A] });
    expect(calls.filter((c) => c === 'persist').length).toBe(1);
    expect(await big.usage()).toMatchObject({ modelBytes: MODEL.length, quota: 1e9, persisted: false });
  });

  it('stops cleanly on QuotaExceededError mid-way, keeps the partial for a resume, or deletes it on request', async () => {
    const put = IDBObjectStore.prototype.put;
    let chunkPuts = 0;
    let failFrom = 5;
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
      if (value instanceof Uint8Array && ++chunkPuts >= failFrom) throw new DOMException('quota', 'QuotaExceededError');
      return put.call(this, value, key);
    };
    restore.push(() => (IDBObjectStore.prototype.put = put));
    const server = fakeServer({ [URL_A]: MODEL });
    const store = makeStore({ fetch: server.fetch });
    const error = await store.download({ id: 'm', urls: [URL_A], sha256: sha(MODEL) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageQuotaError);
    expect((error as Error).message).toMatch(/Storage ran out.*after 16 KiB of 48\.3 KiB.*resume, or delete/);
    expect((await store.get('m'))!.storedBytes).toBe(4 * CHUNK);
    failFrom = Infinity;
    expect((await store.download({ id: 'm', urls: [URL_A], sha256: sha(MODEL) })).state).toBe('complete');
    expect(sha(await readAll(store, 'm'))).toBe(sha(MODEL));
    expect(await store.delete('m', { partialOnly: true })).toBe(false);
    expect(await store.delete('m')).toBe(true);
    expect(await store.list()).toEqual([]);
  });

  it('downloads every part of a split model from the first part URL', async () => {
    const parts = [makeTestGguf(20_000, 5, [0, 3, 12]), makeTestGguf(20_000, 6, [1, 3]), makeTestGguf(9_000, 7, [2, 3])];
    const urls = parts.map((_, i) => `https://hub.example/r/resolve/main/big-q8-0000${i + 1}-of-00003.gguf?download=true`);
    const server = fakeServer(Object.fromEntries(urls.map((u, i) => [u, parts[i]!])));
    const store = makeStore({ fetch: server.fetch });
    const model = await store.download({ id: 's', urls: [urls[1]!], sha256: parts.map(sha) });
    expect(model).toMatchObject({ parts: 3, size: parts.reduce((s, p) => s + p.length, 0), state: 'complete' });
    const gguf = await openGgufModel(await store.sources('s'));
    expect(gguf.tensors.length).toBe(12);
    for (let i = 0; i < 3; i++) expect(sha(await readAll(store, 's', i))).toBe(sha(parts[i]!));
  });

  it('imports a local file in place or as a copy, and lists, marks used and deletes', async () => {
    let now = 1000;
    const store = makeStore({ now: () => now });
    const file = new File([MODEL], 'local-f16.gguf');
    const inPlace = await store.importFile(file, { copy: false, id: 'here' });
    expect(inPlace).toMatchObject({ origin: 'session', storedBytes: 0, state: 'complete', quantization: 'F16' });
    expect(sha(await readAll(store, 'here'))).toBe(sha(MODEL));

    now = 2000;
    const copied = await store.importFile(file, { copy: true });
    expect(copied).toMatchObject({ id: 'file:local-f16.gguf:' + MODEL.length, origin: 'file', storedBytes: MODEL.length, sha256: undefined });
    now = 3000;
    await store.markUsed('here');
    now = 4000;
    await store.markUsed(copied.id);
    const list = await store.list();
    expect(list.map((m) => [m.id, m.lastUsed])).toEqual([
      [copied.id, 4000],
      ['here', 3000],
    ]);
    expect(sha(await readAll(store, copied.id))).toBe(sha(MODEL));
    expect((await store.usage()).modelBytes).toBe(MODEL.length);
    await expect(store.importFile(new File([randomBytes(5000)], 'junk.gguf'), { copy: true })).rejects.toThrow(/not a usable GGUF model/);
    expect(await store.delete(copied.id)).toBe(true);
    expect(await store.delete('here')).toBe(true);
    expect(await store.list()).toEqual([]);
    await expect(store.source(copied.id)).rejects.toBeInstanceOf(ModelNotFoundError);
  });

  it('names the quantization as the loaded model does: vectors stored with a dimension of 1 do not count', async () => {
    // Most bytes are in an F16 tensor of shape [65536, 1], a vector to the loader; the store's
    // old rule counted it and named the file F16, the loaded model said Q8_0.
    const file = writeGguf({
      metadata: { 'general.architecture': 'llama' },
      tensors: [
        { name: 'blk.0.w.weight', type: GgmlType.Q8_0, shape: [64, 64], data: randomBytes((64 * 64 * 34) / 32, 7) },
        { name: 'blk.0.v.weight', type: GgmlType.F16, shape: [65536, 1], data: randomBytes(65536 * 2, 8) },
      ],
    });
    const url = 'https://hub.example/org/repo/resolve/main/mixed.gguf';
    const store = makeStore({ fetch: fakeServer({ [url]: file }).fetch });
    const downloaded = await store.download({ id: 'd', urls: [url] });
    const inPlace = await store.importFile(new File([file], 'mixed.gguf'), { copy: false, id: 'here' });
    const loaded = describeModel(await openGgufModel(await store.sources('d')), {
      fileName: 'mixed.gguf', contextLength: 1, trainedContextLength: 1, hasChatTemplate: false, templateFallback: undefined, backend: 'cpu',
    });
    expect(loaded.quantization).toBe('Q8_0');
    expect([downloaded.quantization, inPlace.quantization]).toEqual(['Q8_0', 'Q8_0']);
  });

  it('reads a model sequentially in odd windows (the read-ahead path) and randomly, with the same bytes', async () => {
    const server = fakeServer({ [URL_A]: MODEL });
    const store = makeStore({ fetch: server.fetch, readCacheChunks: 1 });
    await store.download({ id: 'm', urls: [URL_A] });
    for (const window of [1000, CHUNK, 3 * CHUNK + 7, 9 * CHUNK]) {
      const source = await store.source('m');
      const out = new Uint8Array(source.size);
      for (let at = 0; at < source.size; at += window) out.set(await source.read(at, Math.min(window, source.size - at)), at);
      expect(sha(out), `window ${window}`).toBe(sha(MODEL));
    }
    const source = await store.source('m');
    const random = randomBytes(400, 9);
    const reads = Array.from({ length: 100 }, (_, i) => {
      const offset = Math.floor((random[2 * i]! / 256) * MODEL.length);
      const length = Math.min(MODEL.length - offset, random[2 * i + 1]! * 97);
      return [offset, length] as const;
    });
    const results = await Promise.all(reads.map(([o, l]) => source.read(o, l)));
    results.forEach((bytes, i) => expect(sha(bytes), `read ${reads[i]}`).toBe(sha(MODEL.subarray(reads[i]![0], reads[i]![0] + reads[i]![1]))));
  });

  it('refuses a second download of the same model while one runs, and deleting it meanwhile', async () => {
    const server = fakeServer({ [URL_A]: MODEL });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slowFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      await gate;
      return server.fetch(input, init);
    }) as typeof fetch;
    const store = makeStore({ fetch: slowFetch });
    const first = store.download({ id: 'm', urls: [URL_A] });
    await expect(store.download({ id: 'm', urls: [URL_A] })).rejects.toBeInstanceOf(DownloadInProgressError);
    await expect(store.delete('m')).rejects.toThrow(/pause it before deleting/);
    release();
    expect((await first).state).toBe('complete');
    // Calling download on a complete model is a no-op that returns it.
    const again = await store.download({ id: 'm', urls: [URL_A] });
    expect(again.state).toBe('complete');
    expect(server.log.length).toBe(2);
    await expect(store.download({ id: 'm', urls: ['https://other/x.gguf'] })).rejects.toThrow(/different model is already stored/);
  });

  it('reports a damaged cache (a missing chunk) as an IntegrityError on read', async () => {
    const server = fakeServer({ [URL_A]: MODEL });
    const store = makeStore({ fetch: server.fetch });
    await store.download({ id: 'm', urls: [URL_A] });
    const { createStore, del } = await import('idb-keyval');
    await del(['m', 0, 2], createStore(`store-test-${dbCounter}-chunks`, 'chunks'));
    const source = await store.source('m');
    await expect(source.read(2 * CHUNK + 5, 10)).rejects.toBeInstanceOf(IntegrityError);
    await expect(source.read(CHUNK, 3 * CHUNK)).rejects.toThrow(/damaged.*chunk 2/);
    expect(Array.from(await source.read(0, 10))).toEqual(Array.from(MODEL.subarray(0, 10)));
  });
});

describe('ModelStore on a bad network (issue 28 items 2, 3, 9, 10)', () => {
  /** A clock that moves 1 s per reading, so no progress event is throttled away. */
  const ticking = () => {
    let clock = 0;
    return () => (clock += 1000);
  };

  it('retries a body that stalls: no byte for the stall timeout fails the attempt, the next resumes', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { stallAfter: 10_000, stallTimes: 2 } });
    const store = makeStore({ fetch: server.fetch, stallTimeoutMs: 50 });
    const retries: DownloadProgress[] = [];
    const model = await store.download({ id: 'm', urls: [URL_A], sha256: sha(MODEL) }, { onProgress: (p) => p.phase === 'retrying' && retries.push(p) });
    expect(model.state).toBe('complete');
    expect(retries[0]!.reason).toEqual(expect.stringMatching(/no data from .* for 0 s/));
    expect(sha(await readAll(store, 'm'))).toBe(sha(MODEL));
  });

  it('retries a size probe nobody answers, and gives up with a named error when nobody ever does', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { silentTimes: 2 } });
    const store = makeStore({ fetch: server.fetch, stallTimeoutMs: 50 });
    expect((await store.download({ id: 'm', urls: [URL_A] })).state).toBe('complete');

    const dead = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { silentTimes: Infinity } });
    const other = makeStore({ fetch: dead.fetch, stallTimeoutMs: 50 });
    const error = await other.download({ id: 'm', urls: [URL_A] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toEqual(expect.stringMatching(/Cannot reach .*no data/));
  });

  it('a pause cancels a stalled transfer at once', async () => {
    const server = fakeServer({ [URL_A]: MODEL }, { [URL_A]: { stallAfter: 5_000 } });
    // The default stall timeout (30 s) is far longer than this test may take.
    const store = makeStore({ fetch: server.fetch, now: ticking() });
    const controller = new AbortController();
    const download = store.download({ id: 'm', urls: [URL_A] }, { signal: controller.signal, onProgress: (p) => p.bytes >= 5_000 && controller.abort() });
    await expect(download).rejects.toMatchObject({ name: 'AbortError' });
    expect((await store.get('m'))?.storedBytes).toBe(5_000);
  });

  /** Pauses a download of `entry` once more than `bytes` are in, and returns the bytes kept. */
  async function pauseAfter(store: ModelStore, entry: { id: string; urls: string[] }, bytes: number): Promise<number> {
    const controller = new AbortController();
    await store
      .download(entry, { signal: controller.signal, onProgress: (p) => p.bytes > bytes && controller.abort() })
      .catch((e: unknown) => expect(e).toMatchObject({ name: 'AbortError' }));
    return (await store.get(entry.id))!.storedBytes;
  }

  it('resumes with If-Range: a file that changed on the server (same size) is fetched again, not spliced', async () => {
    const files = { [URL_A]: MODEL };
    const behaviour: Behaviour = { etag: '"v1"' };
    const server = fakeServer(files, { [URL_A]: behaviour });
    const store = makeStore({ fetch: server.fetch, now: ticking() });
    const entry = { id: 'm', urls: [URL_A] };
    expect(await pauseAfter(store, entry, 25_000)).toBeGreaterThan(25_000);
    const changed = makeTestGguf(60_000, 4);
    expect(changed.length).toBe(MODEL.length);
    files[URL_A] = changed;
    behaviour.etag = '"v2"';
    expect((await store.download(entry)).state).toBe('complete');
    expect(server.log.at(-2)).toMatchObject({ ifRange: '"v1"', status: 200 });
    expect(sha(await readAll(store, 'm'))).toBe(sha(changed));
  });

  it('restarts when a resumed 206 shows a new size or validator (a server that ignores If-Range)', async () => {
    const files = { [URL_A]: MODEL };
    const server = fakeServer(files, { [URL_A]: { etag: '"v1"' } });
    const store = makeStore({ fetch: server.fetch, now: ticking() });
    const entry = { id: 'm', urls: [URL_A] };
    await pauseAfter(store, entry, 25_000);
    const bigger = makeTestGguf(90_000, 5);
    files[URL_A] = bigger;
    // Ignores If-Range: answers 206 from the stored offset, with the new total in Content-Range.
    const ignoring = fakeServer(files, { [URL_A]: { etag: '"v1"' } });
    const plain = ((input: RequestInfo | URL, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      headers.delete('If-Range');
      return ignoring.fetch(input, { ...init, headers });
    }) as typeof fetch;
    const reloaded = new ModelStore({ dbName: `store-test-${dbCounter}`, chunkBytes: CHUNK, storage: null, fetch: plain, retry: { attempts: 3, baseDelayMs: 1 } });
    expect((await reloaded.download(entry)).size).toBe(bigger.length);
    expect(sha(await readAll(reloaded, 'm'))).toBe(sha(bigger));
  });

  it('restarts after a 416 (the file shrank below the stored bytes) instead of failing for good', async () => {
    const files = { [URL_A]: MODEL };
    const server = fakeServer(files);
    const store = makeStore({ fetch: server.fetch, now: ticking() });
    const entry = { id: 'm', urls: [URL_A] };
    await pauseAfter(store, entry, 40_000);
    const smaller = makeTestGguf(20_000, 6);
    files[URL_A] = smaller;
    expect((await store.download(entry)).state).toBe('complete');
    expect(server.log.some((r) => r.status === 416)).toBe(true);
    expect(sha(await readAll(store, 'm'))).toBe(sha(smaller));
  });

  it('keeps the bytes of a pause before the first chunk is full, and hashes across the resume', async () => {
    const server = fakeServer({ [URL_A]: MODEL });
    const store = makeStore({ fetch: server.fetch, now: ticking() });
    const entry = { id: 'm', urls: [URL_A], sha256: sha(MODEL) };
    const kept = await pauseAfter(store, entry, 2_000);
    expect(kept).toBeGreaterThan(2_000);
    expect(kept).toBeLessThan(CHUNK);
    // A second pause inside the same unfinished chunk keeps the earlier bytes and the new ones.
    expect(await pauseAfter(store, entry, kept + 500)).toBeGreaterThan(kept);
    const model = await store.download(entry);
    expect(model.sha256).toEqual([sha(MODEL)]);
    expect(sha(await readAll(store, 'm'))).toBe(sha(MODEL));
  });

  it('refuses, by name, to delete a model another tab is downloading (Web Locks), and the download completes', async () => {
    const locks = fakeLocks();
    const server = fakeServer({ [URL_A]: MODEL });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let requests = 0;
    const slowFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (++requests === 2) await gate;
      return server.fetch(input, init);
    }) as typeof fetch;
    const tabA = makeStore({ fetch: slowFetch, locks });
    const tabB = new ModelStore({ dbName: `store-test-${dbCounter}`, chunkBytes: CHUNK, storage: null, fetch: server.fetch, locks });
    const downloading = tabA.download({ id: 'm', urls: [URL_A] });
    await expect.poll(() => requests).toBe(2);
    const refused = await tabB.delete('m').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DownloadInProgressError);
    expect((refused as Error).message).toEqual(expect.stringMatching(/another tab/));
    await expect(tabB.download({ id: 'm', urls: [URL_A] })).rejects.toBeInstanceOf(DownloadInProgressError);
    release();
    expect((await downloading).state).toBe('complete');
    expect(await tabB.delete('m')).toBe(true);
  });
});

/** A rank-`rank` adapter for a llama base of width 8 on two tensors (q of block 0, and the embeddings), alpha 16. */
function adapterFile(rank: number): Uint8Array<ArrayBuffer> {
  const t = (base: string, nIn: number, nOut: number, embedding: boolean) => ({
    base, rank, nIn, nOut, embedding, a: new Float32Array(rank * nIn).fill(0.01), b: new Float32Array(rank * nOut).fill(0.02),
  });
  return writeLoraGguf({ architecture: 'llama', alpha: 16, name: 'style', targets: [t('blk.0.attn_q.weight', 8, 8, false), t('token_embd.weight', 32, 8, true)] });
}

describe('ModelStore file kinds', () => {
  it('records a LoRA adapter as an adapter (base architecture, rank, alpha, targets) and a model as a model, by every way in', async () => {
    const ADAPTER = adapterFile(3);
    const URL_L = 'https://hub.example/org/repo/resolve/main/style-lora.gguf';
    const server = fakeServer({ [URL_A]: MODEL, [URL_L]: ADAPTER });
    const store = makeStore({ fetch: server.fetch });
    const downloaded = await store.download({ id: 'lora', urls: [URL_L], sha256: sha(ADAPTER) });
    const want = { kind: 'adapter', architecture: 'llama', adapter: { type: 'lora', rank: 3, alpha: 16, targets: 2 } };
    expect(downloaded).toMatchObject({ ...want, state: 'complete', sha256: [sha(ADAPTER)] });
    const copied = await store.importFile(new File([ADAPTER], 'style.gguf'), { copy: true });
    expect(copied).toMatchObject({ ...want, origin: 'file' });
    const inPlace = await store.importFile(new File([adapterFile(5)], 'other.gguf'), { copy: false });
    expect(inPlace).toMatchObject({ kind: 'adapter', origin: 'session', adapter: { rank: 5 } });
    const model = await store.download({ id: 'm', urls: [URL_A] });
    expect(model.kind).toBe('model');
    expect(model.adapter).toBeUndefined();
    // The kinds survive a new store over the same database (a reload).
    const kinds = Object.fromEntries((await store.list()).map((m) => [m.id, m.kind]));
    expect(kinds).toEqual({ lora: 'adapter', [copied.id]: 'adapter', [inPlace.id]: 'adapter', m: 'model' });
    // Integrity as for models: a wrong SHA-256 deletes the adapter and says so.
    await expect(store.download({ id: 'bad', urls: [URL_L], sha256: sha(MODEL) })).rejects.toBeInstanceOf(IntegrityError);
    expect(await store.get('bad')).toBeUndefined();
    expect(await store.delete('lora')).toBe(true);
    expect((await store.list()).some((m) => m.id === 'lora')).toBe(false);
  });

  it('reads the kind of a record stored before kinds were recorded, once, and keeps it', async () => {
    const dbName = `store-test-${++dbCounter}`;
    const store = makeStore({ dbName });
    const copied = await store.importFile(new File([adapterFile(2)], 'old.gguf'), { copy: true });
    // Strip what this version records, as an older version's record would be.
    const meta = createStore(dbName, 'models');
    const record = await idbGet<Record<string, unknown>>(copied.id, meta);
    delete record!.kind;
    delete record!.architecture;
    delete record!.adapter;
    await idbSet(copied.id, record, meta);
    const listed = await makeStore({ dbName }).list();
    expect(listed[0]).toMatchObject({ kind: 'adapter', architecture: 'llama', adapter: { rank: 2 } });
    expect(await idbGet<Record<string, unknown>>(copied.id, meta)).toMatchObject({ kind: 'adapter' });
  });
});

describe('validateGguf', () => {
  it('names the file once in its error (it was named three times)', async () => {
    const notes = new Blob([new TextEncoder().encode('not a model\n'.repeat(100))]);
    const error = await validateGguf([blobSource(notes, 'notes.gguf')], 'notes.gguf', 'id').catch((e: unknown) => e as Error);
    expect((error as Error).message.split('notes.gguf').length - 1).toBe(1);
  });
});
