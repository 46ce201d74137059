/**
 * OpenAI's request and response shapes, translated to and from the engine's. The engine's chat
 * request already is OpenAI's (src/engine/api.ts) and checks every field it takes; what is left here
 * are the fields only a server has (the model a request names, `stream_options`, the newer
 * `max_completion_tokens`, the `user` label) and the legacy text completions endpoint, which runs as
 * a chat request with `prompt_format: 'text'` (the prompt continued as it is, no chat template).
 */
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, CompletionUsage, FinishReason } from '../engine/api.ts';
import { CHAT_REQUEST_FIELDS } from '../engine/generate/validate-request.ts';
import { invalidParam, modelNotFound } from './errors.ts';

export interface ServerRequest {
  /** For the engine: checked there (validateChatRequest), every unknown field refused by name. */
  request: ChatCompletionRequest;
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with no choices carries the usage, as OpenAI sends it. */
  includeUsage: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const given = (v: unknown) => v !== undefined && v !== null;

/** The model a request names must be the one served (absent is fine: there is only one). */
function checkModel(model: unknown, served: string): void {
  if (!given(model)) return;
  if (typeof model !== 'string') throw invalidParam('model', "'model' must be a string.");
  if (model !== served) {
    throw modelNotFound(model, served);
  }
}

function streamFlags(body: Record<string, unknown>): { stream: boolean; includeUsage: boolean } {
  const stream = body.stream === true;
  if (given(body.stream) && typeof body.stream !== 'boolean') throw invalidParam('stream', "'stream' must be true or false.");
  const options = body.stream_options;
  if (!given(options)) return { stream, includeUsage: false };
  if (!stream) throw invalidParam('stream_options', "'stream_options' is only allowed with 'stream: true'.");
  if (!isObject(options)) throw invalidParam('stream_options', "'stream_options' must be an object { include_usage }.");
  for (const key of Object.keys(options)) {
    if (key !== 'include_usage') throw invalidParam(`stream_options.${key}`, `'stream_options.${key}' is not supported (supported: include_usage).`, 'unsupported_parameter');
  }
  if (given(options.include_usage) && typeof options.include_usage !== 'boolean') throw invalidParam('stream_options.include_usage', "'stream_options.include_usage' must be true or false.");
  return { stream, includeUsage: options.include_usage === true };
}

function checkUser(user: unknown): void {
  if (given(user) && typeof user !== 'string') throw invalidParam('user', "'user' must be a string.");
}

/** Fields the server consumes itself; the rest of a chat request goes to the engine as it came. */
const SERVER_FIELDS = new Set(['model', 'stream', 'stream_options', 'max_completion_tokens', 'user', 'request_id']);

/** A POST /v1/chat/completions body, for the engine. */
export function chatRequestFrom(body: Record<string, unknown>, servedModel: string): ServerRequest {
  checkModel(body.model, servedModel);
  checkUser(body.user);
  // The server names requests itself (the id of the reply); a client ends one by closing its connection.
  if (given(body.request_id)) {
    throw invalidParam('request_id', "'request_id' is set by the server; to end a request, close its connection.", 'unsupported_parameter');
  }
  for (const key of Object.keys(body)) {
    if (!SERVER_FIELDS.has(key) && !CHAT_REQUEST_FIELDS.includes(key)) {
      const supported = [...CHAT_REQUEST_FIELDS.filter((f) => f !== 'request_id'), 'stream_options', 'max_completion_tokens', 'user'].join(', ');
      throw invalidParam(key, `'${key}' is not a supported parameter (supported: ${supported}).`, 'unsupported_parameter');
    }
  }
  const flags = streamFlags(body);
  const request: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (!SERVER_FIELDS.has(key)) request[key] = value;
  if (given(body.max_completion_tokens)) {
    if (given(body.max_tokens)) throw invalidParam('max_completion_tokens', "Give one of 'max_tokens' and 'max_completion_tokens'.");
    request.max_tokens = body.max_completion_tokens;
  }
  return { request: request as unknown as ChatCompletionRequest, ...flags };
}

/**
 * The parameters of POST /v1/completions that pass to the engine as they are. OpenAI's legacy
 * `echo`, `suffix`, `best_of` and `logprobs` are taken only at the values that change nothing.
 */
const COMPLETION_PASSED = new Set([
  'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'n', 'stop', 'seed',
  'presence_penalty', 'frequency_penalty', 'repetition_penalty', 'response_format', 'grammar',
]);
const COMPLETION_SERVER = new Set(['model', 'prompt', 'stream', 'stream_options', 'user', 'echo', 'suffix', 'best_of', 'logprobs']);

/** OpenAI's default for the completions endpoint (the chat endpoint's is the context window). */
export const DEFAULT_COMPLETION_TOKENS = 16;

/** A POST /v1/completions body, as the chat request that continues the prompt's text. */
export function completionRequestFrom(body: Record<string, unknown>, servedModel: string): ServerRequest {
  for (const key of Object.keys(body)) {
    if (!COMPLETION_PASSED.has(key) && !COMPLETION_SERVER.has(key)) {
      const supported = [...COMPLETION_SERVER, ...COMPLETION_PASSED].join(', ');
      throw invalidParam(key, `'${key}' is not a supported parameter of /v1/completions (supported: ${supported}).`, 'unsupported_parameter');
    }
  }
  checkModel(body.model, servedModel);
  checkUser(body.user);
  if (given(body.echo) && body.echo !== false) throw invalidParam('echo', "'echo' is not supported except as false.", 'unsupported_parameter');
  if (given(body.suffix) && body.suffix !== '') throw invalidParam('suffix', "'suffix' is not supported.", 'unsupported_parameter');
  if (given(body.best_of) && body.best_of !== 1) throw invalidParam('best_of', "'best_of' is not supported except as 1.", 'unsupported_parameter');
  if (given(body.logprobs)) throw invalidParam('logprobs', "'logprobs' is not supported: Hearth does not return log probabilities.", 'unsupported_parameter');
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
  if (typeof prompt !== 'string' || prompt.length === 0) {
    throw invalidParam('prompt', "'prompt' must be a non-empty string (or an array of one; token arrays and several prompts are not supported).");
  }
  const flags = streamFlags(body);
  const request: Record<string, unknown> = { messages: [{ role: 'user', content: prompt }], prompt_format: 'text', max_tokens: DEFAULT_COMPLETION_TOKENS };
  for (const [key, value] of Object.entries(body)) if (COMPLETION_PASSED.has(key) && given(value)) request[key] = value;
  return { request: request as unknown as ChatCompletionRequest, ...flags };
}

/** The engine names fields of the chat request it made from a completions body: name the body's. */
export function completionParam(param: string): string {
  return param.startsWith('messages') ? 'prompt' : param;
}

/** OpenAI's usage, with the engine's figures kept beside it (clients ignore fields they do not know). */
export function openAiUsage(usage: CompletionUsage): CompletionUsage & { prompt_tokens_details: { cached_tokens: number } } {
  return { ...usage, prompt_tokens_details: { cached_tokens: usage.cached_prompt_tokens } };
}

/** A chat chunk as served: the model named as this server names it. */
export function servedChunk(chunk: ChatCompletionChunk, model: string): ChatCompletionChunk {
  return { ...chunk, model, ...(chunk.usage ? { usage: openAiUsage(chunk.usage) } : {}) };
}

export function servedCompletion(completion: ChatCompletion, model: string): ChatCompletion {
  return { ...completion, model, usage: openAiUsage(completion.usage) };
}

/**
 * A legacy text completion (`object: 'text_completion'`, the choice's `text`): a stream's chunks and
 * the whole reply have the same shape, usage on the last chunk only.
 */
function textObject(from: { id: string; created: number; usage?: CompletionUsage | undefined }, model: string, text: string, finish: FinishReason | null) {
  return {
    id: from.id,
    object: 'text_completion' as const,
    created: from.created,
    model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    ...(from.usage ? { usage: openAiUsage(from.usage) } : {}),
  };
}

export function textChunk(chunk: ChatCompletionChunk, model: string) {
  return textObject(chunk, model, chunk.choices[0].delta.content ?? '', chunk.choices[0].finish_reason);
}

export function textCompletion(completion: ChatCompletion, model: string) {
  return textObject(completion, model, completion.choices[0].message.content ?? '', completion.choices[0].finish_reason);
}
