/**
 * What every loader does with a GGUF's tensors, in one place for the decoder-only loader
 * (loader.ts) and the encoder-decoder one (t5-forward.ts): before anything is uploaded, every
 * matrix's type must have a kernel on the target backend and the weights' bytes there are counted
 * for the memory plan; then each tensor streams from the ranged source that holds it (a split
 * model's tensors are spread over its parts). Matrices stay in their file format (kernels
 * dequantize on the fly); vectors (norms, biases, rope factors, T5's bias tables) are dequantized
 * here to f32.
 */
import { ggmlTypeName } from '../gguf/ggml-types.ts';
import { requireQuantFormat } from '../gguf/quants/index.ts';
import type { GgufModelTensor } from '../gguf/split.ts';
import type { GgufTensorInfo } from '../gguf/types.ts';
import type { Backend, Vector, Weight } from '../backend/ops.ts';
import { UnsupportedModelError } from './errors.ts';
import { isMatrix } from './tensors.ts';

/** What a load is checked and planned against: a backend, or the CPU's ceiling before it exists. */
export type WeightTarget = Pick<Backend, 'kind' | 'supportsWeight'> & Partial<Pick<Backend, 'weightBytes'>>;

/**
 * Refuses, by name, a file with a matrix the target has no kernel for (before any upload).
 * `asMatrix` says which tensors are uploaded as matrices (default: two or more dimensions above 1).
 */
export function checkWeightTypes(tensors: Iterable<GgufTensorInfo>, target: WeightTarget, asMatrix: (t: GgufTensorInfo) => boolean = isMatrix): void {
  for (const t of tensors) {
    if (asMatrix(t) && !target.supportsWeight(t.type)) {
      throw new UnsupportedModelError(`${t.name}: the ${target.kind} backend has no kernel for ${ggmlTypeName(t.type)} weights`, { tensor: t.name, backend: target.kind });
    }
  }
}

/** Bytes the tensors take once loaded: matrices as the target holds them, vectors widened to f32. */
export function loadedWeightBytes(tensors: Iterable<GgufTensorInfo>, target: Partial<Pick<Backend, 'weightBytes'>>, asMatrix: (t: GgufTensorInfo) => boolean = isMatrix): number {
  let sum = 0;
  for (const t of tensors) sum += asMatrix(t) ? (target.weightBytes?.(t.type, t.shape) ?? t.byteSize) : 4 * t.elementCount;
  return sum;
}

export interface TensorUploader {
  /** The tensor's header; throws for a name the load's checks should have caught. */
  info(name: string): GgufModelTensor;
  /** A matrix, uploaded in its file format. */
  matrix(name: string): Promise<Weight>;
  /** A tensor's values dequantized to f32 (counted as uploaded). */
  vectorValues(name: string): Promise<Float32Array>;
  /** A vector, uploaded as f32. */
  vector(name: string): Promise<Vector>;
  /** A vector the model may lack. */
  optVector(name: string): Promise<Vector | undefined>;
  /** Counts bytes read for the progress (for a tensor read some other way). */
  progress(bytes: number): void;
}

/**
 * Uploads tensors of `tensors` (by name) into `backend`. `onProgress` hears the bytes of the file's
 * tensors read so far, out of `total`.
 */
export function tensorUploader(backend: Backend, tensors: ReadonlyMap<string, GgufModelTensor>, onProgress?: (loaded: number, total: number) => void, total = 0): TensorUploader {
  let loaded = 0;
  const progress = (bytes: number) => {
    loaded += bytes;
    onProgress?.(loaded, total);
  };
  const info = (name: string): GgufModelTensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`missing tensor ${name} after the load's checks`);
    return t;
  };
  const vectorValues = async (name: string): Promise<Float32Array> => {
    const t = info(name);
    const bytes = await t.source.read(t.fileOffset, t.byteSize);
    const values = new Float32Array(t.elementCount);
    requireQuantFormat(t.type).dequantize(bytes, values, t.elementCount);
    progress(t.byteSize);
    return values;
  };
  const vector = async (name: string): Promise<Vector> => backend.vector(name, await vectorValues(name));
  return {
    info,
    async matrix(name) {
      const t = info(name);
      const w = await backend.weight({ name, type: t.type, shape: t.shape }, (offset, length) => t.source.read(t.fileOffset + offset, length));
      progress(t.byteSize);
      return w;
    },
    vectorValues,
    vector,
    optVector: (name) => (tensors.has(name) ? vector(name) : Promise.resolve(undefined)),
    progress,
  };
}
