/**
 * Writes a GGUF file to disk one tensor at a time (Node only): the header, then each tensor's
 * bytes as the provider produces them, so a multi-gigabyte model is never held in memory twice.
 * The file appears under its name only when complete (written as `<path>.partial`, then renamed).
 */
import { open, rename, rm } from 'node:fs/promises';
import { ggufChunks, layoutGguf, type GgufLayout, type GgufWriteSpec, type TensorDataProvider } from '../engine/gguf/writer.ts';

export async function writeGgufFile(path: string, spec: GgufWriteSpec, data: TensorDataProvider): Promise<GgufLayout> {
  const layout = layoutGguf(spec);
  await writeChunksFile(path, ggufChunks(layout, data));
  return layout;
}

/** Writes a stream of chunks (a GGUF from ggufChunks, quantizeChunks, ...) to `path`, atomically. */
export async function writeChunksFile(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const partial = `${path}.partial`;
  const handle = await open(partial, 'w');
  try {
    for await (const chunk of chunks) {
      let done = 0;
      while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
    }
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  }
  await rename(partial, path);
}
