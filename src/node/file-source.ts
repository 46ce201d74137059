/**
 * A local file as a {@link RangedSource} (Node only; the engine core stays platform-agnostic).
 * Keeps one file handle open: call `close()` when done.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { checkLength, checkRange, type RangedSource } from '../engine/gguf/source.ts';

export async function nodeFileSource(path: string): Promise<RangedSource & { close(): Promise<void> }> {
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  const source = {
    size,
    name: basename(path),
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(source, offset, length);
      const bytes = new Uint8Array(length);
      let done = 0;
      // A positioned read may return fewer bytes than asked (large reads); loop until complete.
      while (done < length) {
        const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      checkLength(source, offset, length, done);
      return bytes;
    },
    close: () => handle.close(),
  };
  return source;
}
