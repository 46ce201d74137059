/**
 * Loading a GGUF model into a backend: validate the file (`readModelConfig`, `checkTensors`), plan
 * memory (weights as stored + KV cache for the chosen context + scratch) against the backend's
 * limits before anything is uploaded (`planLoad`; a backend sized from the plan, the CPU's, is
 * planned before it exists and loads that same plan), then stream each tensor from the ranged
 * source that holds it (a split model's tensors are spread over its parts; one file is the
 * one-part case). Matrices stay in their file format (kernels dequantize on the fly); 1-D tensors
 * (norms, biases, rope factors) are dequantized here to f32.
 */
import { HearthError } from '../errors.ts';
import { readGguf } from '../gguf/reader.ts';
import type { RangedSource } from '../gguf/source.ts';
import { assembleGgufModel, type GgufModel } from '../gguf/split.ts';
import type { GgufFile, GgufTensorInfo } from '../gguf/types.ts';
import type { Activation, Backend, IdBuffer, Vector, Weight } from '../backend/ops.ts';
import { readModelConfig, type ModelConfig } from './config.ts';
import { UnsupportedModelError } from './errors.ts';
import { KvCache } from './kv-cache.ts';
import { hasRecurrentLayers, largestLayerStateBytes, RecurrentState, recurrentStateBytes, STATE_SNAPSHOTS } from './recurrent-state.ts';
import { LAYER_TENSORS, layerActivationWidths, layerTensorName, type ActivationName, type LayerWeights } from './layer-tensors.ts';
import { stackedLoad } from './stacking.ts';
import { checkTensors } from './tensors.ts';
import { checkWeightTypes, loadedWeightBytes, tensorUploader, type WeightTarget } from './tensor-upload.ts';

/**
 * Weights + KV cache + scratch exceed what the device (or the caller's budget) allows. `detail`
 * has the byte counts; a shorter context or a smaller quantization may fit.
 */
export class ModelTooLargeError extends HearthError {
  override name = 'ModelTooLargeError';
}

export interface ModelWeights {
  /** [nVocab][nEmbd] */
  tokenEmbd: Weight;
  /** [nVocab][nEmbd]: token_embd itself when tied. */
  output: Weight;
  outputBias?: Vector | undefined;
  outputNorm: Vector;
  /** f32[nRot / 2]: rope frequency divisors for this context, when the model has them. */
  ropeFactors?: Vector | undefined;
  layers: LayerWeights[];
}

/**
 * Activation scratch for up to `batch` tokens per step, allocated once. Shapes per step of n <= batch
 * tokens. The widths of the buffers the blocks' matmuls read and write come from `LAYER_TENSORS`
 * (their `reads` / `writes`), so only a new activation name needs a field here.
 */
export interface Scratch {
  batch: number;
  /** [batch][nEmbd]: the residual stream. */
  x: Activation;
  /** [batch][nEmbd]: norm outputs and block outputs. */
  cur: Activation;
  /** [batch][qDim + kvDimK + kvDimV] when fused, else q [batch][qDim], k [batch][kvDimK], v [batch][kvDimV]. */
  qkv?: Activation | undefined;
  q?: Activation | undefined;
  k?: Activation | undefined;
  v?: Activation | undefined;
  /** [batch][nHead * headDimV] */
  attn: Activation;
  /** [batch][maxFf] (fused gate-up: [batch][2 maxFf]) */
  gate: Activation;
  /** [batch][maxFf], absent with fused gate-up. */
  up?: Activation | undefined;
  /** [batch][maxFf]: act(gate) * up. */
  ffh: Activation;
  /** [batch][nVocab] */
  logits: Activation;
  /** Mixture of experts (moeFfn): router logits [batch][nExpert], one expert's gathered token rows [batch][nEmbd], its gate, up and GLU [batch][max expert width], its output [batch][nEmbd], the FFN's output [batch][nEmbd]. */
  moeLogits?: Activation | undefined;
  moeX?: Activation | undefined;
  moeGate?: Activation | undefined;
  moeUp?: Activation | undefined;
  moeH?: Activation | undefined;
  moeY?: Activation | undefined;
  moeOut?: Activation | undefined;
  /**
   * Mamba2 mixers: ssm_in's output [batch][inner + convDim + heads] (z | x B C | dt), the
   * convolved x B C [batch][convDim], the scan's y [batch][inner].
   */
  ssmProj?: Activation | undefined;
  ssmXbc?: Activation | undefined;
  ssmY?: Activation | undefined;
  /** Short convolutions: in_proj's [batch][3 nEmbd] (b | c | x), b * x and the conv's output [batch][nEmbd]. */
  convProj?: Activation | undefined;
  convIn?: Activation | undefined;
  convOut?: Activation | undefined;
  /** u32 [batch]: token ids, positions, sampled tokens. */
  tokens: IdBuffer;
  positions: IdBuffer;
  sampled: IdBuffer;
}

export interface LoadOptions {
  /**
   * Positions the KV cache holds. Default: the model's training context, at most 4096, shrunk (in
   * steps of 256, not below 256) to what fits the budget; an explicit value is never shrunk.
   */
  contextLength?: number;
  /** Most tokens per step (prefill chunk); default 128. */
  batch?: number;
  /** Progress of the upload, in bytes of the file's tensors. */
  onProgress?: (loaded: number, total: number) => void;
  /** With a single source: its header when the caller has read it already (saves reading it twice). */
  file?: GgufFile;
}

/** What a model is loaded into: the plan, the weights and the run state. */
export interface LoadedModel {
  config: ModelConfig;
  weights: ModelWeights;
  scratch: Scratch;
  kv: KvCache;
  plan: MemoryPlan;
  /** A hybrid's recurrent state; undefined for a transformer. */
  recurrent: RecurrentState | undefined;
}

export interface MemoryPlan {
  contextLength: number;
  batch: number;
  weightBytes: number;
  kvBytes: number;
  /** A hybrid's recurrent state with its snapshots (recurrent-state.ts); 0 for a transformer. */
  stateBytes: number;
  scratchBytes: number;
  totalBytes: number;
}

const DEFAULT_CONTEXT = 4096;
const DEFAULT_BATCH = 128;
const CONTEXT_STEP = 256;

function kvBytesFor(c: ModelConfig, capacity: number): number {
  return c.nKvLayers * capacity * (c.kvDimK + c.kvDimV) * 4;
}

/** The id buffers of `Scratch`: u32 [batch] each. */
const ID_BUFFERS = ['tokens', 'positions', 'sampled'] as const;

/**
 * Floats per token of each activation buffer, in allocation order: the residual stream x and cur,
 * the blocks' matmul inputs and outputs, the logits.
 */
function scratchWidths(c: ModelConfig): Map<ActivationName, number> {
  const widths = layerActivationWidths(c, [
    ['x', c.nEmbd],
    ['cur', c.nEmbd],
    ...(c.moe ? [['moeOut', c.nEmbd] as [ActivationName, number]] : []),
    // Written by ops that are not matmuls (the convolutions), so not in the tensor table.
    ...(c.ssm ? [['ssmXbc', c.ssm.convDim] as [ActivationName, number]] : []),
    ...(c.shortConvWidth > 0 ? [['convIn', c.nEmbd] as [ActivationName, number]] : []),
  ]);
  if (c.moe) {
    // Room for every (token, chosen expert) pair of a batch: the WebGPU moeFfn then runs a whole
    // batch's expert products in one chunk, grouped by expert, so each expert's rows are read once
    // per batch (per tile of its pairs) rather than once per scratch-sized chunk.
    const pairs = c.moe.nExpertUsed;
    for (const [name, width] of [['moeGate', c.moe.nFfExp], ['moeUp', c.moe.nFfExp], ['moeH', c.moe.nFfExp], ['moeY', c.nEmbd]] as const) {
      widths.set(name, Math.max(widths.get(name) ?? 0, pairs * width));
    }
  }
  return widths.set('logits', c.nVocab);
}

function scratchFloats(c: ModelConfig, batch: number): { largest: number; total: number } {
  const widths = [...scratchWidths(c).values()].map((w) => w * batch);
  return { largest: Math.max(...widths), total: widths.reduce((a, b) => a + b, 0) + ID_BUFFERS.length * batch };
}

/**
 * The memory a model takes at a context length and batch, checked against the backend: throws
 * {@link ModelTooLargeError} when one buffer exceeds the device's largest or the total exceeds the
 * budget. With no explicit context, the longest context (a multiple of 256) that fits is chosen.
 */
export function planMemory(
  config: ModelConfig,
  tensors: readonly GgufTensorInfo[],
  backend: Pick<Backend, 'limits'> & Partial<Pick<Backend, 'weightBytes'>>,
  options: LoadOptions = {},
): MemoryPlan {
  const batch = options.batch ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch ${batch} must be a positive integer`);
  const { maxBufferBytes, memoryBudgetBytes } = backend.limits;
  const weightBytes = loadedWeightBytes(tensors, backend);
  // The scratch of the blocks as loaded (stacked projections write one buffer, not several).
  const scratch = scratchFloats(stackedLoad(config, tensors).config, batch);
  const scratchBytes = scratch.total * 4;
  // A hybrid's recurrent state with its snapshots: fixed, whatever the context.
  const stateBytes = recurrentStateBytes(config) * (1 + STATE_SNAPSHOTS);
  const fixedBytes = weightBytes + scratchBytes + stateBytes;
  const layerKvBytes = (ctx: number) => ctx * Math.max(config.kvDimK, config.kvDimV) * 4;
  const fits = (ctx: number) => fixedBytes + kvBytesFor(config, ctx) <= memoryBudgetBytes && layerKvBytes(ctx) <= maxBufferBytes;
  const detail = (ctx: number) => ({
    contextLength: ctx,
    weightBytes,
    kvBytes: kvBytesFor(config, ctx),
    stateBytes,
    scratchBytes,
    memoryBudgetBytes,
    maxBufferBytes,
  });
  if (scratch.largest * 4 > maxBufferBytes) {
    throw new ModelTooLargeError(`a ${batch}-token step needs a ${scratch.largest * 4}-byte buffer, over the device's largest (${maxBufferBytes}); use a smaller batch`, detail(0));
  }
  const layerState = largestLayerStateBytes(config);
  if (layerState > maxBufferBytes) {
    throw new ModelTooLargeError(`one layer's recurrent state needs a ${layerState}-byte buffer, over the device's largest (${maxBufferBytes})`, detail(0));
  }
  /** The byte counts that make up a context's total, for the errors. */
  const parts = (ctx: number) => [`weights ${weightBytes}`, `KV cache ${kvBytesFor(config, ctx)}`, ...(stateBytes > 0 ? [`recurrent state ${stateBytes}`] : []), `scratch ${scratchBytes}`];
  let ctx = options.contextLength;
  if (ctx !== undefined) {
    if (!Number.isInteger(ctx) || ctx < 1) throw new RangeError(`context length ${ctx} must be a positive integer`);
    if (!fits(ctx)) {
      throw new ModelTooLargeError(
        `${config.name ?? config.architecture} with a ${ctx}-token context needs ${fixedBytes + kvBytesFor(config, ctx)} bytes ` +
          `(${parts(ctx).join(', ')}); the budget is ${memoryBudgetBytes} bytes`,
        detail(ctx),
      );
    }
  } else {
    ctx = Math.min(config.nCtxTrain, DEFAULT_CONTEXT);
    while (!fits(ctx) && ctx > CONTEXT_STEP) ctx = Math.max(CONTEXT_STEP, (Math.ceil(ctx / CONTEXT_STEP) - 1) * CONTEXT_STEP);
    if (!fits(ctx)) {
      throw new ModelTooLargeError(
        `${config.name ?? config.architecture} does not fit at ${ctx} tokens: ${parts(ctx).join(' + ')} bytes > budget ${memoryBudgetBytes} bytes`,
        detail(ctx),
      );
    }
  }
  const kvBytes = kvBytesFor(config, ctx);
  return { contextLength: ctx, batch, weightBytes, kvBytes, stateBytes, scratchBytes, totalBytes: fixedBytes + kvBytes };
}

/** llama.cpp runs with n_ctx padded to 256; phi3 picks its long rope factors from that. */
function llamaCppContext(n: number): number {
  return Math.ceil(n / 256) * 256;
}

/**
 * The tensors a load plans memory for and counts in its progress: all but Phi-3's long/short rope
 * factor pair (one of the two is loaded: a few floats).
 */
export function plannedTensors<T extends { name: string }>(tensors: readonly T[]): T[] {
  return tensors.filter((t) => t.name !== 'rope_factors_long.weight' && t.name !== 'rope_factors_short.weight');
}

/** A model read, checked and planned for one backend: everything a load decides before uploading. */
export interface PlannedLoad {
  file: GgufModel;
  config: ModelConfig;
  plan: MemoryPlan;
}

/**
 * What a load is planned against: the backend itself, or, for a backend sized from the plan (the
 * CPU's memory), its ceiling before it exists.
 */
export type PlanTarget = WeightTarget & Pick<Backend, 'limits'>;

/**
 * Reads and validates a model (`readModelConfig`, `checkTensors`, what the forward pass and the
 * target's kernels support) and plans its memory on `target` ({@link planMemory}). Throws before
 * anything is allocated.
 */
export function planLoad(file: GgufModel, target: PlanTarget, options: Pick<LoadOptions, 'contextLength' | 'batch'> = {}): PlannedLoad {
  const config = readModelConfig(file);
  checkTensors(config, file);
  if (config.headDimK !== config.headDimV) {
    throw new UnsupportedModelError(`head sizes differ for keys (${config.headDimK}) and values (${config.headDimV}); not supported yet`, {
      headDimK: config.headDimK,
      headDimV: config.headDimV,
    });
  }
  if (config.qkNorm && config.tensors.fusedQkv) {
    throw new UnsupportedModelError('q/k norms on a fused qkv projection are not supported', {});
  }
  checkWeightTypes(file.tensors, target);
  return { file, config, plan: planMemory(config, plannedTensors(file.tensors), target, options) };
}

function isGgufModel(source: RangedSource | GgufModel): source is GgufModel {
  return 'tensorsByName' in source;
}

/** One file as a one-part model; `header` when the caller has read it already. */
async function asGgufModel(source: RangedSource | GgufModel, header: GgufFile | undefined): Promise<GgufModel> {
  return isGgufModel(source) ? source : assembleGgufModel([{ file: header ?? (await readGguf(source)), source }]);
}

function isPlannedLoad(source: RangedSource | GgufModel | PlannedLoad): source is PlannedLoad {
  return 'plan' in source && 'config' in source;
}

/**
 * Reads, validates and uploads a model; the KV cache and scratch are allocated here, once. `source`
 * is one GGUF file, a model opened with `openGgufModel` (every part of a split model), or one
 * already planned for this backend with {@link planLoad} (its plan fixes the context and batch).
 */
export async function loadModel(backend: Backend, source: RangedSource | GgufModel | PlannedLoad, options: LoadOptions = {}): Promise<LoadedModel> {
  const planned = isPlannedLoad(source) ? source : planLoad(await asGgufModel(source, options.file), backend, options);
  const { file, config, plan } = planned;
  const recurrentOps = [backend.ssmConv, backend.ssmScan, backend.gatedNorm, backend.mul, backend.copy, backend.zero];
  if (hasRecurrentLayers(config) && recurrentOps.some((op) => !op)) {
    throw new UnsupportedModelError(`${config.architecture} models (recurrent state-space layers) do not run on the ${backend.kind} backend yet`, {
      architecture: config.architecture,
      backend: backend.kind,
    });
  }
  const used = plannedTensors(file.tensors);
  const { info, matrix, vectorValues, vector, optVector, progress } = tensorUploader(backend, file.tensorsByName, options.onProgress, used.reduce((a, t) => a + t.byteSize, 0));
  /** One matrix of the rows of `names` in turn (all of one format: stacking.ts), read straight from their bytes. */
  const stackedMatrix = async (names: string[]): Promise<Weight> => {
    const parts = names.map(info);
    const [k, ...rest] = parts[0]!.shape;
    if (rest.length !== 1) throw new Error(`${names[0]}: a stacked matrix must be 2-D`);
    const rows = parts.reduce((a, t) => a + t.shape[1]!, 0);
    const name = names.map((n) => n.replace(/\.weight$/, '')).join('+').replace(/\+blk\.\d+\./g, '+') + '.weight';
    const read = async (offset: number, length: number) => {
      const out = new Uint8Array(length);
      let start = 0;
      for (const t of parts) {
        const from = Math.max(offset, start);
        const to = Math.min(offset + length, start + t.byteSize);
        if (from < to) out.set(await t.source.read(t.fileOffset + from - start, to - from), from - offset);
        start += t.byteSize;
      }
      return out;
    };
    const w = await backend.weight({ name, type: parts[0]!.type, shape: [k!, rows] }, read);
    for (const t of parts) progress(t.byteSize);
    return w;
  };
  const stackedVector = async (names: string[]): Promise<Vector> => {
    // Concatenated without spreading into push: a long vector would overflow the call stack.
    const parts: Float32Array[] = [];
    for (const name of names) parts.push(await vectorValues(name));
    const values = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      values.set(p, at);
      at += p.length;
    }
    return backend.vector(names.join('+'), values);
  };

  let ropeFactors: Vector | undefined;
  if (config.rope.factors === 'freqs') ropeFactors = await vector('rope_freqs.weight');
  if (config.rope.factors === 'long-short') {
    // As llama.cpp's get_rope_factors: long factors once the context exceeds the original one.
    const long = llamaCppContext(plan.contextLength) > config.rope.nCtxOrig;
    ropeFactors = await optVector(long ? 'rope_factors_long.weight' : 'rope_factors_short.weight');
  }

  // Blocks as loaded: q|k|v and gate|up stacked into one matrix each where the data allows.
  const stacked = stackedLoad(config, file.tensors);
  const layers: LayerWeights[] = [];
  for (let il = 0; il < config.nLayer; il++) {
    const layer: Partial<Record<keyof LayerWeights, Weight | Vector>> = {};
    for (const { field, parts } of stacked.blocks[il]!) {
      const names = parts.map((part) => layerTensorName(il, LAYER_TENSORS[part]));
      if (LAYER_TENSORS[field].kind === 'matrix') layer[field] = names.length > 1 ? await stackedMatrix(names) : await matrix(names[0]!);
      else layer[field] = names.length > 1 ? await stackedVector(names) : await vector(names[0]!);
    }
    // Every field the model has is set; the table types the rest as possibly undefined.
    layers.push(layer as LayerWeights);
  }
  const tokenEmbd = await matrix('token_embd.weight');
  const weights: ModelWeights = {
    tokenEmbd,
    output: config.tensors.tiedEmbeddings ? tokenEmbd : await matrix('output.weight'),
    outputBias: await optVector('output.bias'),
    outputNorm: await vector(config.outputNorm),
    ropeFactors,
    layers,
  };

  const B = plan.batch;
  const activations = [...scratchWidths(stacked.config)].map(([name, width]) => [name, backend.activation(name, B * width)] as const);
  const ids = ID_BUFFERS.map((name) => [name, backend.ids(name, B)] as const);
  // scratchWidths names every activation the forward pass reads for this config.
  const scratch = { batch: B, ...Object.fromEntries(activations), ...Object.fromEntries(ids) } as Scratch;
  const kv = new KvCache(backend.kvStorage({ layers: config.nKvLayers, capacity: plan.contextLength, kvHeads: config.nHeadKv, headDim: config.headDimK }));
  const recurrent = hasRecurrentLayers(config) ? new RecurrentState(backend, config) : undefined;
  if (recurrent) {
    backend.begin();
    recurrent.recordReset();
    backend.submit();
  }
  return { config, weights, scratch, kv, plan, recurrent };
}
