/**
 * Bringing a stored model to complete: every part's missing bytes transferred (from a URL or a
 * local file) with retries, each part's hash checked as it completes, then the GGUF header of the
 * whole model, and only then the record marked `complete`.
 */
import { chunkSource, type ChunkCacheOptions } from './chunk-reader.ts';
import type { PartWrite } from './chunk-writer.ts';
import { ResourceChangedError, transferHttp, type HttpOptions } from './download.ts';
import { DownloadError, StorageQuotaError, formatBytes } from './errors.ts';
import { transferBlob } from './import-blob.ts';
import { progressEmitter } from './progress.ts';
import { isQuota, quotaError } from './quota.ts';
import { storedBytes, toCachedModel, totalSize, type ModelDb, type ModelRecord } from './records.ts';
import { RetryableError, abortError, isAbort, retryDelay, sleep, type RetryPolicy } from './retry.ts';
import type { CachedModel, DownloadOptions } from './types.ts';
import { checkPartHash, validateGguf } from './verify.ts';

/** What the store's parts need to fill a model. */
export interface FillContext {
  db: ModelDb;
  http: HttpOptions;
  retry: RetryPolicy;
  cache: ChunkCacheOptions;
  now: () => number;
}

/** Where a part's bytes come from. */
export type PartSource = { kind: 'http'; url: string } | { kind: 'blob'; blob: Blob };

/** Transfers every incomplete part, verifies, and marks the model complete. */
export async function fillModel(ctx: FillContext, record: ModelRecord, sources: PartSource[], options: DownloadOptions): Promise<CachedModel> {
  const { db, retry } = ctx;
  const total = totalSize(record);
  const emit = progressEmitter({ id: record.id, parts: record.parts.length, total }, options.onProgress, ctx.now);

  for (let p = 0; p < record.parts.length; p++) {
    const part = record.parts[p]!;
    const before = record.parts.slice(0, p).reduce((s, q) => s + q.size!, 0);
    if (part.stored < part.size!) {
      const source = sources[p]!;
      const target: PartWrite = { db, record, part: p, before, emit, signal: options.signal };
      let failures = 0;
      let restarts = 0;
      for (;;) {
        const startedAt = part.stored;
        try {
          if (source.kind === 'http') await transferHttp(ctx.http, target, source.url);
          else await transferBlob(target, source.blob);
          break;
        } catch (error) {
          if (isAbort(error) || options.signal?.aborted) throw options.signal ? abortError(options.signal) : error;
          if (isQuota(error) && !(error instanceof StorageQuotaError)) throw quotaError(record, error);
          if (error instanceof ResourceChangedError) {
            // The stored bytes belong to another version of the file: fetch it again from zero.
            // A server whose file changes on every request would loop: give up after a few.
            if (++restarts > retry.attempts) {
              throw new DownloadError(`"${record.name}" keeps changing on the server (${error.message}); try again later.`, { id: record.id, url: part.source });
            }
            await db.resetPart(record, p, error.size, error.validator);
            emit({ phase: 'retrying', part: p, bytes: before, attempt: restarts, retryInMs: 0, reason: `${error.message}; starting this file again` }, true);
            continue;
          }
          if (!(error instanceof RetryableError)) throw error;
          failures = part.stored > startedAt ? 1 : failures + 1;
          if (failures >= retry.attempts) {
            const kept = storedBytes(record);
            throw new DownloadError(
              `Downloading "${record.name}" failed ${failures} times in a row (${error.message}). ` +
                (kept > 0 ? `${formatBytes(kept)} are kept: try again later to resume.` : 'Nothing was stored: try again later.'),
              { id: record.id, url: part.source, partialBytes: kept, reason: error.message },
            );
          }
          const delay = retryDelay(retry, failures);
          emit({ phase: 'retrying', part: p, bytes: before + part.stored, attempt: failures, retryInMs: delay, reason: error.message }, true);
          await sleep(delay, options.signal);
        }
      }
    }
    // The part's bytes are all stored: check its hash now, before spending time on the next part.
    await checkPartHash(db, record, p);
  }

  emit({ phase: 'verifying', part: record.parts.length - 1, bytes: total }, true);
  const kind = await validateGguf(
    record.parts.map((_, i) => chunkSource(db, record, i, ctx.cache)),
    record.name,
    record.id,
    () => db.deleteModel(record),
  );
  record.quantization ??= kind.quantization;
  Object.assign(record, { kind: kind.kind, architecture: kind.architecture, adapter: kind.adapter });
  record.state = 'complete';
  await db.putRecord(record);
  return toCachedModel(record);
}
