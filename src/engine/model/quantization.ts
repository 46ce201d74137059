/**
 * What a model file is called by its quantization: llama.cpp's file type name where the file
 * records one, else the type holding most of the matrices' bytes. The model list (the store) and
 * the loaded model's info use the same rule, so they agree.
 */
import { fileTypeName } from '../gguf/file-type.ts';
import { ggmlTypeName } from '../gguf/ggml-types.ts';
import type { GgufFile, GgufTensorInfo } from '../gguf/types.ts';
import { isMatrix } from './tensors.ts';

/**
 * The quantization people would name the file by: the type holding most of the weight bytes
 * (norms and other vectors are F32 in every file and do not count). Matrices are what
 * {@link isMatrix} says, as at load, so a vector stored with a dimension of 1 does not count
 * either. Without any matrix the answer is F32, as in llama.cpp's guess of the file type. The
 * model store names a downloaded or imported model with this too, so the list and the loaded
 * model agree.
 */
export function dominantQuantization(file: { tensors: ReadonlyArray<Pick<GgufTensorInfo, 'type' | 'shape' | 'byteSize'>> }): string {
  const bytes = new Map<string, number>();
  for (const t of file.tensors) {
    if (!isMatrix(t)) continue;
    const name = ggmlTypeName(t.type);
    bytes.set(name, (bytes.get(name) ?? 0) + t.byteSize);
  }
  let best = 'F32';
  let most = -1;
  for (const [name, n] of bytes) {
    if (n > most) {
      best = name;
      most = n;
    }
  }
  return best;
}

/**
 * What the model list and the loaded model call the file: llama.cpp's file type name
 * (`general.file_type`, e.g. Q4_K_M) where the file records one, else the dominant tensor type.
 */
export function modelQuantization(file: Pick<GgufFile, 'metadata'> & Parameters<typeof dominantQuantization>[0]): string {
  return fileTypeName(file.metadata) ?? dominantQuantization(file);
}

