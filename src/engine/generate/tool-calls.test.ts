import { describe, expect, it } from 'vitest';
import { parseToolCalls, toolCallGbnf, type ToolFunction } from './tool-calls.ts';
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
});
