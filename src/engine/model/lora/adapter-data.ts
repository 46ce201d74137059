/**
 * A LoRA adapter as float32 values: what a file decodes to (`readLoraData`), what the backends
 * upload (apply.ts), what the float64 reference applies, and what training will produce and
 * `writeLoraGguf` writes back in llama.cpp's layout (adapter-file.ts). Arrays are in GGUF element
 * order: a projection's A is [rank][nIn] and B [nOut][rank] (row-major, the row length last);
 * the embeddings' A is [nVocab][rank] and B [nEmbd][rank].
 */
import { GgmlType } from '../../gguf/ggml-types.ts';
import { GgufValueType } from '../../gguf/types.ts';
import { requireQuantFormat } from '../../gguf/quants/index.ts';
import type { RangedSource } from '../../gguf/source.ts';
import type { GgufTensorInfo } from '../../gguf/types.ts';
import { writeGguf } from '../../gguf/writer.ts';
import { LORA_KEYS, type LoraFileInfo } from './adapter-file.ts';
import { AdapterFormatError } from './errors.ts';

export interface LoraTensors {
  base: string;
  rank: number;
  nIn: number;
  nOut: number;
  embedding: boolean;
  a: Float32Array;
  b: Float32Array;
}

export interface LoraAdapterData {
  architecture: string;
  alpha: number;
  name?: string | undefined;
  targets: LoraTensors[];
}

async function decode(t: GgufTensorInfo, source: RangedSource): Promise<Float32Array> {
  const bytes = await source.read(t.fileOffset, t.byteSize);
  if (bytes.length !== t.byteSize) throw new AdapterFormatError(`${t.name}: the file ends inside its data`, { tensor: t.name });
  const out = new Float32Array(t.elementCount);
  requireQuantFormat(t.type).dequantize(bytes, out, t.elementCount);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) throw new AdapterFormatError(`${t.name}: value ${i} is ${out[i]}; adapter weights must be finite`, { tensor: t.name, index: i });
  }
  return out;
}

/** Decodes a validated adapter's tensors (one ranged read each), rejecting non-finite values. */
export async function readLoraData(info: LoraFileInfo, source: RangedSource): Promise<LoraAdapterData> {
  const targets: LoraTensors[] = [];
  for (const t of info.targets) {
    targets.push({ base: t.base, rank: t.rank, nIn: t.nIn, nOut: t.nOut, embedding: t.embedding, a: await decode(t.a, source), b: await decode(t.b, source) });
  }
  return { architecture: info.architecture, alpha: info.alpha, name: info.name, targets };
}

/** GGUF shapes (ne0 first) of a target's lora_a and lora_b. */
export function loraShapes(t: Pick<LoraTensors, 'rank' | 'nIn' | 'nOut' | 'embedding'>): { a: number[]; b: number[] } {
  return { a: t.embedding ? [t.rank, t.nIn] : [t.nIn, t.rank], b: [t.rank, t.nOut] };
}

/** The adapter as a GGUF file llama.cpp loads with --lora (F32 tensors). */
export function writeLoraGguf(data: LoraAdapterData): Uint8Array<ArrayBuffer> {
  const metadata: Record<string, string | number> = {
    [LORA_KEYS.architecture]: data.architecture,
    [LORA_KEYS.type]: 'adapter',
    ...(data.name !== undefined ? { 'general.name': data.name } : {}),
    [LORA_KEYS.adapterType]: 'lora',
    [LORA_KEYS.alpha]: data.alpha,
  };
  const tensors = data.targets.flatMap((t) => {
    const shapes = loraShapes(t);
    const bytes = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    return [
      { name: `${t.base}.lora_a`, type: GgmlType.F32, shape: shapes.a, data: bytes(t.a) },
      { name: `${t.base}.lora_b`, type: GgmlType.F32, shape: shapes.b, data: bytes(t.b) },
    ];
  });
  return writeGguf({ metadata, metadataTypes: { [LORA_KEYS.alpha]: GgufValueType.FLOAT32 }, tensors });
}
