import { describe, expect, it } from 'vitest';
import { parseToolCalls, toolCallGbnf, ToolCallStream, type ToolCallFormat, type ToolFunction } from './tool-calls.ts';
import { freshSeed, mulberry32 } from '../../testing/random.ts';
import { automatonVerdict as verdict } from '../../testing/grammar-reference.ts';

const TOOLS: ToolFunction[] = [
  { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } }, required: ['city'] } },
  { name: 'now', parameters: { type: 'object', properties: {}, additionalProperties: false } },
];


describe('tool calls', () => {
  it('parses Hermes / Qwen <tool_call> blocks into OpenAI tool_calls, keeping the other text', () => {
    const reply = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>\n<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>';
    expect(parseToolCalls(reply, 'hermes', TOOLS)).toEqual({
      content: 'Let me check.',
      tool_calls: [
        { id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } },
        { id: 'call_1', type: 'function', function: { name: 'now', arguments: '{}' } },
      ],
    });
  });

  it('leaves malformed calls and unknown tools as text', () => {
    const broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>';
    expect(parseToolCalls(broken, 'hermes', TOOLS)).toEqual({ content: broken, tool_calls: [] });
    const unknown = '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>';
    expect(parseToolCalls(unknown, 'hermes', TOOLS)).toEqual({ content: unknown, tool_calls: [] });
    expect(parseToolCalls('{"name": "get_weather"}', 'llama3', TOOLS).tool_calls).toEqual([]);
    expect(parseToolCalls('The answer is {"a": 1}', 'llama3', TOOLS).tool_calls).toEqual([]);
  });

  it('parses Llama 3.x JSON calls, with or without <|python_tag|>, several separated by ;', () => {
    expect(parseToolCalls('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}', 'llama3', TOOLS).tool_calls).toEqual([
      { id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
    ]);
    expect(parseToolCalls('{"name": "now", "parameters": {}}; {"name": "get_weather", "parameters": {"city": "Rome"}}', 'llama3', TOOLS).tool_calls.map((c) => c.function.name)).toEqual(['now', 'get_weather']);
  });

  it('constrains a required call to a known tool with arguments valid for its schema', () => {
    const hermes = toolCallGbnf(TOOLS, 'hermes');
    expect(verdict(hermes, '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>')).toBe('complete');
    expect(verdict(hermes, '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>')).toBe('complete');
    expect(verdict(hermes, '<tool_call>\n{"name": "rm')).toBe('reject');
    expect(verdict(hermes, '<tool_call>\n{"name": "get_weather", "arguments": {"unit": "c"}}')).toBe('reject'); // city is required
    expect(verdict(hermes, 'Sure!')).toBe('reject');
    const named = toolCallGbnf([TOOLS[0]!], 'llama3');
    expect(verdict(named, '{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "f"}}')).toBe('complete');
    expect(verdict(named, '{"name": "now"')).toBe('reject');
  });

  it('constrains a required call in the Mistral, Granite and Phi-4-mini formats', () => {
    const nemo = toolCallGbnf(TOOLS, 'mistral-nemo');
    expect(verdict(nemo, '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]')).toBe('complete');
    expect(verdict(nemo, '[TOOL_CALLS][{"name": "now", "arguments": {}, "id": "short"}]')).toBe('reject'); // Nemo's template takes 9-character ids
    expect(verdict(nemo, '[TOOL_CALLS][{"name": "now", "arguments": {}, "id": "123456789"}, ')).toBe('reject'); // one call
    const args = toolCallGbnf(TOOLS, 'mistral');
    expect(verdict(args, '[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo", "unit": "f"}')).toBe('complete');
    expect(verdict(args, '[TOOL_CALLS]now[ARGS]{}')).toBe('complete');
    expect(verdict(args, '[TOOL_CALLS]now[ARGS]{"city": "Oslo"}')).toBe('reject'); // now's schema has no properties
    expect(verdict(args, '[TOOL_CALLS]get_weather[ARGS]{"unit": "c"}')).toBe('reject');
    expect(verdict(args, '[TOOL_CALLS]rm[')).toBe('reject');
    const granite = toolCallGbnf(TOOLS, 'granite');
    expect(verdict(granite, '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Rome"}}]')).toBe('complete');
    expect(verdict(granite, '[{"name": "get_weather"')).toBe('reject');
    const phi = toolCallGbnf([TOOLS[1]!], 'phi4');
    expect(verdict(phi, 'functools[{"name": "now", "arguments": {}}]')).toBe('complete');
    expect(verdict(phi, 'functools[{"name": "get_weather"')).toBe('reject');
  });
});

describe('ToolCallStream', () => {
  /** Streams `reply` in random pieces; returns what was streamed as content, and the calls. */
  function stream(reply: string, format: ToolCallFormat, next: () => number) {
    const s = new ToolCallStream(format, TOOLS);
    let shown = '';
    for (let at = 0; at < reply.length; ) {
      const end = Math.min(reply.length, at + 1 + Math.floor(next() * 6));
      shown += s.push(reply.slice(at, end));
      at = end;
    }
    const { tool_calls, rest } = s.finish();
    return { shown: shown + rest, names: tool_calls.map((c) => c.function.name) };
  }

  it('streams the text outside calls, whatever the pieces, and never a piece of a call', () => {
    const next = mulberry32(freshSeed('tool call stream'));
    const call = '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>';
    const cases: Array<[string, ToolCallFormat, string, string[]]> = [
      [`Checking.\n${call}`, 'hermes', 'Checking.', ['now']],
      [`${call}\n${call}`, 'hermes', '', ['now', 'now']],
      [`${call}\nDone, see above.`, 'hermes', '\nDone, see above.', ['now']],
      ['No call here, only <tool and <tool_cal text. ', 'hermes', 'No call here, only <tool and <tool_cal text. ', []],
      ['<tool_call>{"name": "rm", "arguments": {}}</tool_call>', 'hermes', '<tool_call>{"name": "rm", "arguments": {}}</tool_call>', []],
      ['  {"name": "now", "parameters": {}}', 'llama3', '', ['now']],
      ['<|python_tag|>{"name": "now", "parameters": {}}', 'llama3', '', ['now']],
      ['Plain {"name": "now", "parameters": {}}', 'llama3', 'Plain {"name": "now", "parameters": {}}', []],
      ['{"not": "a call"}', 'llama3', '{"not": "a call"}', []],
    ];
    for (let round = 0; round < 20; round++) {
      for (const [reply, format, content, names] of cases) {
        expect(stream(reply, format, next), `${format}: ${reply}`).toEqual({ shown: content, names });
      }
    }
  });

  it('holds back a call as it arrives: no content is streamed from its marker on', () => {
    const s = new ToolCallStream('hermes', TOOLS);
    expect(s.push('Hi <tool')).toBe('Hi');
    expect(s.push('_call>\n{"name": "now", ')).toBe('');
    expect(s.push('"arguments": {}}\n</tool_call>')).toBe('');
    expect(s.finish().tool_calls).toHaveLength(1);
  });
});
