/**
 * Splits a GGUF held in memory the way llama.cpp's `gguf-split --split-max-tensors` does: the first
 * part keeps every metadata key, the others only the split keys; tensors go to the parts in file
 * order, about the same number in each. For tests of split loading (the bytes of each tensor are
 * the original's, so a split model must compute exactly what the whole file does).
 */
import { readGguf } from '../engine/gguf/reader.ts';
import { bytesSource } from '../engine/gguf/source.ts';
import { SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT, splitPartName } from '../engine/gguf/split.ts';
import { GgufValueType, type GgufTypeInfo } from '../engine/gguf/types.ts';
import { writeGguf, type GgufInputValue } from '../engine/gguf/writer.ts';

export interface GgufPart {
  /** `<prefix>-0000i-of-0000n.gguf` */
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** `count` parts of `whole`, in order; each part gets at least one tensor. */
export async function splitGguf(whole: Uint8Array, count: number, prefix = 'model'): Promise<GgufPart[]> {
  const file = await readGguf(bytesSource(whole));
  if (!Number.isInteger(count) || count < 1 || count > file.tensors.length) {
    throw new RangeError(`splitGguf: ${count} parts of ${file.tensors.length} tensors`);
  }
  const n = file.tensors.length;
  return Array.from({ length: count }, (_, no) => {
    // llama.cpp writes split.no and split.count as u16 and split.tensors.count as i32.
    const metadata = new Map<string, GgufInputValue>(no === 0 ? file.metadata : []);
    const metadataTypes = new Map<string, GgufTypeInfo | GgufValueType>(no === 0 ? file.metadataTypes : []);
    metadata.set(SPLIT_NO, no);
    metadataTypes.set(SPLIT_NO, GgufValueType.UINT16);
    metadata.set(SPLIT_COUNT, count);
    metadataTypes.set(SPLIT_COUNT, GgufValueType.UINT16);
    if (no === 0) {
      metadata.set(SPLIT_TENSORS_COUNT, file.tensors.length);
      metadataTypes.set(SPLIT_TENSORS_COUNT, GgufValueType.INT32);
    }
    const tensors = file.tensors.slice(Math.floor((no * n) / count), Math.floor(((no + 1) * n) / count)).map((t) => ({
      name: t.name,
      type: t.type,
      shape: t.shape,
      data: whole.subarray(t.fileOffset, t.fileOffset + t.byteSize),
    }));
    return { name: splitPartName(prefix, no, count), bytes: writeGguf({ version: file.version, metadata, metadataTypes, tensors }) };
  });
}
