/**
 * Local files (a `Blob` or `File` per part): read in place through `Blob.slice`, or copied into
 * IndexedDB chunk by chunk, through the same chunk writer as a download so a copy resumes too.
 */
import { blobSource, type RangedSource } from '../gguf/source.ts';
import { writeChunks, type PartWrite } from './chunk-writer.ts';
import { GeneratedError, abortError, isAbort } from './retry.ts';

/** One ranged reader per file, named by the file's name where it has one. */
export function blobSources(blobs: Blob[]): RangedSource[] {
  return blobs.map((blob) => blobSource(blob, (blob as File).name));
}

/** Copies a part from a local file, from its stored bytes. */
export async function transferBlob(target: PartWrite, blob: Blob): Promise<void> {
  const { record, signal } = target;
  const chunkBytes = record.chunkBytes;
  let at = record.parts[target.part]!.stored;
  const reader: ReadableStreamDefaultReader<Uint8Array> = {
    async read() {
      if (signal?.aborted) throw abortError(signal);
      if (at >= blob.size) return { done: true, value: undefined };
      const bytes = new Uint8Array(await blob.slice(at, Math.min(blob.size, at + chunkBytes)).arrayBuffer());
      at += bytes.length;
      return { done: false, value: bytes };
    },
  } as ReadableStreamDefaultReader<Uint8Array>;
  await writeChunks(target, reader, 0);
}

/** Stores a part whose bytes a generator makes (a quantized model), in the order it yields them. */
export async function transferGenerated(target: PartWrite, chunks: AsyncIterator<Uint8Array>): Promise<void> {
  const { signal } = target;
  const reader = {
    async read() {
      if (signal?.aborted) throw abortError(signal);
      try {
        const next = await chunks.next();
        return next.done ? { done: true, value: undefined } : { done: false, value: next.value };
      } catch (error) {
        // Thrown as an abort when it is one (a cancel), else wrapped so writeChunks keeps it as it is.
        if (isAbort(error)) throw error;
        throw new GeneratedError(error);
      }
    },
  } as ReadableStreamDefaultReader<Uint8Array>;
  await writeChunks(target, reader, 0);
}
