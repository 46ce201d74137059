/**
 * The engine as web developers know OpenAI's client: `client.chat.completions.create(request)`
 * returns the completion, or with `stream: true` an async iterator of chunks; an `AbortSignal`
 * ends the request within one token. It wraps any `EngineApi`: the `Engine` itself (Node, tests)
 * or the engine behind its Web Worker (`connectEngineWorker`, or `connectSharedEngine` for one worker
 * shared by the app's tabs; over remote-engine.ts). Either way
 * the engine reports a request's chunks in order and before its completion (across the worker,
 * the pull streams of protocol.ts make it so), so the stream yields them as they come.
 */
import * as Comlink from 'comlink';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, EngineApi } from '../api.ts';
import { installErrorTransfer } from './errors.ts';
import type { WorkerApi } from './protocol.ts';
import { remoteEngine } from './remote-engine.ts';
import type { LockManagerLike } from './tab-share/election.ts';
import { CHANNEL, type TabChannel } from './tab-share/protocol.ts';
import { shareEngine, type SharedEngine } from './tab-share/share-engine.ts';

export type { SharedEngine, TabRole, TabShareState } from './tab-share/share-engine.ts';
export type { SharedModel } from './tab-share/protocol.ts';

export interface CreateOptions {
  /** Aborting ends the request within one token; it then finishes with `finish_reason: 'abort'`. */
  signal?: AbortSignal;
}

export type CreateRequest = Omit<ChatCompletionRequest, 'stream'> & CreateOptions;

export interface ChatCompletionStream extends AsyncIterable<ChatCompletionChunk> {
  /** The whole completion, as the non-streaming call returns it. */
  readonly completion: Promise<ChatCompletion>;
}

/** The OpenAI-shaped chat call alone: what a local engine and a remote server both offer. */
export interface ChatClient {
  chat: {
    completions: {
      create(request: CreateRequest & { stream: true }): ChatCompletionStream;
      create(request: CreateRequest & { stream?: false }): Promise<ChatCompletion>;
    };
  };
}

export interface HearthClient extends ChatClient {
  /** Everything else (models, store, status, probe) as the engine offers it. */
  engine: EngineApi;
}

/**
 * What a chat client needs of an engine: the reporting chat call and abort by request id. The
 * engine offers it, and so does a remote OpenAI-compatible server (openai-server.ts), so both
 * stream, stop and fail through the same client code.
 */
export type ChatEngine = Pick<EngineApi, 'chatCompletion' | 'abort'>;

let nextRequest = 1;

/** A request id unique within this page, so `abort` reaches only this request. */
function requestIdFor(request: ChatCompletionRequest): string {
  return request.request_id ?? `client-${Date.now().toString(36)}-${nextRequest++}`;
}

/**
 * Ends the request when `signal` aborts (also if it already has); returns the unsubscribe. Call it
 * after sending the request: the engine aborts only requests it has received (calls reach it in
 * order), so an abort sent first would miss it.
 */
function forwardAbort(engine: ChatEngine, requestId: string, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const abort = () => void engine.abort(requestId);
  if (signal.aborted) abort();
  signal.addEventListener('abort', abort, { once: true });
  return () => signal.removeEventListener('abort', abort);
}

function stream(engine: ChatEngine, request: ChatCompletionRequest, signal: AbortSignal | undefined): ChatCompletionStream {
  const queue: ChatCompletionChunk[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let failure: { error: unknown } | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  // The engine reports every chunk, the final one (finish reason, usage) included, before the
  // completion resolves: the chunks are the stream as they come.
  const sent = engine.chatCompletion({ ...request, stream: true }, (chunk) => {
    queue.push(chunk);
    notify();
  });
  const unsubscribe = forwardAbort(engine, request.request_id!, signal);
  const completion = sent
    .then(
      (result) => {
        ended = true;
        notify();
        return result;
      },
      (error: unknown) => {
        ended = true;
        failure = { error };
        notify();
        throw error;
      },
    )
    .finally(unsubscribe);
  // The iterator reports a failure itself; a caller that only iterates must not also see an
  // unhandled rejection of `completion`.
  completion.catch(() => undefined);

  return {
    completion,
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const chunk = queue.shift();
        if (chunk) {
          yield chunk;
          continue;
        }
        if (failure) throw failure.error;
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/** An OpenAI-shaped client over an engine: the `Engine` itself, or the one behind the worker. */
export function createHearthClient(engine: EngineApi): HearthClient {
  return { ...createChatClient(engine), engine };
}

/** The chat call alone, over anything that runs chat completions (an engine, a remote server). */
export function createChatClient(engine: ChatEngine): ChatClient {
  function create(request: CreateRequest & { stream: true }): ChatCompletionStream;
  function create(request: CreateRequest & { stream?: false }): Promise<ChatCompletion>;
  function create({ signal, stream: streaming, ...rest }: CreateRequest & { stream?: boolean }): ChatCompletionStream | Promise<ChatCompletion> {
    const request: ChatCompletionRequest = { ...rest, request_id: requestIdFor(rest) };
    if (streaming) return stream(engine, request, signal);
    const reply = engine.chatCompletion(request);
    const unsubscribe = forwardAbort(engine, request.request_id!, signal);
    return reply.finally(unsubscribe);
  }
  return { chat: { completions: { create } } };
}

/** Connects to the engine running in `worker` (src/engine/rpc/worker.ts) and wraps it as a client. */
export function connectEngineWorker(worker: Worker): HearthClient {
  return createHearthClient(engineInWorker(worker));
}

/** The engine running in `worker`, as a plain `EngineApi`. */
function engineInWorker(worker: Worker): EngineApi {
  installErrorTransfer();
  return remoteEngine(Comlink.wrap<WorkerApi>(worker));
}

/**
 * The engine shared by all the tabs of this origin (tab-share/share-engine.ts): the worker that
 * `startWorker` starts runs in one tab only, the one that owns the engine; every other tab's client
 * sends its requests there. Where Web Locks or BroadcastChannel are missing, every tab starts its own.
 */
export function connectSharedEngine(startWorker: () => Worker): { client: HearthClient; tabs: SharedEngine } {
  installErrorTransfer();
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  const channel = typeof BroadcastChannel === 'function' ? (new BroadcastChannel(CHANNEL) as unknown as TabChannel) : undefined;
  const tabs = shareEngine({ startEngine: () => engineInWorker(startWorker()), locks, channel });
  return { client: createHearthClient(tabs.engine), tabs };
}
