/**
 * Server-sent events (the WHATWG `text/event-stream` format) as OpenAI-compatible servers stream
 * chat completions: lines `field: value`, an event ending at a blank line. A network read may end
 * anywhere (mid-line, mid-character, between the CR and LF of one line ending), so the parser
 * keeps the unfinished line and the event being built across reads. Comments (`:` lines, which
 * servers send as keep-alives) are skipped; `retry` is ignored (nothing reconnects here).
 */

export interface SseEvent {
  /** The `event:` field; 'message' when the event names none. */
  event: string;
  /** The `data:` lines joined by '\n'. */
  data: string;
  id?: string | undefined;
}

export class SseParser {
  private line = '';
  /** The previous read ended in CR: an LF starting this one belongs to that line ending. */
  private afterCr = false;
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  /** Feeds decoded text; calls onEvent for every event the text completes. */
  push(text: string): void {
    let start = 0;
    if (this.afterCr && text.startsWith('\n')) start = 1;
    this.afterCr = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.takeLine(this.line + text.slice(start, i));
      this.line = '';
      if (c === 13) {
        if (i + 1 === text.length) this.afterCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.line += text.slice(start);
  }

  /**
   * The stream ended. An event still being built (no blank line after it) is dispatched, as a
   * server that closes right after its last `data:` line means it.
   */
  end(): void {
    if (this.line) this.takeLine(this.line);
    this.line = '';
    this.dispatch();
  }

  private takeLine(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }

  private dispatch(): void {
    if (this.data.length > 0) this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
    this.data = [];
    this.event = '';
  }
}

/** The events of a response body as they arrive; ends when the body does. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const events: SseEvent[] = [];
  const parser = new SseParser((event) => events.push(event));
  // `stream: true`: a UTF-8 character split across reads is kept until its last byte comes.
  const decoder = new TextDecoder('utf-8');
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        parser.push(decoder.decode());
        parser.end();
      } else parser.push(decoder.decode(value, { stream: true }));
      yield* events.splice(0);
      if (done) return;
    }
  } finally {
    // A consumer that stops early (or fails) releases the connection.
    reader.cancel().catch(() => undefined);
  }
}
