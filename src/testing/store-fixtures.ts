/**
 * Shared by the store's unit tests and its browser harness: a small valid GGUF with random tensor
 * data, and split parts of one.
 */
import { GgmlType } from '../engine/gguf/ggml-types.ts';
import { GgufValueType } from '../engine/gguf/types.ts';
import { writeGguf } from '../engine/gguf/writer.ts';

/** Deterministic bytes (xorshift), so a corruption anywhere changes the hash. */
export function randomBytes(length: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

/**
 * A GGUF of about `bytes` bytes: a few F16 matrices (so the quantization reads as F16) filled with
 * random data. `split` = [no, count] writes one part of a split model.
 */
export function makeTestGguf(bytes: number, seed = 1, split?: [number, number, number?]): Uint8Array<ArrayBuffer> {
  const rows = 64;
  const tensors = 4;
  const k = Math.max(32, Math.floor(bytes / tensors / rows / 2 / 32) * 32);
  const metadata: Record<string, string | number> = { 'general.architecture': 'llama', 'general.name': `store test ${seed}` };
  const metadataTypes: Record<string, GgufValueType> = {};
  if (split) {
    metadata['split.no'] = split[0];
    metadata['split.count'] = split[1];
    metadataTypes['split.no'] = GgufValueType.UINT16;
    metadataTypes['split.count'] = GgufValueType.UINT16;
    if (split[2] !== undefined) {
      metadata['split.tensors.count'] = split[2];
      metadataTypes['split.tensors.count'] = GgufValueType.INT32;
    }
  }
  return writeGguf({
    metadata,
    metadataTypes,
    tensors: Array.from({ length: tensors }, (_, i) => ({
      name: `blk.${split ? split[0] : 0}.w${i}.weight`,
      type: GgmlType.F16,
      shape: [k, rows],
      data: randomBytes(k * rows * 2, seed * 100 + i + 1),
    })),
  });
}
