/**
 * The model store: GGUF files downloaded (or copied from a local file) into IndexedDB in fixed-size
 * chunks, with resume, integrity checks and quota handling, and read back through a
 * {@link RangedSource} so loading never holds a whole model in JS memory.
 *
 * IndexedDB layout (through idb-keyval, one object store per database):
 *
 *   database `${dbName}`, store `models`:  key = model id (string)           -> {@link ModelRecord}
 *   database `${dbName}-chunks`, store `chunks`: key = [id, part, index]     -> Uint8Array
 *
 * Chunk `index` of part `part` holds bytes [index * chunkBytes, (index + 1) * chunkBytes) of that
 * part's file; every chunk is exactly `chunkBytes` long except the last of a part. `chunkBytes` is
 * recorded per model, so changing the default later never misreads an existing cache. The default,
 * 4 MiB, was chosen by measurement: see {@link DEFAULT_CHUNK_BYTES}.
 *
 * A chunk is written before the record that counts it, so a crash between the two leaves a record
 * that under-counts: the resume rewrites that chunk. A part's `stored` is always a whole number of
 * chunks until the part is complete, which is what lets a resume ask for `Range: bytes=stored-`.
 * When the catalog gives a SHA-256, the hash state is saved with each record update, so a resumed
 * download keeps hashing where it stopped. (Without one nothing is hashed: the in-page SHA-256 is
 * slower than the rest of the download path and would halve its rate; the size and the GGUF check
 * still apply.) A model is `complete` only after every part has its full size, its hash (when the
 * catalog gave one) matches, and the GGUF header of the whole (split) model parses.
 *
 * Local files read in place (`importFile(file, { copy: false })`) are not in IndexedDB at all:
 * they are listed with origin `session` and gone after a reload.
 */
import { createStore, del, delMany, get, getMany, set, values, type UseStore } from 'idb-keyval';
import { blobSource, checkRange, type RangedSource } from '../gguf/source.ts';
import { openGgufModel, splitFileNames } from '../gguf/split.ts';
import { ggmlTypeName, type GgmlType } from '../gguf/ggml-types.ts';
import type { GgufTensorInfo } from '../gguf/types.ts';
import { Sha256, type Sha256State } from './sha256.ts';
import {
  DownloadError,
  DownloadInProgressError,
  IntegrityError,
  ModelNotFoundError,
  StorageQuotaError,
  formatBytes,
} from './errors.ts';

/**
 * 4 MiB, by measurement (e2e/store/bench.ts, Chromium 156, 2 shared and heavily loaded cores; see
 * e2e/store/BENCH.md). Writing 256 MiB through idb-keyval, medians of 4-5 runs: 256 KiB values
 * about 215 MB/s, 1 MiB 250, 4 MiB 335, 16 MiB 195 (each +-30%); the store's own download of a
 * 256 MiB file was fastest at 4 MiB in both sweeps (115 and 81 MB/s against 58-109 for the
 * others). Reads showed no consistent winner. Smaller chunks pay a transaction per chunk; larger
 * ones cost more on every failure (a cut connection re-fetches up to one chunk) and more memory
 * per chunk in flight (two during a download).
 */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** What the browser's `navigator.storage` offers; injected so the store runs in Node tests. */
export interface StorageManagerLike {
  estimate?(): Promise<{ usage?: number; quota?: number }>;
  persist?(): Promise<boolean>;
  persisted?(): Promise<boolean>;
}

/** A catalog entry to download. */
export interface ModelEntry {
  id: string;
  name?: string;
  /**
   * One URL, or one per part of a split model in order. A single URL named like
   * `m-00001-of-00003.gguf` is expanded to all its parts.
   */
  urls: string[];
  /** Total bytes of all parts, when the catalog knows it. */
  size?: number;
  /** Lowercase hex SHA-256: one for a single file, one per part for a split model. */
  sha256?: string | string[];
  quantization?: string;
}

export interface DownloadProgress {
  id: string;
  phase: 'downloading' | 'retrying' | 'verifying';
  /** 0-based part being transferred, of `parts`. */
  part: number;
  parts: number;
  /** Bytes received so far, all parts. */
  bytes: number;
  /** Total bytes, once known. */
  total: number | undefined;
  /** Bytes per second over the last few seconds. */
  rate: number;
  /** Seconds left at the current rate, when total and rate are known. */
  eta: number | undefined;
  /** In the `retrying` phase: the failed attempt's number, the wait, and why. */
  attempt?: number;
  retryInMs?: number;
  reason?: string;
}

export interface DownloadOptions {
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborting pauses: the bytes stored so far stay, and `download` again resumes. */
  signal?: AbortSignal;
}

export interface ImportOptions {
  /** Copy into IndexedDB (survives reloads) or read the file in place (this session only). */
  copy: boolean;
  id?: string;
  name?: string;
  quantization?: string;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface CachedModel {
  id: string;
  name: string;
  /** Total bytes, when known. */
  size: number | undefined;
  /** Bytes held in IndexedDB (0 for a file read in place). */
  storedBytes: number;
  quantization: string | undefined;
  state: 'complete' | 'partial';
  /** `download`: from URLs; `file`: copied from a local file; `session`: a local file read in place. */
  origin: 'download' | 'file' | 'session';
  parts: number;
  /** SHA-256 per part, once complete and verified against the catalog's (undefined without one). */
  sha256: string[] | undefined;
  createdAt: number;
  lastUsed: number | undefined;
}

export interface StoreUsage {
  /** Bytes the store holds in IndexedDB, all models. */
  modelBytes: number;
  /** The origin's usage and quota from `navigator.storage.estimate()`, when available. */
  usage: number | undefined;
  quota: number | undefined;
  /** Whether the browser granted persistent storage (not evicted under pressure). */
  persisted: boolean | undefined;
}

/** One file of a model, as stored. */
interface PartRecord {
  /** Where it comes from (URL) or the local file's name. */
  source: string;
  size: number | undefined;
  /** Bytes committed to IndexedDB: a multiple of chunkBytes until the part is complete. */
  stored: number;
  expectedSha256: string | undefined;
  /** Hash state of the stored bytes, saved at every commit, when there is a hash to check. */
  hash: Sha256State | undefined;
  /** The verified SHA-256, once complete. */
  sha256: string | undefined;
}

/** The IndexedDB record of one model. */
export interface ModelRecord {
  id: string;
  name: string;
  origin: 'download' | 'file';
  quantization: string | undefined;
  chunkBytes: number;
  state: 'complete' | 'partial';
  parts: PartRecord[];
  createdAt: number;
  lastUsed: number | undefined;
}

export interface ModelStoreOptions {
  /** Database name prefix. Default `hearth-models`. */
  dbName?: string;
  /** Chunk size for new models. Default {@link DEFAULT_CHUNK_BYTES}. */
  chunkBytes?: number;
  /** Default `navigator.storage`; `null` for none. */
  storage?: StorageManagerLike | null;
  fetch?: typeof fetch;
  /** Extra request headers (a private mirror's authorization). */
  headers?: Record<string, string>;
  /** Attempts in a row without progress before giving up (default 6), and the backoff. */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** Chunks kept in memory per open source (default 4), besides the read-ahead. */
  readCacheChunks?: number;
  /**
   * Chunks fetched ahead of a sequential reader, overlapping IndexedDB with the caller's work.
   * Default 0: in Chromium (e2e/store/bench.ts, 1 GB) 4 chunks ahead did not speed up the load to
   * the GPU (101 -> 110 MB/s, within noise) and raised the peak heap from about 200 MB to 340-480 MB.
   */
  readAheadChunks?: number;
  now?: () => number;
}

type PartSource = { kind: 'http'; url: string } | { kind: 'blob'; blob: Blob };

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException('The download was paused; call download again to resume.', 'AbortError');
}

const isAbort = (error: unknown) => error instanceof Error && error.name === 'AbortError';
const isQuota = (error: unknown) =>
  error instanceof Error && (error.name === 'QuotaExceededError' || /quota/i.test(error.message));

/** An error that another attempt may fix (network, 5xx, a connection closed early). */
class RetryableError extends Error {}

function parseContentRange(header: string | null): { start: number; end: number; total: number | undefined } | undefined {
  const match = header === null ? null : /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header);
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === '*' ? undefined : Number(match[3]) };
}

/** Moving rate over the last few seconds, for progress events. */
class RateMeter {
  private samples: Array<{ t: number; bytes: number }> = [];
  constructor(private readonly now: () => number) {}
  add(bytes: number): number {
    const t = this.now();
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > 3000) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (t - first.t) / 1000;
    return dt > 0 ? (bytes - first.bytes) / dt : 0;
  }
}

export class ModelStore {
  private readonly meta: UseStore;
  private readonly chunks: UseStore;
  private readonly chunkBytes: number;
  private readonly storage: StorageManagerLike | null;
  private readonly fetchFn: typeof fetch;
  private readonly headers: Record<string, string>;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly readCacheChunks: number;
  private readonly readAheadChunks: number;
  private readonly now: () => number;
  private readonly active = new Set<string>();
  /** Local files read in place: not in IndexedDB, gone after a reload. */
  private readonly session = new Map<string, { model: CachedModel; blobs: Blob[] }>();
  private persistRequested = false;

  constructor(options: ModelStoreOptions = {}) {
    const dbName = options.dbName ?? 'hearth-models';
    this.meta = createStore(dbName, 'models');
    this.chunks = createStore(`${dbName}-chunks`, 'chunks');
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 64 || this.chunkBytes % 64 !== 0) {
      throw new RangeError(`chunkBytes must be a positive multiple of 64, got ${this.chunkBytes}`);
    }
    this.storage =
      options.storage !== undefined ? options.storage : ((globalThis.navigator as Navigator | undefined)?.storage ?? null);
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.headers = options.headers ?? {};
    this.attempts = options.retry?.attempts ?? 6;
    this.baseDelayMs = options.retry?.baseDelayMs ?? 1000;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 30_000;
    this.readCacheChunks = options.readCacheChunks ?? 4;
    this.readAheadChunks = options.readAheadChunks ?? 0;
    this.now = options.now ?? (() => Date.now());
  }

  // ---------------------------------------------------------------- management

  /** Every model: complete and partial downloads, copied files, files read in place. */
  async list(): Promise<CachedModel[]> {
    const records = (await values<ModelRecord>(this.meta)).filter((r) => r && typeof r.id === 'string');
    const models = records.map(toCachedModel);
    for (const { model } of this.session.values()) models.push(model);
    return models.sort((a, b) => (b.lastUsed ?? b.createdAt) - (a.lastUsed ?? a.createdAt));
  }

  /** The model, or undefined. */
  async get(id: string): Promise<CachedModel | undefined> {
    const session = this.session.get(id);
    if (session) return session.model;
    const record = await get<ModelRecord>(id, this.meta);
    return record ? toCachedModel(record) : undefined;
  }

  /**
   * Deletes a model and its bytes. With `partialOnly`, deletes only an incomplete download (a
   * complete model is kept). Returns whether something was deleted.
   */
  async delete(id: string, options: { partialOnly?: boolean } = {}): Promise<boolean> {
    if (this.active.has(id)) {
      throw new DownloadInProgressError(`"${id}" is downloading; pause it before deleting it.`, { id });
    }
    if (this.session.has(id)) {
      if (options.partialOnly) return false;
      return this.session.delete(id);
    }
    const record = await get<ModelRecord>(id, this.meta);
    if (!record) return false;
    if (options.partialOnly && record.state === 'complete') return false;
    await this.deleteRecord(record);
    return true;
  }

  async markUsed(id: string): Promise<void> {
    const session = this.session.get(id);
    if (session) {
      session.model.lastUsed = this.now();
      return;
    }
    const record = await get<ModelRecord>(id, this.meta);
    if (!record) throw new ModelNotFoundError(`No cached model "${id}".`, { id });
    record.lastUsed = this.now();
    await set(id, record, this.meta);
  }

  async usage(): Promise<StoreUsage> {
    const records = await values<ModelRecord>(this.meta);
    const modelBytes = records.reduce((sum, r) => sum + r.parts.reduce((s, p) => s + p.stored, 0), 0);
    const estimate = await this.storage?.estimate?.().catch(() => undefined);
    const persisted = await this.storage?.persisted?.().catch(() => undefined);
    return { modelBytes, usage: estimate?.usage, quota: estimate?.quota, persisted };
  }

  // ---------------------------------------------------------------- reading

  /** A ranged reader over part `part` of a complete model, reading chunks on demand. */
  async source(id: string, part = 0): Promise<RangedSource> {
    const sources = await this.sources(id);
    const source = sources[part];
    if (!source) throw new ModelNotFoundError(`Model "${id}" has no part ${part}.`, { id, part });
    return source;
  }

  /** One ranged reader per part, in the order stored (`openGgufModel` puts them in `split.no` order). */
  async sources(id: string): Promise<RangedSource[]> {
    const session = this.session.get(id);
    if (session) return session.blobs.map((blob) => blobSource(blob, (blob as File).name));
    const record = await get<ModelRecord>(id, this.meta);
    if (!record) throw new ModelNotFoundError(`No cached model "${id}". Download it or open a local file first.`, { id });
    if (record.state !== 'complete') {
      const stored = record.parts.reduce((s, p) => s + p.stored, 0);
      throw new ModelNotFoundError(
        `"${record.name}" is only partly downloaded (${formatBytes(stored)} of ${formatBytes(totalSize(record))}). Resume the download to use it.`,
        { id, storedBytes: stored },
      );
    }
    return record.parts.map((_, i) => this.chunkSource(record, i));
  }

  private chunkSource(record: ModelRecord, part: number): RangedSource {
    const { id, chunkBytes } = record;
    const size = record.parts[part]!.size!;
    const name = record.parts[part]!.source;
    const chunks = this.chunks;
    const lastChunk = Math.max(0, Math.ceil(size / chunkBytes) - 1);
    // Sequential reads (a model load) fetch up to `readAheadChunks` ahead while the caller uses
    // the current ones, so IndexedDB reads overlap the GPU uploads; the cache holds those too.
    const readAhead = this.readAheadChunks;
    const capacity = this.readCacheChunks + readAhead;
    // Map order is the LRU order: a hit is re-inserted at the end.
    const cache = new Map<number, Promise<Uint8Array>>();
    let nextOffset = 0;

    const check = (index: number, bytes: Uint8Array | undefined): Uint8Array => {
      const expected = Math.min(chunkBytes, size - index * chunkBytes);
      if (!(bytes instanceof Uint8Array) || bytes.length !== expected) {
        throw new IntegrityError(
          `The cached copy of "${record.name}" is damaged (chunk ${index} of part ${part + 1} is missing or the wrong size). Delete it and download it again.`,
          { id, part, index, expected, got: bytes instanceof Uint8Array ? bytes.length : null },
        );
      }
      return bytes;
    };
    const remember = (index: number, promise: Promise<Uint8Array>): void => {
      promise.catch(() => cache.get(index) === promise && cache.delete(index));
      cache.set(index, promise);
      while (cache.size > capacity) cache.delete(cache.keys().next().value!);
    };
    /**
     * Chunks `indices`, from the cache or in one IndexedDB transaction for the rest (many small
     * transactions in flight made Chromium hold far more memory than the chunks themselves).
     */
    const chunksOf = (indices: number[]): Array<Promise<Uint8Array>> => {
      const out = new Map<number, Promise<Uint8Array>>();
      const missing: number[] = [];
      for (const index of indices) {
        const hit = cache.get(index);
        if (hit) {
          cache.delete(index);
          cache.set(index, hit);
          out.set(index, hit);
        } else missing.push(index);
      }
      if (missing.length > 0) {
        const batch = getMany<Uint8Array>(missing.map((i) => [id, part, i]), chunks);
        missing.forEach((index, k) => {
          const promise = batch.then((values) => check(index, values[k]));
          remember(index, promise);
          out.set(index, promise);
        });
      }
      return indices.map((i) => out.get(i)!);
    };

    const source: RangedSource = {
      size,
      name,
      async read(offset, length) {
        checkRange(source, offset, length);
        if (length === 0) return new Uint8Array(0);
        const first = Math.floor(offset / chunkBytes);
        const last = Math.floor((offset + length - 1) / chunkBytes);
        const needed = chunksOf(Array.from({ length: last - first + 1 }, (_, k) => first + k));
        if (offset === nextOffset && readAhead > 0) {
          const ahead = Math.min(lastChunk, last + Math.min(needed.length, readAhead));
          const next: number[] = [];
          for (let i = last + 1; i <= ahead; i++) if (!cache.has(i)) next.push(i);
          if (next.length > 0) for (const promise of chunksOf(next)) promise.catch(() => undefined);
        }
        nextOffset = offset + length;
        if (needed.length === 1) {
          const bytes = await needed[0]!;
          const at = offset - first * chunkBytes;
          return bytes.subarray(at, at + length);
        }
        const out = new Uint8Array(length);
        const parts = await Promise.all(needed);
        parts.forEach((bytes, k) => {
          const chunkStart = (first + k) * chunkBytes;
          const from = Math.max(offset, chunkStart) - chunkStart;
          const to = Math.min(offset + length, chunkStart + bytes.length) - chunkStart;
          out.set(bytes.subarray(from, to), chunkStart + from - offset);
        });
        return out;
      },
    };
    return source;
  }

  // ---------------------------------------------------------------- download

  /**
   * Downloads (or resumes) a model into the cache and returns it once complete and verified.
   * Aborting `signal` pauses: the stored chunks stay and calling `download` again continues with
   * a Range request. Throws {@link StorageQuotaError}, {@link DownloadError} (partial kept),
   * {@link IntegrityError} (damaged data deleted).
   */
  async download(entry: ModelEntry, options: DownloadOptions = {}): Promise<CachedModel> {
    const urls = expandUrls(entry.urls);
    const hashes = entry.sha256 === undefined ? [] : Array.isArray(entry.sha256) ? entry.sha256 : [entry.sha256];
    if (hashes.length > 0 && hashes.length !== urls.length) {
      throw new RangeError(`model "${entry.id}": ${hashes.length} SHA-256 values for ${urls.length} parts`);
    }
    return this.run(entry.id, options, async () => {
      let record = await get<ModelRecord>(entry.id, this.meta);
      if (record && (record.origin !== 'download' || record.parts.map((p) => p.source).join('\n') !== urls.join('\n'))) {
        throw new DownloadError(
          `A different model is already stored as "${entry.id}". Delete it before downloading this one.`,
          { id: entry.id },
        );
      }
      if (record?.state === 'complete') return toCachedModel(record);
      if (!record) {
        record = {
          id: entry.id,
          name: entry.name ?? nameFromUrl(urls[0]!),
          origin: 'download',
          quantization: entry.quantization,
          chunkBytes: this.chunkBytes,
          state: 'partial',
          parts: urls.map((url, i) => ({
            source: url,
            size: undefined,
            stored: 0,
            expectedSha256: hashes[i]?.toLowerCase(),
            hash: hashes[i] !== undefined ? new Sha256().save() : undefined,
            sha256: undefined,
          })),
          createdAt: this.now(),
          lastUsed: undefined,
        };
      }
      // Sizes of every part before the first byte is stored, so the quota check covers the whole model.
      for (const part of record.parts) {
        if (part.size === undefined) part.size = await this.probeSize(part.source, options.signal);
      }
      if (entry.size !== undefined && totalSize(record) !== entry.size) {
        throw new IntegrityError(
          `The server's copy of "${record.name}" is ${formatBytes(totalSize(record))}, but the catalog says ${formatBytes(entry.size)}. The file may have changed; nothing was downloaded.`,
          { id: entry.id, serverBytes: totalSize(record), catalogBytes: entry.size },
        );
      }
      await this.checkSpace(record);
      await set(record.id, record, this.meta);
      await this.requestPersistence();
      const sources: PartSource[] = urls.map((url) => ({ kind: 'http', url }));
      return this.fill(record, sources, options);
    });
  }

  /**
   * Adds a local GGUF file (or all parts of a split model, in order). With `copy`, its bytes go
   * into IndexedDB and it survives reloads; without, it is read in place
   * through `Blob.slice` for this session only.
   */
  async importFile(file: Blob | Blob[], options: ImportOptions): Promise<CachedModel> {
    const blobs = Array.isArray(file) ? file : [file];
    if (blobs.length === 0) throw new RangeError('importFile: no file');
    const fileName = (blobs[0] as File).name ?? 'local model';
    const id = options.id ?? `file:${fileName}:${blobs.reduce((s, b) => s + b.size, 0)}`;
    const quantization = options.quantization ?? (await this.validate(blobs.map((b) => blobSource(b, (b as File).name)), fileName, id));
    if (!options.copy) {
      const model: CachedModel = {
        id,
        name: options.name ?? fileName,
        size: blobs.reduce((s, b) => s + b.size, 0),
        storedBytes: 0,
        quantization,
        state: 'complete',
        origin: 'session',
        parts: blobs.length,
        sha256: undefined,
        createdAt: this.now(),
        lastUsed: undefined,
      };
      this.session.set(id, { model, blobs });
      return model;
    }
    return this.run(id, options, async () => {
      let record = await get<ModelRecord>(id, this.meta);
      const sizesMatch = record?.parts.length === blobs.length && record.parts.every((p, i) => p.size === blobs[i]!.size);
      if (record?.state === 'complete' && sizesMatch) return toCachedModel(record);
      if (record && !sizesMatch) await this.deleteRecord(record);
      if (!record || !sizesMatch) {
        record = {
          id,
          name: options.name ?? fileName,
          origin: 'file',
          quantization,
          chunkBytes: this.chunkBytes,
          state: 'partial',
          parts: blobs.map((blob) => ({
            source: (blob as File).name ?? fileName,
            size: blob.size,
            stored: 0,
            expectedSha256: undefined,
            hash: undefined,
            sha256: undefined,
          })),
          createdAt: this.now(),
          lastUsed: undefined,
        };
      }
      await this.checkSpace(record);
      await set(record.id, record, this.meta);
      await this.requestPersistence();
      return this.fill(record, blobs.map((blob) => ({ kind: 'blob', blob })), options);
    });
  }

  private async run<T>(id: string, options: { signal?: AbortSignal }, body: () => Promise<T>): Promise<T> {
    if (this.active.has(id)) throw new DownloadInProgressError(`"${id}" is already downloading.`, { id });
    if (options.signal?.aborted) throw abortError(options.signal);
    this.active.add(id);
    try {
      return await body();
    } finally {
      this.active.delete(id);
    }
  }

  /** Transfers every incomplete part, verifies, and marks the model complete. */
  private async fill(record: ModelRecord, sources: PartSource[], options: DownloadOptions): Promise<CachedModel> {
    const meter = new RateMeter(this.now);
    const total = totalSize(record);
    let lastEmit = 0;
    const emit = (progress: Omit<DownloadProgress, 'id' | 'parts' | 'total' | 'rate' | 'eta'>, force = false) => {
      if (!options.onProgress) return;
      const rate = meter.add(progress.bytes);
      const t = this.now();
      if (!force && t - lastEmit < 100) return;
      lastEmit = t;
      const eta = rate > 0 ? (total - progress.bytes) / rate : undefined;
      options.onProgress({ id: record.id, parts: record.parts.length, total, rate, eta, ...progress });
    };

    for (let p = 0; p < record.parts.length; p++) {
      const part = record.parts[p]!;
      const before = record.parts.slice(0, p).reduce((s, q) => s + q.size!, 0);
      if (part.stored < part.size!) {
        const source = sources[p]!;
        let failures = 0;
        for (;;) {
          const startedAt = part.stored;
          try {
            if (source.kind === 'http') await this.transferHttp(record, p, source.url, before, emit, options.signal);
            else await this.transferBlob(record, p, source.blob, before, emit, options.signal);
            break;
          } catch (error) {
            if (isAbort(error) || options.signal?.aborted) throw options.signal ? abortError(options.signal) : error;
            if (isQuota(error) && !(error instanceof StorageQuotaError)) throw this.quotaError(record, error);
            if (!(error instanceof RetryableError)) throw error;
            failures = part.stored > startedAt ? 1 : failures + 1;
            if (failures >= this.attempts) {
              throw new DownloadError(
                `Downloading "${record.name}" failed ${failures} times in a row (${error.message}). ${formatBytes(storedBytes(record))} are kept: try again later to resume.`,
                { id: record.id, url: part.source, partialBytes: storedBytes(record), reason: error.message },
              );
            }
            const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (failures - 1));
            emit({ phase: 'retrying', part: p, bytes: before + part.stored, attempt: failures, retryInMs: delay, reason: error.message }, true);
            await sleep(delay, options.signal);
          }
        }
      }
      // The part's bytes are all stored: check its hash now, before spending time on the next part.
      const digest = part.hash ? Sha256.restore(part.hash).hex() : undefined;
      if (part.expectedSha256 !== undefined && digest !== part.expectedSha256) {
        await this.deleteRecord(record);
        throw new IntegrityError(
          `"${record.name}" is corrupted: its SHA-256 is ${digest}, expected ${part.expectedSha256}. The damaged download was deleted; download it again.`,
          { id: record.id, part: p, url: part.source, expected: part.expectedSha256, actual: digest },
        );
      }
      part.sha256 = digest;
    }

    emit({ phase: 'verifying', part: record.parts.length - 1, bytes: total }, true);
    const quantization = await this.validate(
      record.parts.map((_, i) => this.chunkSource(record, i)),
      record.name,
      record.id,
      () => this.deleteRecord(record),
    );
    record.quantization ??= quantization;
    record.state = 'complete';
    await set(record.id, record, this.meta);
    return toCachedModel(record);
  }

  /** One HTTP attempt for part `p`, from its stored bytes to the end. */
  private async transferHttp(
    record: ModelRecord,
    p: number,
    url: string,
    before: number,
    emit: (progress: Omit<DownloadProgress, 'id' | 'parts' | 'total' | 'rate' | 'eta'>) => void,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const part = record.parts[p]!;
    const start = part.stored;
    let response: Response;
    try {
      response = await this.fetchFn(url, {
        headers: { ...this.headers, Range: `bytes=${start}-` },
        cache: 'no-store',
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw new RetryableError(`network error: ${(error as Error).message}`);
    }
    let skip = 0;
    if (response.status === 206) {
      const range = parseContentRange(response.headers.get('Content-Range'));
      if (!range || range.start !== start || (range.total !== undefined && range.total !== part.size)) {
        await response.body?.cancel().catch(() => undefined);
        throw new DownloadError(
          `The server sent the wrong part of "${record.name}" (Content-Range '${response.headers.get('Content-Range')}' for a request from byte ${start} of ${part.size}). The file may have changed on the server; delete the partial download and try again.`,
          { id: record.id, url, contentRange: response.headers.get('Content-Range'), start, partialBytes: storedBytes(record) },
        );
      }
    } else if (response.status === 200) {
      // The server ignores Range: the body is the whole file. Skip what is already stored.
      skip = start;
    } else if (response.status === 416 && start === part.size) {
      await response.body?.cancel().catch(() => undefined);
      return;
    } else {
      await response.body?.cancel().catch(() => undefined);
      throw httpError(record, url, response.status, response.statusText);
    }
    if (!response.body) throw new RetryableError('empty response body');
    const reader = response.body.getReader();
    try {
      await this.consume(record, p, reader, skip, before, emit, signal);
    } finally {
      // Stops the transfer when consume gave up early (a harmless no-op after the end).
      await reader.cancel().catch(() => undefined);
    }
  }

  /** Copies part `p` from a local file, from its stored bytes. */
  private async transferBlob(
    record: ModelRecord,
    p: number,
    blob: Blob,
    before: number,
    emit: (progress: Omit<DownloadProgress, 'id' | 'parts' | 'total' | 'rate' | 'eta'>) => void,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const part = record.parts[p]!;
    const chunkBytes = record.chunkBytes;
    let at = part.stored;
    const reader: ReadableStreamDefaultReader<Uint8Array> = {
      async read() {
        if (signal?.aborted) throw abortError(signal);
        if (at >= blob.size) return { done: true, value: undefined };
        const bytes = new Uint8Array(await blob.slice(at, Math.min(blob.size, at + chunkBytes)).arrayBuffer());
        at += bytes.length;
        return { done: false, value: bytes };
      },
    } as ReadableStreamDefaultReader<Uint8Array>;
    await this.consume(record, p, reader, 0, before, emit, signal);
  }

  /**
   * Reads a body into chunks, committing each full chunk (and the last one at the end of the
   * part). Bytes of an unfinished chunk are dropped on failure: the resume restarts at a chunk
   * boundary, so `stored` stays a multiple of the chunk size.
   */
  private async consume(
    record: ModelRecord,
    p: number,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    skip: number,
    before: number,
    emit: (progress: Omit<DownloadProgress, 'id' | 'parts' | 'total' | 'rate' | 'eta'>) => void,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const part = record.parts[p]!;
    const size = part.size!;
    const chunkBytes = record.chunkBytes;
    const hash = part.hash ? Sha256.restore(part.hash) : undefined;
    if (hash && hash.length !== part.stored) throw new IntegrityError(`internal: hash state of "${record.id}" does not match its stored bytes`, { id: record.id });
    // One chunk is written to IndexedDB while the next fills and the one after is hashed: the
    // write overlaps the network and the hashing. `handed` is the end of the bytes handed to a
    // commit; `part.stored` only moves once a commit has landed.
    let handed = part.stored;
    let pending: Promise<void> | undefined;
    const settle = async () => {
      const write = pending;
      pending = undefined;
      await write;
    };
    let buffer = new Uint8Array(Math.min(chunkBytes, size - part.stored));
    let fill = 0;
    try {
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          if (isAbort(error)) throw error;
          throw new RetryableError(`connection lost after ${formatBytes(before + handed + fill)}: ${(error as Error).message}`);
        }
        if (signal?.aborted) throw abortError(signal);
        if (result.done) break;
        let bytes = result.value;
        if (skip > 0) {
          const drop = Math.min(skip, bytes.length);
          skip -= drop;
          bytes = bytes.subarray(drop);
        }
        if (bytes.length > size - handed - fill) {
          throw new DownloadError(
            `The server sent more than the ${formatBytes(size)} it announced for "${record.name}". Delete the partial download and try again; if it repeats, the server is misconfigured.`,
            { id: record.id, url: part.source, size, partialBytes: storedBytes(record) },
          );
        }
        while (bytes.length > 0) {
          const take = Math.min(bytes.length, buffer.length - fill);
          buffer.set(bytes.subarray(0, take), fill);
          fill += take;
          bytes = bytes.subarray(take);
          if (fill === buffer.length) {
            const index = handed / chunkBytes;
            handed += buffer.length;
            hash?.update(buffer);
            const state = hash?.save();
            await settle();
            pending = this.commit(record, p, index, buffer, handed, state);
            // Handled when settled; this only keeps a failed write from being reported as unhandled meanwhile.
            pending.catch(() => undefined);
            fill = 0;
            const next = Math.min(chunkBytes, size - handed);
            if (next > 0) buffer = new Uint8Array(next);
          }
        }
        emit({ phase: 'downloading', part: p, bytes: before + handed + fill });
      }
      await settle();
    } catch (error) {
      // A failed write (the quota) explains more than the read error it caused.
      await settle();
      throw error;
    }
    if (part.stored < size) {
      throw new RetryableError(`the connection closed after ${formatBytes(before + part.stored + fill)} of ${formatBytes(totalSize(record))}`);
    }
  }

  /** Writes one chunk, then the record that counts it (see the layout comment at the top). */
  private async commit(record: ModelRecord, p: number, index: number, chunk: Uint8Array, stored: number, hash: Sha256State | undefined): Promise<void> {
    await set([record.id, p, index], chunk, this.chunks);
    const part = record.parts[p]!;
    part.stored = stored;
    part.hash = hash;
    await set(record.id, record, this.meta);
  }

  /** Learns a part's size from a one-byte Range request (or a 200's Content-Length). */
  private async probeSize(url: string, signal: AbortSignal | undefined): Promise<number> {
    let failures = 0;
    for (;;) {
      let response: Response;
      try {
        response = await this.fetchFn(url, { headers: { ...this.headers, Range: 'bytes=0-0' }, cache: 'no-store', ...(signal ? { signal } : {}) });
      } catch (error) {
        if (isAbort(error)) throw error;
        if (++failures >= this.attempts) {
          throw new DownloadError(`Cannot reach ${url} (${(error as Error).message}). Check the connection and try again.`, { url });
        }
        await sleep(Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (failures - 1)), signal);
        continue;
      }
      await response.body?.cancel().catch(() => undefined);
      if (response.status === 206) {
        const total = parseContentRange(response.headers.get('Content-Range'))?.total;
        if (total !== undefined) return total;
      } else if (response.status === 200) {
        const length = Number(response.headers.get('Content-Length') ?? NaN);
        if (Number.isSafeInteger(length) && !response.headers.get('Content-Encoding')) return length;
      } else if (response.status >= 500 && ++failures < this.attempts) {
        await sleep(Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (failures - 1)), signal);
        continue;
      } else {
        const error = httpError(undefined, url, response.status, response.statusText);
        if (error instanceof RetryableError) {
          throw new DownloadError(`${url} is not available: ${error.message} ${failures} times in a row. Try again later.`, {
            url,
            status: response.status,
          });
        }
        throw error;
      }
      throw new DownloadError(
        `${url} does not say how big the file is (no Content-Range or Content-Length visible; a cross-origin server must expose them with Access-Control-Expose-Headers).`,
        { url, status: response.status },
      );
    }
  }

  // ---------------------------------------------------------------- storage

  private async checkSpace(record: ModelRecord): Promise<void> {
    const needed = totalSize(record) - storedBytes(record);
    const estimate = await this.storage?.estimate?.().catch(() => undefined);
    if (!estimate || estimate.quota === undefined) return;
    const free = estimate.quota - (estimate.usage ?? 0);
    // IndexedDB stores a little more than the payload; 1% covers keys and records.
    if (needed * 1.01 > free) {
      throw new StorageQuotaError(
        `Not enough storage for "${record.name}": it needs ${formatBytes(needed)} more, but this browser allows only ${formatBytes(Math.max(0, free))} more for this site. Delete other models or free disk space, then try again.`,
        { id: record.id, neededBytes: needed, freeBytes: free, quota: estimate.quota, usage: estimate.usage },
      );
    }
  }

  private quotaError(record: ModelRecord, cause: unknown): StorageQuotaError {
    const kept = storedBytes(record);
    return new StorageQuotaError(
      `Storage ran out while saving "${record.name}" after ${formatBytes(kept)} of ${formatBytes(totalSize(record))}. Free space (delete other models) and download again to resume, or delete the partial download.`,
      { id: record.id, partialBytes: kept, cause: (cause as Error).name },
    );
  }

  private async requestPersistence(): Promise<void> {
    if (this.persistRequested || !this.storage?.persist) return;
    this.persistRequested = true;
    const already = await this.storage.persisted?.().catch(() => false);
    if (!already) await this.storage.persist().catch(() => false);
  }

  private async validate(sources: RangedSource[], name: string, id: string, onInvalid?: () => Promise<void>): Promise<string | undefined> {
    try {
      const model = await openGgufModel(sources);
      return dominantType(model.tensors);
    } catch (error) {
      await onInvalid?.();
      throw new IntegrityError(
        `"${name}" is not a usable GGUF model: ${(error as Error).message}` + (onInvalid ? ' The download was deleted.' : ''),
        { id, cause: (error as Error).name },
      );
    }
  }

  private async deleteRecord(record: ModelRecord): Promise<void> {
    // Record first shows nothing stored, so a crash mid-delete leaves an empty partial, not a
    // complete model with missing chunks.
    const keys: Array<[string, number, number]> = [];
    record.parts.forEach((part, p) => {
      const upTo = part.size !== undefined ? part.size : part.stored + record.chunkBytes;
      // One past the count: a chunk written just before a crash, not yet in the record.
      const count = Math.ceil(upTo / record.chunkBytes) + 1;
      for (let i = 0; i < count; i++) keys.push([record.id, p, i]);
    });
    const emptied: ModelRecord = { ...record, state: 'partial', parts: record.parts.map((q) => ({ ...q, stored: 0, hash: q.hash ? new Sha256().save() : undefined })) };
    await set(record.id, emptied, this.meta);
    await delMany(keys, this.chunks);
    await del(record.id, this.meta);
  }
}

function httpError(record: ModelRecord | undefined, url: string, status: number, statusText: string): Error {
  const what = record ? `"${record.name}"` : url;
  const detail = { url, status, partialBytes: record ? storedBytes(record) : 0 };
  if (status === 404 || status === 410) return new DownloadError(`${what} was not found on the server (${status}). The link may be outdated.`, detail);
  if (status === 401 || status === 403) {
    return new DownloadError(`The server refused access to ${what} (${status}). The model may be gated: accept its license on the model hub, or use another link.`, detail);
  }
  if (status >= 500 || status === 408 || status === 429) return new RetryableError(`the server answered ${status} ${statusText}`.trim());
  return new DownloadError(`Unexpected answer ${status} ${statusText} from the server for ${what}.`, detail);
}

function expandUrls(urls: string[]): string[] {
  if (urls.length === 0) throw new RangeError('a model entry needs at least one URL');
  if (urls.length === 1) {
    const url = urls[0]!;
    const [path, query] = splitQuery(url);
    const names = splitFileNames(path);
    if (names && names.length > 1) return names.map((n) => n + query);
  }
  return urls;
}

function splitQuery(url: string): [string, string] {
  const at = url.search(/[?#]/);
  return at < 0 ? [url, ''] : [url.slice(0, at), url.slice(at)];
}

function nameFromUrl(url: string): string {
  const path = splitQuery(url)[0];
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}

function totalSize(record: ModelRecord): number {
  return record.parts.reduce((s, p) => s + (p.size ?? NaN), 0);
}

function storedBytes(record: ModelRecord): number {
  return record.parts.reduce((s, p) => s + p.stored, 0);
}

/** The quantization people name a file by: the type holding the most bytes of 2-D weights. */
function dominantType(tensors: GgufTensorInfo[]): string | undefined {
  const bytes = new Map<GgmlType, number>();
  for (const t of tensors) if (t.shape.length >= 2) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.byteSize);
  let best: GgmlType | undefined;
  for (const [type, n] of bytes) if (best === undefined || n > bytes.get(best)!) best = type;
  return best === undefined ? undefined : ggmlTypeName(best).toUpperCase();
}

function toCachedModel(record: ModelRecord): CachedModel {
  const size = totalSize(record);
  return {
    id: record.id,
    name: record.name,
    size: Number.isNaN(size) ? undefined : size,
    storedBytes: storedBytes(record),
    quantization: record.quantization,
    state: record.state,
    origin: record.origin,
    parts: record.parts.length,
    sha256: record.state === 'complete' && record.parts.every((p) => p.sha256) ? record.parts.map((p) => p.sha256!) : undefined,
    createdAt: record.createdAt,
    lastUsed: record.lastUsed,
  };
}
