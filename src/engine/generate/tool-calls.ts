/**
 * Tool calls in the model's own format, both ways: the grammar that makes a reply one call to a
 * given tool (tool_choice 'required' or a named function), and the parser that turns a finished
 * reply into OpenAI-shaped `tool_calls`. Formats: Hermes / Qwen2.5 / Qwen3
 * (`<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, one block per call) and Llama 3.x
 * (a bare JSON object `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`).
 *
 * Not wired into requests yet: `tools` / `tool_choice` in the API, rendering them through the chat
 * template, and the 'tool' role are still to do (see the report of issue 20).
 */
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

/**
 * The tool calls in a finished reply and the text around them. Anything that is not a well-formed
 * call to a known tool stays in `content` (model output is untrusted text, never executed here).
 */
export function parseToolCalls(text: string, format: ToolCallFormat, tools: readonly ToolFunction[]): { content: string; tool_calls: ToolCall[] } {
  const names = new Set(tools.map((t) => t.name));
  const calls: ToolCall[] = [];
  if (format === 'hermes') {
    const content = text.replace(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g, (block, body: string) => {
      const call = callOf(parseJson(body), format, names, calls.length);
      if (!call) return block;
      calls.push(call);
      return '';
    });
    return { content: calls.length > 0 ? content.trim() : text, tool_calls: calls };
  }
  const body = text.trim().replace(/^<\|python_tag\|>/, '').trim();
  for (const part of body.split(/;\s*(?=\{)/)) {
    const call = callOf(parseJson(part), format, names, calls.length);
    if (!call) return { content: text, tool_calls: [] };
    calls.push(call);
  }
  return { content: '', tool_calls: calls };
}
