/**
 * The model store: GGUF files downloaded (or copied from a local file) into IndexedDB in fixed-size
 * chunks, with resume, integrity checks and quota handling, and read back through a
 * {@link RangedSource} so loading never holds a whole model in JS memory.
 *
 * This class is the facade; each job has its module: `records.ts` (the IndexedDB layout and the
 * crash-safe order of writes), `chunk-reader.ts` (reading chunks back, with read-ahead),
 * `fill.ts` (transfer with retries, then verification), `download.ts` (HTTP Range and resume),
 * `import-blob.ts` (local files), `chunk-writer.ts` (chunking and hashing a stream), `verify.ts`
 * (SHA-256 and GGUF checks), `quota.ts` (storage space and persistence).
 *
 * Local files read in place (`importFile(file, { copy: false })`) are not in IndexedDB at all:
 * they are listed with origin `session` and gone after a reload.
 */
import type { RangedSource } from '../gguf/source.ts';
import { expandSplitUrls } from '../gguf/split.ts';
import { chunkSource, type ChunkCacheOptions } from './chunk-reader.ts';
import { probeSize, type HttpOptions } from './download.ts';
import { DownloadError, DownloadInProgressError, IntegrityError, ModelNotFoundError, formatBytes } from './errors.ts';
import { fillModel, type FillContext, type PartSource } from './fill.ts';
import { platformLocks, withModelLock, type LockManagerLike } from './locks.ts';
import { DEFAULT_STALL_MS, stallGuardedFetch } from './stall-fetch.ts';
import { blobSources } from './import-blob.ts';
import { StorageQuota } from './quota.ts';
import { DEFAULT_CHUNK_BYTES, ModelDb, newModelRecord, storedBytes, toCachedModel, totalSize, type ModelRecord } from './records.ts';
import { abortError, type RetryPolicy } from './retry.ts';
import type { CachedModel, DownloadOptions, ImportOptions, ModelEntry, StorageManagerLike, StoreUsage } from './types.ts';
import { validateGguf } from './verify.ts';

export { DEFAULT_CHUNK_BYTES, type ModelRecord } from './records.ts';
export type { CachedModel, DownloadOptions, DownloadProgress, ImportOptions, ModelEntry, StorageManagerLike, StoreUsage } from './types.ts';

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
  /**
   * A request or body that sends nothing for this long fails and is retried with backoff
   * (default {@link DEFAULT_STALL_MS}); tests use a short one.
   */
  stallTimeoutMs?: number;
  /** Web Locks shared by the origin's tabs: default `navigator.locks`, `null` for none. */
  locks?: LockManagerLike | null;
}

export class ModelStore {
  private readonly db: ModelDb;
  private readonly chunkBytes: number;
  private readonly quota: StorageQuota;
  private readonly http: HttpOptions;
  private readonly cache: ChunkCacheOptions;
  private readonly fillContext: FillContext;
  private readonly now: () => number;
  private readonly active = new Set<string>();
  private readonly locks: LockManagerLike | null;
  /** Local files read in place: not in IndexedDB, gone after a reload. */
  private readonly session = new Map<string, { model: CachedModel; blobs: Blob[] }>();

  constructor(options: ModelStoreOptions = {}) {
    this.db = new ModelDb(options.dbName ?? 'hearth-models');
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 64 || this.chunkBytes % 64 !== 0) {
      throw new RangeError(`chunkBytes must be a positive multiple of 64, got ${this.chunkBytes}`);
    }
    this.quota = new StorageQuota(
      options.storage !== undefined ? options.storage : ((globalThis.navigator as Navigator | undefined)?.storage ?? null),
    );
    const retry: RetryPolicy = {
      attempts: options.retry?.attempts ?? 6,
      baseDelayMs: options.retry?.baseDelayMs ?? 1000,
      maxDelayMs: options.retry?.maxDelayMs ?? 30_000,
    };
    const baseFetch: typeof fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.http = { fetch: stallGuardedFetch(baseFetch, options.stallTimeoutMs ?? DEFAULT_STALL_MS), headers: options.headers ?? {}, retry };
    this.locks = options.locks !== undefined ? options.locks : platformLocks();
    this.cache = { readCacheChunks: options.readCacheChunks ?? 4, readAheadChunks: options.readAheadChunks ?? 0 };
    this.now = options.now ?? (() => Date.now());
    this.fillContext = { db: this.db, http: this.http, retry, cache: this.cache, now: this.now };
  }

  // ---------------------------------------------------------------- management

  /** Every model: complete and partial downloads, copied files, files read in place. */
  async list(): Promise<CachedModel[]> {
    const records = (await this.db.records()).filter((r) => r && typeof r.id === 'string');
    for (const record of records) {
      if (record.state === 'complete' && record.kind === undefined) await this.readKind(record);
    }
    const models = records.map(toCachedModel);
    for (const { model } of this.session.values()) models.push(model);
    return models.sort((a, b) => (b.lastUsed ?? b.createdAt) - (a.lastUsed ?? a.createdAt));
  }

  /** The model, or undefined. */
  async get(id: string): Promise<CachedModel | undefined> {
    const session = this.session.get(id);
    if (session) return session.model;
    const record = await this.db.record(id);
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
    return withModelLock(this.locks, id, () => busyElsewhere(id, 'delete'), async () => {
      const record = await this.db.record(id);
      if (!record) return false;
      if (options.partialOnly && record.state === 'complete') return false;
      await this.db.deleteModel(record);
      return true;
    });
  }

  async markUsed(id: string): Promise<void> {
    const session = this.session.get(id);
    if (session) {
      session.model.lastUsed = this.now();
      return;
    }
    const record = await this.db.record(id);
    if (!record) throw new ModelNotFoundError(`No cached model "${id}".`, { id });
    record.lastUsed = this.now();
    await this.db.putRecord(record);
  }

  async usage(): Promise<StoreUsage> {
    const records = await this.db.records();
    const modelBytes = records.reduce((sum, r) => sum + storedBytes(r), 0);
    return { modelBytes, ...(await this.quota.origin()) };
  }

  /** A record stored before kinds were recorded: read its header once and keep what it is. */
  private async readKind(record: ModelRecord): Promise<void> {
    try {
      const kind = await validateGguf(record.parts.map((_, i) => chunkSource(this.db, record, i, this.cache)), record.name, record.id);
      Object.assign(record, { kind: kind.kind, architecture: kind.architecture, adapter: kind.adapter });
      await this.db.putRecord(record);
    } catch {
      // Unreadable now (verified when stored): listed without a kind, which the app treats as a model.
    }
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
    if (session) return blobSources(session.blobs);
    const record = await this.db.record(id);
    if (!record) throw new ModelNotFoundError(`No cached model "${id}". Download it or open a local file first.`, { id });
    if (record.state !== 'complete') {
      const stored = storedBytes(record);
      throw new ModelNotFoundError(
        `"${record.name}" is only partly downloaded (${formatBytes(stored)} of ${formatBytes(totalSize(record))}). Resume the download to use it.`,
        { id, storedBytes: stored },
      );
    }
    return record.parts.map((_, i) => chunkSource(this.db, record, i, this.cache));
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
      let record = await this.db.record(entry.id);
      if (record && (record.origin !== 'download' || record.parts.map((p) => p.source).join('\n') !== urls.join('\n'))) {
        throw new DownloadError(
          `A different model is already stored as "${entry.id}". Delete it before downloading this one.`,
          { id: entry.id },
        );
      }
      if (record?.state === 'complete') return toCachedModel(record);
      if (!record) {
        record = newModelRecord(
          { id: entry.id, name: entry.name ?? nameFromUrl(urls[0]!), origin: 'download', quantization: entry.quantization, chunkBytes: this.chunkBytes, createdAt: this.now() },
          urls.map((url, i) => ({ source: url, size: undefined, expectedSha256: hashes[i]?.toLowerCase() })),
        );
      }
      // Sizes of every part before the first byte is stored, so the quota check covers the whole model.
      for (const part of record.parts) {
        if (part.size === undefined) Object.assign(part, await probeSize(this.http, part.source, options.signal));
      }
      if (entry.size !== undefined && totalSize(record) !== entry.size) {
        throw new IntegrityError(
          `The server's copy of "${record.name}" is ${formatBytes(totalSize(record))}, but the catalog says ${formatBytes(entry.size)}. The file may have changed; nothing was downloaded.`,
          { id: entry.id, serverBytes: totalSize(record), catalogBytes: entry.size },
        );
      }
      return this.fill(record, urls.map((url) => ({ kind: 'http', url })), options);
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
    const id = options.id ?? fileModelId(blobs);
    const described = await validateGguf(blobSources(blobs), fileName, id);
    const quantization = options.quantization ?? described.quantization;
    if (!options.copy) {
      const model: CachedModel = {
        id,
        name: options.name ?? fileName,
        kind: described.kind,
        architecture: described.architecture,
        ...(described.adapter ? { adapter: described.adapter } : {}),
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
      let record = await this.db.record(id);
      const sizesMatch = record?.parts.length === blobs.length && record.parts.every((p, i) => p.size === blobs[i]!.size);
      if (record?.state === 'complete' && sizesMatch) return toCachedModel(record);
      if (record && !sizesMatch) await this.db.deleteModel(record);
      if (!record || !sizesMatch) {
        record = newModelRecord(
          { id, name: options.name ?? fileName, origin: 'file', quantization, chunkBytes: this.chunkBytes, createdAt: this.now() },
          blobs.map((blob) => ({ source: (blob as File).name ?? fileName, size: blob.size, expectedSha256: undefined })),
        );
      }
      return this.fill(record, blobs.map((blob) => ({ kind: 'blob', blob })), options);
    });
  }

  /**
   * Stores a model made on the fly (a quantized copy of a stored one): `size` bytes that `chunks`
   * yields in order, written chunk by chunk, so it is never held whole in memory. A cancel or a
   * failure deletes what was written (the bytes cannot be asked for again to resume); an existing
   * model with the same id is replaced.
   */
  async storeGenerated(
    model: { id: string; name: string; fileName: string; size: number; quantization?: string },
    chunks: AsyncIterable<Uint8Array>,
    options: DownloadOptions = {},
  ): Promise<CachedModel> {
    return this.run(model.id, options, async () => {
      const old = await this.db.record(model.id);
      if (old) await this.db.deleteModel(old);
      const record = newModelRecord(
        { id: model.id, name: model.name, origin: 'file', quantization: model.quantization, chunkBytes: this.chunkBytes, createdAt: this.now() },
        [{ source: model.fileName, size: model.size, expectedSha256: undefined }],
      );
      try {
        return await this.fill(record, [{ kind: 'chunks', chunks: chunks[Symbol.asyncIterator]() }], options);
      } catch (error) {
        await this.db.deleteModel(record).catch(() => undefined);
        throw error;
      }
    });
  }

  /** Checks that the rest of `record` fits, saves the record, then stores its missing bytes. */
  private async fill(record: ModelRecord, sources: PartSource[], options: DownloadOptions): Promise<CachedModel> {
    await this.quota.checkSpace(record);
    await this.db.putRecord(record);
    await this.quota.requestPersistence();
    return fillModel(this.fillContext, record, sources, options);
  }

  /** Runs `body` as the only transfer of model `id` in this store. */
  private async run<T>(id: string, options: { signal?: AbortSignal }, body: () => Promise<T>): Promise<T> {
    if (this.active.has(id)) throw new DownloadInProgressError(`"${id}" is already downloading.`, { id });
    if (options.signal?.aborted) throw abortError(options.signal);
    this.active.add(id);
    try {
      return await withModelLock(this.locks, id, () => busyElsewhere(id, 'download'), body);
    } finally {
      this.active.delete(id);
    }
  }
}

/** Another tab of this site is writing model `id` (its lock is held). */
function busyElsewhere(id: string, what: 'delete' | 'download'): never {
  throw new DownloadInProgressError(
    what === 'delete'
      ? `"${id}" is being downloaded or copied in another tab of this site; pause it there before deleting it.`
      : `"${id}" is already being downloaded or copied in another tab of this site.`,
    { id, elsewhere: true },
  );
}

/** The id a local file (or the parts of one) is stored under: the same file again finds its copy. */
export function fileModelId(blobs: Blob[]): string {
  const name = (blobs[0] as File | undefined)?.name ?? 'local model';
  return `file:${name}:${blobs.reduce((s, b) => s + b.size, 0)}`;
}

function expandUrls(urls: string[]): string[] {
  if (urls.length === 0) throw new RangeError('a model entry needs at least one URL');
  return expandSplitUrls(urls);
}

function nameFromUrl(url: string): string {
  const path = url.split(/[?#]/)[0]!;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}
