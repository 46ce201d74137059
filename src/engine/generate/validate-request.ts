/**
 * The chat completion request as it arrives from a caller (a web page, the console, a server
 * client): untrusted. Every field is checked here, once, at the API boundary; what Hearth does not
 * support is rejected by name rather than ignored, so an OpenAI-style client never gets a reply to a
 * request it did not make (`n: 2` answered with one choice, `logprobs` answered without them).
 * OpenAI-style content arrays of text parts are joined into the plain text the templates take.
 */
import type { ChatCompletionRequest, ChatMessage, PromptFormat, ToolCall } from '../api.ts';
import { HearthError } from '../errors.ts';
import { GrammarError, UnsupportedSchemaError, requestGrammar } from './constraint.ts';
import { toolCallGbnf } from './tool-calls.ts';
import { parseGbnf } from '../grammar/index.ts';

/** A request field is missing, of the wrong type, out of range, or not supported; `detail.param` names it. */
export class InvalidRequestError extends HearthError {
  override name = 'InvalidRequestError';
}

/** A request whose fields have been checked, with every message's content as text. */
export type ValidChatRequest = Omit<ChatCompletionRequest, 'messages'> & { messages: ChatMessage[] };

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'tool']);
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const OVERFLOW: ReadonlySet<string> = new Set(['drop-oldest-turns', 'error']);
const PROMPT_FORMATS: ReadonlySet<string> = new Set(['chat', 'text']);
const MAX_STOP_STRINGS = 16;
const MAX_REQUEST_ID = 256;
const MAX_ADAPTERS = 16;

type Check = (value: unknown, param: string) => void;

function fail(param: string, message: string, value?: unknown): never {
  const shown = value === undefined ? {} : { value: typeof value === 'string' ? value.slice(0, 100) : safeJson(value) };
  throw new InvalidRequestError(`Invalid request: '${param}' ${message}.`, { param, ...shown });
}

function safeJson(value: unknown): unknown {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.slice(0, 100);
  } catch {
    return String(value);
  }
}

const finiteIn = (lo: number, hi: number, what: string): Check => (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) fail(p, `must be ${what}`, v);
};
const integerIn = (lo: number, hi: number, what: string): Check => (v, p) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) fail(p, `must be ${what}`, v);
};
const oneOf = (allowed: ReadonlySet<string>): Check => (v, p) => {
  if (typeof v !== 'string' || !allowed.has(v)) fail(p, `must be one of ${[...allowed].map((a) => `'${a}'`).join(', ')}`, v);
};
const boolean: Check = (v, p) => {
  if (typeof v !== 'boolean') fail(p, 'must be true or false', v);
};

/**
 * The fields a request may have. `n` and `logprobs` are accepted only at the values Hearth
 * implements (one choice, no log probabilities), and `model` only as a caller's label: the engine
 * answers with the loaded model and reports its name.
 */
const FIELDS: Record<string, Check> = {
  messages: () => undefined, // checked by checkMessages
  stream: boolean,
  max_tokens: integerIn(1, Number.MAX_SAFE_INTEGER, 'a whole number of at least 1'),
  temperature: finiteIn(0, 100, 'a number from 0 (greedy) to 100'),
  top_p: finiteIn(0, 1, 'a number from 0 to 1 (1 is off)'),
  top_k: integerIn(0, Number.MAX_SAFE_INTEGER, 'a whole number, 0 for no limit'),
  min_p: finiteIn(0, 1, 'a number from 0 to 1'),
  repetition_penalty: (v, p) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 100) fail(p, 'must be a number above 0 (1 is off) and at most 100', v);
  },
  presence_penalty: finiteIn(-2, 2, 'a number from -2 to 2'),
  frequency_penalty: finiteIn(-2, 2, 'a number from -2 to 2'),
  seed: integerIn(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'a whole number'),
  stop: (v, p) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.length > MAX_STOP_STRINGS) fail(p, `must be a string or an array of at most ${MAX_STOP_STRINGS} strings`, v);
    list.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0) fail(`${p}[${i}]`, 'must be a non-empty string', s);
    });
  },
  context_overflow: oneOf(OVERFLOW),
  prompt_format: oneOf(PROMPT_FORMATS),
  request_id: (v, p) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_REQUEST_ID) fail(p, `must be a non-empty string of at most ${MAX_REQUEST_ID} characters`, v);
  },
  model: (v, p) => {
    if (typeof v !== 'string') fail(p, 'must be a string (the loaded model answers whatever it names)', v);
  },
  n: (v, p) => {
    if (v !== 1) fail(p, 'is not supported except as 1: Hearth generates one choice per request', v);
  },
  logprobs: (v, p) => {
    if (v !== false) fail(p, 'is not supported: Hearth does not return log probabilities', v);
  },
  response_format: (v, p) => {
    if (!isPlainObject(v) || !['text', 'json_object', 'json_schema'].includes(v.type as string)) {
      fail(`${p}.type`, "must be one of 'text', 'json_object', 'json_schema'", isPlainObject(v) ? v.type : v);
    }
    for (const key of Object.keys(v)) if (key !== 'type' && !(key === 'json_schema' && v.type === 'json_schema')) fail(`${p}.${key}`, 'is not supported');
    if (v.type !== 'json_schema') return;
    const js = v.json_schema;
    if (!isPlainObject(js)) fail(`${p}.json_schema`, 'must be an object { name, schema, strict }', js);
    if (typeof js.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(js.name)) fail(`${p}.json_schema.name`, 'must be 1 to 64 letters, digits, _ or -', js.name);
    for (const key of Object.keys(js)) if (!['name', 'description', 'schema', 'strict'].includes(key)) fail(`${p}.json_schema.${key}`, 'is not supported');
    if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean') fail(`${p}.json_schema.strict`, 'must be true or false', js.strict);
  },
  adapters: (v, p) => {
    if (!Array.isArray(v) || v.length > MAX_ADAPTERS) fail(p, `must be an array of at most ${MAX_ADAPTERS} { id, scale }`, v);
    const ids = new Set<string>();
    v.forEach((a, i) => {
      const at = `${p}[${i}]`;
      if (!isPlainObject(a)) fail(at, 'must be an object { id, scale }', a);
      for (const key of Object.keys(a)) if (key !== 'id' && key !== 'scale') fail(`${at}.${key}`, 'is not supported (an adapter is { id, scale })');
      if (typeof a.id !== 'string' || a.id.length === 0) fail(`${at}.id`, 'must be the id loadAdapter returned', a.id);
      if (ids.has(a.id)) fail(`${at}.id`, 'names an adapter already in the list', a.id);
      ids.add(a.id);
      if (a.scale !== undefined && a.scale !== null && (typeof a.scale !== 'number' || !Number.isFinite(a.scale) || Math.abs(a.scale) > 1000)) {
        fail(`${at}.scale`, 'must be a finite number from -1000 to 1000 (default 1)', a.scale);
      }
    });
  },
  grammar: (v, p) => {
    if (typeof v !== 'string' || v.length === 0) fail(p, 'must be a non-empty GBNF grammar', v);
  },
  tools: (v, p) => {
    if (!Array.isArray(v)) fail(p, "must be an array of { type: 'function', function: { name, description, parameters } }", v);
    const names = new Set<string>();
    v.forEach((tool, i) => {
      const at = `${p}[${i}]`;
      if (!isPlainObject(tool) || tool.type !== 'function') fail(`${at}.type`, "must be 'function'", isPlainObject(tool) ? tool.type : tool);
      for (const key of Object.keys(tool)) if (key !== 'type' && key !== 'function') fail(`${at}.${key}`, 'is not supported');
      const fn = tool.function;
      if (!isPlainObject(fn)) fail(`${at}.function`, 'must be an object { name, description, parameters }', fn);
      for (const key of Object.keys(fn)) if (!['name', 'description', 'parameters', 'strict'].includes(key)) fail(`${at}.function.${key}`, 'is not supported');
      if (typeof fn.name !== 'string' || !TOOL_NAME.test(fn.name)) fail(`${at}.function.name`, 'must be 1 to 64 letters, digits, _ or -', fn.name);
      if (names.has(fn.name)) fail(`${at}.function.name`, 'names a tool already listed: tool names must be unique', fn.name);
      names.add(fn.name);
      if (fn.description !== undefined && typeof fn.description !== 'string') fail(`${at}.function.description`, 'must be a string', fn.description);
      if (fn.parameters !== undefined && !isPlainObject(fn.parameters)) fail(`${at}.function.parameters`, 'must be a JSON Schema object', fn.parameters);
      // Compiles the call grammar now: a schema outside the supported subset is refused before any
      // request generates (tool_choice 'required' would need it mid-conversation).
      try {
        parseGbnf(toolCallGbnf([{ name: fn.name, ...(fn.parameters ? { parameters: fn.parameters as Record<string, unknown> } : {}) }], 'hermes'));
      } catch (error) {
        if (error instanceof UnsupportedSchemaError || error instanceof GrammarError) {
          throw new (error.constructor as typeof UnsupportedSchemaError)(error.message, { ...error.detail, param: `${at}.function.parameters` });
        }
        throw error;
      }
    });
  },
  parallel_tool_calls: boolean,
  tool_choice: (v, p) => {
    if (v === 'none' || v === 'auto' || v === 'required') return;
    if (!isPlainObject(v) || v.type !== 'function' || !isPlainObject(v.function) || typeof v.function.name !== 'string') {
      fail(p, "must be 'none', 'auto', 'required' or { type: 'function', function: { name } }", v);
    }
  },
};

/** The request fields the engine takes (a server takes a few more of its own). */
export const CHAT_REQUEST_FIELDS: readonly string[] = Object.keys(FIELDS);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function messageText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) fail(param, 'must be a string or an array of text parts', content);
  return content
    .map((part, i) => {
      if (!isPlainObject(part) || part.type !== 'text' || typeof part.text !== 'string') {
        fail(`${param}[${i}]`, "must be a text part { type: 'text', text: string } (images and audio are not supported)", part);
      }
      return part.text as string;
    })
    .join('');
}

/** An assistant message's calls, OpenAI-shaped: `arguments` is the JSON string of the call's arguments. */
function checkToolCalls(calls: unknown, param: string): ToolCall[] {
  if (!Array.isArray(calls)) fail(param, "must be an array of { id, type: 'function', function: { name, arguments } }", calls);
  return calls.map((call, i) => {
    const at = `${param}[${i}]`;
    if (!isPlainObject(call) || call.type !== 'function') fail(`${at}.type`, "must be 'function'", isPlainObject(call) ? call.type : call);
    if (typeof call.id !== 'string') fail(`${at}.id`, 'must be a string', call.id);
    const fn = call.function;
    if (!isPlainObject(fn) || typeof fn.name !== 'string') fail(`${at}.function.name`, 'must be a string', isPlainObject(fn) ? fn.name : fn);
    if (typeof fn.arguments !== 'string') fail(`${at}.function.arguments`, 'must be a JSON string', fn.arguments);
    return { id: call.id, type: 'function', function: { name: fn.name, arguments: fn.arguments } };
  });
}

const MESSAGE_KEYS: Record<string, readonly string[]> = {
  assistant: ['role', 'content', 'tool_calls'],
  tool: ['role', 'content', 'tool_call_id'],
};

function checkMessages(messages: unknown, param = 'messages'): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) fail(param, 'must be a non-empty array of messages', messages);
  return messages.map((m, i) => {
    const at = `${param}[${i}]`;
    if (!isPlainObject(m)) fail(at, "must be an object { role, content }", m);
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) fail(`${at}.role`, `must be one of ${[...ROLES].map((r) => `'${r}'`).join(', ')}`, m.role);
    const keys = MESSAGE_KEYS[m.role] ?? ['role', 'content'];
    for (const key of Object.keys(m)) {
      if (!keys.includes(key)) fail(`${at}.${key}`, `is not supported (a${m.role === 'assistant' ? 'n' : ''} ${m.role} message has ${keys.join(', ')})`);
    }
    const message: ChatMessage = { role: m.role as ChatMessage['role'], content: '' };
    if (m.tool_calls !== undefined && m.tool_calls !== null) message.tool_calls = checkToolCalls(m.tool_calls, `${at}.tool_calls`);
    // Only an assistant message that calls tools may have no content (OpenAI's null).
    if (!(message.tool_calls && (m.content === null || m.content === undefined))) message.content = messageText(m.content, `${at}.content`);
    if (m.role === 'tool') {
      if (typeof m.tool_call_id !== 'string') fail(`${at}.tool_call_id`, 'must be the id of the call this message answers', m.tool_call_id);
      message.tool_call_id = m.tool_call_id;
    }
    return message;
  });
}

/** tool_choice against the tools: a named function must be one of them; a forced call is the only constraint. */
function checkToolChoice(valid: Record<string, unknown>): void {
  const choice = valid.tool_choice;
  if (choice === undefined || choice === 'none' || choice === 'auto') return;
  const tools = (valid.tools ?? []) as Array<{ function: { name: string } }>;
  if (tools.length === 0) fail('tool_choice', 'needs tools to choose from', choice);
  if (isPlainObject(choice)) {
    const name = (choice.function as { name: string }).name;
    if (!tools.some((t) => t.function.name === name)) fail('tool_choice.function.name', `names no tool of the request (tools: ${tools.map((t) => t.function.name).join(', ')})`, name);
  }
  if (valid.grammar !== undefined || (isPlainObject(valid.response_format) && valid.response_format.type !== 'text')) {
    fail('tool_choice', 'that forces a call cannot be combined with response_format or grammar: give one constraint', choice);
  }
}

/**
 * The adapters a request names, resolved against those loaded (`known`, by id), each at its scale
 * (default 1); an unknown id is refused by name.
 */
export function resolveAdapters<T>(choices: ValidChatRequest['adapters'], known: ReadonlyMap<string, T>): Array<{ lora: T; scale: number }> {
  return (choices ?? []).map((a, i) => {
    const lora = known.get(a.id);
    if (lora === undefined) {
      const loaded = [...known.keys()];
      fail(`adapters[${i}].id`, `names no loaded adapter (${loaded.length ? `loaded: ${loaded.map((k) => `'${k}'`).join(', ')}` : 'none is loaded; call loadAdapter first'})`, a.id);
    }
    return { lora, scale: a.scale ?? 1 };
  });
}

/**
 * Checks a request and returns it with text messages; throws InvalidRequestError naming the field.
 * With `adapters` (the loaded ones, by id), an adapter id the request names must be one of them.
 */
export function validateChatRequest(request: unknown, adapters?: ReadonlyMap<string, unknown>): ValidChatRequest {
  if (!isPlainObject(request)) fail('request', 'must be an object with messages', request);
  for (const [key, value] of Object.entries(request)) {
    const check = FIELDS[key];
    if (!check) fail(key, `is not a supported parameter (supported: ${Object.keys(FIELDS).join(', ')})`);
    // Absent and null mean the default, as in OpenAI's API.
    if (value !== undefined && value !== null) check(value, key);
  }
  const valid: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) if (value !== undefined && value !== null) valid[key] = value;
  valid.messages = checkMessages(request.messages);
  if (valid.grammar !== undefined && isPlainObject(valid.response_format) && valid.response_format.type !== 'text') {
    fail('grammar', 'cannot be combined with a JSON response_format: give one constraint');
  }
  checkToolChoice(valid);
  if (adapters) resolveAdapters((valid as ValidChatRequest).adapters, adapters);
  // Compiles the constraint now, so an unusable schema or grammar is refused before generation.
  try {
    requestGrammar(valid as ValidChatRequest);
  } catch (error) {
    if (error instanceof UnsupportedSchemaError) throw new UnsupportedSchemaError(error.message, { ...error.detail, param: 'response_format.json_schema.schema' });
    if (error instanceof GrammarError) throw new GrammarError(error.message, { ...error.detail, param: valid.grammar !== undefined ? 'grammar' : 'response_format' });
    throw error;
  }
  return valid as ValidChatRequest;
}

/** The messages of a token count request, checked like a completion's. */
export function validateMessages(messages: unknown): ChatMessage[] {
  return checkMessages(messages);
}

/** The options of a context measure: the completion's own `prompt_format`, nothing else. */
export function validateMeasureOptions(options: unknown): { prompt_format?: PromptFormat } {
  if (options === undefined || options === null) return {};
  if (!isPlainObject(options)) fail('options', 'must be an object { prompt_format }', options);
  for (const [key, value] of Object.entries(options)) {
    if (key !== 'prompt_format') fail(key, 'is not a supported option (supported: prompt_format)');
    if (value !== undefined && value !== null) FIELDS.prompt_format!(value, key);
  }
  return options.prompt_format ? { prompt_format: options.prompt_format as PromptFormat } : {};
}

/**
 * Checks a request of another kind (a transform) whose fields include some of the chat request's
 * (`shared`: sampling, stop, seed, request_id, ...), checked exactly as a chat completion checks
 * them, plus fields of its own (`own`, each a check that throws with `invalidParam`). Any other
 * field is refused by name; absent and null mean the default. Returns the fields given.
 */
export function validateRequestFields(request: unknown, shared: readonly string[], own: Record<string, (value: unknown, param: string) => void>): Record<string, unknown> {
  if (!isPlainObject(request)) fail('request', 'must be an object', request);
  const checks: Record<string, Check> = { ...Object.fromEntries(shared.map((name) => [name, FIELDS[name]!])), ...own };
  const valid: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) {
    const check = checks[key];
    if (!check) fail(key, `is not a supported parameter (supported: ${Object.keys(checks).join(', ')})`);
    if (value === undefined || value === null) continue;
    check(value, key);
    valid[key] = value;
  }
  return valid;
}

/** Throws the InvalidRequestError a field check throws: `'param' message.` with the value shown. */
export function invalidParam(param: string, message: string, value?: unknown): never {
  fail(param, message, value);
}
