/**
 * The engine as web developers know OpenAI's client: `client.chat.completions.create(request)`
 * returns the completion, or with `stream: true` an async iterator of chunks; an `AbortSignal`
 * ends the request within one token. It wraps any `EngineApi`: the `Engine` itself (Node, tests)
 * or the Comlink proxy of the engine's Web Worker (`connectEngineWorker`).
 *
 * Streamed chunks cross the worker through a Comlink-proxied callback, which travels on a
 * MessagePort of its own: the browser does not order its messages with the call's result, so a
 * chunk can arrive after the completion has resolved. The iterator therefore treats the completion
 * as the truth: when it arrives, any text the chunks have not delivered yet is yielded as one more
 * chunk, then the final chunk (finish reason and usage), and late chunks are dropped.
 */
import * as Comlink from 'comlink';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, EngineApi } from '../api.ts';
import { installErrorTransfer } from './errors.ts';

export interface CreateOptions {
  /** Aborting ends the request within one token; it then finishes with `finish_reason: 'abort'`. */
  signal?: AbortSignal;
}

export type CreateRequest = Omit<ChatCompletionRequest, 'stream'> & CreateOptions;

export interface ChatCompletionStream extends AsyncIterable<ChatCompletionChunk> {
  /** The whole completion, as the non-streaming call returns it. */
  readonly completion: Promise<ChatCompletion>;
}

export interface HearthClient {
  chat: {
    completions: {
      create(request: CreateRequest & { stream: true }): ChatCompletionStream;
      create(request: CreateRequest & { stream?: false }): Promise<ChatCompletion>;
    };
  };
  /** Everything else (models, store, status, probe) as the engine offers it. */
  engine: EngineApi;
}

let nextRequest = 1;

/** A request id unique within this page, so `abort` reaches only this request. */
function requestIdFor(request: ChatCompletionRequest): string {
  return request.request_id ?? `client-${Date.now().toString(36)}-${nextRequest++}`;
}

/** Ends the request when `signal` aborts (also if it already has); returns the unsubscribe. */
function forwardAbort(engine: EngineApi, requestId: string, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const abort = () => void engine.abort(requestId);
  if (signal.aborted) abort();
  signal.addEventListener('abort', abort, { once: true });
  return () => signal.removeEventListener('abort', abort);
}

/** The chunk that carries text the streamed chunks did not deliver (none when they did). */
function remainderChunk(result: ChatCompletion, streamed: string): ChatCompletionChunk | undefined {
  const content = result.choices[0].message.content;
  if (content.length <= streamed.length) return undefined;
  // The chunks are in order among themselves, so what arrived is a prefix of the content.
  return {
    id: result.id,
    object: 'chat.completion.chunk',
    created: result.created,
    model: result.model,
    choices: [{ index: 0, delta: { content: content.slice(streamed.length) }, finish_reason: null }],
  };
}

function finalChunk(result: ChatCompletion): ChatCompletionChunk {
  return {
    id: result.id,
    object: 'chat.completion.chunk',
    created: result.created,
    model: result.model,
    choices: [{ index: 0, delta: {}, finish_reason: result.choices[0].finish_reason }],
    usage: result.usage,
  };
}

function stream(engine: EngineApi, request: ChatCompletionRequest, signal: AbortSignal | undefined, wrap: <F>(f: F) => F): ChatCompletionStream {
  const queue: ChatCompletionChunk[] = [];
  let wake: (() => void) | undefined;
  let settled = false;
  let failure: { error: unknown } | undefined;
  let streamed = '';
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const unsubscribe = forwardAbort(engine, request.request_id!, signal);
  const completion = engine
    .chatCompletion(
      { ...request, stream: true },
      wrap((chunk: ChatCompletionChunk) => {
        // The final chunk is made from the completion itself, below.
        if (settled || chunk.choices[0].finish_reason !== null) return;
        streamed += chunk.choices[0].delta.content ?? '';
        queue.push(chunk);
        notify();
      }),
    )
    .then(
      (result) => {
        settled = true;
        const rest = remainderChunk(result, streamed);
        if (rest) queue.push(rest);
        queue.push(finalChunk(result));
        notify();
        return result;
      },
      (error: unknown) => {
        settled = true;
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
        if (settled) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/**
 * An OpenAI-shaped client over an engine. `wrapCallback` makes a callback callable from where the
 * engine runs: `Comlink.proxy` across a worker, the identity in the same thread.
 */
export function createHearthClient(engine: EngineApi, wrapCallback: <F>(f: F) => F = (f) => f): HearthClient {
  function create(request: CreateRequest & { stream: true }): ChatCompletionStream;
  function create(request: CreateRequest & { stream?: false }): Promise<ChatCompletion>;
  function create({ signal, stream: streaming, ...rest }: CreateRequest & { stream?: boolean }): ChatCompletionStream | Promise<ChatCompletion> {
    const request: ChatCompletionRequest = { ...rest, request_id: requestIdFor(rest) };
    if (streaming) return stream(engine, request, signal, wrapCallback);
    const unsubscribe = forwardAbort(engine, request.request_id!, signal);
    return engine.chatCompletion(request).finally(unsubscribe);
  }
  return { chat: { completions: { create } }, engine };
}

/** A client over the Comlink proxy of the engine's worker: callbacks cross as Comlink proxies. */
export function clientOfRemote(remote: Comlink.Remote<EngineApi>): HearthClient {
  return createHearthClient(remote as unknown as EngineApi, (f) => Comlink.proxy(f as object) as typeof f);
}

/** Connects to the engine running in `worker` (src/engine/rpc/worker.ts) and wraps it as a client. */
export function connectEngineWorker(worker: Worker): HearthClient {
  installErrorTransfer();
  return clientOfRemote(Comlink.wrap<EngineApi>(worker));
}
