/**
 * Whether stored bytes are the model they should be: each part's SHA-256 against the catalog's,
 * and the GGUF header of the whole (split) model, which also names its quantization.
 */
import type { RangedSource } from '../gguf/source.ts';
import { openGgufModel } from '../gguf/split.ts';
import { fileKind, type FileKind } from './file-kind.ts';
import { IntegrityError } from './errors.ts';
import type { ModelDb, ModelRecord } from './records.ts';
import { Sha256 } from './sha256.ts';

/**
 * Checks part `p`, all of whose bytes are stored, against the catalog's SHA-256 (when it gave
 * one) and records the digest. A mismatch deletes the model: its bytes are not worth resuming.
 */
export async function checkPartHash(db: ModelDb, record: ModelRecord, p: number): Promise<void> {
  const part = record.parts[p]!;
  const digest = part.hash ? Sha256.restore(part.hash).hex() : undefined;
  if (part.expectedSha256 !== undefined && digest !== part.expectedSha256) {
    await db.deleteModel(record);
    throw new IntegrityError(
      `"${record.name}" is corrupted: its SHA-256 is ${digest}, expected ${part.expectedSha256}. The damaged download was deleted; download it again.`,
      { id: record.id, part: p, url: part.source, expected: part.expectedSha256, actual: digest },
    );
  }
  part.sha256 = digest;
}

/**
 * Parses the model's GGUF headers and returns what the file is (model or adapter, architecture,
 * quantization). When they do not parse, runs
 * `onInvalid` (which deletes a stored copy) and throws {@link IntegrityError}.
 */
export async function validateGguf(sources: RangedSource[], name: string, id: string, onInvalid?: () => Promise<void>): Promise<FileKind> {
  try {
    const model = await openGgufModel(sources);
    return fileKind(model);
  } catch (error) {
    await onInvalid?.();
    // The reader names the source at the end of its message; this one names it already, once.
    const reason = (error as Error).message.replace(` (${name})`, '');
    throw new IntegrityError(
      `"${name}" is not a usable GGUF model: ${reason}` + (onInvalid ? ' The download was deleted.' : ''),
      { id, cause: (error as Error).name },
    );
  }
}
