/**
 * Tool-call parsing checked against llama.cpp's own chat tests (tests/test-chat.cpp), ported as
 * data: the model's text in, the content and calls llama.cpp expects out, for each format and the
 * template llama.cpp tests it with; and the format each of those real templates is detected as.
 * Phi-4-mini has no llama.cpp test: its cases are vLLM's (tests/.../test_phi4mini_tool_parser.py).
 * Partial-reply cases are left out: we parse finished replies.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chooseChatFormat } from '../chat/index.ts';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { parseToolCalls, toolCallFormatOf, ToolCallStream, type ToolCallFormat, type ToolFunction } from './tool-calls.ts';
import { joinEvents } from '../../testing/tool-call-events.ts';

/** test-chat.cpp's special_function_tool and special_function_tool_with_optional_param. */
const SPECIAL: ToolFunction[] = [
  { name: 'special_function', parameters: { type: 'object', properties: { arg1: { type: 'integer' } }, required: ['arg1'] } },
  { name: 'special_function_with_opt', parameters: { type: 'object', properties: { arg1: { type: 'integer' }, arg2: { type: 'integer' } }, required: ['arg1'] } },
];
/** vLLM's Phi-4-mini test tools. */
const PHI_TOOLS: ToolFunction[] = ['get_weather', 'get_time', 'test_function', 'refresh', 'func'].map((name) => ({ name }));

/** test-chat.cpp's message_assist content. */
const HELLO = "Hello, world!\nWhat's up?";

interface Case {
  /** Where the case comes from. */
  source: string;
  format: ToolCallFormat;
  text: string;
  content: string;
  /** [name, arguments] of each call; arguments compared as parsed JSON. */
  calls: Array<[string, Record<string, unknown>]>;
  tools?: ToolFunction[];
  /** The reply stops inside a call: no call once finished, but a stream has shown it starting. */
  truncated?: boolean;
  /** The prompt opened a thinking block (the template's generation prompt ends with `<think>`). */
  thinkingOpen?: boolean;
}

const CASES: Case[] = [
  // NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja
  { source: 'Hermes 2 Pro', format: 'hermes', text: '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>', content: '', calls: [['special_function', { arg1: 1 }]] },
  { source: 'Hermes 2 Pro', format: 'hermes', text: `${HELLO}<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>`, content: HELLO, calls: [['special_function', { arg1: 1 }]] },
  // ibm-granite-granite-4.0.jinja / 4.1
  { source: 'Granite 4.0', format: 'hermes', text: HELLO, content: HELLO, calls: [] },
  { source: 'Granite 4.0', format: 'hermes', text: '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}\n</tool_call>', content: '', calls: [['special_function', { arg1: 1 }]] },
  // meta-llama-Llama-3.1-8B-Instruct.jinja (content with tools; the call from the older test_templates case)
  { source: 'Llama 3.1', format: 'llama3', text: HELLO, content: HELLO, calls: [] },
  { source: 'Llama 3.1', format: 'llama3', text: '{"name": "special_function", "parameters": {"arg1": 1}}', content: '', calls: [['special_function', { arg1: 1 }]] },
  // mistralai-Mistral-Nemo-Instruct-2407.jinja
  { source: 'Mistral Nemo', format: 'mistral-nemo', text: HELLO, content: HELLO, calls: [] },
  { source: 'Mistral Nemo', format: 'mistral-nemo', text: '[TOOL_CALLS][{"name": "special_function", "arguments": {"arg1": 1}, "id": "123456789"}]', content: '', calls: [['special_function', { arg1: 1 }]] },
  // mistralai-Ministral-3-14B-Reasoning-2512.jinja (without reasoning)
  { source: 'Ministral 3', format: 'mistral', text: HELLO, content: HELLO, calls: [] },
  { source: 'Ministral 3', format: 'mistral', text: '[TOOL_CALLS]special_function[ARGS]{"arg1":1}', content: '', calls: [['special_function', { arg1: 1 }]] },
  {
    source: 'Ministral 3',
    format: 'mistral',
    text: '[TOOL_CALLS]special_function[ARGS]{"arg1": 1}[TOOL_CALLS]special_function_with_opt[ARGS]{"arg1": 1, "arg2": 2}',
    content: '',
    calls: [['special_function', { arg1: 1 }], ['special_function_with_opt', { arg1: 1, arg2: 2 }]],
  },
  // Mistral-Small-3.2-24B-Instruct-2506.jinja
  { source: 'Mistral Small 3.2', format: 'mistral', text: '[TOOL_CALLS]special_function[CALL_ID]123456789[ARGS]{"arg1": 1}', content: '', calls: [['special_function', { arg1: 1 }]] },
  {
    source: 'Mistral Small 3.2',
    format: 'mistral',
    text: '[TOOL_CALLS]special_function[CALL_ID]000000001[ARGS]{"arg1": 1}[TOOL_CALLS]special_function_with_opt[CALL_ID]000000002[ARGS]{"arg1": 1, "arg2": 2}',
    content: '',
    calls: [['special_function', { arg1: 1 }], ['special_function_with_opt', { arg1: 1, arg2: 2 }]],
  },
  // unsloth-mistral-Devstral-Small-2507.jinja
  { source: 'Devstral', format: 'mistral', text: '[TOOL_CALLS]special_function[ARGS]{"arg1": 1}', content: '', calls: [['special_function', { arg1: 1 }]] },
  { source: 'Devstral', format: 'mistral', text: `${HELLO}[TOOL_CALLS]special_function[ARGS]{"arg1": 1}`, content: HELLO, calls: [['special_function', { arg1: 1 }]] },
  // Ministral 3 Reasoning's [THINK] blocks. Hearth has no reasoning_content: a thinking block stays
  // content, tags and all, as llama.cpp gives it with reasoning_format none; a call drafted inside
  // it is no call, as llama.cpp's reasoning parser reads it ("fake tool call marker in reasoning").
  { source: 'Ministral 3 thinking', format: 'mistral', text: `[THINK]I'm\nthinking[/THINK]${HELLO}`, content: `[THINK]I'm\nthinking[/THINK]${HELLO}`, calls: [] },
  { source: 'Ministral 3 thinking', format: 'mistral', text: '[THINK]I\'m\nthinking[/THINK][TOOL_CALLS]special_function[ARGS]{"arg1":1}', content: "[THINK]I'm\nthinking[/THINK]", calls: [['special_function', { arg1: 1 }]] },
  {
    source: 'Ministral 3 thinking',
    format: 'mistral',
    text: '[THINK]Let me think about [TOOL_CALLS]special_function[ARGS]{"arg1":1} and more[/THINK][TOOL_CALLS]special_function[ARGS]{"arg1": 1}',
    content: '[THINK]Let me think about [TOOL_CALLS]special_function[ARGS]{"arg1":1} and more[/THINK]',
    calls: [['special_function', { arg1: 1 }]],
  },
  // Reka-Edge.jinja: <tool_call> blocks after thinking the template opened (its prompt ends with <think>).
  {
    source: 'Reka Edge thinking',
    format: 'hermes',
    thinkingOpen: true,
    text: "I'm\nthinking\n</think>\n\n<tool_call>\n{\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}}</tool_call>",
    content: "I'm\nthinking\n</think>",
    calls: [['special_function', { arg1: 1 }]],
  },
  {
    source: 'Reka Edge thinking',
    format: 'hermes',
    thinkingOpen: true,
    tools: [{ name: 'get_time', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }],
    text: 'I need to call a function\n</think>\n\nLet me check the time.<tool_call>\n{"name": "get_time", "arguments": {"city": "XYZCITY"}}</tool_call>',
    content: 'I need to call a function\n</think>\n\nLet me check the time.',
    calls: [['get_time', { city: 'XYZCITY' }]],
  },
  {
    source: 'Reka Edge thinking',
    format: 'hermes',
    thinkingOpen: true,
    text: 'Let me think about <tool_call>\n{"name": "special_function", "arguments": {"arg1": 2}}</tool_call> hmm\n</think>\n\n<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>',
    content: 'Let me think about <tool_call>\n{"name": "special_function", "arguments": {"arg1": 2}}</tool_call> hmm\n</think>',
    calls: [['special_function', { arg1: 1 }]],
  },
  // The same with the block opened in the reply (Qwen3 / DeepSeek-R1 style).
  {
    source: 'Qwen3-style thinking',
    format: 'hermes',
    text: '<think>\nMaybe <tool_call>\n{"name": "special_function", "arguments": {"arg1": 2}}</tool_call>?\n</think>\n\n<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>',
    content: '<think>\nMaybe <tool_call>\n{"name": "special_function", "arguments": {"arg1": 2}}</tool_call>?\n</think>',
    calls: [['special_function', { arg1: 1 }]],
  },
  // ibm-granite-granite-3.3-2B-Instruct.jinja (COMMON_CHAT_FORMAT_GRANITE, llama.cpp's tests before the PEG parsers)
  { source: 'Granite 3.3', format: 'granite', text: HELLO, content: HELLO, calls: [] },
  { source: 'Granite 3.3', format: 'granite', text: '<|tool_call|>[{"name": "special_function", "arguments": {"arg1": 1}}]', content: '', calls: [['special_function', { arg1: 1 }]] },
  // Phi-4-mini (vLLM's phi4_mini_json cases)
  { source: 'Phi-4-mini', format: 'phi4', tools: PHI_TOOLS, text: 'This is a regular response without any tool calls.', content: 'This is a regular response without any tool calls.', calls: [] },
  { source: 'Phi-4-mini', format: 'phi4', tools: PHI_TOOLS, text: 'functools[{"name": "get_weather", "arguments": {"city": "Tokyo"}}]', content: '', calls: [['get_weather', { city: 'Tokyo' }]] },
  {
    source: 'Phi-4-mini',
    format: 'phi4',
    tools: PHI_TOOLS,
    text: 'functools[\n  {"name": "get_weather", "arguments": {"city": "Tokyo"}},\n  {"name": "get_time", "arguments": {"timezone": "Asia/Tokyo"}}\n]',
    content: '',
    calls: [['get_weather', { city: 'Tokyo' }], ['get_time', { timezone: 'Asia/Tokyo' }]],
  },
  {
    source: 'Phi-4-mini',
    format: 'phi4',
    tools: PHI_TOOLS,
    text: 'functools[{\n  "name": "test_function",\n  "arguments": {\n    "string_field": "hello",\n    "int_field": 42,\n    "null_field": null,\n    "array_field": ["a", "b", "c"],\n    "object_field": {"nested": "value"},\n    "empty_array": [],\n    "empty_object": {}\n  }\n}]',
    content: '',
    calls: [['test_function', { string_field: 'hello', int_field: 42, null_field: null, array_field: ['a', 'b', 'c'], object_field: { nested: 'value' }, empty_array: [], empty_object: {} }]],
  },
  { source: 'Phi-4-mini', format: 'phi4', tools: PHI_TOOLS, text: 'functools[{"name": "refresh", "arguments": {}}]', content: '', calls: [['refresh', {}]] },
  {
    source: 'Phi-4-mini',
    format: 'phi4',
    tools: PHI_TOOLS,
    text: 'Let me check the weather for you.\nfunctools[{"name": "get_weather", "arguments": {"city": "Tokyo"}}]\nWould you like to know more?',
    content: 'Let me check the weather for you.\n\nWould you like to know more?',
    calls: [['get_weather', { city: 'Tokyo' }]],
  },
  {
    source: 'Phi-4-mini',
    format: 'phi4',
    tools: PHI_TOOLS,
    text: 'functools[{\n  "name": "test_function",\n  "arguments": {\n    "quoted": "He said \\"hello\\"",\n    "path": "C:\\\\Users\\\\file.txt",\n    "newline": "line1\\nline2",\n    "unicode": "emoji: 🎉"\n  }\n}]',
    content: '',
    calls: [['test_function', { quoted: 'He said "hello"', path: 'C:\\Users\\file.txt', newline: 'line1\nline2', unicode: 'emoji: 🎉' }]],
  },
  // vLLM's malformed inputs: no call, the text stays content.
  { source: 'Phi-4-mini malformed', format: 'phi4', tools: PHI_TOOLS, text: 'functools[{"name": "func", "arguments": {', content: 'functools[{"name": "func", "arguments": {', calls: [], truncated: true },
  ...[
    'functools[{"name": "func", "arguments": "not a dict"}]',
    'functools{"name": "func"}',
    'functools[{"name": "func"}]',
    'functools[] This is just text',
    'functools[ This is just text ]',
  ].map((text): Case => ({ source: 'Phi-4-mini malformed', format: 'phi4', tools: PHI_TOOLS, text, content: text, calls: [] })),
];

/** Each call's name and parsed arguments. */
function namesAndArguments(calls: ReadonlyArray<{ function: { name: string; arguments: string } }>): Array<[string, unknown]> {
  return calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]);
}

describe("llama.cpp's chat test cases", () => {
  it.each(CASES.map((c) => [`${c.source} (${c.format}): ${JSON.stringify(c.text).slice(0, 70)}`, c] as const))('%s', (_label, c) => {
    const parsed = parseToolCalls(c.text, c.format, c.tools ?? SPECIAL, c.thinkingOpen);
    expect(parsed.content).toBe(c.content);
    expect(namesAndArguments(parsed.tool_calls)).toEqual(c.calls);
  });

  it.each(CASES.map((c) => [`${c.source} (${c.format}): ${JSON.stringify(c.text).slice(0, 70)}`, c] as const))('streams %s: the same calls, no piece of one as content', (_label, c) => {
    // One character at a time: the hold-back must decide at every boundary.
    const stream = new ToolCallStream(c.format, c.tools ?? SPECIAL, undefined, c.thinkingOpen);
    const events = [...c.text].flatMap((ch) => stream.push(ch));
    const finished = stream.finish();
    const { content, calls } = joinEvents([...events, ...finished.events]);
    expect(calls).toEqual(finished.tool_calls);
    if (c.truncated) {
      // A stream shows a call as soon as it starts: the cut-off call was one, marked incomplete.
      expect(finished.complete).toBe(false);
      return;
    }
    expect(finished.complete).toBe(true);
    expect(namesAndArguments(calls)).toEqual(c.calls);
    if (c.calls.length === 0) expect(content).toBe(c.text);
    else expect(content.trim()).toBe(c.content);
  });
});

describe('format detection from the real templates llama.cpp tests with', () => {
  const templates = `${llamaCppSourceDir()}/models/templates`;
  it.each([
    ['mistralai-Mistral-Nemo-Instruct-2407.jinja', 'mistral-nemo'],
    ['Mistral-Small-3.2-24B-Instruct-2506.jinja', 'mistral'],
    ['unsloth-mistral-Devstral-Small-2507.jinja', 'mistral'],
    ['mistralai-Ministral-3-14B-Reasoning-2512.jinja', 'mistral'],
    ['ibm-granite-granite-3.3-2B-Instruct.jinja', 'granite'],
    ['ibm-granite-granite-4.0.jinja', 'hermes'],
    ['ibm-granite-granite-4.1.jinja', 'hermes'],
    ['NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja', 'hermes'],
    ['Qwen-Qwen2.5-7B-Instruct.jinja', 'hermes'],
    ['meta-llama-Llama-3.1-8B-Instruct.jinja', 'llama3'],
    ['meta-llama-Llama-3.2-3B-Instruct.jinja', 'llama3'],
    ['meta-llama-Llama-3.3-70B-Instruct.jinja', 'llama3'],
  ] as const)('%s writes calls as %s', (file, format) => {
    const chatTemplate = readFileSync(`${templates}/${file}`, 'utf8');
    expect(toolCallFormatOf(chooseChatFormat({ chatTemplate }))).toBe(format);
  });

  it("detects Phi-4-mini by its template's <|tool|> list", () => {
    // Phi-4-mini-instruct's template (Hugging Face), which llama.cpp does not ship.
    const chatTemplate =
      "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}";
    expect(toolCallFormatOf(chooseChatFormat({ chatTemplate }))).toBe('phi4');
  });
});
