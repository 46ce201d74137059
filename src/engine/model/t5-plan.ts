/**
 * The memory plan of an encoder-decoder (t5) load, the counterpart of loader.ts's planLoad for
 * decoder-only models: the file read and checked (readT5Config, the weight types the target has
 * kernels for, through the same checks as planLoad), then weights + the three KV stores + scratch
 * against the target's budget, before anything is uploaded. A CPU backend is sized from this plan
 * (backend/choose.ts), as from planLoad's.
 */
import type { GgufModel } from '../gguf/split.ts';
import type { GgufTensorInfo } from '../gguf/types.ts';
import { ModelTooLargeError, type PlanTarget } from './loader.ts';
import { readT5Config, t5Tensors, type T5ModelConfig } from './t5-config.ts';
import { checkWeightTypes, loadedWeightBytes } from './tensor-upload.ts';

export interface T5LoadOptions {
  /** Most input tokens (the encoder's one step); default the training context, at most 512. */
  inputCapacity?: number;
  /** Most decoder positions (its KV cache); default the training context, at most 512. */
  outputCapacity?: number;
  /** Most decoder tokens per step (rows of logits); default 32. */
  decoderBatch?: number;
  /** Progress of the upload, in bytes of the file's tensors. */
  onProgress?: (loaded: number, total: number) => void;
}

/** The bytes a t5 load takes on its backend, and the capacities they are for. */
export interface T5MemoryPlan {
  inputCapacity: number;
  outputCapacity: number;
  decoderBatch: number;
  weightBytes: number;
  /** The encoder's keys and values (one layer), every decoder block's cross and self caches. */
  kvBytes: number;
  scratchBytes: number;
  totalBytes: number;
}

/** A t5 model read, checked and planned for one backend. */
export interface PlannedT5Load {
  file: GgufModel;
  config: T5ModelConfig;
  plan: T5MemoryPlan;
}

/** The largest input and output a t5 load allocates by default (Flan-T5's training length). */
export const T5_DEFAULT_CAPACITY = 512;
const DEFAULT_DECODER_BATCH = 32;

/** KV bytes, scratch bytes and the largest single buffer of a t5 model at these capacities. */
export function t5RunBytes(c: T5ModelConfig, inputCapacity: number, outputCapacity: number, decoderBatch: number): { kvBytes: number; scratchBytes: number; largestBuffer: number } {
  const A = c.nHead * c.headDim;
  const kvBytes = 2 * 4 * A * (inputCapacity + c.nDecLayer * (inputCapacity + outputCapacity));
  const rows = Math.max(inputCapacity, decoderBatch);
  // x, cur; q, k, v, attn; gate, up, ffh; logits; the id buffers (tokens, positions, two bucket tables).
  const scratchBytes = 4 * rows * (2 * c.nEmbd + 4 * A + 3 * c.nFf) + 4 * decoderBatch * c.nVocab + 4 * (2 * rows + 2 * inputCapacity - 1 + outputCapacity);
  const largestBuffer = 4 * Math.max(rows * c.nFf, rows * c.nEmbd, rows * A, decoderBatch * c.nVocab, Math.max(inputCapacity, outputCapacity) * A * c.nDecLayer);
  return { kvBytes, scratchBytes, largestBuffer };
}

/** Tensors the forward pass reads, and which of them are uploaded as matrices. */
function t5Weights(file: GgufModel, c: T5ModelConfig): { tensors: GgufTensorInfo[]; asMatrix: (t: GgufTensorInfo) => boolean } {
  const specs = t5Tensors(c);
  const vectors = new Set(specs.filter((s) => s.vector).map((s) => s.name));
  const tensors = specs.flatMap((s) => file.tensorsByName.get(s.name) ?? []);
  return { tensors, asMatrix: (t) => !vectors.has(t.name) };
}

/**
 * Reads and validates a t5 model and plans its memory on `target`; throws (UnsupportedModelError,
 * ModelConfigError, ModelTooLargeError, RangeError for a bad capacity) before anything is allocated.
 */
export function planT5Load(file: GgufModel, target: PlanTarget, options: T5LoadOptions = {}): PlannedT5Load {
  const config = readT5Config(file);
  const capacity = (v: number | undefined, name: string, fallback: number) => {
    const n = v ?? fallback;
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    return n;
  };
  const inputCapacity = capacity(options.inputCapacity, 'inputCapacity', Math.min(config.contextLength, T5_DEFAULT_CAPACITY));
  const outputCapacity = capacity(options.outputCapacity, 'outputCapacity', Math.min(config.contextLength, T5_DEFAULT_CAPACITY));
  const decoderBatch = Math.min(capacity(options.decoderBatch, 'decoderBatch', DEFAULT_DECODER_BATCH), outputCapacity);

  const { tensors, asMatrix } = t5Weights(file, config);
  checkWeightTypes(tensors, target, asMatrix);
  const weightBytes = loadedWeightBytes(tensors, target, asMatrix);
  const { kvBytes, scratchBytes, largestBuffer } = t5RunBytes(config, inputCapacity, outputCapacity, decoderBatch);
  const totalBytes = weightBytes + kvBytes + scratchBytes;
  const { memoryBudgetBytes, maxBufferBytes } = target.limits;
  const detail = { needed: totalBytes, budget: memoryBudgetBytes, weightBytes, kvBytes, scratchBytes, maxBufferBytes, inputCapacity, outputCapacity };
  if (largestBuffer > maxBufferBytes) {
    throw new ModelTooLargeError(`the t5 model needs a ${largestBuffer}-byte buffer, over the device's largest (${maxBufferBytes}): load it with a smaller input or output capacity`, detail);
  }
  if (totalBytes > memoryBudgetBytes) {
    throw new ModelTooLargeError(
      `the t5 model needs ${totalBytes} bytes (weights ${weightBytes}, KV ${kvBytes}, scratch ${scratchBytes}), over the ${memoryBudgetBytes} allowed: load it with a smaller input or output capacity`,
      detail,
    );
  }
  return { file, config, plan: { inputCapacity, outputCapacity, decoderBatch, weightBytes, kvBytes, scratchBytes, totalBytes } };
}
