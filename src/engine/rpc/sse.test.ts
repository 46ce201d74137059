/** The SSE parser against the format's rules, fed whole and split at every possible point. */
import { describe, expect, it } from 'vitest';
import { readSse, SseParser, type SseEvent } from './sse.ts';

function parse(parts: string[]): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const part of parts) parser.push(part);
  parser.end();
  return events;
}

const STREAM =
  ': keep-alive\r\n' +
  'data: {"a":1}\r\n\r\n' +
  'event: error\ndata: first line\ndata:second line\n\n' +
  'id: 7\rdata:  two spaces\r\r' +
  'data\n\n' +
  'data: [DONE]\n\n';

const EXPECTED: SseEvent[] = [
  { event: 'message', data: '{"a":1}', id: undefined },
  { event: 'error', data: 'first line\nsecond line', id: undefined },
  { event: 'message', data: ' two spaces', id: '7' },
  { event: 'message', data: '', id: '7' },
  { event: 'message', data: '[DONE]', id: '7' },
];

describe('SseParser', () => {
  it('reads events with every line ending, comments, multi-line data and fields without values', () => {
    expect(parse([STREAM])).toEqual(EXPECTED);
  });

  it('gives the same events however the text is split across reads (a CR and its LF apart too)', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      for (const j of [i, Math.min(STREAM.length, i + 1), Math.min(STREAM.length, i + 5)]) {
        expect(parse([STREAM.slice(0, i), STREAM.slice(i, j), STREAM.slice(j)]), `split at ${i}/${j}`).toEqual(EXPECTED);
      }
    }
  });

  it('dispatches an event the stream ends in without a blank line, and none for a comment-only stream', () => {
    expect(parse(['data: last'])).toEqual([{ event: 'message', data: 'last', id: undefined }]);
    expect(parse([': ping\n\n: ping\n'])).toEqual([]);
  });

  it('does not count a CRLF split across reads as two line endings', () => {
    expect(parse(['data: a\r', '\ndata: b\r\n\r\n'])).toEqual([{ event: 'message', data: 'a\nb', id: undefined }]);
  });
});

describe('readSse', () => {
  it('decodes UTF-8 characters split across network reads', async () => {
    const bytes = new TextEncoder().encode('data: héllo 👋\n\ndata: [DONE]\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        // One byte per read: every multi-byte character arrives in pieces.
        for (const byte of bytes) controller.enqueue(new Uint8Array([byte]));
        controller.close();
      },
    });
    const events: string[] = [];
    for await (const e of readSse(body)) events.push(e.data);
    expect(events).toEqual(['héllo 👋', '[DONE]']);
  });
});
