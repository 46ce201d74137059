/**
 * The engine behind `EngineApi`. Constructed with whatever provides WebGPU on this platform, so
 * the same class serves the Web Worker (navigator.gpu) and Node (Dawn).
 *
 * Requests run one at a time, in arrival order (a queue, never interleaved). `abort` is not
 * queued: it marks a running or waiting request, which then ends within one token. A lost GPU
 * device is reported on the request that hits it; the next request reloads the model.
 *
 * Backends: `backend: 'auto'` (the default) runs on WebGPU and falls back to the WebAssembly CPU
 * backend when WebGPU is missing or will not start (no navigator.gpu, no adapter, no device), or
 * when its adapter is a software renderer, slower than the CPU backend itself (backend/choose.ts);
 * the loaded model's info says which backend runs and why (`backend`, `backendNotice`). A reload
 * after a lost device goes through the same choice, so it may land on the CPU.
 */
import type {
  AdapterInfo,
  AdapterSource,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatMessage,
  ContextMeasure,
  EngineApi,
  Capabilities,
  EngineInfo,
  EngineStatus,
  EvaluateProgress,
  EvaluateRequest,
  Evaluation,
  GpuReport,
  QuantizeModelProgress,
  QuantizeModelRequest,
  LoadModelOptions,
  LoadProgress,
  ModelInfo,
  ModelSource,
  TransformChunk,
  TransformRequest,
  TransformResult,
  TrainingEstimate,
  TrainingOutcome,
  TrainingProgress,
  TrainingRequest,
} from './api.ts';
import { chooseBackend, cpuReport, softwareAdapterName } from './backend/choose.ts';
import { createGpuContext, type GpuContext } from './backend/webgpu/device.ts';
import { KernelCache } from './backend/webgpu/kernel.ts';
import { adapterName, probeWebGPU, type ProbeOptions } from './backend/webgpu/probe.ts';
import { WebGpuTrainOps } from './backend/webgpu/train-ops.ts';
import { WasmTrainOps } from './backend/cpu/train-ops.ts';
import type { TrainOps } from './backend/train-ops.ts';
import { DeviceLostError, HearthError } from './errors.ts';
import { ChatSession } from './generate/chat-session.ts';
import { InvalidRequestError, resolveAdapters, validateChatRequest, validateMeasureOptions, validateMessages, type ValidChatRequest } from './generate/validate-request.ts';
import { sameAdapters, type LoadedLora } from './model/lora/apply.ts';
import { blobSource, httpRangeSource, type RangedSource } from './gguf/source.ts';
import { expandSplitUrls, openGgufModel } from './gguf/split.ts';
import { describeModel } from './model-info.ts';
import { planLoad } from './model/loader.ts';
import { Model } from './model/model.ts';
import { Tokenizer } from './tokenizer/index.ts';
import { DEFAULT_STALL_MS, RateMeter, fileModelId, stallGuardedFetch, type CachedModel, type DownloadProgress, type ModelEntry, type ModelStore, type StoreUsage } from './store/index.ts';
import { ENGINE_VERSION } from './version.ts';
import { evaluateVersions, quantizeIntoStore, validateEvaluateRequest, validateQuantizeRequest, type OpenedVersion, type ValidEvaluateRequest } from './compare.ts';
import { ModelNotFoundError } from './store/errors.ts';
import { isEncoderDecoder, openEncoderDecoder, wrongModelKind, type OpenedEncoderDecoder } from './encoder-decoder.ts';
import { validateTransformRequest, type ValidTransformRequest } from './generate/transform-session.ts';
import { readGguf } from './gguf/reader.ts';
import { loadTrainingBase } from './train/base.ts';
import { CpuTrainOps } from './train/cpu-ops.ts';
import { UnsupportedTrainingError } from './train/errors.ts';
import { TrainingRun, TrainingStateError, estimateTraining, type TrainingGpu, type TrainingHost, type TrainingSample, type TrainingSamples } from './train/session.ts';

export interface EnginePlatform {
  /** The WebGPU entry point, or undefined where the platform has none. */
  gpu: GPU | undefined;
  runtime: string;
  probeOptions?: ProbeOptions;
  /** The model store (IndexedDB in the browser); without one, only files and URLs load. */
  store?: ModelStore;
  /** For models loaded from a URL; default the global fetch. */
  fetch?: typeof fetch;
  /** A URL load fails once its server sends nothing for this long (default 30 s). */
  stallTimeoutMs?: number;
}

/** The error a cancelled load ends with. */
function loadCancelled(): DOMException {
  return new DOMException('The load was cancelled; the model in use stays loaded.', 'AbortError');
}

/** The last segment of a path or URL, decoded: what a user would call the file. */
function baseName(path: string): string {
  const last = path.split(/[\\/]/).pop() || path;
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** A chat request arrived with no model loaded. */
export class NoModelLoadedError extends HearthError {
  override name = 'NoModelLoadedError';
}

/** A training run from its call on: `run` once the model's file is read, `stop` asked before that. */
interface TrainingSlot {
  run?: TrainingRun;
  stop?: 'pause' | 'cancel';
  outcome: Promise<TrainingOutcome>;
}

interface Loaded {
  model: Model;
  session: ChatSession;
  tokenizer: Tokenizer;
  info: ModelInfo;
  source: ModelSource;
  options: LoadModelOptions;
  /** LoRA adapters loaded for this model, by id (dropped with it). */
  adapters: Map<string, LoadedLora>;
  /** Where each adapter was loaded from, by id: to load them again after a device loss. */
  adapterSources: Map<string, AdapterSource>;
  transform?: undefined;
}

/** An encoder-decoder model (encoder-decoder.ts): text to text, no chat session, no adapters. */
type LoadedTransform = Omit<Loaded, 'model' | 'session' | 'transform'> & Pick<OpenedEncoderDecoder, 'model'> & { transform: OpenedEncoderDecoder['session']; session?: undefined };

/** Whatever model is loaded: a chat (decoder-only) model or an encoder-decoder one. */
type AnyLoaded = Loaded | LoadedTransform;

/** A lost GPU device, thrown here or across the worker boundary (where only the name survives). */
function isDeviceLost(error: unknown): boolean {
  return error instanceof DeviceLostError || (error as Error)?.name === 'DeviceLostError';
}

/**
 * A load that ran out of memory, which the model in use may be the cause of: the plan did not fit
 * the budget (ModelTooLargeError), or the CPU backend's WebAssembly memory could not be allocated
 * or grown (a RangeError), or its memories for a model over 4 GiB could not be made (CpuMemoryError).
 */
function isOutOfMemory(error: unknown): boolean {
  const e = error as Error | undefined;
  return e?.name === 'ModelTooLargeError' || e?.name === 'CpuMemoryError' || (e instanceof RangeError && /memory|allocat/i.test(e.message));
}

export class Engine implements EngineApi {
  /** The GPU device and the pipelines compiled on it, kept across model loads (compiling is slow). */
  private gpuDevice: { context: GpuContext; kernels: KernelCache } | undefined;
  private loaded: AnyLoaded | undefined;
  /** The adapters of a model lost with its device, by id, to load again with it. */
  private lostAdapters = new Map<string, AdapterSource>();
  /** What to reload after a device loss. */
  private lastLoad: { source: ModelSource; options: LoadModelOptions } | undefined;
  private state: EngineStatus = { state: 'idle' };
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * The requests queued or running, by request id (a caller may reuse an id): an abort marks the
   * ones there at the time, never a later request with the same id.
   */
  private readonly inFlight = new Map<string, Set<{ aborted: boolean }>>();
  private busy = false;
  private nextRequest = 1;
  private readonly downloads = new Map<string, AbortController>();
  /** Loads asked for and not finished, running or queued: `cancelLoad` aborts them. */
  private readonly loads = new Set<AbortController>();
  /** The training run in progress (one at a time), and the outcome it will end with. */
  private training: TrainingSlot | undefined;
  /** The frozen training base read from the loaded model's file, kept while that model stays loaded. */
  private trainingBase: { loaded: Loaded; host: TrainingHost } | undefined;

  constructor(private readonly platform: EnginePlatform) {}

  async info(): Promise<EngineInfo> {
    return { name: 'hearth', version: ENGINE_VERSION, runtime: this.platform.runtime };
  }

  async probe(): Promise<GpuReport> {
    return probeWebGPU(this.platform.gpu, this.platform.probeOptions);
  }

  async capabilities(): Promise<Capabilities> {
    return { gpu: await this.probe(), cpu: cpuReport() };
  }

  async status(): Promise<EngineStatus> {
    if (this.state.state === 'ready') return { ...this.state, busy: this.busy };
    return this.state;
  }

  /**
   * Queued like every request; `cancelLoad` ends it whether it runs or waits. A load from a URL
   * whose server stalls fails after the stall timeout, so it never holds the queue for good.
   */
  loadModel(source: ModelSource, options: LoadModelOptions = {}, onProgress?: (progress: LoadProgress) => void): Promise<ModelInfo> {
    const controller = new AbortController();
    this.loads.add(controller);
    return this.enqueue(async () => {
      if (controller.signal.aborted) throw loadCancelled();
      // A model loaded by the caller starts with no adapters (the app attaches its own again).
      this.lostAdapters = new Map();
      return (await this.load(source, options, onProgress, controller.signal)).info;
    }).finally(() => this.loads.delete(controller));
  }

  async cancelLoad(): Promise<void> {
    for (const controller of this.loads) controller.abort(loadCancelled());
  }

  unloadModel(): Promise<void> {
    return this.enqueue(async () => {
      this.release();
      this.lastLoad = undefined;
      this.lostAdapters = new Map();
      this.state = { state: 'idle' };
    });
  }

  loadAdapter(source: AdapterSource, options: { id?: string } = {}): Promise<AdapterInfo> {
    return this.enqueue(async () => {
      const loaded = await this.ensureLoaded();
      // The id is checked before the source is opened: a refused request opens (and leaks) nothing.
      if (options.id !== undefined && (typeof options.id !== 'string' || options.id.length === 0 || options.id.length > 256)) {
        throw new InvalidRequestError("Invalid request: 'id' must be a non-empty string of at most 256 characters.", { param: 'id' });
      }
      if (options.id !== undefined && loaded.adapters.has(options.id)) {
        throw new InvalidRequestError(`Invalid request: 'id' ${options.id} names an adapter already loaded.`, { param: 'id', value: options.id });
      }
      const opened = await this.openAdapterSource(source);
      const name = opened.name;
      // A free id from the file name: name, name-2, name-3, ...
      const stem = name.replace(/\.gguf$/i, '') || 'adapter';
      let id = options.id ?? stem;
      for (let n = 2; loaded.adapters.has(id); n++) id = `${stem}-${n}`;
      const range = opened.source;
      try {
        const lora = await loaded.model.loadAdapter(range, id);
        loaded.adapters.set(id, lora);
        loaded.adapterSources.set(id, source);
        let rank = 0;
        for (const pair of lora.targets.values()) rank = Math.max(rank, pair.rank);
        return { id, name: lora.name ?? name, architecture: loaded.model.config.architecture, alpha: lora.alpha, targets: [...lora.targets.keys()], rank, bytes: lora.bytes };
      } finally {
        await range.close?.();
      }
    });
  }

  unloadAdapter(id: string): Promise<{ id: string; freedBytes: number }> {
    return this.enqueue(async () => {
      const loaded = await this.ensureLoaded();
      const lora = typeof id === 'string' ? loaded.adapters.get(id) : undefined;
      if (!lora) {
        const names = [...loaded.adapters.keys()].map((k) => `'${k}'`).join(', ') || 'none';
        throw new InvalidRequestError(`Invalid request: 'id' names no loaded adapter (loaded: ${names}).`, { param: 'id', value: String(id) });
      }
      // Its KV prefix was computed with it: the next request evaluates its prompt again.
      if (loaded.model.adapters.some((a) => a.lora === lora)) loaded.session.invalidateCache();
      loaded.adapters.delete(id);
      loaded.adapterSources.delete(id);
      return { id, freedBytes: loaded.model.unloadAdapter(lora) };
    });
  }

  /** An adapter's bytes and the name to show: one file, picked, at a URL, or in the store. */
  private async openAdapterSource(source: AdapterSource): Promise<{ source: RangedSource; name: string }> {
    switch (source.kind) {
      case 'file':
        return { source: blobSource(source.file, source.name), name: source.name };
      case 'url': {
        const guarded = stallGuardedFetch(this.platform.fetch ?? ((input, init) => fetch(input, init)), this.platform.stallTimeoutMs ?? DEFAULT_STALL_MS);
        return { source: await httpRangeSource(source.url, undefined, { fetch: guarded }), name: baseName(source.url) };
      }
      case 'cached': {
        const store = this.requireStore();
        const record = await store.get(source.id);
        const sources = await store.sources(source.id);
        if (sources.length !== 1) throw new InvalidRequestError(`Invalid request: '${source.id}' is ${sources.length} files; an adapter is one.`, { param: 'id', value: source.id });
        await store.markUsed(source.id);
        return { source: sources[0]!, name: record?.name ?? source.id };
      }
    }
  }

  chatCompletion(untrusted: ChatCompletionRequest, onChunk?: (chunk: ChatCompletionChunk) => void): Promise<ChatCompletion> {
    let request: ValidChatRequest;
    try {
      request = validateChatRequest(untrusted, this.loaded?.adapters);
    } catch (error) {
      return Promise.reject(error);
    }
    const requestId = request.request_id ?? `req-${this.nextRequest++}`;
    return this.runRequest(requestId, async (aborted) => {
      const loaded = await this.ensureLoaded();
      // The adapters this request asks for; another set than the last request's cannot reuse its KV prefix.
      const adapters = resolveAdapters(request.adapters, loaded.adapters);
      if (!sameAdapters(loaded.model.adapters, adapters)) {
        loaded.model.setAdapters(adapters);
        loaded.session.invalidateCache();
      }
      this.busy = true;
      return await loaded.session.complete({ ...request, request_id: requestId }, onChunk, aborted);
    });
  }

  transform(untrusted: TransformRequest, onChunk?: (chunk: TransformChunk) => void): Promise<TransformResult> {
    let request: ValidTransformRequest;
    try {
      request = validateTransformRequest(untrusted);
    } catch (error) {
      return Promise.reject(error);
    }
    const requestId = request.request_id ?? `transform-${this.nextRequest++}`;
    return this.runRequest(requestId, async (aborted) => {
      const loaded = await this.ensureAnyLoaded();
      if (!loaded.transform) throw wrongModelKind('transform', loaded.info);
      this.busy = true;
      return await loaded.transform.run({ ...request, request_id: requestId }, onChunk, aborted);
    });
  }

  /**
   * Queues `body` as request `requestId`: `abort(requestId)` marks it while it is queued or
   * running (`aborted()` says so); a lost device on the way is handled; busy ends with it.
   */
  private runRequest<T>(requestId: string, body: (aborted: () => boolean) => Promise<T>): Promise<T> {
    const mark = { aborted: false };
    const sameId = this.inFlight.get(requestId) ?? new Set();
    this.inFlight.set(requestId, sameId.add(mark));
    return this.enqueue(async () => {
      try {
        return await body(() => mark.aborted);
      } catch (error) {
        throw this.afterFailure(error);
      } finally {
        this.busy = false;
        sameId.delete(mark);
        if (sameId.size === 0 && this.inFlight.get(requestId) === sameId) this.inFlight.delete(requestId);
      }
    });
  }

  /** Aborts the requests with this id that are queued or running now; a finished or unknown id is a no-op. */
  async abort(requestId: string): Promise<void> {
    for (const mark of this.inFlight.get(requestId) ?? []) mark.aborted = true;
  }

  countTokens(messages: ChatMessage[]): Promise<number> {
    return this.enqueue(async () => (await this.ensureLoaded()).session.countTokens(validateMessages(messages)));
  }

  measureContext(messages: ChatMessage[], options?: { prompt_format?: 'chat' | 'text' }): Promise<ContextMeasure> {
    let valid: { messages: ChatMessage[]; format: 'chat' | 'text' | undefined };
    try {
      valid = { messages: validateMessages(messages), format: validateMeasureOptions(options).prompt_format };
    } catch (error) {
      return Promise.reject(error);
    }
    return this.enqueue(async () => (await this.ensureLoaded()).session.measure(valid.messages, valid.format));
  }

  listModels(): Promise<CachedModel[]> {
    return this.requireStore().list();
  }

  async downloadModel(entry: ModelEntry, onProgress?: (progress: DownloadProgress) => void): Promise<CachedModel> {
    const controller = new AbortController();
    this.downloads.set(entry.id, controller);
    try {
      return await this.requireStore().download(entry, { signal: controller.signal, ...(onProgress ? { onProgress } : {}) });
    } finally {
      if (this.downloads.get(entry.id) === controller) this.downloads.delete(entry.id);
    }
  }

  async cancelDownload(id: string): Promise<void> {
    this.downloads.get(id)?.abort();
  }

  async importModelFile(files: Blob[], options: { copy: boolean; name?: string }, onProgress?: (progress: DownloadProgress) => void): Promise<CachedModel> {
    const id = fileModelId(files);
    const controller = new AbortController();
    this.downloads.set(id, controller);
    try {
      return await this.requireStore().importFile(files, { ...options, id, signal: controller.signal, ...(onProgress ? { onProgress } : {}) });
    } finally {
      if (this.downloads.get(id) === controller) this.downloads.delete(id);
    }
  }

  deleteModel(id: string, options: { partialOnly?: boolean } = {}): Promise<boolean> {
    return this.requireStore().delete(id, options);
  }

  storageUsage(): Promise<StoreUsage> {
    return this.requireStore().usage();
  }

  async quantizeModel(request: QuantizeModelRequest, onProgress?: (progress: QuantizeModelProgress) => void): Promise<CachedModel> {
    validateQuantizeRequest(request);
    const store = this.requireStore();
    const { sources, fileName } = await this.openSource(request.source, undefined);
    if (sources.length !== 1) throw new InvalidRequestError(`Invalid request: the model is ${sources.length} files; quantize takes one.`, { param: 'source' });
    const source = sources[0]!;
    const sourceId = request.source.kind === 'cached' ? request.source.id : (fileName ?? source.name ?? 'model');
    const stem = (fileName ?? baseName(source.name ?? 'model')).replace(/\.gguf$/i, '');
    const id = request.id ?? `${sourceId}:${request.type}`;
    const controller = new AbortController();
    this.downloads.set(id, controller);
    try {
      return await quantizeIntoStore(
        store,
        source,
        { id, name: request.name ?? `${stem} ${request.type}`, fileName: `${stem}-${request.type}.gguf`, type: request.type },
        controller.signal,
        onProgress,
      );
    } finally {
      if (this.downloads.get(id) === controller) this.downloads.delete(id);
      await source.close?.();
    }
  }

  evaluateModels(request: EvaluateRequest, onProgress?: (progress: EvaluateProgress) => void): Promise<Evaluation> {
    let valid: ValidEvaluateRequest;
    try {
      valid = validateEvaluateRequest(request);
    } catch (error) {
      return Promise.reject(error);
    }
    const requestId = request.request_id ?? `eval-${this.nextRequest++}`;
    const store = this.requireStore();
    return this.runRequest(requestId, async (aborted) => {
      // The backend (and threads) of the model in use: the speeds are this device's as it chats.
      const backend = this.loaded?.info.backend ?? 'auto';
      const threads = this.loaded?.info.threads;
      const open = async (id: string, contextLength: number): Promise<OpenedVersion> => {
        const cached = await store.get(id);
        if (!cached) throw new ModelNotFoundError(`No stored model "${id}".`, { id });
        const opened = await this.open({ kind: 'cached', id }, { contextLength, backend, ...(threads ? { threads } : {}) }, () => undefined);
        if (opened.transform) {
          opened.model.destroy();
          throw wrongModelKind('evaluateModels', opened.info);
        }
        return {
          model: opened.model,
          tokenizer: opened.tokenizer,
          bytes: cached.size ?? opened.info.fileSize,
          name: cached.name,
          quantization: cached.quantization ?? opened.info.quantization,
          backend: opened.info.backend,
          close: () => opened.model.destroy(),
        };
      };
      this.busy = true;
      return evaluateVersions(valid, open, aborted, onProgress);
    });
  }

  async exportModel(id: string): Promise<Blob> {
    const sources = await this.requireStore().sources(id);
    // Grown a chunk at a time: each chunk goes into the browser's blob storage (which spills large
    // blobs to disk) and a Blob of Blobs refers to its parts, so the JS heap holds one chunk at a time.
    let blob = new Blob([], { type: 'application/octet-stream' });
    const step = 4 * 1024 * 1024;
    for (const source of sources) {
      for (let at = 0; at < source.size; at += step) {
        const bytes = await source.read(at, Math.min(step, source.size - at));
        blob = new Blob([blob, bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
      }
    }
    return blob;
  }

  estimateTraining(request: TrainingRequest): Promise<TrainingEstimate> {
    return this.enqueue(async () => estimateTraining(await this.trainingHost(), request));
  }

  trainAdapter(request: TrainingRequest, onProgress?: (progress: TrainingProgress) => void): Promise<TrainingOutcome> {
    if (this.training) return Promise.reject(new TrainingStateError('A training run is in progress; pause or cancel it first.', {}));
    const slot: TrainingSlot = { outcome: Promise.resolve({ state: 'cancelled', step: 0 }) };
    this.training = slot;
    slot.outcome = (async () => {
      // Reading the file is queued (it may wait for a load); the steps are not: they yield between steps.
      const { host, loaded } = await this.enqueue(async () => ({ host: await this.trainingHost(), loaded: await this.ensureLoaded() }));
      const run = new TrainingRun({ ...host, sample: (adapter, samples) => this.sampleTrained(loaded, adapter, samples) }, request);
      slot.run = run;
      // A pause or cancel asked while the file was read applies before the first step.
      if (slot.stop === 'cancel') run.cancel();
      else if (slot.stop === 'pause') run.pause();
      const outcome = await run.run(onProgress);
      // A paused run will likely resume on this model: its base stays read; otherwise its memory goes back.
      if (outcome.state !== 'paused' && this.trainingBase?.host === host) this.trainingBase = undefined;
      return outcome;
    })();
    return slot.outcome.finally(() => {
      if (this.training === slot) this.training = undefined;
    });
  }

  async pauseTraining(): Promise<{ step: number; checkpoint: Uint8Array } | undefined> {
    const slot = this.training;
    if (!slot) throw new TrainingStateError('No training run is in progress.', {});
    slot.stop ??= 'pause';
    slot.run?.pause();
    const outcome = await slot.outcome;
    return outcome.state === 'paused' ? { step: outcome.step, checkpoint: outcome.checkpoint } : undefined;
  }

  async cancelTraining(): Promise<void> {
    const slot = this.training;
    if (!slot) return;
    slot.stop = 'cancel';
    slot.run?.cancel();
    await slot.outcome.catch(() => undefined);
  }

  /** The loaded model's file as a training base (read once per loaded model), with its tokenizer. */
  private async trainingHost(): Promise<TrainingHost> {
    const loaded = await this.ensureLoaded();
    if (this.trainingBase?.loaded === loaded) return this.trainingBase.host;
    this.trainingBase = undefined;
    const { sources } = await this.openSource(loaded.source, undefined);
    try {
      if (sources.length !== 1) throw new UnsupportedTrainingError(`The model is ${sources.length} files (a split GGUF); training reads one file.`, { feature: 'split model' });
      const source = sources[0]!;
      const file = await readGguf(source);
      const base = await loadTrainingBase(source, file);
      const host: TrainingHost = {
        base,
        metadata: file.metadata as ReadonlyMap<string, unknown>,
        tokenizer: loaded.tokenizer,
        backend: loaded.info.backend,
        ...(this.platform.gpu ? { gpu: () => this.trainingGpu() } : {}),
        cpuOps: async () => {
          const ops = await WasmTrainOps.create(new CpuTrainOps('f32'), { threads: loaded.info.threads ?? 1, baseBytes: base.bytes });
          return { ops: ops as TrainOps<unknown>, destroy: () => ops.destroy() };
        },
      };
      this.trainingBase = { loaded, host };
      return host;
    } finally {
      for (const s of sources) await s.close?.();
    }
  }

  /**
   * The engine's device for WebGPU training ops (the one the model runs on; opened if need be),
   * with what trainOpsFor decides by: whether the adapter is a software renderer.
   */
  private async trainingGpu(): Promise<TrainingGpu> {
    const { context, kernels } = await this.gpu();
    return {
      software: context.kernelPaths.software,
      adapterName: adapterName(context.adapter) || 'unnamed',
      createOps: () => new WebGpuTrainOps(context.device, { kernels }),
      lost: context.lost,
    };
  }

  /**
   * The samples of a finished run: each prompt answered greedily by the base and with the new
   * adapter attached for the occasion (loaded under a private id, unloaded after).
   */
  private async sampleTrained(loaded: Loaded, adapter: Uint8Array, samples: Required<TrainingSamples>): Promise<TrainingSample[] | string> {
    if (this.loaded !== loaded) return 'The model in use changed during training, so no samples were generated; load the base again and attach the adapter to try it.';
    const id = `training-sample-${this.nextRequest++}`;
    await this.loadAdapter({ kind: 'file', file: new Blob([adapter as Uint8Array<ArrayBuffer>]), name: `${id}.gguf` }, { id });
    try {
      const out: TrainingSample[] = [];
      for (const prompt of samples.prompts) {
        const ask = async (withAdapter: boolean) =>
          (
            await this.chatCompletion({
              messages: [{ role: 'user', content: prompt }],
              max_tokens: samples.maxTokens,
              temperature: 0,
              prompt_format: samples.format,
              ...(withAdapter ? { adapters: [{ id }] } : {}),
            })
          ).choices[0].message.content ?? '';
        out.push({ prompt, base: await ask(false), adapted: await ask(true) });
      }
      return out;
    } finally {
      await this.unloadAdapter(id).catch(() => undefined);
    }
  }

  private requireStore(): ModelStore {
    if (!this.platform.store) throw new HearthError('This engine has no model store (it runs outside a browser).');
    return this.platform.store;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The loaded chat (decoder-only) model, loaded again after a device loss; an encoder-decoder one is refused by name. */
  private async ensureLoaded(): Promise<Loaded> {
    const loaded = await this.ensureAnyLoaded();
    if (loaded.transform) throw wrongModelKind('chatCompletion', loaded.info);
    return loaded;
  }

  private async ensureAnyLoaded(): Promise<AnyLoaded> {
    if (this.loaded) return this.loaded;
    if (this.lastLoad) {
      const lost = this.lostAdapters;
      this.lostAdapters = new Map();
      const loaded = await this.load(this.lastLoad.source, this.lastLoad.options);
      if (!loaded.transform) await this.reattachAdapters(loaded, lost);
      return loaded;
    }
    throw new NoModelLoadedError('No model is loaded. Load a model first.');
  }

  /**
   * After a device loss, the model's adapters are loaded again from where they came from (a file,
   * a URL, the store) under the same ids, so requests naming them keep working. One that no longer
   * loads (a deleted store entry, a URL gone) stays out; requests naming it get the unknown-id error.
   */
  private async reattachAdapters(loaded: Loaded, lost: ReadonlyMap<string, AdapterSource>): Promise<void> {
    for (const [id, source] of lost) {
      if (loaded.adapters.has(id)) continue;
      let opened: { source: RangedSource; name: string } | undefined;
      try {
        opened = await this.openAdapterSource(source);
        loaded.adapters.set(id, await loaded.model.loadAdapter(opened.source, id));
        loaded.adapterSources.set(id, source);
      } catch {
        // Not fatal to the request: only one that names this adapter fails, by name.
      } finally {
        await opened?.source.close?.();
      }
    }
  }

  /** A device loss invalidates everything on the GPU: drop it, reload on the next request (with its adapters). */
  private afterFailure(error: unknown): unknown {
    if (isDeviceLost(error)) {
      if (this.loaded) this.lostAdapters = new Map(this.loaded.adapterSources);
      this.release();
      this.state = { state: 'error', error: { name: 'DeviceLostError', message: (error as Error).message } };
    }
    return error;
  }

  /**
   * Frees the loaded model (its GPU buffers, or its CPU workers and memory). The GPU device and its
   * compiled kernels stay for the next load: a new device would compile every pipeline again.
   */
  private releaseModel(): void {
    this.loaded?.model.destroy();
    this.loaded = undefined;
    // The training base is a copy of this model's weights: it goes with it.
    this.trainingBase = undefined;
  }

  /** Frees the model and the GPU device: on unload and when the device is lost. */
  private release(): void {
    this.releaseModel();
    this.gpuDevice?.context.destroy();
    this.gpuDevice = undefined;
  }

  /**
   * The ranged sources a model source reads from: one per file, so a split model (llama.cpp's
   * gguf-split) is several; `openGgufModel` orders and checks them. `fileName` is the name to show
   * when the model has no `general.name`; undefined means the first part's.
   */
  private async openSource(source: ModelSource, signal: AbortSignal | undefined): Promise<{ sources: RangedSource[]; fileName?: string }> {
    switch (source.kind) {
      case 'file': {
        const files = 'files' in source ? source.files : [{ file: source.file, name: source.name }];
        if (files.length === 0) throw new HearthError('A file model source needs at least one file.');
        return { sources: files.map(({ file, name }) => blobSource(file, name)) };
      }
      case 'url': {
        const first = source.urls[0];
        if (!first) throw new HearthError('A URL model source needs at least one URL.');
        // One part's URL stands for all of them, as in llama.cpp's --model-url.
        const urls = expandSplitUrls(source.urls);
        const guarded = stallGuardedFetch(this.platform.fetch ?? ((input, init) => fetch(input, init)), this.platform.stallTimeoutMs ?? DEFAULT_STALL_MS);
        return { sources: await Promise.all(urls.map((url) => httpRangeSource(url, undefined, { fetch: guarded, ...(signal ? { signal } : {}) }))) };
      }
      case 'cached': {
        const store = this.requireStore();
        const record = await store.get(source.id);
        const sources = await store.sources(source.id);
        await store.markUsed(source.id);
        return { sources, fileName: record?.name ?? source.id };
      }
    }
  }

  private async gpu(): Promise<{ context: GpuContext; kernels: KernelCache }> {
    if (!this.gpuDevice) {
      const context = await createGpuContext(this.platform.gpu, {
        ...this.platform.probeOptions,
        onLost: () => this.release(),
      });
      this.gpuDevice = { context, kernels: new KernelCache(context.device) };
    }
    return this.gpuDevice;
  }

  /**
   * Loads `source` and makes it the model in use. The model in use stays loaded (and usable after
   * a failure) until the new one is ready; only if the two do not fit in memory together
   * (ModelTooLargeError) is the old one unloaded first and the load tried once more, which the
   * new model's `loadNotice` says.
   */
  private async load(source: ModelSource, options: LoadModelOptions, onProgress?: (progress: LoadProgress) => void, signal?: AbortSignal): Promise<AnyLoaded> {
    const want = options.backend ?? 'auto';
    if (want !== 'auto' && want !== 'webgpu' && want !== 'cpu') throw new HearthError(`Unknown backend '${String(want)}' (auto, webgpu, cpu).`);
    this.state = { state: 'loading', progress: { phase: 'reading-header', loaded: 0, total: 0 } };
    let meter = new RateMeter(() => Date.now());
    let phase: LoadProgress['phase'] | undefined;
    // Progress is where a load notices a cancel: it throws out of the loader, which frees what it made.
    const report = (progress: LoadProgress) => {
      if (signal?.aborted) throw loadCancelled();
      if (progress.phase !== phase) meter = new RateMeter(() => Date.now());
      phase = progress.phase;
      const rate = meter.add(progress.loaded);
      const withRate = { ...progress, rate, eta: rate > 0 && progress.total > 0 ? (progress.total - progress.loaded) / rate : undefined };
      this.state = { state: 'loading', progress: withRate };
      onProgress?.(withRate);
    };
    try {
      let loaded: AnyLoaded;
      try {
        loaded = await this.open(source, options, report, signal);
      } catch (error) {
        const previous = this.loaded;
        if (!previous || !isOutOfMemory(error) || signal?.aborted) throw error;
        loaded = await this.replace(previous, source, options, report);
      }
      this.releaseModel();
      this.loaded = loaded;
      this.lastLoad = { source, options };
      this.state = { state: 'ready', model: loaded.info, busy: false };
      return loaded;
    } catch (error) {
      if (isDeviceLost(error)) this.release();
      const e = error as Error;
      // The model in use, if the failed load left one, answers as before.
      this.state = this.loaded ? { state: 'ready', model: this.loaded.info, busy: false } : { state: 'error', error: { name: e.name, message: e.message } };
      throw error;
    }
  }

  /**
   * The second try after the new model did not fit beside `previous`: frees `previous` and loads
   * the new one alone. If that fails too, `previous` is loaded again (the user keeps a model) and
   * the second try's error is thrown.
   */
  private async replace(previous: AnyLoaded, source: ModelSource, options: LoadModelOptions, report: (progress: LoadProgress) => void): Promise<AnyLoaded> {
    this.releaseModel();
    try {
      const loaded = await this.open(source, options, report);
      loaded.info = { ...loaded.info, loadNotice: `${previous.info.name} was unloaded first: the two models did not fit in memory together.` };
      return loaded;
    } catch (error) {
      if (!isDeviceLost(error)) {
        this.loaded = await this.open(previous.source, previous.options, () => undefined).catch(() => undefined);
      }
      throw error;
    }
  }

  /** Reads, plans and uploads a model, leaving the model in use untouched; frees what it made on failure. */
  private async open(source: ModelSource, options: LoadModelOptions, report: (progress: LoadProgress) => void, signal?: AbortSignal): Promise<AnyLoaded> {
    const { sources, fileName: givenName } = await this.openSource(source, signal);
    report({ phase: 'reading-header', loaded: 0, total: sources.reduce((sum, s) => sum + s.size, 0) });
    const file = await openGgufModel(sources);
    if (signal?.aborted) throw loadCancelled();
    const fileName = givenName ?? baseName(file.sources[0]!.name ?? 'model.gguf');
    const tokenizer = Tokenizer.fromGgufMetadata(file.metadata as ReadonlyMap<string, unknown>);
    if (isEncoderDecoder(file)) {
      const backends = { gpuDevice: () => this.gpu(), softwareAdapter: () => softwareAdapterName(this.gpuDevice?.context, this.platform.gpu, this.platform.probeOptions) };
      const opened = await openEncoderDecoder(file, tokenizer, fileName, options, backends, (loaded, total, backend) => report({ phase: 'uploading-weights', loaded, total, backend }));
      return { model: opened.model, transform: opened.session, tokenizer, info: opened.info, source, options, adapters: new Map(), adapterSources: new Map() };
    }
    const sizing = options.contextLength ? { contextLength: options.contextLength } : {};
    const chosen = await chooseBackend({
      backend: options.backend,
      threads: options.threads,
      gpuDevice: () => this.gpu(),
      softwareAdapter: () => softwareAdapterName(this.gpuDevice?.context, this.platform.gpu, this.platform.probeOptions),
      planForCpu: (target) => planLoad(file, target, sizing),
    });
    let model: Model;
    try {
      // A CPU backend was sized from the model's plan: load that plan rather than make another.
      model = await Model.load(chosen.backend, chosen.planned ?? file, {
        ...sizing,
        onProgress: (loaded, total) => report({ phase: 'uploading-weights', loaded, total, backend: chosen.kind }),
      });
    } catch (error) {
      // The model owns the backend once loaded; before that, free it here (GPU buffers, CPU workers).
      chosen.backend.destroy();
      throw error;
    }
    try {
      const info0 = { modelName: String(file.metadata.get('general.name') ?? fileName) };
      const session = new ChatSession(model, tokenizer, file.metadata as ReadonlyMap<string, unknown>, info0);
      const info = describeModel(file, {
        fileName,
        contextLength: model.contextLength,
        trainedContextLength: model.config.nCtxTrain,
        hasChatTemplate: session.format.source === 'template' || session.format.source === 'named',
        templateFallback: session.format.notice,
        backend: chosen.kind,
        backendNotice: chosen.notice,
        threads: chosen.threads,
      });
      return { model, session, tokenizer, info, source, options, adapters: new Map(), adapterSources: new Map() };
    } catch (error) {
      model.destroy();
      throw error;
    }
  }
}

