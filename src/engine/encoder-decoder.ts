/**
 * Encoder-decoder models (llama.cpp's `t5`: T5, Flan-T5) in the engine: how one is opened (backend
 * chosen, planned, loaded, described) and the error for a request of the wrong kind. They run as
 * text to text (`transform`), not chat: no template, no KV prefix, no adapters.
 *
 * Backend: the engine's usual choice (backend/choose.ts). A backend that cannot run the model
 * (T5Model.load refuses it by name: no relative-position attention, no ReLU, a weight type without
 * a kernel) is an error when it was asked for; under 'auto' a refused WebGPU falls back to the CPU
 * backend, and the model info's notice says why.
 */
import type { LoadModelOptions, ModelInfo } from './api.ts';
import { chooseBackend, cpuBackend, type BackendRequest, type ChosenBackend } from './backend/choose.ts';
import { HearthError } from './errors.ts';
import { TransformSession } from './generate/transform-session.ts';
import type { GgufModel } from './gguf/split.ts';
import { describeModel } from './model-info.ts';
import { T5Model } from './model/t5-forward.ts';
import { planT5Load, type PlannedT5Load, type T5LoadOptions } from './model/t5-plan.ts';
import type { Tokenizer } from './tokenizer/index.ts';

/** A request the loaded model cannot answer: a chat on an encoder-decoder model, a transform on a decoder-only one. */
export class ModelKindError extends HearthError {
  override name = 'ModelKindError';
}

export function isEncoderDecoder(file: Pick<GgufModel, 'metadata'>): boolean {
  return file.metadata.get('general.architecture') === 't5';
}

/** The error for `method` on a loaded model of the other kind. */
export function wrongModelKind(method: 'chatCompletion' | 'evaluateModels' | 'transform', model: Pick<ModelInfo, 'name' | 'architecture'>): ModelKindError {
  const detail = { method, model: model.name, architecture: model.architecture };
  return method === 'transform'
    ? new ModelKindError(`transform needs an encoder-decoder (text-to-text) model such as Flan-T5; ${model.name} (${model.architecture}) is a decoder-only model: use chatCompletion.`, { ...detail, kind: 'decoder-only' })
    : new ModelKindError(`${model.name} (${model.architecture}) is an encoder-decoder (text-to-text) model: ${method} takes decoder-only models; use transform with the text to transform.`, { ...detail, kind: 'encoder-decoder' });
}

export interface OpenedEncoderDecoder {
  model: T5Model;
  session: TransformSession;
  info: ModelInfo;
}

/** A UnsupportedModelError of the WebGPU backend: the model does not run there (yet). */
function refusedOnWebGpu(error: unknown): error is HearthError {
  const e = error as HearthError | undefined;
  return e?.name === 'UnsupportedModelError' && e.detail?.backend === 'webgpu';
}

/**
 * Loads an encoder-decoder model. `options.contextLength` bounds its input and its output (default
 * the training context, at most 512); `backends` opens the WebGPU device as the engine does.
 */
export async function openEncoderDecoder(
  file: GgufModel,
  tokenizer: Tokenizer,
  fileName: string,
  options: LoadModelOptions,
  backends: Pick<BackendRequest<PlannedT5Load>, 'gpuDevice' | 'softwareAdapter'>,
  onProgress: (loaded: number, total: number, backend: 'webgpu' | 'cpu') => void,
): Promise<OpenedEncoderDecoder> {
  const sizing: T5LoadOptions = options.contextLength ? { inputCapacity: options.contextLength, outputCapacity: options.contextLength } : {};
  const request: BackendRequest<PlannedT5Load> = {
    ...backends,
    backend: options.backend,
    threads: options.threads,
    planForCpu: (target) => planT5Load(file, target, sizing),
  };
  const load = async (chosen: ChosenBackend<PlannedT5Load>) => {
    try {
      // A CPU backend was sized from the model's plan: load that plan rather than make another.
      return await T5Model.load(chosen.backend, chosen.planned ?? file, { ...sizing, onProgress: (loaded, total) => onProgress(loaded, total, chosen.kind) });
    } catch (error) {
      // The model owns the backend once loaded; before that, free it here.
      chosen.backend.destroy();
      throw error;
    }
  };
  let chosen = await chooseBackend(request);
  let model: T5Model;
  try {
    model = await load(chosen);
  } catch (error) {
    if (chosen.kind !== 'webgpu' || (options.backend ?? 'auto') !== 'auto' || !refusedOnWebGpu(error)) throw error;
    chosen = await cpuBackend(request, `${error.message.replace(/\.$/, '')}; running on the CPU`);
    model = await load(chosen);
  }
  try {
    const name = String(file.metadata.get('general.name') ?? fileName);
    const info: ModelInfo = {
      ...describeModel(file, {
        fileName,
        contextLength: model.inputCapacity,
        trainedContextLength: model.config.contextLength,
        hasChatTemplate: false,
        templateFallback: undefined,
        backend: chosen.kind,
        backendNotice: chosen.notice,
        threads: chosen.threads,
      }),
      kind: 'encoder-decoder',
      outputCapacity: model.outputCapacity,
    };
    return { model, session: new TransformSession(model, tokenizer, name), info };
  } catch (error) {
    model.destroy();
    throw error;
  }
}
