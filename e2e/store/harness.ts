/**
 * Browser harness for the model store specs and benchmark: exposes `window.harness`, driven with
 * `page.evaluate`. Errors come back as `{ name, message, detail }` so specs can assert on them.
 */
import { createStore, delMany, getMany, setMany } from 'idb-keyval';
import { uploadWeight, destroyWeight, type GpuWeight } from '../../src/engine/backend/webgpu/weights.ts';
import { serializeError, type SerializedError } from '../../src/engine/errors.ts';
import { openGgufModel, type GgufModel } from '../../src/engine/gguf/split.ts';
import {
  ModelStore,
  type CachedModel,
  type DownloadProgress,
  type ModelEntry,
  type StorageManagerLike,
} from '../../src/engine/store/model-store.ts';
import { Sha256 } from '../../src/engine/store/sha256.ts';

export type Result<T> = { ok: true; value: T } | { ok: false; error: SerializedError };

export interface HarnessOptions {
  dbName?: string;
  chunkBytes?: number;
  /** Report a huge free quota, so the real IndexedDB quota is what stops a download. */
  fakeEstimate?: boolean;
  retryMs?: number;
  attempts?: number;
  readAheadChunks?: number;
}

async function capture<T>(body: () => Promise<T>): Promise<Result<T>> {
  try {
    return { ok: true, value: await body() };
  } catch (error) {
    const e = serializeError(error);
    delete e.stack;
    return { ok: false, error: e };
  }
}

let store: ModelStore | undefined;
let background: { promise: Promise<Result<CachedModel>>; controller: AbortController; progress: DownloadProgress[] } | undefined;
const dropped: Array<Result<CachedModel>> = [];
let loaded: { device: GPUDevice; weights: GpuWeight[]; model: GgufModel } | undefined;

function current(): ModelStore {
  if (!store) throw new Error('harness: call configure() first');
  return store;
}

const harness = {
  configure(options: HarnessOptions = {}): void {
    const storage: StorageManagerLike = options.fakeEstimate
      ? {
          estimate: async () => ({ usage: 0, quota: 1e12 }),
          persist: () => navigator.storage.persist(),
          persisted: () => navigator.storage.persisted(),
        }
      : navigator.storage;
    store = new ModelStore({
      dbName: options.dbName ?? 'hearth-models',
      ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
      ...(options.readAheadChunks !== undefined ? { readAheadChunks: options.readAheadChunks } : {}),
      storage,
      retry: { attempts: options.attempts ?? 4, baseDelayMs: options.retryMs ?? 50, maxDelayMs: 500 },
    });
  },

  download(entry: ModelEntry): Promise<Result<{ model: CachedModel; progress: DownloadProgress[] }>> {
    const progress: DownloadProgress[] = [];
    return capture(async () => ({ model: await current().download(entry, { onProgress: (p) => progress.push(p) }), progress }));
  },

  /** Starts a download in the background; `pause`, `progress` and `wait` follow it. */
  start(entry: ModelEntry): void {
    const controller = new AbortController();
    const progress: DownloadProgress[] = [];
    const promise = capture(() => current().download(entry, { signal: controller.signal, onProgress: (p) => progress.push(p) }));
    background = { promise, controller, progress };
  },
  pause(): void {
    background?.controller.abort();
  },
  progress(): DownloadProgress[] {
    return background?.progress ?? [];
  },
  wait(): Promise<Result<CachedModel>> {
    if (!background) throw new Error('harness: nothing started');
    return background.promise;
  },

  list: () => capture(() => current().list()),
  get: (id: string) => capture(() => current().get(id)),
  delete: (id: string, options?: { partialOnly?: boolean }) => capture(() => current().delete(id, options)),
  usage: () => capture(() => current().usage()),
  markUsed: (id: string) => capture(() => current().markUsed(id)),

  /** SHA-256 of each part, read back through the store's ranged sources, 1 MiB at a time. */
  hash(id: string): Promise<Result<string[]>> {
    return capture(async () => {
      const out: string[] = [];
      for (const source of await current().sources(id)) {
        const hash = new Sha256();
        for (let at = 0; at < source.size; at += 1 << 20) hash.update(await source.read(at, Math.min(1 << 20, source.size - at)));
        out.push(hash.hex());
      }
      return out;
    });
  },

  /**
   * Loads every tensor into GPU buffers with the engine's uploader, reading through the store's
   * ranged sources. The buffers stay until `verifyGpu`, so a spec can measure the heap of the load
   * alone.
   */
  loadToGpu(id: string): Promise<Result<{ tensors: number; bytes: number; ms: number; adapter: string }>> {
    return capture(async () => {
      const adapter = await navigator.gpu.requestAdapter();
      if (!adapter) throw new Error('no WebGPU adapter');
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxBufferSize: adapter.limits.maxBufferSize,
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        },
      });
      const model = await openGgufModel(await current().sources(id));
      const started = performance.now();
      const weights: GpuWeight[] = [];
      let bytes = 0;
      for (const tensor of model.tensors) {
        weights.push(await uploadWeight(device, tensor, (offset, length) => tensor.source.read(tensor.fileOffset + offset, length)));
        bytes += tensor.byteSize;
      }
      await device.queue.onSubmittedWorkDone();
      const ms = performance.now() - started;
      loaded = { device, weights, model };
      return { tensors: model.tensors.length, bytes, ms, adapter: adapter.info?.description || adapter.info?.vendor || 'unknown' };
    });
  },

  /** Compares the first and last 64 KiB of every loaded tensor's first buffer with the cache, then frees them. */
  verifyGpu(): Promise<Result<number>> {
    return capture(async () => {
      if (!loaded) throw new Error('harness: nothing loaded');
      const { device, weights, model } = loaded;
      let checked = 0;
      for (let i = 0; i < weights.length; i++) {
        const tensor = model.tensors[i]!;
        const part = weights[i]!.parts[0]!;
        const partBytes = Math.min(tensor.byteSize, part.rows * weights[i]!.rowBytes);
        const window = Math.min(65536, partBytes);
        for (const at of [0, Math.floor((partBytes - window) / 4) * 4]) {
          const staging = device.createBuffer({ size: Math.ceil(window / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
          const encoder = device.createCommandEncoder();
          encoder.copyBufferToBuffer(part.buffer, at, staging, 0, staging.size);
          device.queue.submit([encoder.finish()]);
          await staging.mapAsync(GPUMapMode.READ);
          const gpu = new Uint8Array(staging.getMappedRange().slice(0, window));
          staging.unmap();
          staging.destroy();
          const cpu = await tensor.source.read(tensor.fileOffset + at, window);
          if (gpu.some((b, k) => b !== cpu[k])) throw new Error(`GPU copy of ${tensor.name} at ${at} differs from the cache`);
          checked++;
        }
      }
      weights.forEach(destroyWeight);
      device.destroy();
      loaded = undefined;
      return checked;
    });
  },

  /** Reads every part through its ranged source in `window`-byte reads, keeping nothing. */
  readThrough(id: string, window: number): Promise<Result<{ bytes: number; ms: number }>> {
    return capture(async () => {
      const started = performance.now();
      let bytes = 0;
      for (const source of await current().sources(id)) {
        for (let at = 0; at < source.size; at += window) bytes += (await source.read(at, Math.min(window, source.size - at))).length;
      }
      return { bytes, ms: performance.now() - started };
    });
  },

  /** Imports the files chosen in the page's file input. */
  importSelected(copy: boolean): Promise<Result<CachedModel>> {
    const input = document.querySelector<HTMLInputElement>('#file')!;
    const files = orderParts([...(input.files ?? [])]);
    return capture(() => current().importFile(files, { copy }));
  },
  dropped: () => dropped,

  /** The network alone: fetch `url` and discard the body. */
  async fetchRate(url: string): Promise<{ MBps: number }> {
    const started = performance.now();
    const reader = (await fetch(url, { cache: 'no-store' })).body!.getReader();
    let bytes = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.length;
    return { MBps: bytes / 1e6 / ((performance.now() - started) / 1000) };
  },

  /** The incremental SHA-256 alone, over `mb` MB in 4 MiB updates. */
  shaRate(mb: number): { MBps: number } {
    const chunk = new Uint8Array(4 << 20);
    crypto.getRandomValues(chunk.subarray(0, 65536));
    const hash = new Sha256();
    const count = Math.ceil((mb * 1e6) / chunk.length);
    const started = performance.now();
    for (let i = 0; i < count; i++) hash.update(chunk);
    hash.hex();
    return { MBps: (count * chunk.length) / 1e6 / ((performance.now() - started) / 1000) };
  },

  /** Raw IndexedDB rate with idb-keyval: writes then reads `totalBytes` in `chunkBytes` values. */
  async rawIdb(totalBytes: number, chunkBytes: number): Promise<{ writeMBs: number; readMBs: number }> {
    const db = createStore(`raw-idb-bench-${chunkBytes}`, 'chunks');
    const count = Math.ceil(totalBytes / chunkBytes);
    const chunk = new Uint8Array(chunkBytes);
    crypto.getRandomValues(chunk.subarray(0, Math.min(chunkBytes, 65536)));
    const keys = Array.from({ length: count }, (_, i) => i);
    let t = performance.now();
    for (const key of keys) await setMany([[key, chunk]], db);
    const writeMs = performance.now() - t;
    t = performance.now();
    let read = 0;
    for (const key of keys) {
      const [value] = await getMany<Uint8Array>([key], db);
      read += value!.length;
    }
    const readMs = performance.now() - t;
    await delMany(keys, db);
    const mb = (count * chunkBytes) / 1e6;
    if (read !== count * chunkBytes) throw new Error('raw IndexedDB read back the wrong number of bytes');
    return { writeMBs: mb / (writeMs / 1000), readMBs: mb / (readMs / 1000) };
  },
};

/** Split parts dropped or picked in any order are imported in part order. */
function orderParts(files: File[]): File[] {
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

const drop = document.querySelector<HTMLElement>('#drop')!;
drop.addEventListener('dragover', (event) => event.preventDefault());
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  const files = orderParts([...(event.dataTransfer?.files ?? [])]);
  void capture(() => current().importFile(files, { copy: false })).then((result) => dropped.push(result));
});

declare global {
  interface Window {
    harness: typeof harness;
  }
}
window.harness = harness;
document.querySelector('#status')!.textContent = 'ready';
