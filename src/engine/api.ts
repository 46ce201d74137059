/**
 * The engine's public API: what the UI (through the worker), the CLI and tests call. It is the one
 * typed boundary of the engine. Every method is async and takes and returns structured-cloneable
 * data, so the same interface is served directly in Node and through Comlink from a Web Worker.
 *
 * Chat completions are shaped after OpenAI's chat completions API (field names included) so web
 * developers know them. Calls that report as they run (`onProgress`, `onChunk`) call their callback
 * in order and only before they settle; across the worker they are pull streams that keep that
 * order (src/engine/rpc/protocol.ts). Cancellation is `abort(requestId)`, because an AbortSignal
 * cannot be posted to a worker. `src/engine/rpc/client.ts` turns both back into an async iterator
 * and an AbortSignal for callers.
 *
 * Errors thrown by the engine are `HearthError`s with a stable `name` (see errors.ts) that survives
 * the worker boundary, e.g. WebGPUUnavailableError, ModelTooLargeError, UnsupportedModelError,
 * GgufFormatError, DeviceLostError, ContextWindowExceededError, NoModelLoadedError.
 */
import type { GpuReport } from './backend/webgpu/probe.ts';
import type { CpuReport } from './backend/choose.ts';
import type { CachedModel, DownloadProgress, ModelEntry, StoreUsage } from './store/index.ts';
import type { TrainingEstimate, TrainingOutcome, TrainingProgress, TrainingRequest } from './train/session.ts';

export type { GpuReport, AdapterReport, KernelPaths } from './backend/webgpu/probe.ts';
export type { CpuReport } from './backend/choose.ts';
export type { CachedModel, DownloadProgress, ModelEntry, StoreUsage } from './store/index.ts';
export type {
  TrainingData,
  TrainingEstimate,
  TrainingOptions,
  TrainingOutcome,
  TrainingProgress,
  TrainingRequest,
  TrainingResult,
  TrainingSample,
  TrainingSamples,
} from './train/session.ts';
export type { TrainTarget } from './train/trainer.ts';

export interface EngineInfo {
  name: 'hearth';
  version: string;
  /** Where the engine runs: a dedicated worker, Node, ... */
  runtime: string;
}

// ---- Models -------------------------------------------------------------------------------

/** Where a model's bytes come from. */
export type ModelSource =
  /** A model in the engine's store (downloaded or imported earlier), by its store id. */
  | { kind: 'cached'; id: string }
  /** A local file the user picked or dropped (read in place, not copied). */
  | { kind: 'file'; file: Blob; name: string }
  /** Local files: one GGUF, or the parts of a split GGUF (in any order; `split.no` orders them). */
  | { kind: 'file'; files: Array<{ file: Blob; name: string }> }
  /**
   * One URL, or the parts of a split GGUF in order. A single URL named like
   * `m-00001-of-00003.gguf` loads all three parts.
   */
  | { kind: 'url'; urls: string[] };

export interface LoadModelOptions {
  /** Context length to allocate the KV cache for; default min(model's, a memory-based cap). */
  contextLength?: number;
  /**
   * The backend: 'auto' (default) is WebGPU, falling back to the CPU when WebGPU is missing or
   * cannot start, or is a software renderer (SwiftShader and the like emulate a GPU on the CPU,
   * far slower than the CPU backend); the model info's `backendNotice` says why. 'webgpu' and
   * 'cpu' force one.
   */
  backend?: BackendChoice;
  /** CPU backend threads, this one included; default min(cores, 8) where threads can start, else 1. */
  threads?: number;
}

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

export type LoadPhase = 'reading-header' | 'uploading-weights' | 'compiling-kernels' | 'warming-up';

export interface LoadProgress {
  phase: LoadPhase;
  /** Bytes done and total for the current phase (0 when unknown). */
  loaded: number;
  total: number;
  /** Bytes per second over the last few seconds, and seconds left at that rate (when known). */
  rate?: number | undefined;
  eta?: number | undefined;
  /**
   * In `uploading-weights`: where the weights go. On 'webgpu' they are uploaded to the GPU; on
   * 'cpu' they are copied and unpacked into the WebAssembly memory (nothing is uploaded).
   */
  backend?: 'webgpu' | 'cpu' | undefined;
}

export interface ModelInfo {
  /** Display name (general.name, else the file name). */
  name: string;
  architecture: string;
  parameterCount: number;
  /** The quantization mix, e.g. "Q4_K_M" or "Q8_0". */
  quantization: string;
  fileSize: number;
  /** Context length the KV cache was allocated for, and the model's trained maximum. */
  contextLength: number;
  trainedContextLength: number;
  /** Whether the file has a chat template; when not, `templateFallback` names what is used. */
  hasChatTemplate: boolean;
  templateFallback?: string | undefined;
  /** The backend the model runs on. */
  backend: 'webgpu' | 'cpu';
  /**
   * On the CPU: why, and on how many threads, e.g. "WebGPU unavailable: no GPU adapter; running on
   * the CPU (4 threads)", with the reason when it is single-threaded.
   */
  backendNotice?: string;
  /** CPU threads in use (CPU backend only). */
  threads?: number;
  /**
   * Set when the previous model had to be unloaded before this one could load (the two did not
   * fit in memory together); says which.
   */
  loadNotice?: string;
  /**
   * 'encoder-decoder' (T5, Flan-T5): a text-to-text model run with `transform`, not chat
   * (`contextLength` is then its input capacity, `outputCapacity` the most tokens it writes);
   * 'decoder-only' otherwise. Absent from engines older than this field: decoder-only.
   */
  kind?: 'decoder-only' | 'encoder-decoder';
  outputCapacity?: number;
}


/** Everything the capability page shows: the WebGPU adapter and the CPU backend. */
export interface Capabilities {
  gpu: GpuReport;
  cpu: CpuReport;
}

export type EngineStatus =
  | { state: 'idle' }
  | { state: 'loading'; progress: LoadProgress }
  | { state: 'ready'; model: ModelInfo; busy: boolean }
  | { state: 'error'; error: { name: string; message: string } };

// ---- Chat completions ---------------------------------------------------------------------

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: ChatRole;
  /** An assistant message that only calls tools has '' here (a request may send null). */
  content: string;
  /** On an assistant message: the calls it made (arguments as the JSON string OpenAI sends). */
  tool_calls?: ToolCall[];
  /** On a 'tool' message: the id of the call it answers. */
  tool_call_id?: string;
}

/** A function the model may call, in OpenAI's shape; `parameters` is a JSON Schema of its arguments. */
export interface ChatCompletionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/**
 * 'none': the model writes text (the tools are still shown to it); 'auto' (default with tools): the
 * reply is parsed for calls; 'required': the reply is constrained to one call to one of the tools;
 * a named function: to one call to that tool. Constrained calls have arguments valid for the schema.
 */
export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

/** A call the model made, in OpenAI's shape: `arguments` is a JSON string. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** What to do when the conversation does not fit the context window. */
export type ContextOverflowPolicy =
  /** Keep the system prompt and the newest turns, dropping the oldest turns (default). */
  | 'drop-oldest-turns'
  /** Throw ContextWindowExceededError. */
  | 'error';

/**
 * How the messages become the prompt: 'chat' (default) formats them with the model's chat
 * template; 'text' joins their contents as plain text for the model to continue, with no template
 * and no special tokens but the tokenizer's own (BOS): for base models, which continue text and
 * do not follow instructions.
 */
export type PromptFormat = 'chat' | 'text';

/** OpenAI's text content part; a message's content may be an array of them. */
export interface ChatContentPart {
  type: 'text';
  text: string;
}

/** A message as a request may carry it: plain text or text parts (joined). */
export interface ChatRequestMessage {
  role: ChatRole;
  /** null only on an assistant message with tool_calls. */
  content: string | ChatContentPart[] | null;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

/**
 * Every field is checked at the engine (InvalidRequestError with `detail.param`); fields not listed
 * here are rejected, except `model` (a label), `n: 1` and `logprobs: false`.
 */
export interface ChatCompletionRequest {
  messages: ChatRequestMessage[];
  /** Stream chunks through `onChunk`; the final value is returned either way. */
  stream?: boolean;
  max_tokens?: number;
  /** 0 means greedy. Default 0.7. */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  /** Seeds the sampler: the same seed and request give the same output. */
  seed?: number;
  stop?: string | string[];
  context_overflow?: ContextOverflowPolicy;
  /** A Hearth extension: 'text' continues the messages' text without a chat template. */
  prompt_format?: PromptFormat;
  /** Chosen by the caller so it can `abort(request_id)`; generated when absent. */
  request_id?: string;
  /**
   * Constrains the reply: 'json_object' to any JSON object, 'json_schema' to JSON valid against
   * the schema (the subset src/engine/grammar/json-schema.ts lists; others are refused by name).
   */
  response_format?: ResponseFormat;
  /** A Hearth extension: constrains the reply to a llama.cpp GBNF grammar (its `root` rule). */
  grammar?: string;
  /** Functions the model may call; they are rendered by the model's chat template. */
  tools?: ChatCompletionTool[];
  /** Default 'auto' when there are tools. */
  tool_choice?: ToolChoice;
  /**
   * Default true: with 'auto' a reply may call several tools. false: the reply ends after its first
   * call. A forced call ('required' or a named function) is one call either way.
   */
  parallel_tool_calls?: boolean;
  /**
   * A Hearth extension: LoRA adapters (loaded with `loadAdapter`) applied to this request, each at
   * its scale (default 1), as llama.cpp's --lora-scaled. Absent or empty: the base model. The KV
   * prefix of the previous request is reused only when its adapters were the same.
   */
  adapters?: AdapterChoice[];
}

export interface AdapterChoice {
  id: string;
  scale?: number;
}

// ---- LoRA adapters ------------------------------------------------------------------------

/**
 * Where a LoRA adapter's GGUF comes from (llama.cpp's format: convert_lora_to_gguf.py, `hearth
 * make-lora`): a local file, a URL, or the model store, which keeps an adapter file as it keeps a
 * model (downloaded with `downloadModel` or copied with `importModelFile`, checked, in IndexedDB).
 */
export type AdapterSource = { kind: 'file'; file: Blob; name: string } | { kind: 'url'; url: string } | { kind: 'cached'; id: string };

export interface AdapterInfo {
  /** What a request names in `adapters`. */
  id: string;
  name: string;
  architecture: string;
  alpha: number;
  /** Adapted base tensors, e.g. blk.0.attn_q.weight. */
  targets: string[];
  /** Largest rank over its tensors. */
  rank: number;
  /** Bytes it takes on the backend. */
  bytes: number;
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; description?: string; schema?: Record<string, unknown> | boolean; strict?: boolean | null } };

/** 'tool_calls': the reply is calls to the request's tools (`message.tool_calls`). */
export type FinishReason = 'stop' | 'length' | 'abort' | 'tool_calls';

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose KV cache was reused from the previous request (not evaluated again). */
  cached_prompt_tokens: number;
  /** Turns dropped by the context overflow policy. */
  dropped_messages: number;
  /**
   * With finish_reason 'length', which limit ended the reply: the request's max_tokens, or the
   * context window (the prompt and the reply fill every position the model has).
   */
  length_limit?: 'max_tokens' | 'context_window';
  time_to_first_token_ms: number;
  prefill_tokens_per_second: number;
  decode_tokens_per_second: number;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: [{ index: 0; delta: { role?: 'assistant'; content?: string; tool_calls?: ToolCallDelta[] }; finish_reason: FinishReason | null }];
  /** On the last chunk only. */
  usage?: CompletionUsage;
  /**
   * A Hearth extension, on every chunk: positions of the context window in use after this chunk
   * (the fitted prompt and the tokens generated so far, at most the window) and the window's size,
   * for a live meter.
   */
  context?: ContextFill;
}

/**
 * A piece of a tool call in a stream, as OpenAI sends them: a call's first piece has its `index`,
 * `id`, `type` and `function.name` (with `arguments: ''`); the next pieces of the same `index` carry
 * `function.arguments` fragments, which joined in order are the call's `arguments`.
 */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

export interface ContextFill {
  used: number;
  total: number;
}

/** What a conversation takes of the context window, as the next request would send it. */
export interface ContextMeasure {
  /** Prompt tokens of all the messages. */
  prompt_tokens: number;
  /** Prompt tokens after the overflow policy dropped the oldest turns (what the model would see). */
  fitted_tokens: number;
  /** Messages the policy would drop. */
  dropped_messages: number;
  /** False when even the newest turn alone does not fit. */
  fits: boolean;
  context_length: number;
}

export type AssistantReply = { role: 'assistant'; content: string; tool_calls?: undefined } | { role: 'assistant'; content: string | null; tool_calls: ToolCall[] };

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  /**
   * `tool_calls` is present only when the model called tools; `content` is then the text outside
   * the calls, null when there is none (as OpenAI sends it). A reply without calls always has
   * its text here, a string.
   */
  choices: [{ index: 0; message: AssistantReply; finish_reason: FinishReason }];
  usage: CompletionUsage;
}

// ---- Text to text (encoder-decoder models) ------------------------------------------------

/**
 * A text-to-text request for an encoder-decoder model (T5, Flan-T5): the encoder reads `input`, the
 * decoder writes the output from its start token. Fields are checked as a chat completion's
 * (InvalidRequestError with `detail.param`); fields not listed are rejected.
 */
export interface TransformRequest {
  /** The text the encoder reads, task prefix included: "translate English to German: How old are you?". */
  input: string;
  /** Most output tokens; default (and at most) what the model was loaded for. */
  max_tokens?: number;
  /** 0 (the default) is greedy: the same input gives the same output. */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  seed?: number;
  stop?: string | string[];
  /** Chosen by the caller so it can `abort(request_id)`; generated when absent. */
  request_id?: string;
  /** A caller's label; the loaded model answers. */
  model?: string;
  /** Accepted for symmetry with chat: with `onChunk` the output streams either way. */
  stream?: boolean;
}

export interface TransformUsage {
  /** Input tokens the encoder read. */
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** With finish_reason 'length': the request's max_tokens, or the output capacity the model was loaded for. */
  length_limit?: 'max_tokens' | 'output_capacity';
  time_to_first_token_ms: number;
  decode_tokens_per_second: number;
}

/** A piece of the output as it streams; the last chunk has the finish reason and the usage. */
export interface TransformChunk {
  id: string;
  object: 'transform.chunk';
  created: number;
  model: string;
  delta: string;
  finish_reason: 'stop' | 'length' | 'abort' | null;
  usage?: TransformUsage;
}

export interface TransformResult {
  id: string;
  object: 'transform';
  created: number;
  model: string;
  output: string;
  finish_reason: 'stop' | 'length' | 'abort';
  usage: TransformUsage;
  /** The seed the sampler drew from (the request's, or a random one): a sampled output's replay. */
  seed: number;
}

// ---- Compression and measurement ------------------------------------------------------------

/** The quantization mixes the engine writes (llama-quantize's names). */
export type QuantizationType = 'Q8_0' | 'Q6_K' | 'Q5_K_M' | 'Q4_K_M' | 'Q4_0';

export interface QuantizeModelRequest {
  /** A stored model or a local file: one GGUF file (F32, F16, BF16 or a quantized one). */
  source: ModelSource;
  type: QuantizationType;
  /** The new model's store id (what `cancelDownload` stops); default `<source id>:<type>`. */
  id?: string;
  /** Its display name; default "<source name> <type>". */
  name?: string;
}

export interface QuantizeModelProgress {
  /** The new model's store id. */
  id: string;
  /** The tensor being written, its index and the number of tensors. */
  tensor: string;
  index: number;
  count: number;
  /** Output bytes written and the output's size. */
  bytes: number;
  total: number;
}

export interface EvaluateRequest {
  /** Stored models to measure; the first is the reference the others' KL and top-1 compare to. */
  ids: string[];
  /** The text perplexity is measured on (at least 2 windows of `context_length` tokens). */
  text: string;
  /** Tokens per window, as llama-perplexity's -c; default 128. */
  context_length?: number;
  /** At most this many windows are scored (the text's first ones); default 16. */
  max_windows?: number;
  /** Tokens decoded one at a time for the decode speed; default 32. */
  decode_tokens?: number;
  /** For `abort(request_id)`: the evaluation stops before the next window. */
  request_id?: string;
}

export interface EvaluateProgress {
  /** Index in `ids` of the model being measured, and the window done. */
  model: number;
  window: number;
  windows: number;
}

export interface ModelEvaluation {
  id: string;
  name: string;
  quantization: string | undefined;
  /** File size in bytes and the reference's size divided by it. */
  bytes: number;
  compression: number;
  perplexity: number;
  /** Mean KL(reference || model) in nats and top-1 agreement (0..1); 0 and 1 for the reference. */
  kl: number;
  top1: number;
  prefill_tokens_per_second: number;
  decode_tokens_per_second: number;
  backend: 'webgpu' | 'cpu';
}

export interface Evaluation {
  tokens: number;
  context_length: number;
  windows: number;
  /** Scored positions per model. */
  scored: number;
  models: ModelEvaluation[];
}

// ---- The API ------------------------------------------------------------------------------

export interface EngineApi {
  /** Identifies the engine; the cheapest call, used to check the worker answers. */
  info(): Promise<EngineInfo>;
  /** Reports the WebGPU adapter, its features and limits, or why there is none. */
  probe(): Promise<GpuReport>;
  /** The WebGPU report and the CPU backend's (SIMD, relaxed SIMD, threads and why not). */
  capabilities(): Promise<Capabilities>;
  /** What the engine is doing: idle, loading (with progress), ready (with the model), or failed. */
  status(): Promise<EngineStatus>;
  /**
   * Loads a model, replacing the current one once the new one is ready: if the load fails, the
   * current model stays loaded and usable. Progress goes to `onProgress`.
   */
  loadModel(source: ModelSource, options?: LoadModelOptions, onProgress?: (progress: LoadProgress) => void): Promise<ModelInfo>;
  unloadModel(): Promise<void>;
  /**
   * Reads, validates (against the loaded model: architecture, tensors, shapes, rank, alpha) and
   * uploads a LoRA adapter; requests then pick it by id in `adapters`. The base weights are never
   * changed, so switching adapters between requests reloads nothing. Adapters belong to the model
   * they were loaded for: loading another model drops them. Queued like every request.
   */
  loadAdapter(source: AdapterSource, options?: { id?: string }): Promise<AdapterInfo>;
  /**
   * Unloads an adapter by id: requests can no longer name it, the next request's KV prefix is not
   * reused if it was in use, and its memory goes back to the backend as far as the backend can
   * free it (`freedBytes`; the CPU backend frees only the latest allocations, WebGPU every
   * buffer). Throws InvalidRequestError for an id that names no loaded adapter.
   */
  unloadAdapter(id: string): Promise<{ id: string; freedBytes: number }>;
  /**
   * Runs a chat completion; requests queue and run one at a time. With `onChunk`, the reply
   * streams as OpenAI-style chunks; the complete result is returned either way.
   */
  chatCompletion(request: ChatCompletionRequest, onChunk?: (chunk: ChatCompletionChunk) => void): Promise<ChatCompletion>;
  /**
   * Text to text with an encoder-decoder model (T5, Flan-T5: translate, summarize): queued like a
   * chat completion, abortable by `request_id`; with `onChunk` the output streams. On a decoder-only
   * model it is refused by name (ModelKindError), as `chatCompletion` is on an encoder-decoder one.
   */
  transform(request: TransformRequest, onChunk?: (chunk: TransformChunk) => void): Promise<TransformResult>;
  /** Ends the request with this id within one token (finish_reason 'abort'); it returns what it produced. */
  abort(requestId: string): Promise<void>;
  /** Prompt tokens `messages` take with the loaded model's template (for a context meter). */
  countTokens(messages: ChatMessage[]): Promise<number>;
  /**
   * What `messages` take of the context window once the oldest turns that do not fit are dropped,
   * as a chat completion with the same `prompt_format` would send them (for a context meter).
   */
  measureContext(messages: ChatMessage[], options?: { prompt_format?: PromptFormat }): Promise<ContextMeasure>;

  // ---- The model store (IndexedDB): independent of generation, so downloads run while chatting.
  /** Cached models, complete and partial. */
  listModels(): Promise<CachedModel[]>;
  /** Downloads (or resumes) a catalog entry into the store; `cancelDownload(entry.id)` pauses it. */
  downloadModel(entry: ModelEntry, onProgress?: (progress: DownloadProgress) => void): Promise<CachedModel>;
  /** Stops a running download, keeping what was stored for a later resume. */
  cancelDownload(id: string): Promise<void>;
  /**
   * Adds a local file (or the parts of a split model): copied into the store, or read in place for
   * this session. A copy reports progress (its `id` is the stored model's) and `cancelDownload(id)`
   * stops it, keeping what was copied for a later resume with the same file.
   */
  importModelFile(files: Blob[], options: { copy: boolean; name?: string }, onProgress?: (progress: DownloadProgress) => void): Promise<CachedModel>;
  /**
   * Cancels the loads asked for and not finished (running or waiting in the queue): each rejects
   * with an AbortError and the model in use stays loaded. Not queued, like `abort`.
   */
  cancelLoad(): Promise<void>;
  deleteModel(id: string, options?: { partialOnly?: boolean }): Promise<boolean>;
  storageUsage(): Promise<StoreUsage>;

  // ---- Compression: quantize a model into the store, measure versions against each other.
  /**
   * Writes a quantized copy of a one-file GGUF into the store, streamed (a slab of rows at a time,
   * the result chunk by chunk), with llama-quantize's per-tensor types and bytes. Not queued behind
   * chats (it runs no model); `cancelDownload(id)` stops it and deletes what was written.
   */
  quantizeModel(request: QuantizeModelRequest, onProgress?: (progress: QuantizeModelProgress) => void): Promise<CachedModel>;
  /**
   * Perplexity (llama-perplexity's windows) on a text for each stored model, KL and top-1 against
   * the first, and prefill and decode speed on the backend the loaded model uses (auto without
   * one). Queued like a request; each model is loaded beside the one in use and freed after.
   */
  evaluateModels(request: EvaluateRequest, onProgress?: (progress: EvaluateProgress) => void): Promise<Evaluation>;
  /** A stored model's file, for the browser to save (a split model: its parts joined in order). */
  exportModel(id: string): Promise<Blob>;

  // ---- LoRA training on the loaded model (src/engine/train/session.ts): one run at a time.
  /**
   * How long a run would take (one step of it is run and timed) and how much memory it needs.
   * Queued like a request. Bad options are refused by name (TrainingDataError, `detail.param`);
   * a model the trainer cannot differentiate with UnsupportedTrainingError.
   */
  estimateTraining(request: TrainingRequest): Promise<TrainingEstimate>;
  /**
   * Trains a LoRA adapter on the loaded model's file, reporting each step (train loss, held-out
   * loss every few steps, tokens/s, time left, checkpoints to keep). Not queued: it yields between
   * steps, so chats and other calls are answered meanwhile. Ends done (held-out perplexity before
   * and after, samples with and without the adapter, the adapter's GGUF bytes), paused
   * (`pauseTraining`; the checkpoint to resume from with `request.resume`) or cancelled.
   * A second run while one runs is refused (TrainingStateError). `request.backend` (auto, cpu,
   * webgpu) picks the ops: auto trains on WebGPU where the model runs on a hardware adapter; the
   * estimate and each progress report say which (`backend`). A GPU lost mid-run rejects with
   * TrainingDeviceLostError, whose `detail.checkpoint` resumes the run (on the CPU too).
   */
  trainAdapter(request: TrainingRequest, onProgress?: (progress: TrainingProgress) => void): Promise<TrainingOutcome>;
  /** Pauses the run after its current step; resolves with its checkpoint (undefined when it finished first). */
  pauseTraining(): Promise<{ step: number; checkpoint: Uint8Array } | undefined>;
  /** Cancels the run after its current step; a no-op when none runs. */
  cancelTraining(): Promise<void>;
}
