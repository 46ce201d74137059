/**
 * What crosses the engine's worker. Plain calls (info, status, abort, the store, ...) are Comlink
 * calls on the engine. The calls that report as they run (load progress, download progress,
 * streamed chat chunks) cross as pull streams instead, as web-llm's `completionStreamNextChunk`
 * does: the page opens the call and then pulls its events, and finally its result or error, one
 * answer at a time. Everything a call reports travels on that one sequence of answers, so it
 * arrives in order and before the result, by construction. (A Comlink-proxied callback travels on
 * a MessagePort of its own, which the browser does not order with the call's result: its last
 * events could arrive after the result, and each request kept a port pair open.)
 */
import type {
  CachedModel,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  DownloadProgress,
  EngineApi,
  EvaluateProgress,
  EvaluateRequest,
  Evaluation,
  QuantizeModelProgress,
  QuantizeModelRequest,
  LoadModelOptions,
  LoadProgress,
  ModelEntry,
  ModelInfo,
  ModelSource,
  TransformChunk,
  TransformRequest,
  TransformResult,
  TrainingOutcome,
  TrainingProgress,
  TrainingRequest,
} from '../api.ts';

/** The engine calls that report through a callback (their last parameter), without it. */
export interface ReportingCalls {
  loadModel: { args: [source: ModelSource, options?: LoadModelOptions]; event: LoadProgress; result: ModelInfo };
  downloadModel: { args: [entry: ModelEntry]; event: DownloadProgress; result: CachedModel };
  importModelFile: { args: [files: Blob[], options: { copy: boolean; name?: string }]; event: DownloadProgress; result: CachedModel };
  chatCompletion: { args: [request: ChatCompletionRequest]; event: ChatCompletionChunk; result: ChatCompletion };
  transform: { args: [request: TransformRequest]; event: TransformChunk; result: TransformResult };
  quantizeModel: { args: [request: QuantizeModelRequest]; event: QuantizeModelProgress; result: CachedModel };
  evaluateModels: { args: [request: EvaluateRequest]; event: EvaluateProgress; result: Evaluation };
  trainAdapter: { args: [request: TrainingRequest]; event: TrainingProgress; result: TrainingOutcome };
}

export type ReportingCall = keyof ReportingCalls;

/** One pull: the events since the last pull, in order; once the call has ended, its result too. */
export type Pull<C extends ReportingCall> =
  | { events: Array<ReportingCalls[C]['event']>; done: false }
  | { events: Array<ReportingCalls[C]['event']>; done: true; result: ReportingCalls[C]['result'] };

export interface StreamApi {
  /**
   * Starts a reporting call; returns the id to pull it by. Without `events`, the call runs without
   * a callback and pulls carry only its end.
   */
  open<C extends ReportingCall>(call: C, args: ReportingCalls[C]['args'], options: { events: boolean }): Promise<number>;
  /**
   * Waits until the call has reported something or ended, then answers with everything since the
   * last pull. Once the call failed and its earlier events were pulled, throws the call's error.
   */
  pull<C extends ReportingCall>(id: number): Promise<Pull<C>>;
}

/** What the worker exposes: the engine for plain calls, the streams for reporting ones. */
export interface WorkerApi {
  engine: EngineApi;
  streams: StreamApi;
}
