/**
 * The page's side of the worker: the engine behind it as a plain `EngineApi`. Plain calls go to
 * the engine as Comlink calls; reporting calls (load, download, chat completion) open a pull
 * stream (see protocol.ts) and hand its events to the caller's callback in order, all of them
 * before the call resolves, as the engine itself does in the same thread.
 */
import type * as Comlink from 'comlink';
import type { EngineApi } from '../api.ts';
import type { ReportingCall, ReportingCalls, StreamApi, WorkerApi } from './protocol.ts';

async function pullToEnd<C extends ReportingCall>(
  streams: Comlink.Remote<StreamApi> | StreamApi,
  call: C,
  args: ReportingCalls[C]['args'],
  onEvent: ((event: ReportingCalls[C]['event']) => void) | undefined,
): Promise<ReportingCalls[C]['result']> {
  const id = await streams.open(call, args, { events: onEvent !== undefined });
  for (;;) {
    const pulled = await streams.pull<C>(id);
    for (const event of pulled.events) onEvent?.(event);
    if (pulled.done) return pulled.result;
  }
}

/** An `EngineApi` over the worker's `WorkerApi` (a Comlink remote, or the host itself in tests). */
export function remoteEngine(worker: Comlink.Remote<WorkerApi> | WorkerApi): EngineApi {
  const { engine, streams } = worker as WorkerApi;
  const reporting: Pick<EngineApi, ReportingCall> = {
    loadModel: (source, options, onProgress) => pullToEnd(streams, 'loadModel', [source, options], onProgress),
    downloadModel: (entry, onProgress) => pullToEnd(streams, 'downloadModel', [entry], onProgress),
    importModelFile: (files, options, onProgress) => pullToEnd(streams, 'importModelFile', [files, options], onProgress),
    chatCompletion: (request, onChunk) => pullToEnd(streams, 'chatCompletion', [request], onChunk),
    transform: (request, onChunk) => pullToEnd(streams, 'transform', [request], onChunk),
    quantizeModel: (request, onProgress) => pullToEnd(streams, 'quantizeModel', [request], onProgress),
    evaluateModels: (request, onProgress) => pullToEnd(streams, 'evaluateModels', [request], onProgress),
    trainAdapter: (request, onProgress) => pullToEnd(streams, 'trainAdapter', [request], onProgress),
  };
  return new Proxy(engine, {
    get: (target, name, receiver) => (name in reporting ? reporting[name as ReportingCall] : Reflect.get(target, name, receiver)),
  });
}
