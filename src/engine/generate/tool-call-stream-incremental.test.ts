/**
 * ToolCallStream scans on from where the decided text ends instead of rescanning the whole reply
 * each token: its events must be those of a scan of the whole reply so far at every push (the
 * reference below), and the characters it reads must grow linearly with the reply.
 */
import { describe, expect, it } from 'vitest';
import { scanReply, ToolCallStream, type CallSoFar, type ToolCallEvent, type ToolCallFormat, type ToolFunction } from './tool-calls.ts';
import { joinEvents } from '../../testing/tool-call-events.ts';
import { freshSeed, mulberry32 } from '../../testing/random.ts';

const TOOLS: ToolFunction[] = [
  { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  { name: 'now' },
];
const NAMES = new Set(TOOLS.map((t) => t.name));

/** The stream as a whole-reply scan at each push gives it: content beyond what was shown, and what each call adds. */
function referenceEvents(pieces: readonly string[], format: ToolCallFormat, thinkingOpen: boolean): ToolCallEvent[] {
  let text = '';
  let shown = '';
  const shownCalls: CallSoFar[] = [];
  const events: ToolCallEvent[] = [];
  const step = (content: string, calls: readonly CallSoFar[]) => {
    expect(content.startsWith(shown)).toBe(true);
    if (content.length > shown.length) events.push({ content: content.slice(shown.length) });
    shown = content;
    calls.forEach((call, index) => {
      if (!shownCalls[index]) {
        shownCalls.push({ name: call.name, arguments: '', complete: false });
        events.push({ tool_call: { index, id: `call_${index}`, type: 'function', function: { name: call.name, arguments: '' } } });
      }
      if (call.arguments.length > shownCalls[index]!.arguments.length) {
        events.push({ tool_call: { index, function: { arguments: call.arguments.slice(shownCalls[index]!.arguments.length) } } });
        shownCalls[index]!.arguments = call.arguments;
      }
    });
  };
  for (const piece of pieces) {
    text += piece;
    const { outside, calls } = scanReply(text, format, NAMES, false, thinkingOpen);
    step(outside.trimEnd(), calls);
  }
  const { outside, calls } = scanReply(text, format, NAMES, true, thinkingOpen);
  step(calls.length > 0 ? outside.trimEnd() : outside, calls);
  return events;
}

function streamEvents(pieces: readonly string[], format: ToolCallFormat, thinkingOpen: boolean): { events: ToolCallEvent[]; scanned: number } {
  const s = new ToolCallStream(format, TOOLS, undefined, thinkingOpen);
  const events = pieces.flatMap((p) => s.push(p));
  events.push(...s.finish().events);
  return { events, scanned: s.scannedChars };
}

const CALLS: Record<ToolCallFormat, string> = {
  hermes: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
  llama3: '{"name": "get_weather", "parameters": {"city": "Oslo"}}',
  'mistral-nemo': '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "123456789"}]',
  mistral: '[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}',
  granite: '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]',
  phi4: 'functools[{"name": "get_weather", "arguments": {"city": "Oslo"}}]',
};
const FORMATS = Object.keys(CALLS) as ToolCallFormat[];

/** 20k characters of prose with near-misses of every marker and thinking tag in it. */
function longText(): string {
  const words = ['the', 'weather', '<tool', '[TOOL', '<|tool', 'func', 'functool', '{', '}', '<th', '[/THI', '</think', '\n', '  '];
  const next = mulberry32(7);
  let text = 'Let me see. ';
  while (text.length < 20_000) text += words[Math.floor(next() * words.length)]! + ' ';
  return text;
}

describe('ToolCallStream scans incrementally', () => {
  it('a 20k-character reply then a call, token by token, gives the events of the whole reply in one piece', () => {
    for (const format of FORMATS) {
      // Llama 3's calls are the whole reply: its long reply is the call after a long thinking block.
      const reply = format === 'llama3' ? `<think>${longText()}</think>${CALLS.llama3}` : `${longText()}${CALLS[format]}`;
      const tokens = reply.match(/[\s\S]{1,3}/g)!;
      const whole = streamEvents([reply], format, false);
      const byToken = streamEvents(tokens, format, false);
      expect(joinEvents(byToken.events), format).toEqual(joinEvents(whole.events));
      expect(joinEvents(whole.events).calls.map((c) => c.function.name), format).toEqual(['get_weather']);
      expect(byToken.events, format).toEqual(referenceEvents(tokens, format, false));
      // Each push reads the new piece and what an unfinished marker or call holds, not the reply again.
      expect(byToken.scanned, format).toBeLessThan(reply.length + tokens.length * 200);
      expect(byToken.scanned, format).toBeGreaterThanOrEqual(reply.length);
    }
  });

  it('matches a whole-reply scan at every push on random replies (thinking blocks, near-miss markers, pieces of any size)', () => {
    const next = mulberry32(freshSeed('incremental tool-call stream'));
    const bits = ['Hi ', ' ', '\n', '<think>', '</think>', '[THINK]', '[/THINK]', '<th', '<tool', '[TOOL_CALLS]', 'functools', '<|tool_call|>', '{', 'x'];
    for (let round = 0; round < 300; round++) {
      const format = FORMATS[Math.floor(next() * FORMATS.length)]!;
      const thinkingOpen = next() < 0.3;
      let reply = '';
      const n = Math.floor(next() * 8);
      for (let i = 0; i < n; i++) reply += bits[Math.floor(next() * bits.length)]!;
      if (next() < 0.7) reply += CALLS[format];
      if (next() < 0.3) reply += bits[Math.floor(next() * bits.length)]!;
      const pieces: string[] = [];
      for (let at = 0; at < reply.length; ) {
        const end = Math.min(reply.length, at + 1 + Math.floor(next() * 5));
        pieces.push(reply.slice(at, end));
        at = end;
      }
      expect(streamEvents(pieces, format, thinkingOpen).events, `${format} ${thinkingOpen} ${JSON.stringify(pieces)}`).toEqual(referenceEvents(pieces, format, thinkingOpen));
    }
  });

  it('reads a long thinking block once, not once per token', () => {
    const reply = `<think>${'a'.repeat(20_000)}</think>${CALLS.hermes}`;
    const tokens = reply.match(/[\s\S]{1,2}/g)!;
    const { scanned } = streamEvents(tokens, 'hermes', false);
    expect(scanned).toBeLessThan(reply.length + tokens.length * 200);
  });
});
