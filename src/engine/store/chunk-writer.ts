/**
 * A part's bytes, from any stream (an HTTP body, a local file), cut into chunks, hashed and
 * committed to IndexedDB as {@link ModelDb.commitChunk} lays them out.
 */
import { DownloadError, IntegrityError, formatBytes } from './errors.ts';
import type { EmitProgress } from './progress.ts';
import { storedBytes, totalSize, type ModelDb, type ModelRecord } from './records.ts';
import { GeneratedError, RetryableError, abortError, isAbort } from './retry.ts';
import { Sha256 } from './sha256.ts';

/** One part being stored: where its bytes go and whom to tell. */
export interface PartWrite {
  db: ModelDb;
  record: ModelRecord;
  /** Index of the part in `record.parts`. */
  part: number;
  /** Bytes of all earlier parts, so progress counts the whole model. */
  before: number;
  emit: EmitProgress;
  signal: AbortSignal | undefined;
}

/**
 * Reads a body into chunks, committing each full chunk (and the last one at the end of the
 * part). The body starts at the part's stored bytes after `skip` bytes. On a pause the bytes of
 * the unfinished chunk are written as a short chunk (see records.ts), so a pause keeps everything;
 * on a failure they are dropped and the retry restarts at a chunk boundary.
 */
export async function writeChunks(target: PartWrite, reader: ReadableStreamDefaultReader<Uint8Array>, skip: number): Promise<void> {
  const { db, record, part: p, before, emit, signal } = target;
  const part = record.parts[p]!;
  const size = part.size!;
  const chunkBytes = record.chunkBytes;
  // A pause left a short chunk: its bytes start the buffer again.
  const tail = part.stored % chunkBytes;
  const hash = part.hash ? Sha256.restore(part.hash) : undefined;
  if (hash && hash.length !== part.stored - tail) throw new IntegrityError(`internal: hash state of "${record.id}" does not match its stored bytes`, { id: record.id });
  // One chunk is written to IndexedDB while the next fills and the one after is hashed: the
  // write overlaps the network and the hashing. `handed` is the end of the bytes handed to a
  // commit; `part.stored` only moves once a commit has landed.
  let handed = part.stored - tail;
  let pending: Promise<void> | undefined;
  const settle = async () => {
    const write = pending;
    pending = undefined;
    await write;
  };
  let buffer = new Uint8Array(Math.min(chunkBytes, size - handed));
  let fill = 0;
  if (tail > 0) {
    const [short] = await db.readChunks(record.id, p, [handed / chunkBytes]);
    if (short?.length !== tail) throw new IntegrityError(`The stored part of "${record.name}" is damaged (a chunk is missing). Delete it and download it again.`, { id: record.id, part: p });
    buffer.set(short);
    fill = tail;
  }
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        if (isAbort(error) || error instanceof GeneratedError) throw error;
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
          pending = db.commitChunk(record, p, index, buffer, handed, state);
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
    if (isAbort(error) && handed + fill > part.stored) {
      // Paused: keep the unfinished chunk too. Best effort; without it the resume starts earlier.
      await db.commitChunk(record, p, handed / chunkBytes, buffer.slice(0, fill), handed + fill, hash?.save()).catch(() => undefined);
    }
    throw error;
  }
  if (part.stored < size) {
    throw new RetryableError(`the connection closed after ${formatBytes(before + part.stored + fill)} of ${formatBytes(totalSize(record))}`);
  }
}
