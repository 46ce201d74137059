/**
 * An OpenAI-compatible HTTP server over one engine (`hearth serve`): POST /v1/chat/completions and
 * /v1/completions, streamed as server-sent events (`data: {chunk}` ... `data: [DONE]`) or answered
 * whole, GET /v1/models and GET /health. Node's own http module: four routes need no framework.
 *
 * One reply is generated at a time; the others wait their turn in arrival order (queue.ts), up to a
 * limit past which the server answers 503. A client that disconnects ends its request: a running
 * generation is aborted within a token (engine.abort), a waiting one leaves the queue unrun.
 *
 * Every answer a browser page may read carries CORS headers (and preflights are answered), so a page
 * on another origin, the Hearth app's "Add a server" included, can call the server. Errors are
 * OpenAI's `{ error: { message, type, param, code } }` with the HTTP status its clients expect.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatCompletion, ChatCompletionChunk, EngineApi, FinishReason } from '../engine/api.ts';
import { validateChatRequest } from '../engine/generate/validate-request.ts';
import { readJsonObject } from './body.ts';
import { ApiError, invalidParam, modelNotFound, toApiError } from './errors.ts';
import {
  chatRequestFrom,
  completionParam,
  completionRequestFrom,
  openAiUsage,
  servedChunk,
  servedCompletion,
  textChunk,
  textCompletion,
  type ServerRequest,
} from './openai-shapes.ts';
import { LeftQueueError, TurnQueue } from './queue.ts';

export interface HearthServerOptions {
  engine: EngineApi;
  /** The id clients name the model by (GET /v1/models, a request's `model`). */
  modelId: string;
  /** When set, every request but /health and preflights needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string | undefined;
  /** Requests that may wait behind the running one; more are answered 503 (default 32). */
  maxWaiting?: number;
  /** The largest request body accepted, in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Origins whose pages may call the server; default any ('*'). */
  corsOrigins?: readonly string[];
  /** One line per request (default: none). */
  log?: (line: string) => void;
  /**
   * Host names (optionally `name:port`) accepted in the Host header besides localhost, 127.0.0.1 and
   * [::1] at the bound port, when the server listens on a loopback address (see {@link hostAllowed}).
   */
  allowedHosts?: readonly string[];
  /**
   * A streamed request that has no event yet (waiting its turn, or reading its prompt) gets an SSE
   * comment `: keep-alive` this often, so proxies and clients with idle timeouts keep the connection
   * (default 15 s). The first one sends the stream's 200 headers: an error after it is an error
   * event in the stream, as an error after the first token is.
   */
  keepAliveMs?: number;
}

export type RequestOutcome = 'finished' | 'aborted' | 'dropped' | 'failed';

/** How a generation request ended: 'aborted' ran and was ended by its client leaving, 'dropped' never ran. */
export interface RequestRecord {
  id: string;
  endpoint: 'chat' | 'text';
  stream: boolean;
  outcome: RequestOutcome;
  finish_reason?: FinishReason;
  completion_tokens?: number;
  /** The error's status, for 'failed'. */
  status?: number;
}

export interface ServerState {
  /** The request generating now, by id. */
  running: string | null;
  waiting: number;
  /** Generation requests so far, by how they ended. */
  counts: Record<RequestOutcome, number>;
}

export interface HearthServer {
  readonly http: Server;
  /** Listens; resolves with the base URL (port 0 picks a free port). */
  listen(port: number, host: string): Promise<string>;
  /** Stops listening, ends every request (running ones are aborted) and waits for them. */
  close(): Promise<void>;
  state(): ServerState;
  /** Called as each generation request ends; returns the unsubscribe. */
  onRequestEnd(listener: (record: RequestRecord) => void): () => void;
}

const DEFAULT_MAX_WAITING = 32;
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> | void;

interface Route {
  methods: Partial<Record<string, Handler>>;
  /** /health answers without the API key (load balancers and the app's reachability check ask it). */
  open?: boolean;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const DEFAULT_KEEP_ALIVE_MS = 15_000;
/** Streams that have sent an event (keep-alive comments stop then). */
const eventsSent = new WeakSet<ServerResponse>();

function startStream(res: ServerResponse): void {
  if (!res.headersSent) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  }
}

/** Sends `: keep-alive` comments every `ms` until the stream's first event; returns the stop. */
function keepAlive(res: ServerResponse, ms: number): () => void {
  const timer = setInterval(() => {
    if (res.destroyed || res.writableEnded || eventsSent.has(res)) return clearInterval(timer);
    startStream(res);
    res.write(': keep-alive\n\n');
  }, ms);
  return () => clearInterval(timer);
}

/**
 * One server-sent event; a client that has left is not written to. The stream's headers go with its
 * first event, so an error found before the first token (a prompt that does not fit) still gets its
 * own status rather than a 200 stream holding an error.
 */
/** An error as its JSON answer, or as the last event of a stream that has started. */
function sendError(res: ServerResponse, apiError: ApiError, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    sendEvent(res, apiError.body());
    res.end();
  } else sendJson(res, apiError.status, apiError.body(), headers);
}

function sendEvent(res: ServerResponse, data: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  startStream(res);
  eventsSent.add(res);
  res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** True for an address a listening socket reports that only this machine can reach. */
export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || /^127\./.test(address) || address === '::ffff:127.0.0.1' || address === 'localhost';
}

/**
 * DNS rebinding: a page on attacker.example can make its own name resolve to 127.0.0.1 and then
 * call a server on this machine as a same-origin page (no CORS, no Origin check applies). Its
 * requests still carry `Host: attacker.example`, so a server bound to loopback answers only Host
 * values naming loopback at its own port, or the names it was given (`name` any port, `name:port`
 * that port).
 */
export function hostAllowed(header: string | undefined, port: number, allowed: readonly string[]): boolean {
  if (header === undefined || /[\s/@?#\\]/.test(header)) return false;
  let url: URL;
  try {
    url = new URL(`http://${header}`);
  } catch {
    return false;
  }
  const name = url.hostname.toLowerCase();
  const given = url.port === '' ? 80 : Number(url.port);
  if (LOOPBACK_NAMES.has(name) && given === port) return true;
  return allowed.some((entry) => {
    const e = entry.toLowerCase();
    return e === name || e === `${name}:${given}`;
  });
}

/** Compares in constant time (digests of equal length), so the key cannot be guessed byte by byte from timings. */
function sameKey(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * The engine's checks of a request. The grammar compilers bound their own nesting (a named
 * UnsupportedSchemaError or GrammarError); a stack overflow anywhere else in the checks is still
 * the request's fault: a 400 naming the field, not a 500.
 */
function checkRequest(request: ServerRequest['request']): void {
  try {
    validateChatRequest(request);
  } catch (error) {
    if (!(error instanceof RangeError && /call stack/i.test(error.message))) throw error;
    const param = request.grammar !== undefined ? 'grammar' : request.response_format !== undefined ? 'response_format' : request.tools !== undefined ? 'tools' : 'messages';
    throw invalidParam(param, `'${param}' is nested too deeply to compile.`);
  }
}

export function createHearthServer(options: HearthServerOptions): HearthServer {
  const { engine, modelId, apiKey } = options;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const origins = options.corsOrigins ?? ['*'];
  const log = options.log ?? (() => undefined);
  const queue = new TurnQueue(options.maxWaiting ?? DEFAULT_MAX_WAITING);
  const created = Math.floor(Date.now() / 1000);
  const counts: Record<RequestOutcome, number> = { finished: 0, aborted: 0, dropped: 0, failed: 0 };
  const listeners = new Set<(record: RequestRecord) => void>();
  /** The clients' connections to end on close: running and waiting generations, by their signal. */
  const inFlight = new Set<{ left: AbortController; done: Promise<void> }>();
  let running: string | null = null;
  /** The port whose loopback Host values are accepted; null when not bound to loopback (no check). */
  let loopbackPort: number | null = null;

  const modelObject = () => ({ id: modelId, object: 'model', created, owned_by: 'hearth' });

  function record(entry: RequestRecord): void {
    counts[entry.outcome]++;
    for (const listener of listeners) listener(entry);
  }

  function cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (origins.includes('*')) res.setHeader('Access-Control-Allow-Origin', '*');
    else if (origin && origins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    }
  }

  function preflight(req: IncomingMessage, res: ServerResponse): void {
    // The browser sends the API key only after the preflight: it needs no key itself.
    const headers: Record<string, string> = {
      'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
      'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type',
      'Access-Control-Max-Age': '600',
    };
    // Chrome's Private Network Access: a public page asks before it calls a server on this machine.
    if (req.headers['access-control-request-private-network'] === 'true') headers['Access-Control-Allow-Private-Network'] = 'true';
    res.writeHead(204, headers);
    res.end();
  }

  function authorize(req: IncomingMessage): void {
    if (apiKey === undefined) return;
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!match) {
      throw new ApiError(401, "Missing API key: send it as 'Authorization: Bearer <key>'.", 'authentication_error', null, 'missing_api_key');
    }
    if (!sameKey(match[1]!, apiKey)) throw new ApiError(401, 'Incorrect API key.', 'authentication_error', null, 'invalid_api_key');
  }

  /**
   * Runs one generation request in its turn and answers it, streamed or whole. `kind` picks the
   * response shape: chat completions, or the legacy text completions.
   */
  async function generate(res: ServerResponse, parsed: ServerRequest, kind: 'chat' | 'text'): Promise<void> {
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    const request = { ...parsed.request, request_id: id, stream: parsed.stream };
    // Checked before the request waits: a bad field is a 400 now, not after the queue.
    checkRequest(request);
    const left = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) left.abort();
    });
    const turn = queue.turn(left.signal); // throws QueueFullError: nothing sent yet
    let settle!: () => void;
    const entry = { left, done: new Promise<void>((resolve) => (settle = resolve)) };
    inFlight.add(entry);
    const stopKeepAlive = parsed.stream ? keepAlive(res, options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS) : () => undefined;
    try {
      let release: () => void;
      try {
        release = await turn;
      } catch (error) {
        if (!(error instanceof LeftQueueError)) throw error;
        record({ id, endpoint: kind, stream: parsed.stream, outcome: 'dropped' });
        return;
      }
      const abort = () => void engine.abort(id);
      left.signal.addEventListener('abort', abort, { once: true });
      running = id;
      let ended: RequestRecord;
      try {
        ended = await answer(res, request, parsed, kind, left.signal);
      } finally {
        running = null;
        left.signal.removeEventListener('abort', abort);
        release();
      }
      // Reported once the next request has its turn: a listener sees the server as it now is.
      record(ended);
    } finally {
      stopKeepAlive();
      inFlight.delete(entry);
      settle();
    }
  }

  /** Generates and sends the reply; returns how the request ended. */
  async function answer(res: ServerResponse, request: ServerRequest['request'], parsed: ServerRequest, kind: 'chat' | 'text', left: AbortSignal): Promise<RequestRecord> {
    const id = request.request_id!;
    const chunkOf = (chunk: ChatCompletionChunk) => (kind === 'chat' ? servedChunk(chunk, modelId) : textChunk(chunk, modelId));
    let completion: ChatCompletion;
    try {
      const reply = engine.chatCompletion(request, parsed.stream ? (chunk) => sendEvent(res, chunkOf(chunk)) : undefined);
      // A client that left as its turn came: the engine aborts only requests it has received.
      if (left.aborted) void engine.abort(id);
      completion = await reply;
    } catch (error) {
      const apiError = toApiError(error, kind === 'text' ? completionParam : undefined);
      if (apiError.status >= 500) log(`error in ${id}: ${apiError.message}`);
      sendError(res, apiError);
      return { id, endpoint: kind, stream: parsed.stream, outcome: 'failed', status: apiError.status };
    }
    const finish = completion.choices[0].finish_reason;
    if (parsed.stream) {
      if (parsed.includeUsage) {
        const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
        sendEvent(res, { id, object, created: completion.created, model: modelId, choices: [], usage: openAiUsage(completion.usage) });
      }
      sendEvent(res, '[DONE]');
      if (!res.writableEnded) res.end();
    } else {
      sendJson(res, 200, kind === 'chat' ? servedCompletion(completion, modelId) : textCompletion(completion, modelId));
    }
    return {
      id,
      endpoint: kind,
      stream: parsed.stream,
      outcome: finish === 'abort' ? 'aborted' : 'finished',
      finish_reason: finish,
      completion_tokens: completion.usage.completion_tokens,
    };
  }

  const routes: Record<string, Route> = {
    '/health': {
      open: true,
      methods: {
        GET: (_req, res) => sendJson(res, 200, { status: 'ok', model: modelId, running: running !== null, waiting: queue.waitingCount }),
      },
    },
    '/v1/models': { methods: { GET: (_req, res) => sendJson(res, 200, { object: 'list', data: [modelObject()] }) } },
    '/v1/chat/completions': {
      methods: { POST: async (req, res) => generate(res, chatRequestFrom(await readJsonObject(req, maxBody), modelId), 'chat') },
    },
    '/v1/completions': {
      methods: { POST: async (req, res) => generate(res, completionRequestFrom(await readJsonObject(req, maxBody), modelId), 'text') },
    },
  };

  function routeOf(path: string): Route | undefined {
    if (routes[path]) return routes[path];
    // GET /v1/models/{id}: the served model, or 404.
    if (path.startsWith('/v1/models/')) {
      return {
        methods: {
          GET: (_req, res, p) => {
            let asked = p.slice('/v1/models/'.length);
            try {
              asked = decodeURIComponent(asked);
            } catch {
              // Not percent-encoded text: it names no model either.
            }
            if (asked !== modelId) throw modelNotFound(asked, modelId);
            sendJson(res, 200, modelObject());
          },
        },
      };
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (loopbackPort !== null && !hostAllowed(req.headers.host, loopbackPort, options.allowedHosts ?? [])) {
      throw new ApiError(403, `The Host ${JSON.stringify((req.headers.host ?? '').slice(0, 200))} is not this server's (a server on localhost answers only Host localhost, 127.0.0.1 or [::1] at its port; see --allowed-host).`, 'invalid_request_error', null, 'host_not_allowed');
    }
    cors(req, res);
    const method = req.method ?? 'GET';
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://server').pathname.replace(/\/+$/, '') || '/';
    } catch {
      path = '/';
    }
    if (method === 'OPTIONS') return preflight(req, res);
    // A page of another origin can send a simple POST without a preflight: with an origin list, its
    // request must not run even though the browser would hide the answer.
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.includes('*') && !origins.includes(origin)) {
      throw new ApiError(403, `Requests from ${origin.slice(0, 200)} are not allowed (see --cors-origin).`, 'invalid_request_error', null, 'origin_not_allowed');
    }
    const route = routeOf(path);
    if (!route) throw new ApiError(404, `Invalid URL (${method} ${path}): the routes are POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health.`, 'invalid_request_error', null, 'unknown_url');
    const handler = route.methods[method];
    if (!handler) {
      const allowed = Object.keys(route.methods).join(', ');
      res.setHeader('Allow', `${allowed}, OPTIONS`);
      throw new ApiError(405, `${path} takes ${allowed}, not ${method}.`, 'invalid_request_error', null, 'method_not_allowed');
    }
    if (!route.open) authorize(req);
    await handler(req, res, path);
  }

  const http = createServer((req, res) => {
    const started = performance.now();
    res.on('close', () => {
      const left = res.writableFinished ? '' : ' (the client left)';
      log(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - started).toFixed(0)} ms${left}`);
    });
    handle(req, res).catch((error: unknown) => {
      const apiError = toApiError(error);
      if (apiError.status >= 500 && apiError.code === 'internal_error') log(`error: ${apiError.message}`);
      sendError(res, apiError, apiError.status === 503 ? { 'Retry-After': '1' } : {});
    });
  });

  return {
    http,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          const { address, port: bound } = http.address() as AddressInfo;
          loopbackPort = isLoopbackAddress(address) ? bound : null;
          resolve(`http://${address.includes(':') ? `[${address}]` : address}:${bound}`);
        });
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      const pending = [...inFlight];
      for (const { left } of pending) left.abort();
      await Promise.all(pending.map((p) => p.done));
      http.closeAllConnections();
      await closed;
    },
    state: () => ({ running, waiting: queue.waitingCount, counts: { ...counts } }),
    onRequestEnd(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
