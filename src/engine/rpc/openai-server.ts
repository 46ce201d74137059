/**
 * A remote engine: an OpenAI-compatible HTTP server (`hearth serve`, llama.cpp's llama-server,
 * vLLM, Ollama, a hosted endpoint) behind the same `ChatEngine` interface as the local engine, so
 * `createChatClient` (client.ts) streams, stops and fails the same way for both. Chats go out as
 * `POST {base}/v1/chat/completions` with `stream: true`, read as server-sent events (sse.ts).
 *
 * Nothing here runs by itself: a request leaves only when the caller lists a server's models or
 * sends a chat to it. The API key goes to that server only, in its Authorization header.
 *
 * Every way a request can fail gets a named error that says what to do, and a stream that breaks
 * keeps what it delivered (the chunks already reported). Stopping a reply aborts the fetch, and the
 * reply then ends as a local one does: with the text so far and finish_reason 'abort'.
 */
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, CompletionUsage, FinishReason, ToolCall } from '../api.ts';
import { HearthError } from '../errors.ts';
import { createChatClient, type ChatClient, type ChatEngine } from './client.ts';
import { readSse } from './sse.ts';

export interface ServerConfig {
  /** The base URL as normalizeServerUrl returns it: no trailing slash, no trailing /v1. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`, to this server only. */
  apiKey?: string | undefined;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

// Each class names itself, as every error class does (tests/error-names.test.ts).

/** The URL is not one the app can talk to (malformed, or plain HTTP to another machine). */
export class ServerUrlError extends HearthError {
  override name = 'ServerUrlError';
}
/** Nothing answered at the server's address (it is down, or the address or port is wrong). */
export class ServerUnreachableError extends HearthError {
  override name = 'ServerUnreachableError';
}
/** The server answered, but without the CORS headers that let this page read its replies. */
export class ServerCorsError extends HearthError {
  override name = 'ServerCorsError';
}
/** The server refused the API key (401), or the key lacks access (403). */
export class ServerAuthError extends HearthError {
  override name = 'ServerAuthError';
}
/** The server no longer has the model the chat uses (404). */
export class ServerModelNotFoundError extends HearthError {
  override name = 'ServerModelNotFoundError';
}
/** The stream broke off, or carried something that is not a chat completion chunk. */
export class ServerStreamError extends HearthError {
  override name = 'ServerStreamError';
}
/** Any other refusal (an HTTP error status, an answer that is not OpenAI's shape). */
export class ServerResponseError extends HearthError {
  override name = 'ServerResponseError';
}

/**
 * This machine, as the app's Content-Security-Policy (index.html) lets the page reach it over plain
 * http: `localhost` and `127.0.0.1` (a CSP cannot name IPv6 literals or address ranges).
 */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1';
}

/**
 * The base URL to store: https to any host, or plain http to this machine only. Plain http to
 * another machine would be blocked anyway (as mixed content on an https page, and by the app's
 * Content-Security-Policy), and would carry the chat and the key unencrypted across the network.
 * A trailing `/v1` is dropped, since the endpoints add it.
 */
export function normalizeServerUrl(input: string): string {
  let text = input.trim();
  // "localhost:8080" as people type it: plain http on this machine, https elsewhere.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `${/^(localhost|127\.0\.0\.1)(:|\/|$)/.test(text) ? 'http' : 'https'}://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ServerUrlError(`"${input.trim()}" is not a URL. Enter the server's address, such as http://localhost:8080 or https://llm.example.com.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ServerUrlError(`${url.protocol} is not a web address: use http://localhost:PORT for a server on this machine, or https:// for another one.`);
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new ServerUrlError(
      `Plain http:// works only for a server on this machine (localhost or 127.0.0.1). ${url.host} is not: connect to it over https:// ` +
        '(for example behind a reverse proxy with a certificate), so the chat and the API key are encrypted on the way.',
    );
  }
  if (url.username || url.password) throw new ServerUrlError('Put the API key in its own field, not in the URL.');
  if (url.search || url.hash) throw new ServerUrlError('Enter the base URL only, without ?query or #fragment.');
  return url.href.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** The server's host as the UI names it ("localhost:8080"). */
export function serverHost(baseUrl: string): string {
  return new URL(baseUrl).host;
}

const defaultFetch: FetchLike = (input, init) => globalThis.fetch(input, init);

function headers(config: ServerConfig, json: boolean): Record<string, string> {
  return {
    ...(json ? { 'Content-Type': 'application/json' } : {}),
    ...(config.apiKey ? { Authorization: `Bearer ${config.apiKey}` } : {}),
  };
}

/**
 * A fetch that failed without an answer is a TypeError that says nothing more: the server is
 * down, or it answered without CORS headers, or the browser blocked it. A `no-cors` request tells
 * the first two apart: the browser sends it without asking the server's permission and hands back
 * an opaque answer, so it succeeds exactly when something answers at that address.
 */
async function explainFailedFetch(url: string, error: unknown, fetchImpl: FetchLike): Promise<Error> {
  const host = new URL(url).host;
  const pageOrigin = (globalThis as { location?: { origin?: string } }).location?.origin;
  const crossOrigin = pageOrigin !== undefined && pageOrigin !== new URL(url).origin;
  const answers = crossOrigin ? await fetchImpl(url, { mode: 'no-cors', cache: 'no-store' }).then(() => true, () => false) : false;
  const reason = String((error as Error)?.message ?? error);
  if (answers) {
    return new ServerCorsError(
      `The server at ${host} answered, but did not allow this page (${pageOrigin}) to read its replies: the browser requires the server to send CORS headers ` +
        '(Access-Control-Allow-Origin, and Access-Control-Allow-Headers for Authorization and Content-Type). ' +
        'llama.cpp\'s llama-server and hearth serve send them by default (hearth serve --cors-origin lists the origins it allows: include this one); Ollama needs OLLAMA_ORIGINS set to this page\'s origin; vLLM takes --allowed-origins; ' +
        'a reverse proxy in front of the server must pass them on (and answer OPTIONS requests).',
      { url, reason },
    );
  }
  // A page from another machine reaching this one: Chrome's Private Network Access blocks it unless
  // the server allows it, and a blocked probe looks the same as a server that is down.
  const page = pageOrigin ? new URL(pageOrigin).hostname : undefined;
  const privateNetwork =
    page !== undefined && !isLoopback(page) && isLoopback(new URL(url).hostname)
      ? ' If it is running, the browser may be keeping this page from reaching your machine (Private Network Access): the server must answer the preflight with Access-Control-Allow-Private-Network: true, as hearth serve does.'
      : '';
  return new ServerUnreachableError(`Nothing answered at ${host} (${reason}). Check that the server is running and that the address and port are right.${privateNetwork}`, { url, reason });
}

async function send(config: ServerConfig, path: string, init: RequestInit, fetchImpl: FetchLike): Promise<Response> {
  const url = `${config.baseUrl}${path}`;
  try {
    return await fetchImpl(url, init);
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw await explainFailedFetch(url, error, fetchImpl);
  }
}

/** OpenAI's error body (`{ error: { message } }`), or the body's text, or the status text. */
async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const message = typeof body.error === 'string' ? body.error : (body.error?.message ?? body.message);
    if (typeof message === 'string' && message) return message;
  } catch {
    // Not JSON: the text itself, if short enough to be a message.
  }
  return text && text.length < 300 ? text.trim() : response.statusText || 'no message';
}

async function refusal(response: Response, config: ServerConfig, model: string | undefined): Promise<Error> {
  const host = serverHost(config.baseUrl);
  const message = await errorMessage(response);
  const detail = { status: response.status, message };
  if (response.status === 401 || response.status === 403) {
    const what = config.apiKey ? 'refused the API key' : 'needs an API key';
    return new ServerAuthError(`The server at ${host} ${what} (HTTP ${response.status}: ${message}). In Models → Servers, add the server again with the right key.`, detail);
  }
  if (response.status === 404 && model !== undefined) {
    return new ServerModelNotFoundError(
      `The server at ${host} has no model "${model}" (HTTP 404: ${message}). It may have been unloaded or renamed: refresh the server's models in Models → Servers and pick one.`,
      detail,
    );
  }
  if (response.status === 404) {
    return new ServerResponseError(`${host} has no /v1/models (HTTP 404): is ${config.baseUrl} the base URL of an OpenAI-compatible server?`, detail);
  }
  return new ServerResponseError(`The server at ${host} refused the request (HTTP ${response.status}: ${message}).`, detail);
}

/** The ids of the models the server offers (`GET {base}/v1/models`). */
export async function listServerModels(config: ServerConfig, options: { signal?: AbortSignal; fetch?: FetchLike } = {}): Promise<string[]> {
  const fetchImpl = options.fetch ?? defaultFetch;
  const response = await send(config, '/v1/models', { headers: headers(config, false), signal: options.signal ?? null }, fetchImpl);
  if (!response.ok) throw await refusal(response, config, undefined);
  const body = (await response.json().catch(() => undefined)) as { data?: Array<{ id?: unknown }> } | undefined;
  if (!Array.isArray(body?.data) || body.data.some((m) => typeof m?.id !== 'string')) {
    throw new ServerResponseError(`${serverHost(config.baseUrl)} answered /v1/models with something other than OpenAI's model list ({ "data": [{ "id": ... }] }).`);
  }
  return body.data.map((m) => m.id as string);
}

/** What a streamed chunk may carry, as servers send it (fields are checked before use). */
interface WireChunk {
  id?: unknown;
  created?: unknown;
  model?: unknown;
  error?: { message?: unknown } | string;
  choices?: Array<{ delta?: { content?: unknown; tool_calls?: WireToolCall[] }; message?: { content?: unknown; tool_calls?: ToolCall[] }; finish_reason?: unknown }>;
  usage?: Partial<Record<keyof CompletionUsage, unknown>>;
  /** Hearth's extension (hearth serve sends it): the context window in use, for a live meter. */
  context?: { used?: unknown; total?: unknown };
}

interface WireToolCall {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

const FINISH_REASONS: readonly string[] = ['stop', 'length', 'tool_calls'];

/** A reply as it builds up from the stream, and the timing the usage reports. */
class Reply {
  id = '';
  created = Math.floor(Date.now() / 1000);
  content = '';
  finish: FinishReason | undefined;
  usage: WireChunk['usage'];
  readonly calls: ToolCall[] = [];
  contentChunks = 0;
  firstTokenAt: number | undefined;
  private readonly startedAt = performance.now();

  constructor(public model: string) {}

  take(chunk: WireChunk): ChatCompletionChunk | undefined {
    if (typeof chunk.id === 'string') this.id = chunk.id;
    if (typeof chunk.created === 'number') this.created = chunk.created;
    if (typeof chunk.model === 'string' && chunk.model) this.model = chunk.model;
    if (chunk.usage) this.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) return undefined;
    const delta = choice.delta ?? {};
    const text = typeof delta.content === 'string' ? delta.content : '';
    if (text) {
      this.content += text;
      this.contentChunks++;
      this.firstTokenAt ??= performance.now();
    }
    for (const call of delta.tool_calls ?? []) this.addCall(call);
    const finish = typeof choice.finish_reason === 'string' && FINISH_REASONS.includes(choice.finish_reason) ? (choice.finish_reason as FinishReason) : undefined;
    if (finish) this.finish = finish;
    if (!text && !finish) return undefined;
    const { used, total } = chunk.context ?? {};
    return {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta: text ? { content: text } : {}, finish_reason: finish ?? null }],
      ...(typeof used === 'number' && typeof total === 'number' ? { context: { used, total } } : {}),
    };
  }

  /** OpenAI may split a call's arguments over chunks: join them by index. */
  private addCall(call: WireToolCall): void {
    const index = call.index ?? this.calls.length;
    const known = (this.calls[index] ??= { id: call.id ?? `call_${index}`, type: 'function', function: { name: '', arguments: '' } });
    if (call.id) known.id = call.id;
    if (call.function?.name) known.function.name += call.function.name;
    if (call.function?.arguments) known.function.arguments += call.function.arguments;
  }

  completion(finish: FinishReason): ChatCompletion {
    const now = performance.now();
    const number = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
    const u = this.usage ?? {};
    // Without usage from the server (it did not honour include_usage), each content chunk counts as
    // one token, as llama-server and hearth serve send them.
    const completionTokens = number(u.completion_tokens, this.contentChunks);
    const promptTokens = number(u.prompt_tokens, 0);
    const ttft = (this.firstTokenAt ?? now) - this.startedAt;
    const decodeSeconds = (now - (this.firstTokenAt ?? now)) / 1000;
    const usage: CompletionUsage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: number(u.total_tokens, promptTokens + completionTokens),
      cached_prompt_tokens: number(u.cached_prompt_tokens, 0),
      dropped_messages: number(u.dropped_messages, 0),
      // Measured here, so they include the network: what this page waited for.
      time_to_first_token_ms: number(u.time_to_first_token_ms, ttft),
      prefill_tokens_per_second: number(u.prefill_tokens_per_second, ttft > 0 ? (promptTokens * 1000) / ttft : 0),
      decode_tokens_per_second: number(u.decode_tokens_per_second, decodeSeconds > 0 ? (completionTokens - 1) / decodeSeconds : 0),
    };
    if (finish === 'length' && (u.length_limit === 'max_tokens' || u.length_limit === 'context_window')) usage.length_limit = u.length_limit;
    const calls = this.calls.filter(Boolean);
    // As OpenAI: a reply that is only tool calls has content null.
    const message: ChatCompletion['choices'][0]['message'] =
      calls.length > 0 ? { role: 'assistant', content: this.content === '' ? null : this.content, tool_calls: calls } : { role: 'assistant', content: this.content };
    return { id: this.id, object: 'chat.completion', created: this.created, model: this.model, choices: [{ index: 0, message, finish_reason: finish }], usage };
  }
}

function streamFailure(message: string, config: ServerConfig): ServerStreamError {
  return new ServerStreamError(`The reply from ${serverHost(config.baseUrl)} broke off: ${message} The text that arrived is kept; send again to retry.`);
}

/** Parses one `data:` payload; a payload that is not a chunk, or an error in the stream, throws. */
function parseChunk(data: string, config: ServerConfig): WireChunk {
  let chunk: WireChunk;
  try {
    chunk = JSON.parse(data) as WireChunk;
  } catch {
    throw streamFailure(`it sent something that is not JSON (${JSON.stringify(data.slice(0, 80))}).`, config);
  }
  if (chunk === null || typeof chunk !== 'object') throw streamFailure(`it sent ${JSON.stringify(data.slice(0, 80))} where a chunk belongs.`, config);
  if (chunk.error !== undefined) {
    const message = typeof chunk.error === 'string' ? chunk.error : String(chunk.error.message ?? JSON.stringify(chunk.error));
    throw streamFailure(`the server reported an error: ${message}.`, config);
  }
  return chunk;
}

/**
 * One model on one server, as a `ChatEngine`: `createChatClient(new ServerChatEngine(...))` is
 * the OpenAI-shaped client the chat uses, the same as for the local engine.
 */
export class ServerChatEngine implements ChatEngine {
  private readonly running = new Map<string, AbortController>();
  private readonly fetchImpl: FetchLike;

  constructor(
    readonly config: ServerConfig,
    readonly model: string,
    options: { fetch?: FetchLike } = {},
  ) {
    this.fetchImpl = options.fetch ?? defaultFetch;
  }

  async abort(requestId: string): Promise<void> {
    this.running.get(requestId)?.abort();
  }

  async chatCompletion(request: ChatCompletionRequest, onChunk?: (chunk: ChatCompletionChunk) => void): Promise<ChatCompletion> {
    const { request_id: requestId, stream: _stream, ...fields } = request;
    const streaming = onChunk !== undefined || request.stream === true;
    const controller = new AbortController();
    if (requestId) this.running.set(requestId, controller);
    const reply = new Reply(this.model);
    try {
      return await this.run(fields, streaming, controller.signal, reply, onChunk);
    } catch (error) {
      // A stop is not a failure: the reply ends with what it has, as a local one does.
      if (controller.signal.aborted) return reply.completion('abort');
      throw error;
    } finally {
      if (requestId) this.running.delete(requestId);
    }
  }

  private async run(
    fields: Omit<ChatCompletionRequest, 'request_id' | 'stream'>,
    streaming: boolean,
    signal: AbortSignal,
    reply: Reply,
    onChunk: ((chunk: ChatCompletionChunk) => void) | undefined,
  ): Promise<ChatCompletion> {
    const body = { ...fields, model: this.model, stream: streaming, ...(streaming ? { stream_options: { include_usage: true } } : {}) };
    const response = await send(this.config, '/v1/chat/completions', { method: 'POST', headers: headers(this.config, true), body: JSON.stringify(body), signal }, this.fetchImpl);
    if (!response.ok) throw await refusal(response, this.config, this.model);
    const type = response.headers.get('content-type') ?? '';
    if (!streaming || !type.includes('text/event-stream') || !response.body) {
      // Not a stream (asked for none, or the server answered with the whole completion anyway).
      const whole = (await response.json().catch(() => undefined)) as WireChunk | undefined;
      const choice = whole?.choices?.[0];
      if (!whole || !choice?.message) throw new ServerResponseError(`${serverHost(this.config.baseUrl)} answered with something other than a chat completion.`);
      const chunk = reply.take({ ...whole, choices: [{ delta: { content: choice.message.content, tool_calls: choice.message.tool_calls?.map((c, index) => ({ ...c, index })) }, finish_reason: choice.finish_reason }] });
      if (chunk) onChunk?.(chunk);
      return reply.completion(reply.finish ?? 'stop');
    }
    let done = false;
    try {
      for await (const event of readSse(response.body)) {
        if (event.event === 'error') throw streamFailure(`the server reported an error: ${event.data}.`, this.config);
        if (event.data.trim() === '[DONE]') {
          done = true;
          break;
        }
        const chunk = reply.take(parseChunk(event.data, this.config));
        if (chunk) onChunk?.(chunk);
      }
    } catch (error) {
      if (error instanceof ServerStreamError || signal.aborted) throw error;
      throw streamFailure(`the connection was lost (${(error as Error)?.message ?? error}).`, this.config);
    }
    if (signal.aborted) return reply.completion('abort');
    // A finish reason ends the reply even if the server closes without [DONE].
    if (!done && !reply.finish) throw streamFailure('the stream ended before the reply did (the server stopped, or the connection dropped).', this.config);
    return reply.completion(reply.finish ?? 'stop');
  }
}

/**
 * The OpenAI-shaped client for `model` on a server: `create(request)` takes the same request as the
 * local engine's client (`window.hearth`), so code written against one runs against the other. The
 * app offers it to developers as `window.hearthServer({ baseUrl, apiKey, model })`.
 */
export function connectServer({ baseUrl, apiKey, model }: { baseUrl: string; apiKey?: string | undefined; model: string }, options: { fetch?: FetchLike } = {}): ChatClient {
  return createChatClient(new ServerChatEngine({ baseUrl: normalizeServerUrl(baseUrl), apiKey }, model, options));
}
