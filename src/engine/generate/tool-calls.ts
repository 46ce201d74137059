/**
 * Tool calls in the model's own format, both ways: the grammar that makes a reply one call to a
 * given tool (tool_choice 'required' or a named function), and the parser that turns a finished
 * reply into OpenAI-shaped `tool_calls`. Formats (as llama.cpp's common/chat.cpp reads them):
 * - 'hermes': Hermes / Qwen2.5 / Qwen3 / Granite 4, `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`,
 *   one block per call;
 * - 'llama3': Llama 3.x, a bare JSON object `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`;
 * - 'mistral-nemo': Mistral Nemo / v0.3, `[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "<9 alphanumerics>"}]`;
 * - 'mistral': Mistral Small 3.2 / Devstral / Ministral 3, `[TOOL_CALLS]name[ARGS]{...}` per call
 *   (`[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}` where the template has `[CALL_ID]`);
 * - 'granite': Granite 3.x, `<|tool_call|>[{"name": ..., "arguments": {...}}, ...]`;
 * - 'phi4': Phi-4-mini, `functools[{"name": ..., "arguments": {...}}, ...]` (the marker its system
 *   prompt asks for; vLLM's phi4_mini_json parser reads the same).
 * In every format the text before the first call is content.
 *
 * The session (chat-session.ts) picks the format from the model's template (`toolCallFormatOf`),
 * renders requests' tool calls the way templates read them (`templateMessages`), and holds a call's
 * text back from the stream (`ToolCallStream`).
 */
import type { ChatMessage as RequestMessage } from '../api.ts';
import type { ChatFormatChoice, ChatMessage as TemplateMessage } from '../chat/index.ts';
import { jsonSchemaToGbnf } from '../grammar/index.ts';

export type ToolCallFormat = 'hermes' | 'llama3' | 'mistral-nemo' | 'mistral' | 'granite' | 'phi4';

export interface ToolFunction {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The key a format puts the arguments under. */
function argumentsKey(format: ToolCallFormat): string {
  return format === 'llama3' ? 'parameters' : 'arguments';
}

/** The text that starts a call (or the list of calls) in the formats that mark calls. */
const MARKERS: Partial<Record<ToolCallFormat, string>> = {
  hermes: '<tool_call>',
  'mistral-nemo': '[TOOL_CALLS]',
  mistral: '[TOOL_CALLS]',
  granite: '<|tool_call|>',
  phi4: 'functools',
};

/**
 * The marker texts of a format that vocabularies hold as control tokens, which decode to nothing
 * and which a grammar never allows unless they are kept (llama.cpp's preserved_tokens for the same
 * formats): with tools, the session renders them as text and lets a forced call use them.
 */
export function toolCallTokenTexts(format: ToolCallFormat): string[] {
  switch (format) {
    case 'hermes':
      return ['<tool_call>', '</tool_call>'];
    case 'llama3':
      return ['<|python_tag|>'];
    case 'mistral-nemo':
      return ['[TOOL_CALLS]'];
    case 'mistral':
      return ['[TOOL_CALLS]', '[CALL_ID]', '[ARGS]'];
    case 'granite':
      return ['<|tool_call|>'];
    case 'phi4':
      return [];
  }
}

const NO_ARGUMENTS = { type: 'object', properties: {}, additionalProperties: false };

/** `gbnf`'s first line is `root ::= <value rule>`: the value rule, and the other rules. */
function splitRoot(gbnf: string): { value: string; rules: string } {
  const newline = gbnf.indexOf('\n');
  return { value: gbnf.slice('root ::= '.length, newline), rules: gbnf.slice(newline) };
}

/**
 * GBNF for exactly one call to one of `tools` in `format`, its arguments valid against the tool's
 * parameter schema (the JSON schema subset; others throw UnsupportedSchemaError). The markers are
 * written as text, as llama.cpp's grammars write them.
 */
export function toolCallGbnf(tools: readonly ToolFunction[], format: ToolCallFormat): string {
  if (format === 'mistral') return mistralArgsGbnf(tools);
  const key = argumentsKey(format);
  const calls = tools.map((t) => ({
    type: 'object',
    properties: {
      name: { const: t.name },
      [key]: t.parameters ?? NO_ARGUMENTS,
      // Nemo's template refuses ids that are not 9 characters (llama.cpp's grammar asks for the same).
      ...(format === 'mistral-nemo' ? { id: { type: 'string', minLength: 9, maxLength: 9 } } : {}),
    },
    required: format === 'mistral-nemo' ? ['name', key, 'id'] : ['name', key],
    additionalProperties: false,
  }));
  const call = calls.length === 1 ? calls[0] : { anyOf: calls };
  if (format === 'llama3') return jsonSchemaToGbnf(call);
  if (format === 'hermes') {
    const { value, rules } = splitRoot(jsonSchemaToGbnf(call));
    return `root ::= "<tool_call>\\n" ${value} "\\n</tool_call>"${rules}`;
  }
  // The list formats: a marker, then a list of one call.
  const { value, rules } = splitRoot(jsonSchemaToGbnf({ type: 'array', items: call, minItems: 1, maxItems: 1 }));
  return `root ::= ${gbnfLiteral(MARKERS[format]!)} ${value}${rules}`;
}

/** `[TOOL_CALLS]name[ARGS]{...}`: each tool's arguments grammar under its own rule names. */
function mistralArgsGbnf(tools: readonly ToolFunction[]): string {
  const alternatives: string[] = [];
  let rules = '';
  tools.forEach((t, i) => {
    const { value, rules: own } = splitRoot(jsonSchemaToGbnf(t.parameters ?? NO_ARGUMENTS));
    alternatives.push(`${gbnfLiteral(`[TOOL_CALLS]${t.name}[ARGS]`)} ${prefixRuleNames(value, `t${i}-`)}`);
    rules += prefixRuleNames(own, `t${i}-`);
  });
  return `root ::= ${alternatives.join(' | ')}${rules}`;
}

function gbnfLiteral(text: string): string {
  return JSON.stringify(text);
}

/** `gbnf` with every rule name prefixed (literals and character classes left as they are), so grammars can be combined. */
function prefixRuleNames(gbnf: string, prefix: string): string {
  return gbnf.replace(/"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|\{[0-9, ]*\}|[a-zA-Z][a-zA-Z0-9-]*/g, (m) => (/^[a-zA-Z]/.test(m) ? prefix + m : m));
}

/** A call object as the model wrote it, if it is one: a known tool's name and an arguments object. */
function callOf(value: unknown, format: ToolCallFormat, names: ReadonlySet<string>, index: number): ToolCall | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const call = value as Record<string, unknown>;
  return namedCall(call.name, call[argumentsKey(format)] ?? call.arguments, names, index);
}

function namedCall(name: unknown, args: unknown, names: ReadonlySet<string>, index: number): ToolCall | undefined {
  if (typeof name !== 'string' || !names.has(name)) return undefined;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return undefined;
  return { id: `call_${index}`, type: 'function', function: { name, arguments: JSON.stringify(args) } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Where the JSON value (object or array) starting at `text[start]` ends, by its brackets outside
 * strings; -1 when it does not close. The slice is then parsed for real.
 */
function jsonValueEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** Hermes blocks that are calls to known tools, and the text with them removed (untrimmed). */
function hermesCalls(text: string, tools: readonly ToolFunction[]): { outside: string; calls: ToolCall[] } {
  const names = new Set(tools.map((t) => t.name));
  const calls: ToolCall[] = [];
  const outside = text.replace(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g, (block, body: string) => {
    const call = callOf(parseJson(body), 'hermes', names, calls.length);
    if (!call) return block;
    calls.push(call);
    return '';
  });
  return { outside, calls };
}

/**
 * The list formats (Mistral Nemo, Granite, Phi-4-mini): the marker, then a JSON list of calls, all
 * of which must be calls to known tools; the text before the marker and after the list is content.
 */
function listCalls(text: string, format: ToolCallFormat, tools: readonly ToolFunction[]): { outside: string; calls: ToolCall[] } {
  const none = { outside: text, calls: [] };
  const marker = MARKERS[format]!;
  const at = text.indexOf(marker);
  if (at < 0) return none;
  const open = text.indexOf('[', at + marker.length);
  if (open < 0 || text.slice(at + marker.length, open).trim() !== '') return none;
  const end = jsonValueEnd(text, open);
  const list = end < 0 ? undefined : parseJson(text.slice(open, end));
  if (!Array.isArray(list) || list.length === 0) return none;
  const names = new Set(tools.map((t) => t.name));
  const calls: ToolCall[] = [];
  for (const item of list) {
    const call = callOf(item, format, names, calls.length);
    if (!call) return none;
    calls.push(call);
  }
  return { outside: text.slice(0, at) + text.slice(end), calls };
}

const MISTRAL_CALL = /\[TOOL_CALLS\]([a-zA-Z0-9_.-]+)(?:\[CALL_ID\]([a-zA-Z0-9]*))?\[ARGS\]/y;

/** `[TOOL_CALLS]name[ARGS]{...}` calls, one after another from the first marker; all must be calls to known tools. */
function mistralArgsCalls(text: string, tools: readonly ToolFunction[]): { outside: string; calls: ToolCall[] } {
  const none = { outside: text, calls: [] };
  const first = text.indexOf('[TOOL_CALLS]');
  if (first < 0) return none;
  const names = new Set(tools.map((t) => t.name));
  const calls: ToolCall[] = [];
  let at = first;
  while (at < text.length) {
    MISTRAL_CALL.lastIndex = at;
    const head = MISTRAL_CALL.exec(text);
    if (!head) break;
    const open = MISTRAL_CALL.lastIndex;
    const end = text[open] === '{' ? jsonValueEnd(text, open) : -1;
    const call = end < 0 ? undefined : namedCall(head[1], parseJson(text.slice(open, end)), names, calls.length);
    if (!call) return none;
    calls.push(call);
    at = end;
  }
  if (calls.length === 0) return none;
  return { outside: text.slice(0, first) + text.slice(at), calls };
}

/** The calls in `text` in a format that marks them, and the text outside them (untrimmed). */
function markedCalls(text: string, format: ToolCallFormat, tools: readonly ToolFunction[]): { outside: string; calls: ToolCall[] } {
  if (format === 'hermes') return hermesCalls(text, tools);
  if (format === 'mistral') return mistralArgsCalls(text, tools);
  return listCalls(text, format, tools);
}

/**
 * The tool calls in a finished reply and the text around them. Anything that is not a well-formed
 * call to a known tool stays in `content` (model output is untrusted text, never executed here).
 */
export function parseToolCalls(text: string, format: ToolCallFormat, tools: readonly ToolFunction[]): { content: string; tool_calls: ToolCall[] } {
  if (format !== 'llama3') {
    const { outside, calls } = markedCalls(text, format, tools);
    return { content: calls.length > 0 ? outside.trim() : text, tool_calls: calls };
  }
  const names = new Set(tools.map((t) => t.name));
  const calls: ToolCall[] = [];
  const body = text.trim().replace(/^<\|python_tag\|>/, '').trim();
  for (const part of body.split(/;\s*(?=\{)/)) {
    const call = callOf(parseJson(part), format, names, calls.length);
    if (!call) return { content: text, tool_calls: [] };
    calls.push(call);
  }
  return { content: '', tool_calls: calls };
}

/**
 * The format a model writes calls in, from its chat template, by llama.cpp's rules: Mistral when
 * the template has `[TOOL_CALLS]` (the `[ARGS]` form when it also has `[ARGS]`, the Nemo JSON list
 * otherwise); Hermes / Qwen / Granite 4 when it mentions `<tool_call>`; Granite 3.x for
 * `<|tool_call|>`; Phi-4-mini for its `<|tool|>` tool list; Llama 3.x when it is a Llama 3 template
 * (llama.cpp's detection, or the `<|python_tag|>` it documents); Hermes otherwise, the format most
 * tool-trained models share.
 */
export function toolCallFormatOf(choice: ChatFormatChoice): ToolCallFormat {
  const source = choice.format.kind === 'jinja' ? choice.format.template.source : '';
  if (source.includes('[TOOL_CALLS]')) return source.includes('[ARGS]') ? 'mistral' : 'mistral-nemo';
  if (source.includes('<tool_call>')) return 'hermes';
  if (source.includes('<|tool_call|>')) return 'granite';
  if (source.includes('<|tool|>')) return 'phi4';
  if (choice.family === 'llama3' || source.includes('<|python_tag|>')) return 'llama3';
  return 'hermes';
}

/**
 * The id the session gives a reply's call `index`: Mistral's templates take only 9 alphanumerics
 * (Nemo's raises otherwise), so those formats get that shape; the others OpenAI's `call_` ids.
 */
export function toolCallId(format: ToolCallFormat, replyId: string, index: number): string {
  if (format !== 'mistral' && format !== 'mistral-nemo') return `call_${replyId}_${index}`;
  let hash = 2166136261;
  for (const c of `${replyId}/${index}`) hash = Math.imul(hash ^ c.charCodeAt(0), 16777619) >>> 0;
  return (hash.toString(36) + index.toString(36)).padStart(9, '0').slice(-9);
}

/**
 * Messages as chat templates read them: a call's `arguments` as the object it encodes (Qwen's and
 * Llama 3.1's templates apply `tojson` to it; llama.cpp's common/chat.cpp parses the string the
 * same way), kept as the string when it is not a JSON object.
 */
export function templateMessages(messages: readonly RequestMessage[]): TemplateMessage[] {
  return messages.map((m) => {
    const out: TemplateMessage = { role: m.role, content: m.content };
    if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
    if (m.tool_calls) {
      out.tool_calls = m.tool_calls.map((c) => {
        const parsed = parseJson(c.function.arguments);
        const args = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : c.function.arguments;
        return { id: c.id, type: 'function', function: { name: c.function.name, arguments: args } };
      });
    }
    return out;
  });
}

const LLAMA3_TAG = '<|python_tag|>';

/**
 * Streams a reply that may hold tool calls: text is passed on as content until a call may be
 * starting (the formats that mark calls: their marker, such as `<tool_call>` or `[TOOL_CALLS]`, a
 * prefix of it held back until it is decided; Llama 3: a reply
 * whose first non-space text is `{` or `<|python_tag|>`, since its call is the whole reply), and
 * held from there to the end. `finish` parses the reply: the calls, and the held text that is not
 * part of one, to stream as content after all.
 */
export class ToolCallStream {
  private held = '';
  private inCall = false;
  /** Llama 3: the reply's start was plain text, so it is no call. */
  private plain = false;

  constructor(
    private readonly format: ToolCallFormat,
    private readonly tools: readonly ToolFunction[],
  ) {}

  /** The part of `text` (with what was held before it) that is content for sure. */
  push(text: string): string {
    if (this.inCall) {
      this.held += text;
      return '';
    }
    const all = this.held + text;
    let out: string;
    const marker = MARKERS[this.format];
    if (marker !== undefined) {
      const at = all.indexOf(marker);
      // The spaces before a call go with it (they are not content once a call follows).
      if (at >= 0) {
        this.inCall = true;
        out = all.slice(0, at).trimEnd();
      } else {
        out = all.slice(0, all.length - heldPrefixLength(all, marker)).trimEnd();
      }
      this.held = all.slice(out.length);
    } else if (this.plain) {
      out = all;
      this.held = '';
    } else {
      const start = all.trimStart();
      if (start === '' || LLAMA3_TAG.startsWith(start)) {
        this.held = all;
        return '';
      }
      if (start.startsWith('{') || start.startsWith(LLAMA3_TAG)) {
        this.inCall = true;
        this.held = all;
        return '';
      }
      this.plain = true;
      out = all;
      this.held = '';
    }
    return out;
  }

  /** The calls in the whole reply, and the held text that is content (to stream, then append). */
  finish(): { tool_calls: ToolCall[]; rest: string } {
    const held = this.held;
    this.held = '';
    let calls: ToolCall[];
    let outside: string;
    if (this.format !== 'llama3') ({ calls, outside } = markedCalls(held, this.format, this.tools));
    else {
      const parsed = parseToolCalls(held, 'llama3', this.tools);
      calls = parsed.tool_calls;
      outside = parsed.content;
    }
    // Around calls, only text that says something is content (not the newlines between blocks).
    const rest = calls.length > 0 && outside.trim() === '' ? '' : outside;
    return { tool_calls: calls, rest };
  }
}

/** How many characters at the end of `text` are the start of `marker` (they may be about to become it). */
function heldPrefixLength(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) if (marker.startsWith(text.slice(text.length - n))) return n;
  return 0;
}
