/**
 * The frozen base model of LoRA training: its config, each matrix as the file encodes it (read,
 * never written or widened: QLoRA), and the small vectors (norms, biases, rope factors) as f32.
 * Only the dense architectures whose backward pass step.ts implements are accepted.
 */
import { requireQuantFormat } from '../gguf/quants/index.ts';
import { readGguf } from '../gguf/reader.ts';
import type { RangedSource } from '../gguf/source.ts';
import type { GgufFile } from '../gguf/types.ts';
import { readModelConfig, type ModelConfig } from '../model/config.ts';
import { checkTensors, isMatrix, modelTensors } from '../model/tensors.ts';
import { UnsupportedTrainingError } from './errors.ts';
import type { FrozenMatrix } from './ops.ts';

export const TRAINABLE_ARCHITECTURES = ['llama', 'qwen2', 'qwen3'] as const;

export interface TrainingBase {
  config: ModelConfig;
  matrices: ReadonlyMap<string, FrozenMatrix>;
  vectors: ReadonlyMap<string, Float32Array>;
  /** Bytes the base holds (its matrices as encoded, its vectors as f32). */
  bytes: number;
}

/** Throws {@link UnsupportedTrainingError} naming the first feature of `c` the trainer does not differentiate. */
export function checkTrainable(c: ModelConfig): void {
  const refuse = (feature: string) => {
    throw new UnsupportedTrainingError(`${c.architecture}: LoRA training does not support ${feature} (trainable: ${TRAINABLE_ARCHITECTURES.join(', ')})`, { architecture: c.architecture, feature });
  };
  if (!(TRAINABLE_ARCHITECTURES as readonly string[]).includes(c.architecture)) refuse('this architecture');
  if (c.moe) refuse('mixture-of-experts layers');
  if (c.layers.some((l) => l.mixer !== 'attention')) refuse('recurrent layers');
  if (c.layers.some((l) => l.slidingWindow)) refuse('sliding-window attention');
  if (c.attnSoftcap || c.finalSoftcap) refuse('softcapping');
  if (c.postNorms) refuse('post-norms');
  if (c.activation !== 'silu' || c.fusedGateUp) refuse('a GLU other than separate gate and up with SiLU');
  if (c.tensors.fusedQkv) refuse('a fused qkv projection');
  if (c.qkNorm && c.qkNormOver !== 'head') refuse('q/k norms over whole rows');
  if (c.embeddingScale !== 1 || c.residualScale !== 1 || c.logitDivisor !== 1) refuse('embedding, residual or logit scales');
  if (c.rope.enabled && (c.rope.extFactor !== 0 || c.rope.factors === 'long-short')) refuse('YaRN or long/short rope factors');
}

/** Reads the base's tensors (one ranged read each), matrices kept in their file type. */
export async function loadTrainingBase(source: RangedSource, file?: GgufFile): Promise<TrainingBase> {
  const gguf = file ?? (await readGguf(source));
  const config = readModelConfig(gguf);
  checkTrainable(config);
  checkTensors(config, gguf);
  const infos = new Map(gguf.tensors.map((t) => [t.name, t]));
  const matrices = new Map<string, FrozenMatrix>();
  const vectors = new Map<string, Float32Array>();
  let bytes = 0;
  for (const spec of modelTensors(config)) {
    const info = infos.get(spec.name);
    if (!info) continue;
    const raw = await source.read(info.fileOffset, info.byteSize);
    if (isMatrix(info)) {
      matrices.set(spec.name, { name: spec.name, nIn: info.shape[0]!, nOut: info.elementCount / info.shape[0]!, type: info.type, bytes: raw });
      bytes += raw.length;
    } else {
      const v = new Float32Array(info.elementCount);
      requireQuantFormat(info.type).dequantize(raw, v, info.elementCount);
      vectors.set(spec.name, v);
      bytes += v.byteLength;
    }
  }
  return { config, matrices, vectors, bytes };
}

/** Row `row` of a frozen matrix as f32 (an embedding lookup). */
export function matrixRow(m: FrozenMatrix, row: number, out: Float32Array): void {
  const fmt = requireQuantFormat(m.type);
  const rowBytes = (m.nIn / fmt.blockSize) * fmt.typeSize;
  fmt.dequantize(m.bytes.subarray(row * rowBytes, (row + 1) * rowBytes), out, m.nIn);
}
