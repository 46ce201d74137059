import { describe, expect, it } from 'vitest';
import { parseToolCalls, toolCallGbnf, ToolCallStream, type ToolCallEvent, type ToolCallFormat, type ToolFunction } from './tool-calls.ts';
import { joinEvents } from '../../testing/tool-call-events.ts';
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
  /** Streams `reply` in random pieces; returns what was streamed as content, and the calls joined from their pieces. */
  function stream(reply: string, format: ToolCallFormat, next: () => number) {
    const s = new ToolCallStream(format, TOOLS);
    const events: ToolCallEvent[] = [];
    for (let at = 0; at < reply.length; ) {
      const end = Math.min(reply.length, at + 1 + Math.floor(next() * 6));
      events.push(...s.push(reply.slice(at, end)));
      at = end;
    }
    const finished = s.finish();
    events.push(...finished.events);
    const joined = joinEvents(events);
    // The pieces add up to the calls the stream ends with.
    expect(joined.calls).toEqual(finished.tool_calls);
    return { shown: joined.content, names: finished.tool_calls.map((c) => c.function.name) };
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
      ['<tool_call>{"arguments": {"city": "Oslo"}, "name": "get_weather"}</tool_call>', 'hermes', '', ['get_weather']],
      ['  {"name": "now", "parameters": {}}', 'llama3', '', ['now']],
      ['<|python_tag|>{"name": "now", "parameters": {}}', 'llama3', '', ['now']],
      ['{"name": "now", "parameters": {}}; {"name": "get_weather", "parameters": {"city": "Rome"}}', 'llama3', '', ['now', 'get_weather']],
      ['Plain {"name": "now", "parameters": {}}', 'llama3', 'Plain {"name": "now", "parameters": {}}', []],
      ['{"not": "a call"}', 'llama3', '{"not": "a call"}', []],
      ['Sure.[TOOL_CALLS][{"name": "now", "arguments": {}, "id": "123456789"}, {"name": "get_weather", "arguments": {"city": "Bonn"}, "id": "abcdefghi"}]', 'mistral-nemo', 'Sure.', ['now', 'get_weather']],
      ['[TOOL_CALLS]get_weather[CALL_ID]000000001[ARGS]{"city": "Oslo"}[TOOL_CALLS]now[ARGS]{}', 'mistral', '', ['get_weather', 'now']],
      ['[TOOL_CALLS]rm[ARGS]{}', 'mistral', '[TOOL_CALLS]rm[ARGS]{}', []],
      ['<|tool_call|>[{"name": "now", "arguments": {}}]', 'granite', '', ['now']],
      ['functools[{"name": "get_weather", "arguments": {"city": "Lima"}}]', 'phi4', '', ['get_weather']],
      ['I like functools, a Python module.', 'phi4', 'I like functools, a Python module.', []],
    ];
    for (let round = 0; round < 20; round++) {
      for (const [reply, format, content, names] of cases) {
        expect(stream(reply, format, next), `${format}: ${reply}`).toEqual({ shown: content, names });
      }
    }
  });

  it('holds back a call as it arrives: no content is streamed from its marker on', () => {
    const s = new ToolCallStream('hermes', TOOLS);
    expect(s.push('Hi <tool')).toEqual([{ content: 'Hi' }]);
    expect(s.push('_call>\n{"name": "now", ')).toEqual([]);
    expect(s.push('"arguments": {}}\n</tool_call>')).toEqual([
      { tool_call: { index: 0, id: 'call_0', type: 'function', function: { name: 'now', arguments: '' } } },
      { tool_call: { index: 0, function: { arguments: '{}' } } },
    ]);
    expect(s.finish()).toEqual({ events: [], tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'now', arguments: '{}' } }], complete: true });
  });

  it("streams a call as OpenAI does: its name once known, then its arguments piece by piece, before the call closes", () => {
    const s = new ToolCallStream('hermes', TOOLS, (i) => `id-${i}`);
    const reply = 'Looking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>';
    const perToken: ToolCallEvent[][] = [];
    for (const piece of reply.match(/.{1,3}/gs)!) perToken.push(s.push(piece));
    const events = perToken.flat();
    const first = events.findIndex((e) => 'tool_call' in e);
    expect(events[first]).toEqual({ tool_call: { index: 0, id: 'id-0', type: 'function', function: { name: 'get_weather', arguments: '' } } });
    const fragments = events.filter((e) => 'tool_call' in e && e.tool_call.id === undefined);
    expect(fragments.length).toBeGreaterThan(5);
    // The call was announced, and its arguments started, before the reply reached its last brace.
    const announcedAt = perToken.findIndex((p) => p.some((e) => 'tool_call' in e));
    expect(reply.match(/.{1,3}/gs)!.slice(0, announcedAt + 1).join('')).not.toContain('}}');
    const finished = s.finish();
    expect(finished.complete).toBe(true);
    expect(joinEvents([...events, ...finished.events])).toEqual({ content: 'Looking.', calls: finished.tool_calls });
    expect(finished.tool_calls[0]!.function.arguments).toBe('{"city":"Paris","unit":"c"}');
  });

  it('a call the reply breaks off stays the call it was streamed as, marked incomplete', () => {
    const s = new ToolCallStream('hermes', TOOLS);
    const events = s.push('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par');
    const finished = s.finish();
    expect(finished.complete).toBe(false);
    expect(joinEvents([...events, ...finished.events])).toEqual({ content: '', calls: finished.tool_calls });
    expect(finished.tool_calls[0]!.function).toEqual({ name: 'get_weather', arguments: '{"city":"Par' });
    // parseToolCalls reads finished replies: a call cut short is no call.
    expect(parseToolCalls('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par', 'hermes', TOOLS).tool_calls).toEqual([]);
  });
});
