/**
 * Errors as an OpenAI-compatible server reports them: an HTTP status and the body OpenAI's API
 * sends, `{ error: { message, type, param, code } }`, which its clients turn into typed exceptions
 * (`BadRequestError`, `AuthenticationError`, ...). Engine errors map by their stable `name`: a
 * request the engine refuses is the client's fault (400, naming the field), anything unexpected is
 * the server's (500, logged).
 */
import { HearthError } from '../engine/errors.ts';

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'server_error' | 'server_busy';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

/** An error answered with `status` and OpenAI's error body. */
export class ApiError extends HearthError {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message, { status, param, code });
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A request field is wrong: 400 naming it. */
export function invalidParam(param: string, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** Engine errors that mean the request, not the server, is at fault; they carry `detail.param`. */
const REQUEST_ERRORS = new Set(['InvalidRequestError', 'UnsupportedSchemaError', 'GrammarError']);

/** 404 for a model this server does not serve (the request body's `model` or `/v1/models/{id}`). */
export function modelNotFound(asked: string, served: string): ApiError {
  return new ApiError(404, `The model '${asked.slice(0, 200)}' does not exist on this server; it serves '${served}'.`, 'not_found_error', 'model', 'model_not_found');
}

/**
 * The API error for anything a handler threw. `renameParam` maps the engine's field names back to
 * the request's (the completions endpoint sends its `prompt` as a message). Unexpected errors become
 * 500s with their name and message, never a stack.
 */
export function toApiError(error: unknown, renameParam: (param: string) => string = (p) => p): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as { name?: string; message?: string; detail?: Record<string, unknown> } | undefined;
  const name = e?.name ?? 'Error';
  const message = e?.message ?? String(error);
  const param = typeof e?.detail?.param === 'string' ? renameParam(e.detail.param) : null;
  if (REQUEST_ERRORS.has(name) && param !== null) {
    const code = /is not (a )?supported/.test(message) ? 'unsupported_parameter' : 'invalid_value';
    return new ApiError(400, message, 'invalid_request_error', param, code);
  }
  if (name === 'ContextWindowExceededError') return new ApiError(400, message, 'invalid_request_error', param ?? 'messages', 'context_length_exceeded');
  if (name === 'NoModelLoadedError') return new ApiError(503, message, 'server_error', null, 'model_not_loaded');
  if (name === 'QueueFullError') return new ApiError(503, message, 'server_busy', null, 'queue_full');
  return new ApiError(500, `${name}: ${message}`, 'server_error', null, 'internal_error');
}
