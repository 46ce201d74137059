/**
 * How the model store lays out a model in IndexedDB (through idb-keyval, one object store per
 * database), and the only code that writes that layout:
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
 * that under-counts: the resume rewrites that chunk. A resume asks for `Range: bytes=stored-`.
 * `stored` is a whole number of chunks except after a pause: then the bytes of the unfinished
 * chunk are written as a short chunk at its index (a pause before the first chunk would otherwise
 * lose everything), and the resume reads them back and completes that chunk. The hash state only
 * ever covers whole chunks.
 * When the catalog gives a SHA-256, the hash state is saved with each record update, so a resumed
 * download keeps hashing where it stopped. (Without one nothing is hashed: the in-page SHA-256 is
 * slower than the rest of the download path and would halve its rate; the size and the GGUF check
 * still apply.) A model is `complete` only after every part has its full size, its hash (when the
 * catalog gave one) matches, and the GGUF header of the whole (split) model parses.
 */
import { createStore, del, delMany, get, getMany, set, values, type UseStore } from 'idb-keyval';
import { Sha256, type Sha256State } from './sha256.ts';
import type { CachedModel, StoredAdapter } from './types.ts';

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

/** One file of a model, as stored. */
export interface PartRecord {
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
  /**
   * What identifies the server's version of the file (strong ETag or Last-Modified), sent as
   * `If-Range` on a resume so a changed file restarts instead of mixing two versions.
   */
  validator?: string | undefined;
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
  /**
   * Read from the header when complete. Records stored before kinds were recorded have none and
   * are read again (`ModelStore.list` fills it in).
   */
  kind?: 'model' | 'adapter' | undefined;
  architecture?: string | undefined;
  adapter?: StoredAdapter | undefined;
}

/**
 * The record of a model not stored yet: every part empty and, where the catalog gave a SHA-256 to
 * check, hashing from the start.
 */
export function newModelRecord(
  model: Pick<ModelRecord, 'id' | 'name' | 'origin' | 'quantization' | 'chunkBytes' | 'createdAt'>,
  parts: Array<Pick<PartRecord, 'source' | 'size' | 'expectedSha256'>>,
): ModelRecord {
  return {
    ...model,
    state: 'partial',
    parts: parts.map((part) => ({
      ...part,
      stored: 0,
      hash: part.expectedSha256 !== undefined ? new Sha256().save() : undefined,
      sha256: undefined,
    })),
    lastUsed: undefined,
  };
}

/** The store's two databases: model records and their chunks. */
export class ModelDb {
  private readonly meta: UseStore;
  private readonly chunks: UseStore;

  constructor(dbName: string) {
    this.meta = createStore(dbName, 'models');
    this.chunks = createStore(`${dbName}-chunks`, 'chunks');
  }

  /** Every record as stored, unchecked. */
  records(): Promise<ModelRecord[]> {
    return values<ModelRecord>(this.meta);
  }

  record(id: string): Promise<ModelRecord | undefined> {
    return get<ModelRecord>(id, this.meta);
  }

  putRecord(record: ModelRecord): Promise<void> {
    return set(record.id, record, this.meta);
  }

  /** Chunks `indices` of part `part`, in one transaction; undefined where a chunk is missing. */
  readChunks(id: string, part: number, indices: number[]): Promise<Array<Uint8Array | undefined>> {
    return getMany<Uint8Array>(indices.map((i) => [id, part, i]), this.chunks);
  }

  /** Writes one chunk, then the record that counts it (see the layout comment at the top). */
  async commitChunk(record: ModelRecord, p: number, index: number, chunk: Uint8Array, stored: number, hash: Sha256State | undefined): Promise<void> {
    await set([record.id, p, index], chunk, this.chunks);
    const part = record.parts[p]!;
    part.stored = stored;
    part.hash = hash;
    await set(record.id, record, this.meta);
  }

  /**
   * Empties part `p` (the server's file changed) to be fetched again from byte 0 at its new
   * `size`. Record first, so a crash leaves an empty part, not stale chunks counted as stored.
   */
  async resetPart(record: ModelRecord, p: number, size: number, validator: string | undefined): Promise<void> {
    const keys = chunkKeys(record, p);
    const part = record.parts[p]!;
    Object.assign(part, { size, validator, stored: 0, hash: part.expectedSha256 !== undefined ? new Sha256().save() : undefined, sha256: undefined });
    await set(record.id, record, this.meta);
    await delMany(keys, this.chunks);
  }

  /** Deletes a model's record and every chunk it has, or may have, written. */
  async deleteModel(record: ModelRecord): Promise<void> {
    // Record first shows nothing stored, so a crash mid-delete leaves an empty partial, not a
    // complete model with missing chunks.
    const keys = record.parts.flatMap((_, p) => chunkKeys(record, p));
    const emptied: ModelRecord = { ...record, state: 'partial', parts: record.parts.map((q) => ({ ...q, stored: 0, hash: q.hash ? new Sha256().save() : undefined })) };
    await set(record.id, emptied, this.meta);
    await delMany(keys, this.chunks);
    await del(record.id, this.meta);
  }
}

/** The keys of every chunk part `p` of `record` has, or may have, written. */
function chunkKeys(record: ModelRecord, p: number): Array<[string, number, number]> {
  const part = record.parts[p]!;
  const upTo = part.size !== undefined ? Math.max(part.size, part.stored) : part.stored + record.chunkBytes;
  // One past the count: a chunk written just before a crash, not yet in the record.
  const count = Math.ceil(upTo / record.chunkBytes) + 1;
  return Array.from({ length: count }, (_, i) => [record.id, p, i] as [string, number, number]);
}

/** Bytes of all parts; NaN while a part's size is unknown. */
export function totalSize(record: ModelRecord): number {
  return record.parts.reduce((s, p) => s + (p.size ?? NaN), 0);
}

export function storedBytes(record: ModelRecord): number {
  return record.parts.reduce((s, p) => s + p.stored, 0);
}

export function toCachedModel(record: ModelRecord): CachedModel {
  const size = totalSize(record);
  return {
    id: record.id,
    name: record.name,
    kind: record.kind,
    architecture: record.architecture,
    ...(record.adapter ? { adapter: record.adapter } : {}),
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
