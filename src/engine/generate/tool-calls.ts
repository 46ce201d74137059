/**
 * Tool calls in the model's own format, both ways: the grammar that makes a reply one call to a
 * given tool (tool_choice 'required' or a named function), and the parser that turns a finished
 * reply into OpenAI-shaped `tool_calls`. Formats: Hermes / Qwen2.5 / Qwen3
 * (`<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, one block per call) and Llama 3.x
 * (a bare JSON object `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`).
 *
 * The session (chat-session.ts) picks the format from the model's template (`toolCallFormatOf`),
 * renders requests' tool calls the way templates read them (`templateMessages`), and holds a call's
 * text back from the stream (`ToolCallStream`).
 */
import type { ChatMessage as RequestMessage } from '../api.ts';
import type { ChatFormatChoice, ChatMessage as TemplateMessage } from '../chat/index.ts';
import { jsonSchemaToGbnf } from '../grammar/index.ts';

export type ToolCallFormat = 'hermes' | 'llama3';

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

/**
 * GBNF for exactly one call to one of `tools` in `format`, its arguments valid against the tool's
 * parameter schema (the JSON schema subset; others throw UnsupportedSchemaError).
 */
export function toolCallGbnf(tools: readonly ToolFunction[], format: ToolCallFormat): string {
  const key = argumentsKey(format);
  const calls = tools.map((t) => ({
    type: 'object',
    properties: { name: { const: t.name }, [key]: t.parameters ?? { type: 'object', properties: {}, additionalProperties: false } },
    required: ['name', key],
    additionalProperties: false,
  }));
  const gbnf = jsonSchemaToGbnf(calls.length === 1 ? calls[0] : { anyOf: calls });
  if (format === 'llama3') return gbnf;
  // Wraps the call in Hermes' tags: the converter's first line is `root ::= <value rule>`.
  const newline = gbnf.indexOf('\n');
  return `root ::= "<tool_call>\\n" ${gbnf.slice('root ::= '.length, newline)} "\\n</tool_call>"${gbnf.slice(newline)}`;
}

/** A call object as the model wrote it, if it is one: a known tool's name and an arguments object. */
function callOf(value: unknown, format: ToolCallFormat, names: ReadonlySet<string>, index: number): ToolCall | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const call = value as Record<string, unknown>;
  const args = call[argumentsKey(format)] ?? call.arguments;
  if (typeof call.name !== 'string' || !names.has(call.name)) return undefined;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return undefined;
  return { id: `call_${index}`, type: 'function', function: { name: call.name, arguments: JSON.stringify(args) } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
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
 * The tool calls in a finished reply and the text around them. Anything that is not a well-formed
 * call to a known tool stays in `content` (model output is untrusted text, never executed here).
 */
export function parseToolCalls(text: string, format: ToolCallFormat, tools: readonly ToolFunction[]): { content: string; tool_calls: ToolCall[] } {
  if (format === 'hermes') {
    const { outside, calls } = hermesCalls(text, tools);
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
 * The format a model writes calls in, from its chat template: Hermes / Qwen when the template
 * mentions `<tool_call>`, Llama 3.x when it is a Llama 3 template (llama.cpp's detection, or the
 * `<|python_tag|>` it documents); Hermes otherwise, the format most tool-trained models share.
 */
export function toolCallFormatOf(choice: ChatFormatChoice): ToolCallFormat {
  const source = choice.format.kind === 'jinja' ? choice.format.template.source : '';
  if (source.includes('<tool_call>')) return 'hermes';
  if (choice.family === 'llama3' || source.includes('<|python_tag|>')) return 'llama3';
  return 'hermes';
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

const HERMES_OPEN = '<tool_call>';
const LLAMA3_TAG = '<|python_tag|>';

/**
 * Streams a reply that may hold tool calls: text is passed on as content until a call may be
 * starting (Hermes: `<tool_call>`, a prefix of it held back until it is decided; Llama 3: a reply
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
    if (this.format === 'hermes') {
      const at = all.indexOf(HERMES_OPEN);
      // The spaces before a call go with it (they are not content once a call follows).
      if (at >= 0) {
        this.inCall = true;
        out = all.slice(0, at).trimEnd();
      } else {
        out = all.slice(0, all.length - heldPrefixLength(all, HERMES_OPEN)).trimEnd();
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
    if (this.format === 'hermes') ({ calls, outside } = hermesCalls(held, this.tools));
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
