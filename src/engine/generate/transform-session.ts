/**
 * Text to text through the engine API (`transform`): an encoder-decoder model (T5, Flan-T5) reads
 * the request's input once and writes the output with t5Transform (the same token loop the CLI's
 * `hearth generate` runs on a t5 file, so the same input and sampling give the same output). The
 * output streams as chunks of text that never end inside a UTF-8 character or inside a stop string
 * that may still complete; `aborted` is polled between tokens, after a turn of the event loop (on
 * the CPU backend the steps never wait on a task, so an abort message could not arrive otherwise).
 */
import type { TransformChunk, TransformRequest, TransformResult, TransformUsage } from '../api.ts';
import type { T5Model } from '../model/t5-forward.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { StopStringMatcher } from './stop-strings.ts';
import { t5Transform } from './t5-transform.ts';
import { invalidParam, validateRequestFields } from './validate-request.ts';
import { yieldToEventLoop } from './yield.ts';

/** The chat request's fields a transform takes, checked by the same rules. */
const SHARED_FIELDS = ['max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'stop', 'request_id', 'model', 'stream'] as const;
/** The longest input accepted before tokenizing (the model's input capacity bounds the tokens). */
const MAX_INPUT_CHARS = 1_000_000;

/** A transform request whose fields have been checked. */
export type ValidTransformRequest = TransformRequest;

/** Checks a transform request; throws InvalidRequestError naming the field. */
export function validateTransformRequest(request: unknown): ValidTransformRequest {
  const valid = validateRequestFields(request, SHARED_FIELDS, {
    input: (v, p) => {
      if (typeof v !== 'string' || v.trim() === '') invalidParam(p, 'must be a non-empty string (the text the encoder reads)', v);
      if (v.length > MAX_INPUT_CHARS) invalidParam(p, `must be at most ${MAX_INPUT_CHARS} characters`, v.length);
    },
  });
  if (valid.input === undefined) invalidParam('input', 'is required: the text the encoder reads');
  return valid as unknown as ValidTransformRequest;
}

/** Sampling when the request does not say: greedy, and the chat's chain for a temperature above 0. */
const DEFAULTS = { temperature: 0, top_k: 40, top_p: 0.95, min_p: 0.05 };

export class TransformSession {
  private nextId = 1;

  constructor(
    readonly model: T5Model,
    readonly tokenizer: Tokenizer,
    readonly modelName: string,
  ) {}

  /** Runs one checked request; `onChunk` hears the output as it is written, then the end with the usage. */
  async run(request: ValidTransformRequest, onChunk: ((chunk: TransformChunk) => void) | undefined, aborted: () => boolean): Promise<TransformResult> {
    const { model, tokenizer } = this;
    const id = request.request_id ?? `transform-${this.nextId++}`;
    const created = Math.floor(Date.now() / 1000);
    const input = tokenizer.encode(request.input, { addSpecial: true, parseSpecial: false });
    if (input.length === 0) invalidParam('input', 'encodes to no tokens', request.input);
    // The decoder's start token takes one position of its cache.
    const room = model.outputCapacity - 1;
    const maxTokens = Math.min(request.max_tokens ?? room, room);
    const stops = new StopStringMatcher(typeof request.stop === 'string' ? [request.stop] : (request.stop ?? []));
    const text = tokenizer.createStreamDecoder({ removeSpecial: true });
    const chunk = (delta: string, finish: TransformChunk['finish_reason'], usage?: TransformUsage): TransformChunk => ({
      id,
      object: 'transform.chunk',
      created,
      model: this.modelName,
      delta,
      finish_reason: finish,
      ...(usage ? { usage } : {}),
    });
    let output = '';
    let stopped = false;
    let wasAborted = aborted();
    const emit = (piece: string): boolean => {
      const { emit: safe, stopped: hit } = stops.push(piece);
      if (safe) {
        output += safe;
        onChunk?.(chunk(safe, null));
      }
      stopped ||= hit;
      return hit;
    };
    const t0 = performance.now();
    let firstAt: number | undefined;
    let result = { tokens: [] as number[], finishReason: 'stop' as 'stop' | 'length', seed: request.seed ?? 0 };
    if (!wasAborted) {
      result = await t5Transform(model, input, {
        maxTokens,
        sampling: {
          temperature: request.temperature ?? DEFAULTS.temperature,
          topK: request.top_k ?? DEFAULTS.top_k,
          topP: request.top_p ?? DEFAULTS.top_p,
          minP: request.min_p ?? DEFAULTS.min_p,
        },
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        isEnd: (token) => tokenizer.isEog(token),
        onToken: async (token) => {
          firstAt ??= performance.now();
          if (emit(text.push(token))) return true;
          await yieldToEventLoop();
          wasAborted = aborted();
          return wasAborted;
        },
      });
    }
    if (!stopped) {
      emit(text.flush());
      if (!stopped) {
        const rest = stops.flush();
        if (rest) {
          output += rest;
          onChunk?.(chunk(rest, null));
        }
      }
    }
    const n = result.tokens.length;
    const finish: TransformResult['finish_reason'] = wasAborted && !stopped ? 'abort' : stopped ? 'stop' : result.finishReason;
    const end = performance.now();
    const ttft = (firstAt ?? end) - t0;
    const usage: TransformUsage = {
      prompt_tokens: input.length,
      completion_tokens: n,
      total_tokens: input.length + n,
      ...(finish === 'length' ? { length_limit: request.max_tokens !== undefined && request.max_tokens <= room ? 'max_tokens' : 'output_capacity' } : {}),
      time_to_first_token_ms: ttft,
      decode_tokens_per_second: n > 1 && end > (firstAt ?? end) ? ((n - 1) * 1000) / (end - firstAt!) : 0,
    };
    onChunk?.(chunk('', finish, usage));
    return { id, object: 'transform', created, model: this.modelName, output, finish_reason: finish, usage, seed: result.seed };
  }
}
