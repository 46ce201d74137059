/**
 * Chat formatting with the model's own template: the Jinja text a GGUF carries in
 * `tokenizer.chat_template`, rendered the way Hugging Face transformers and llama.cpp render it.
 *
 * The context a template sees is llama.cpp's (common/chat.cpp, common_chat_template_direct_apply):
 * `messages`, `bos_token`, `eos_token`, `add_generation_prompt`, and `tools` only when there are
 * tools; plus transformers' globals `raise_exception` and `strftime_now`. Anything else a template
 * reads (`enable_thinking`, `reasoning_effort`, `documents`, ...) goes in `extra`.
 */
import { HearthError } from '../errors.ts';
import { parseTemplate, renderProgram, TemplateLimitError, TemplateRaise } from './jinja-runtime.ts';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

/** A tool call in an assistant message, OpenAI-style. Most templates expect `arguments` as an object. */
export interface ChatToolCall {
  id?: string;
  type: 'function';
  function: { name: string; arguments: Record<string, unknown> | string };
}

/**
 * One message. Fields beyond these (e.g. `reasoning_content`) are passed to the template as they are.
 * For an assistant message that only calls tools, `content` is usually the empty string.
 */
export interface ChatMessage {
  /** One of the usual roles, or another a template knows (Granite's `tool_response`, `document`, ...). */
  role: ChatRole | (string & {});
  content: string;
  tool_calls?: ChatToolCall[];
  /** On a `tool` message: the id of the call it answers. */
  tool_call_id?: string;
  /** On a `tool` message: the name of the tool that answered. */
  name?: string;
  [field: string]: unknown;
}

/** A tool the model may call, in the OpenAI function-tool shape most templates read. */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface RenderChatOptions {
  /** End with the header of an assistant turn, so that the model writes the reply. */
  addGenerationPrompt: boolean;
  /** The text of the BOS token (`''` when the vocabulary has none). */
  bosToken: string;
  /** The text of the EOS token (`''` when the vocabulary has none). */
  eosToken: string;
  /** Tools offered to the model; passed as `tools` only when non-empty, as llama.cpp does. */
  tools?: readonly ChatTool[] | readonly unknown[];
  /** The date `strftime_now` formats (templates print today's date); now when absent. */
  now?: Date;
  /** More template variables, e.g. `{ enable_thinking: false }`. They override the ones above. */
  extra?: Record<string, unknown>;
}

export type ChatTemplateErrorKind =
  /** The template called `raise_exception(message)`: it rejects this conversation (e.g. a system role). */
  | 'raised'
  /** The template text is not Jinja that @huggingface/jinja can parse. */
  | 'syntax'
  /** Rendering failed: an operation on a value of the wrong type, an unsupported filter, ... */
  | 'render'
  /** Rendering went past a bound on steps, time, string or list size (TEMPLATE_LIMITS): untrusted templates cannot freeze the engine. */
  | 'limit';

/**
 * A chat template could not format a conversation. `templateMessage` is the template's own words
 * when it raised (`kind: 'raised'`), otherwise the Jinja engine's message.
 */
export class ChatTemplateError extends HearthError {
  override name = 'ChatTemplateError';
  readonly kind: ChatTemplateErrorKind;
  readonly templateMessage: string;

  constructor(kind: ChatTemplateErrorKind, templateMessage: string) {
    const prefix =
      kind === 'raised'
        ? 'The chat template rejected this conversation'
        : kind === 'syntax'
          ? 'The chat template could not be parsed'
          : kind === 'limit'
            ? 'The chat template was stopped'
            : 'The chat template failed to render';
    super(`${prefix}: ${templateMessage}`, { kind, templateMessage });
    this.kind = kind;
    this.templateMessage = templateMessage;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A template parsed once, to render many conversations. */
export class ChatTemplate {
  readonly source: string;
  private readonly program: ReturnType<typeof parseTemplate>;
  /** Set by `refuse`: every render fails with this at once, without running the template. */
  private refusal: ChatTemplateError | undefined;

  /** @throws {ChatTemplateError} kind `syntax` when the text is not Jinja the engine accepts. */
  constructor(source: string) {
    this.source = source;
    try {
      this.program = parseTemplate(source);
    } catch (error) {
      throw new ChatTemplateError('syntax', messageOf(error));
    }
  }

  /** The variables the template sees for these messages and options. */
  static context(messages: readonly ChatMessage[], options: RenderChatOptions): Record<string, unknown> {
    const context: Record<string, unknown> = {
      messages,
      bos_token: options.bosToken,
      eos_token: options.eosToken,
      add_generation_prompt: options.addGenerationPrompt,
    };
    if (options.tools !== undefined && options.tools.length > 0) context.tools = options.tools;
    return { ...context, ...options.extra };
  }

  /**
   * From now on every render throws `error` at once. For a template that went past its limits
   * on the simplest exchange: it would spend the whole render budget (seconds) on every chat.
   */
  refuse(error: ChatTemplateError): void {
    this.refusal = error;
  }

  /** @throws {ChatTemplateError} kind `raised`, `render` or `limit`. */
  render(messages: readonly ChatMessage[], options: RenderChatOptions): string {
    if (this.refusal) throw this.refusal;
    // A JSON round trip gives the template plain data (no prototypes, no undefined fields, no shared
    // objects), as Python's jinja2 gets from transformers.
    const context = JSON.parse(JSON.stringify(ChatTemplate.context(messages, options))) as Record<string, unknown>;
    try {
      return renderProgram(this.program, { context, now: options.now ?? new Date() });
    } catch (error) {
      if (error instanceof TemplateRaise) throw new ChatTemplateError('raised', error.templateMessage);
      if (error instanceof TemplateLimitError) throw new ChatTemplateError('limit', error.message);
      throw new ChatTemplateError('render', messageOf(error));
    }
  }
}

/**
 * Formats a conversation with a Jinja chat template.
 * @throws {ChatTemplateError} when the template cannot be parsed, raises, or fails to render.
 */
export function renderChat(template: string, messages: readonly ChatMessage[], options: RenderChatOptions): string {
  return new ChatTemplate(template).render(messages, options);
}
