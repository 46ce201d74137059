/**
 * One conversation with a loaded model: turns chat messages into prompt tokens with the model's
 * template, reuses the KV cache of the longest common token prefix with the previous request,
 * fits the prompt into the context window by the caller's policy, and runs the token loop
 * (sampling, penalties, end-of-generation tokens, stop strings, max_tokens, abort) while
 * streaming text that is always whole UTF-8 and never part of a stop string.
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionTool,
  ChatMessage,
  CompletionUsage,
  ContextMeasure,
  FinishReason,
  PromptFormat,
  ToolCallDelta,
} from '../api.ts';
import {
  chatTemplateMetadata,
  chooseChatFormat,
  endOfGenerationTokens,
  formatChat,
  stopStrings,
  stopVocab,
  type ChatFormatChoice,
} from '../chat/index.ts';
import { HearthError } from '../errors.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { NO_PENALTIES, type AllowedTokens, type PenaltyParams, type SamplingParams, type TokenPenalties } from '../sampling/index.ts';
import { GrammarConstraint } from '../grammar/index.ts';
import { compiledGrammar, requestGbnf } from './constraint.ts';
import { endsInsideThinking, templateMessages, thinkingTokenTexts, toolCallFormatOf, toolCallId, toolCallTokenTexts, ToolCallStream, type ToolCall, type ToolCallEvent, type ToolCallFormat } from './tool-calls.ts';
import { StepByStepLoop, type DecodeLoop, type DecodeLoopOptions } from '../model/token-loop.ts';
import { randomSeed, SeededRandom } from './rng.ts';
import { StopStringMatcher } from './stop-strings.ts';
import { yieldToEventLoop } from './yield.ts';
import type { ValidChatRequest } from './validate-request.ts';

/** The conversation does not fit the context window, and the policy says not to drop turns. */
export class ContextWindowExceededError extends HearthError {
  override name = 'ContextWindowExceededError';
}

/** What the session needs of a loaded model (src/engine/model/model.ts's Model has it). */
export interface SessionModel {
  /** Positions the KV cache holds. */
  readonly contextLength: number;
  /** Tokens in the KV cache. */
  readonly position: number;
  /**
   * Evaluates `tokens` after the cached ones and samples the next token from the last position's
   * logits on the device, after `penalties` if given and among the `allowed` tokens if given; `u`
   * is a uniform number in [0, 1).
   */
  next(tokens: readonly number[], sampling: SamplingParams, u: number, penalties?: TokenPenalties, allowed?: AllowedTokens): Promise<number>;
  /** Keeps at most the first `n` positions; returns how many it kept (a hybrid may keep fewer). */
  truncate(n: number): number;
  /**
   * A token loop that runs steps ahead of the tokens read back (Model's runs on the device).
   * Without one, the session steps with `next` (StepByStepLoop): the same tokens.
   */
  decodeLoop?(options: DecodeLoopOptions): DecodeLoop;
}

const DEFAULT_TEMPERATURE = 0.7;

export interface SessionOptions {
  /** Model name reported in completions. */
  modelName: string;
  /** Clock in milliseconds; injectable for tests. */
  now?: () => number;
}

export class ChatSession {
  /** Tokens in the model's KV cache, in order (the model's `position` equals their count). */
  private cached: number[] = [];
  readonly format: ChatFormatChoice;
  /** How this model writes tool calls (from its template). */
  readonly toolFormat: ToolCallFormat;
  /**
   * The format's markers (and thinking tags) that are single tokens: with tools, decoded as text
   * for the parser (a call inside a thinking block is none) and allowed in a forced call.
   */
  private readonly toolTokens = new Set<number>();
  private readonly endIds: Set<number>;
  private readonly stops: string[];
  private readonly bosText: string;
  private readonly eosText: string;
  private readonly now: () => number;
  private nextId = 1;

  constructor(
    private readonly model: SessionModel,
    private readonly tokenizer: Tokenizer,
    metadata: ReadonlyMap<string, unknown>,
    private readonly options: SessionOptions,
  ) {
    this.format = chooseChatFormat(chatTemplateMetadata(metadata));
    this.toolFormat = toolCallFormatOf(this.format);
    for (const text of [...toolCallTokenTexts(this.toolFormat), ...thinkingTokenTexts()]) {
      const ids = tokenizer.encode(text, { parseSpecial: true });
      if (ids.length === 1) this.toolTokens.add(ids[0]!);
    }
    const vocab = stopVocab(metadata);
    const eog = vocab ? endOfGenerationTokens(vocab, this.format.format) : undefined;
    this.endIds = new Set(eog?.ids ?? []);
    for (let id = 0; id < tokenizer.size; id++) if (tokenizer.isEog(id)) this.endIds.add(id);
    this.stops = vocab && eog ? stopStrings(vocab, eog) : [];
    const special = tokenizer.special;
    this.bosText = special.bos !== null ? tokenizer.tokenText(special.bos) : '';
    this.eosText = special.eos !== null ? tokenizer.tokenText(special.eos) : '';
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * The prompt tokens for `messages`: with the chat template and the assistant's turn opened, or
   * for 'text' their contents joined as plain text to continue (special-token text in them stays
   * text: it is the user's, not the template's). `tools` go to the template, which shows them to the model.
   */
  promptTokens(messages: readonly ChatMessage[], format: PromptFormat = 'chat', tools?: readonly ChatCompletionTool[]): number[] {
    if (format === 'text') return this.tokenizer.encode(messages.map((m) => m.content).join(''), { addSpecial: true, parseSpecial: false });
    const text = formatChat(this.format.format, templateMessages(messages, this.toolFormat, tools?.map((t) => t.function)), {
      addGenerationPrompt: true,
      ...(tools ? { tools } : {}),
      bosToken: this.bosText,
      eosToken: this.eosText,
      tokenizerAddsBos: this.tokenizer.flags.addBos,
      tokenizerAddsEos: this.tokenizer.flags.addEos,
    });
    return this.tokenizer.encode(text, { addSpecial: true, parseSpecial: true });
  }

  /**
   * The messages that fit with room for at least one generated token: the system prompt and the
   * newest turns, dropping whole turns (a user message and the replies after it) from the oldest,
   * as few as needed.
   *
   * Dropping turns one at a time and rendering after each was quadratic (2000 turns: tens of
   * seconds before the first token). The same fewest-turns answer is found by a search over the
   * number of dropped turns: galloping down from "all droppable turns dropped", whose renders are
   * small, then bisecting. This relies on a prompt never growing when a turn is dropped from it.
   */
  fitMessages(
    messages: readonly ChatMessage[],
    policy: ChatCompletionRequest['context_overflow'],
    format: PromptFormat = 'chat',
    tools?: readonly ChatCompletionTool[],
  ): { messages: ChatMessage[]; tokens: number[]; dropped: number } {
    const limit = this.model.contextLength - 1;
    const all = [...messages];
    const tokens = this.promptTokens(all, format, tools);
    if (tokens.length <= limit) return { messages: all, tokens, dropped: 0 };
    const tooLong = (promptTokens: number, detail: Record<string, unknown>) =>
      new ContextWindowExceededError(
        `The conversation needs ${promptTokens} tokens but the context window holds ${this.model.contextLength}. ` +
          'Start a new conversation, shorten the messages, or load the model with a longer context.',
        { promptTokens, contextLength: this.model.contextLength, ...detail },
      );
    if (policy === 'error') throw tooLong(tokens.length, { policy });
    const cuts = turnCuts(all);
    if (cuts.length < 2) throw tooLong(tokens.length, { policy: 'drop-oldest-turns', droppedMessages: 0 });
    /** The prompt with the `k` oldest turns dropped. */
    const dropTurns = (k: number) => {
      const kept = k === 0 ? all : [...all.slice(0, cuts[0]), ...all.slice(cuts[k])];
      return { messages: kept, tokens: this.promptTokens(kept, format, tools), dropped: cuts[k]! - cuts[0]! };
    };
    const most = cuts.length - 1;
    let best = dropTurns(most);
    if (best.tokens.length > limit) throw tooLong(best.tokens.length, { policy: 'drop-oldest-turns', droppedMessages: best.dropped });
    // Invariant: dropping `fit` turns fits (`best` is that prompt), dropping `short` does not.
    let fit = most;
    let short = 0;
    for (let gap = 1; fit - gap > 0; gap *= 2) {
      const attempt = dropTurns(fit - gap);
      if (attempt.tokens.length > limit) {
        short = fit - gap;
        break;
      }
      fit -= gap;
      best = attempt;
    }
    while (fit - short > 1) {
      const mid = (fit + short) >> 1;
      const attempt = dropTurns(mid);
      if (attempt.tokens.length > limit) short = mid;
      else {
        fit = mid;
        best = attempt;
      }
    }
    return best;
  }

  /** Token count of the prompt for `messages`, for a context meter. */
  countTokens(messages: readonly ChatMessage[], format: PromptFormat = 'chat'): number {
    return this.promptTokens(messages, format).length;
  }

  /** What `messages` take of the context window after the default overflow policy (for a meter). */
  measure(messages: readonly ChatMessage[], format: PromptFormat = 'chat'): ContextMeasure {
    const all = this.promptTokens(messages, format).length;
    const context_length = this.model.contextLength;
    try {
      const fitted = this.fitMessages(messages, 'drop-oldest-turns', format);
      return { prompt_tokens: all, fitted_tokens: fitted.tokens.length, dropped_messages: fitted.dropped, fits: true, context_length };
    } catch (error) {
      if (!(error instanceof ContextWindowExceededError)) throw error;
      return { prompt_tokens: all, fitted_tokens: all, dropped_messages: 0, fits: false, context_length };
    }
  }

  /** Forgets the cached prefix (after a failure that may have left the cache inconsistent). */
  invalidateCache(): void {
    this.cached = [];
    this.model.truncate(0);
  }

  /** Runs a checked request (validateChatRequest); streams chunks to `onChunk`. */
  async complete(
    request: ValidChatRequest,
    onChunk: ((chunk: ChatCompletionChunk) => void) | undefined,
    aborted: () => boolean,
  ): Promise<ChatCompletion> {
    const started = this.now();
    const { tokens: prompt, dropped } = this.fitMessages(request.messages, request.context_overflow, request.prompt_format, request.tools);
    return this.completePrompt(prompt, request, onChunk, aborted, { started, dropped });
  }

  /**
   * The token loop after `prompt`, tokens the caller made itself (the CLI's raw prompt, which no
   * chat template formats); `request.messages` is not read, the rest of the request applies.
   */
  async completePrompt(
    prompt: readonly number[],
    request: ChatCompletionRequest,
    onChunk: ((chunk: ChatCompletionChunk) => void) | undefined,
    aborted: () => boolean,
    fitted: { started: number; dropped: number } = { started: this.now(), dropped: 0 },
  ): Promise<ChatCompletion> {
    const { started, dropped } = fitted;
    const id = request.request_id ?? `chatcmpl-${this.nextId++}`;
    const created = Math.floor(Date.now() / 1000);

    // Reuse the cached prefix; at least one prompt token must be evaluated to get logits.
    let common = 0;
    const limit = Math.min(this.cached.length, prompt.length - 1);
    while (common < limit && this.cached[common] === prompt[common]) common++;
    // A hybrid's recurrent state may go back further than asked (to its latest snapshot).
    common = this.model.truncate(common);
    this.cached = prompt.slice(0, common);

    const sampling = samplingOf(request);
    const penalties = penaltiesOf(request);
    const rng = new SeededRandom(request.seed ?? randomSeed());
    const maxTokens = request.max_tokens ?? Number.POSITIVE_INFINITY;
    const matcher = new StopStringMatcher([...this.stops, ...toArray(request.stop)]);

    // A response_format or grammar constrains every token; the grammar ends the reply when complete.
    const gbnf = requestGbnf(request, this.toolFormat);
    // With tools (and tool_choice not 'none') the reply is parsed for calls, whose text is not streamed
    // as content; their marker tokens decode as text for the parser (and a forced call may use them).
    const toolStream =
      request.tools && request.tools.length > 0 && request.tool_choice !== 'none'
        ? new ToolCallStream(
            this.toolFormat,
            request.tools.map((t) => t.function),
            // Ids unique in the conversation, for the tool messages that answer them.
            (index) => toolCallId(this.toolFormat, id, index),
            // A forced call's grammar starts at the call: no thinking before it.
            gbnf === undefined && endsInsideThinking(this.tokenizer.decode(prompt.slice(-8), { unparseSpecial: true })),
          )
        : undefined;
    const keptTokens = toolStream ? this.toolTokens : new Set<number>();
    const decoder = this.tokenizer.createStreamDecoder({ removeSpecial: true, unparseTokens: keptTokens });
    let toolCalls: ToolCall[] = [];
    const constraint = gbnf === undefined ? undefined : new GrammarConstraint(compiledGrammar(this.tokenizer, [...this.endIds], gbnf, keptTokens));

    let pending = prompt.slice(common);
    const contextLength = this.model.contextLength;
    const loopOptions: DecodeLoopOptions = {
      prompt: pending,
      cached: this.cached.slice(),
      sampling,
      penalties,
      random: () => rng.nextFloat(),
      // Step 0 needs room for the prompt, step i > 0 for one more token.
      maxSteps: common + pending.length > contextLength ? 0 : Math.min(maxTokens, contextLength - common - pending.length + 1),
      ...(constraint ? { allowedTokens: () => constraint.allowed() } : {}),
    };
    // The mask of each step depends on the token before it: a constrained reply steps one token
    // at a time (the device loop records steps before their tokens are known).
    const loop = (!constraint && this.model.decodeLoop?.(loopOptions)) || new StepByStepLoop(this.model, loopOptions);
    const generated: number[] = [];
    let content = '';
    let finish: FinishReason = 'length';
    let lengthLimit: CompletionUsage['length_limit'];
    let stoppedByString = false;
    let firstTokenAt = 0;
    let sentRole = false;
    // The last token generated takes a position only when the next step evaluates it: a reply
    // that fills the window ends one token past it, which the next request's prompt must fit.
    const contextFill = () => ({ used: Math.min(prompt.length + generated.length, contextLength), total: contextLength });
    const send = (text: string) => {
      if (!text) return;
      content += text;
      onChunk?.({
        id,
        object: 'chat.completion.chunk',
        created,
        model: this.options.modelName,
        choices: [{ index: 0, delta: sentRole ? { content: text } : { role: 'assistant', content: text }, finish_reason: null }],
        context: contextFill(),
      });
      sentRole = true;
    };
    const sendToolCall = (delta: ToolCallDelta) => {
      onChunk?.({
        id,
        object: 'chat.completion.chunk',
        created,
        model: this.options.modelName,
        choices: [{ index: 0, delta: { ...(sentRole ? {} : { role: 'assistant' as const }), tool_calls: [delta] }, finish_reason: null }],
        context: contextFill(),
      });
      sentRole = true;
    };
    const sendEvents = (events: readonly ToolCallEvent[]) => {
      for (const event of events) if ('content' in event) send(event.content);
      else sendToolCall(event.tool_call);
    };
    const emit = (text: string) => (toolStream ? sendEvents(toolStream.push(text)) : send(text));

    try {
      for (;;) {
        // Lets an abort (or any message) that arrived during the last step be seen before the next.
        await yieldToEventLoop();
        if (aborted()) {
          finish = 'abort';
          break;
        }
        // The cache's own position may run ahead of `cached` (steps in flight): count from `cached`.
        if (generated.length >= maxTokens || this.cached.length + pending.length > contextLength) {
          finish = 'length';
          lengthLimit = generated.length >= maxTokens ? 'max_tokens' : 'context_window';
          break;
        }
        const token = await loop.next();
        this.cached.push(...pending);
        pending = [token];
        if (generated.length === 0) firstTokenAt = this.now();
        // Throws GrammarViolationError if the sampler drew a token the mask excluded (a bug).
        constraint?.accept(token);
        if (this.endIds.has(token)) {
          finish = 'stop';
          break;
        }
        generated.push(token);
        const { emit: text, stopped } = matcher.push(decoder.push(token));
        emit(text);
        if (stopped) {
          finish = 'stop';
          stoppedByString = true;
          break;
        }
        // parallel_tool_calls false: one call, and the reply ends with it.
        if (request.parallel_tool_calls === false && toolStream && toolStream.completeCalls > 0) {
          finish = 'stop';
          break;
        }
        if (constraint && !constraint.canContinue) {
          finish = 'stop';
          break;
        }
      }
      // Text held back as a possible stop string (or an unfinished character) is output after all.
      if (!stoppedByString) {
        const tail = matcher.push(decoder.flush());
        emit(tail.stopped ? tail.emit : tail.emit + matcher.flush());
      }
      if (toolStream) {
        const ended = toolStream.finish();
        sendEvents(ended.events);
        toolCalls = ended.tool_calls;
        // A call the reply broke off (the model stopped inside it) keeps finish_reason 'stop', so a
        // client that parses the arguments of 'tool_calls' replies only always can.
        if (toolCalls.length > 0 && ended.complete && finish === 'stop') finish = 'tool_calls';
      }
      // Discards the steps that ran past the last token taken: the cache then holds `cached`.
      await loop.finish();
      // A hybrid's loop may have rewound before the reply (recurrent-state.ts): the next request evaluates it again.
      if (this.model.position < this.cached.length) this.cached.length = this.model.position;
      if (this.model.position !== this.cached.length) throw new Error(`the cache holds ${this.model.position} tokens, the session ${this.cached.length}`);
    } catch (error) {
      await loop.finish().catch(() => undefined);
      this.invalidateCache();
      throw error;
    }

    const ended = this.now();
    const evaluatedPrompt = prompt.length - common;
    const prefillMs = (firstTokenAt || ended) - started;
    const decodeMs = ended - (firstTokenAt || ended);
    const usage: CompletionUsage = {
      prompt_tokens: prompt.length,
      completion_tokens: generated.length,
      total_tokens: prompt.length + generated.length,
      cached_prompt_tokens: common,
      dropped_messages: dropped,
      ...(lengthLimit ? { length_limit: lengthLimit } : {}),
      time_to_first_token_ms: firstTokenAt ? firstTokenAt - started : 0,
      prefill_tokens_per_second: prefillMs > 0 ? (evaluatedPrompt * 1000) / prefillMs : 0,
      decode_tokens_per_second: decodeMs > 0 && generated.length > 1 ? ((generated.length - 1) * 1000) / decodeMs : 0,
    };
    onChunk?.({
      id,
      object: 'chat.completion.chunk',
      created,
      model: this.options.modelName,
      choices: [
        {
          index: 0,
          delta: {},
          finish_reason: finish,
        },
      ],
      usage,
      context: contextFill(),
    });
    return {
      id,
      object: 'chat.completion',
      created,
      model: this.options.modelName,
      // As OpenAI's: a reply that is only calls has content null.
      choices: [{ index: 0, message: toolCalls.length > 0 ? { role: 'assistant', content: content === '' ? null : content, tool_calls: toolCalls } : { role: 'assistant', content }, finish_reason: finish }],
      usage,
    };
  }
}

/**
 * Where the droppable turns start: [first non-system message, next user message after it, ...,
 * the last user message]. Dropping k turns keeps the messages before the first cut and from cut k
 * on; a turn runs from its start to the next user message (the replies and any system message
 * between them go with it). Fewer than two cuts: nothing can be dropped.
 */
function turnCuts(messages: readonly ChatMessage[]): number[] {
  const first = messages.findIndex((m) => m.role !== 'system');
  const lastUser = messages.map((m) => m.role).lastIndexOf('user');
  if (first < 0 || first >= lastUser) return [];
  const cuts = [first];
  for (let at = first; at < lastUser; ) {
    at++;
    while (at < lastUser && messages[at]!.role !== 'user') at++;
    cuts.push(at);
  }
  return cuts;
}

function toArray(stop: string | string[] | undefined): string[] {
  return stop === undefined ? [] : Array.isArray(stop) ? stop : [stop];
}

function samplingOf(request: ChatCompletionRequest): SamplingParams {
  return {
    temperature: request.temperature ?? DEFAULT_TEMPERATURE,
    topK: request.top_k ?? 40,
    topP: request.top_p ?? 0.95,
    minP: request.min_p ?? 0.05,
  };
}

function penaltiesOf(request: ChatCompletionRequest): PenaltyParams {
  return {
    repetition: request.repetition_penalty ?? NO_PENALTIES.repetition,
    frequency: request.frequency_penalty ?? NO_PENALTIES.frequency,
    presence: request.presence_penalty ?? NO_PENALTIES.presence,
    lastN: NO_PENALTIES.lastN,
  };
}
