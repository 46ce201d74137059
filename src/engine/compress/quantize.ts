/**
 * Quantizes a GGUF model into one of llama.cpp's mixes, streamed: the source is read one slab of
 * rows at a time through a {@link RangedSource} and the output comes out as a sequence of chunks
 * (header first: every tensor's size is known in advance), so memory stays bounded by the slab
 * size whatever the model's. Platform-agnostic: the CLI writes the chunks to a file, the worker
 * to the store.
 *
 * The output equals llama-quantize's for the same input (`llama_model_quantize` with default
 * parameters, plus allow_requantize for quantized sources): the same metadata with
 * general.quantization_version and general.file_type appended, the tensors in llama.cpp's order
 * with the types of {@link chooseTensorTypes}, and bytes from our quantizers, which equal ggml's.
 */
import { ggmlTypeName, GgmlType } from '../gguf/ggml-types.ts';
import { quantFormat } from '../gguf/quants/index.ts';
import type { RangedSource } from '../gguf/source.ts';
import { GgufValueType, type GgufFile, type GgufTensorInfo, type GgufTypeInfo, type GgufValue } from '../gguf/types.ts';
import { ggufPieceChunks, layoutGguf, type GgufLayout } from '../gguf/writer.ts';
import { QuantizeError } from './errors.ts';
import { quantizeRows } from './rows.ts';
import { chooseTensorTypes, QUANT_MIXES, type QuantMix, type TensorTypeChoice } from './tensor-types.ts';

/** ggml's GGML_QNT_VERSION, which llama-quantize records in general.quantization_version. */
export const GGML_QNT_VERSION = 2;

/** Keys llama-quantize drops: the output is one file. */
const SPLIT_KEYS = ['split.no', 'split.count', 'split.tensors.count'];

/** Importance weights by tensor name: ne0 values per matrix (ne0 * ne2 for stacked experts). */
export type ImportanceMatrix = ReadonlyMap<string, Float32Array>;

export interface QuantizeProgress {
  /** The tensor being written. */
  tensor: string;
  /** Its index in the output and the number of tensors. */
  index: number;
  count: number;
  /** Output bytes produced so far (header included) and the output's size. */
  bytesDone: number;
  bytesTotal: number;
}

export interface QuantizeOptions {
  imatrix?: ImportanceMatrix;
  signal?: AbortSignal;
  onProgress?: (progress: QuantizeProgress) => void;
  /** Source bytes (plus working memory) per slab of rows; default 64 MiB. */
  slabBytes?: number;
}

export interface QuantizePlan {
  mix: QuantMix;
  /** In output order. */
  choices: TensorTypeChoice[];
  layout: GgufLayout;
  /** Source and output sizes of the tensor data, for a compression rate. */
  sourceBytes: number;
  outputBytes: number;
}

/** The output file's metadata: the source's, as llama-quantize rewrites it. */
function outputMetadata(file: GgufFile, mix: QuantMix): { metadata: Map<string, GgufValue>; types: Map<string, GgufTypeInfo> } {
  const metadata = new Map<string, GgufValue>();
  const types = new Map<string, GgufTypeInfo>();
  for (const [key, value] of file.metadata) {
    if (key === 'general.quantization_version' || key === 'general.file_type' || SPLIT_KEYS.includes(key)) continue;
    metadata.set(key, value);
    types.set(key, file.metadataTypes.get(key)!);
  }
  metadata.set('general.quantization_version', GGML_QNT_VERSION);
  types.set('general.quantization_version', { type: GgufValueType.UINT32 });
  metadata.set('general.file_type', QUANT_MIXES[mix].fileType);
  types.set('general.file_type', { type: GgufValueType.UINT32 });
  return { metadata, types };
}

/** Decides every tensor's type and the output's layout; reads no tensor data. */
export function planQuantize(file: GgufFile, mix: QuantMix, options: { hasImatrix?: boolean } = {}): QuantizePlan {
  const choices = chooseTensorTypes(file.tensors, file.metadata, mix, options);
  for (const c of choices) {
    if (c.type === c.tensor.type) continue;
    if (!quantFormat(c.tensor.type)) {
      throw new QuantizeError(`tensor ${c.tensor.name} is ${ggmlTypeName(c.tensor.type)}, which we cannot read`, { tensor: c.tensor.name });
    }
    if (!quantFormat(c.type)?.quantize) {
      throw new QuantizeError(`tensor ${c.tensor.name} would be ${ggmlTypeName(c.type)}, which we cannot write`, { tensor: c.tensor.name });
    }
  }
  const { metadata, types } = outputMetadata(file, mix);
  const layout = layoutGguf({
    metadata,
    metadataTypes: types,
    tensors: choices.map((c) => ({ name: c.tensor.name, type: c.type, shape: c.tensor.shape })),
  });
  const sourceBytes = file.tensors.reduce((a, t) => a + t.byteSize, 0);
  const outputBytes = layout.tensors.reduce((a, t) => a + t.byteSize, 0);
  return { mix, choices, layout, sourceBytes, outputBytes };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The quantization was cancelled.', 'AbortError');
}

/** Source rows as float32: a copy for F32 (the source bytes need not be 4-aligned), else dequantized. */
function toFloat32(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  if (type === GgmlType.F32) {
    new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
    return out;
  }
  quantFormat(type)!.dequantize(bytes, out, count);
  return out;
}

/** The importance weights for a tensor, checked against its shape (llama.cpp's rule). */
function weightsFor(imatrix: ImportanceMatrix | undefined, t: GgufTensorInfo): Float32Array | undefined {
  const w = imatrix?.get(t.name);
  if (!w) return undefined;
  const want = t.shape[0]! * (t.shape[2] ?? 1);
  if (w.length === want) return w;
  // llama.cpp quantizes a token embedding without its (always mismatched) entry and fails otherwise.
  if (t.name === 'token_embd.weight' || t.name === 'per_layer_token_embd.weight') return undefined;
  throw new QuantizeError(`the importance matrix has ${w.length} values for ${t.name}, which needs ${want}`, { tensor: t.name });
}

/**
 * The quantized file as chunks: header, then each tensor in slabs of rows, with padding. Checks
 * `signal` between slabs; a cancelled run throws its reason (an AbortError by default).
 */
export async function* quantizeChunks(source: RangedSource, file: GgufFile, plan: QuantizePlan, options: QuantizeOptions = {}): AsyncGenerator<Uint8Array> {
  const { signal, onProgress, imatrix } = options;
  const slabBytes = Math.max(1, options.slabBytes ?? 64 * 1024 * 1024);
  const count = plan.choices.length;
  let bytesDone = 0;
  let current = 0;

  async function* tensorPieces(out: GgufTensorInfo, index: number): AsyncGenerator<Uint8Array> {
    current = index;
    const choice = plan.choices[index]!;
    const src = choice.tensor;
    const nPerRow = src.shape[0]!;
    const rowsPerMatrix = src.shape[1] ?? 1;
    const nRows = src.elementCount / nPerRow;
    const srcRow = src.byteSize / nRows;
    const same = choice.type === src.type;
    const perRow = same ? srcRow : srcRow + 4 * nPerRow + out.byteSize / nRows;
    const slabRows = Math.max(1, Math.floor(slabBytes / perRow));
    const weights = same ? undefined : weightsFor(imatrix, src);
    for (let row = 0; row < nRows; ) {
      if (signal?.aborted) throw abortReason(signal);
      // A slab never crosses an expert boundary: each expert has its own importance weights.
      const rows = Math.min(slabRows, nRows - row, rowsPerMatrix - (row % rowsPerMatrix));
      const bytes = await source.read(file.dataOffset + src.offset + row * srcRow, rows * srcRow);
      if (same) yield bytes;
      else {
        const values = toFloat32(src.type, bytes, rows * nPerRow);
        const expert = Math.floor(row / rowsPerMatrix);
        const w = weights?.subarray(expert * nPerRow, (expert + 1) * nPerRow);
        yield quantizeRows(choice.type, values, nPerRow, rows, w);
      }
      row += rows;
    }
  }

  for await (const chunk of ggufPieceChunks(plan.layout, tensorPieces)) {
    bytesDone += chunk.length;
    yield chunk;
    onProgress?.({ tensor: plan.choices[current]?.tensor.name ?? '', index: current, count, bytesDone, bytesTotal: plan.layout.fileSize });
  }
  if (signal?.aborted) throw abortReason(signal);
}
