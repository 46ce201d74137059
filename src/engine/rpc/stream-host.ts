/**
 * The worker's side of the pull streams (see protocol.ts): each open call's events wait in a
 * queue of their own until the page pulls them; its result or error comes through the same pulls,
 * after its events. A stream is forgotten once its end has been pulled.
 */
import type { EngineApi } from '../api.ts';
import type { Pull, ReportingCall, ReportingCalls, StreamApi } from './protocol.ts';

type Starter<C extends ReportingCall> = (
  engine: EngineApi,
  args: ReportingCalls[C]['args'],
  onEvent: ((event: ReportingCalls[C]['event']) => void) | undefined,
) => Promise<ReportingCalls[C]['result']>;

const START: { [C in ReportingCall]: Starter<C> } = {
  loadModel: (engine, [source, options], onEvent) => engine.loadModel(source, options, onEvent),
  downloadModel: (engine, [entry], onEvent) => engine.downloadModel(entry, onEvent),
  importModelFile: (engine, [files, options], onEvent) => engine.importModelFile(files, options, onEvent),
  chatCompletion: (engine, [request], onEvent) => engine.chatCompletion(request, onEvent),
  transform: (engine, [request], onEvent) => engine.transform(request, onEvent),
  quantizeModel: (engine, [request], onEvent) => engine.quantizeModel(request, onEvent),
  evaluateModels: (engine, [request], onEvent) => engine.evaluateModels(request, onEvent),
  trainAdapter: (engine, [request], onEvent) => engine.trainAdapter(request, onEvent),
};

interface Stream {
  events: unknown[];
  end?: { result: unknown } | { error: unknown };
  /** Wakes a pull that is waiting for this stream to report. */
  wake?: () => void;
}

export class StreamHost implements StreamApi {
  private readonly streams = new Map<number, Stream>();
  private nextId = 1;

  constructor(private readonly engine: EngineApi) {}

  async open<C extends ReportingCall>(call: C, args: ReportingCalls[C]['args'], options: { events: boolean }): Promise<number> {
    const id = this.nextId++;
    const stream: Stream = { events: [] };
    this.streams.set(id, stream);
    const settle = (end: NonNullable<Stream['end']>) => {
      stream.end = end;
      stream.wake?.();
    };
    // An event after its call ended has no pull left to carry it; the engine reports before it returns.
    const onEvent = options.events
      ? (event: ReportingCalls[C]['event']) => {
          if (stream.end) return;
          stream.events.push(event);
          stream.wake?.();
        }
      : undefined;
    (START[call] as Starter<C>)(this.engine, args, onEvent).then(
      (result) => settle({ result }),
      (error: unknown) => settle({ error }),
    );
    return id;
  }

  async pull<C extends ReportingCall>(id: number): Promise<Pull<C>> {
    const stream = this.streams.get(id);
    if (!stream) throw new Error(`No open stream ${id}: it ended and was pulled already, or never opened.`);
    while (stream.events.length === 0 && !stream.end) await new Promise<void>((resolve) => (stream.wake = resolve));
    stream.wake = undefined;
    const events = stream.events.splice(0) as Array<ReportingCalls[C]['event']>;
    if (!stream.end) return { events, done: false };
    if ('error' in stream.end) {
      // The events before the failure come first; the next pull reports it.
      if (events.length > 0) return { events, done: false };
      this.streams.delete(id);
      throw stream.end.error;
    }
    this.streams.delete(id);
    return { events, done: true, result: stream.end.result as ReportingCalls[C]['result'] };
  }

  /** Streams opened and not yet pulled to their end. */
  get openStreams(): number {
    return this.streams.size;
  }
}
