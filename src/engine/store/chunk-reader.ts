/**
 * A stored part read back as a {@link RangedSource}: chunks come from IndexedDB on demand, through
 * a small LRU cache and an optional read-ahead, so loading never holds a whole model in JS memory.
 */
import { checkRange, type RangedSource } from '../gguf/source.ts';
import { IntegrityError } from './errors.ts';
import type { ModelDb, ModelRecord } from './records.ts';

export interface ChunkCacheOptions {
  /** Chunks kept in memory per open source, besides the read-ahead. */
  readCacheChunks: number;
  /** Chunks fetched ahead of a sequential reader. */
  readAheadChunks: number;
}

/** A ranged reader over part `part` of `record`, whose chunks must all be stored. */
export function chunkSource(db: ModelDb, record: ModelRecord, part: number, options: ChunkCacheOptions): RangedSource {
  const { id, chunkBytes } = record;
  const size = record.parts[part]!.size!;
  const name = record.parts[part]!.source;
  const lastChunk = Math.max(0, Math.ceil(size / chunkBytes) - 1);
  // Sequential reads (a model load) fetch up to `readAheadChunks` ahead while the caller uses
  // the current ones, so IndexedDB reads overlap the GPU uploads; the cache holds those too.
  const readAhead = options.readAheadChunks;
  const capacity = options.readCacheChunks + readAhead;
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
      const batch = db.readChunks(id, part, missing);
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
