/**
 * Local files (a `Blob` or `File` per part): read in place through `Blob.slice`, or copied into
 * IndexedDB chunk by chunk, through the same chunk writer as a download so a copy resumes too.
 */
import { blobSource, type RangedSource } from '../gguf/source.ts';
import { writeChunks, type PartWrite } from './chunk-writer.ts';
import { abortError } from './retry.ts';

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
