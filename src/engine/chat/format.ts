/**
 * Which chat format a model gets, decided once at load from its GGUF metadata, and formatting a
 * conversation with it.
 *
 * Like llama.cpp (common/chat.cpp, common_chat_templates_init; src/llama-model.cpp,
 * llama_model_chat_template):
 * - `tokenizer.chat_template` holding Jinja: that template.
 * - holding the name of a llama.cpp built-in format ("chatml", "llama3", ...): that format.
 * - absent: `tokenizer.chat_template.tool_use` if present; else ChatML, llama.cpp's default, except
 *   llama.cpp's one exception (Mistral Small 2503: tekken pre-tokenizer and 40 layers, "mistral-v7-tekken").
 * A Jinja template our engine cannot parse, or that fails to render a plain exchange, is replaced
 * by llama.cpp's built-in format for its family when llama.cpp's heuristics recognise one. A Jinja
 * template that takes no system message (Gemma's raises "System role not supported") gets the
 * system prompt merged into the next message, as llama.cpp's chat does.
 * When the model's own template is not what formats the chat, the choice carries a `notice` the UI
 * shows ("This model has no chat template; using ChatML").
 */
import { applyBuiltinTemplate, detectBuiltinTemplate, isBuiltinTemplateName, type BuiltinTemplateName } from './builtin.ts';
import { ChatTemplate, ChatTemplateError, type ChatMessage, type RenderChatOptions } from './template.ts';

/** The GGUF metadata the choice reads, as plain values. */
export interface ChatTemplateMetadata {
  /** `tokenizer.chat_template` */
  chatTemplate?: string;
  /** `tokenizer.chat_template.tool_use` (Hermes, Command-R ship a separate template for tool use). */
  toolUseTemplate?: string;
  /** `tokenizer.ggml.pre`, for llama.cpp's one-off default (see the module comment). */
  tokenizerPre?: string;
  /** `{arch}.block_count`, for the same one-off. */
  layerCount?: number;
}

export type ChatFormatSource =
  /** The model's Jinja template. */
  | 'template'
  /** The model's `tokenizer.chat_template` names a llama.cpp built-in format. */
  | 'named'
  /** The model has no chat template; a default is used. */
  | 'default'
  /** The model's template is Jinja that cannot be parsed; the built-in format of its family is used. */
  | 'unparsable'
  /** The model's template parses but fails to render a plain exchange; the built-in format of its family is used. */
  | 'unrenderable';

export type ChatFormat =
  | {
      kind: 'jinja';
      template: ChatTemplate;
      /**
       * The template writes a leading system message. When false, {@link formatChat} merges it into
       * the next message (llama.cpp: caps `supports_system_role`, workaround
       * `system_message_not_supported` in common/chat.cpp).
       */
      systemRole: boolean;
    }
  | { kind: 'builtin'; name: BuiltinTemplateName };

export interface ChatFormatChoice {
  format: ChatFormat;
  source: ChatFormatSource;
  /** The template family for display ("Llama 3", "ChatML"), from llama.cpp's detection; undefined if unknown. */
  family: BuiltinTemplateName | undefined;
  /** A sentence for the user when the model's own template is not used; undefined otherwise. */
  notice: string | undefined;
}

/** ChatML, written as llama.cpp's CHATML_TEMPLATE_SRC (the template it uses when a model has none). */
export const CHATML_TEMPLATE =
  "{%- for message in messages -%}\n" +
  "  {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\n" +
  '{%- endfor -%}\n' +
  '{%- if add_generation_prompt -%}\n' +
  "  {{- '<|im_start|>assistant\\n' -}}\n" +
  '{%- endif -%}';

const LABELS: Partial<Record<BuiltinTemplateName, string>> = {
  chatml: 'ChatML', llama2: 'Llama 2', 'llama2-sys': 'Llama 2', 'llama2-sys-bos': 'Llama 2', 'llama2-sys-strip': 'Llama 2',
  'mistral-v1': 'Mistral v1', 'mistral-v3': 'Mistral v3', 'mistral-v3-tekken': 'Mistral v3 (Tekken)',
  'mistral-v7': 'Mistral v7', 'mistral-v7-tekken': 'Mistral v7 (Tekken)', phi3: 'Phi-3', phi4: 'Phi-4',
  falcon3: 'Falcon 3', zephyr: 'Zephyr', gemma: 'Gemma', llama3: 'Llama 3', llama4: 'Llama 4',
  'command-r': 'Command R', deepseek: 'DeepSeek Coder', deepseek2: 'DeepSeek V2', deepseek3: 'DeepSeek V3',
  granite: 'Granite 3', 'granite-4.0': 'Granite 4.0', 'granite-4.1': 'Granite 4.1', 'gpt-oss': 'gpt-oss (Harmony)',
  'kimi-k2': 'Kimi K2', seed_oss: 'Seed-OSS', exaone3: 'EXAONE 3', exaone4: 'EXAONE 4', chatglm3: 'ChatGLM3',
  chatglm4: 'GLM-4', vicuna: 'Vicuna', 'vicuna-orca': 'Vicuna (Orca)', openchat: 'OpenChat', smolvlm: 'SmolVLM',
};

/** A human name for a format family ("Llama 3"); the llama.cpp name when there is no nicer one. */
export function chatFormatLabel(name: BuiltinTemplateName): string {
  return LABELS[name] ?? name;
}

function fallback(family: BuiltinTemplateName, source: 'unparsable' | 'unrenderable', error: ChatTemplateError): ChatFormatChoice {
  const problem =
    source === 'unparsable' ? 'could not be read' : error.kind === 'limit' ? 'went past the rendering limits' : 'could not be rendered';
  return {
    format: { kind: 'builtin', name: family },
    source,
    family,
    notice: `This model's chat template ${problem} (${error.templateMessage}); using llama.cpp's built-in ${chatFormatLabel(family)} format instead.`,
  };
}

function fromJinja(source: string, origin: 'template' | 'default'): ChatFormatChoice {
  const family = detectBuiltinTemplate(source);
  let template: ChatTemplate;
  try {
    template = new ChatTemplate(source);
  } catch (error) {
    if (!(error instanceof ChatTemplateError) || family === undefined) throw error;
    return fallback(family, 'unparsable', error);
  }
  try {
    // A template our engine cannot run shows it on the simplest exchange. One that raises
    // (rejects the conversation on purpose) is working as written and is kept.
    template.render([{ role: 'user', content: 'Hello' }], { addGenerationPrompt: true, bosToken: '', eosToken: '' });
  } catch (error) {
    if (error instanceof ChatTemplateError && error.kind === 'limit') {
      // Over its limits for one "Hello": hostile or broken, and each render would cost seconds.
      if (family !== undefined) return fallback(family, 'unrenderable', error);
      template.refuse(error);
    } else if (error instanceof ChatTemplateError && error.kind === 'render' && family !== undefined) {
      return fallback(family, 'unrenderable', error);
    }
  }
  return { format: { kind: 'jinja', template, systemRole: takesSystemRole(template) }, source: origin, family, notice: undefined };
}

const SYSTEM_PROBE = 'System message';

/**
 * Whether a template writes a system message, probed as llama.cpp probes it (jinja/caps.cpp: a
 * system and a user message; llama.cpp asks whether the system content was read, we whether it
 * was written). A template that raises on it does not take one; one that fails for other reasons
 * is left as it is.
 */
function takesSystemRole(template: ChatTemplate): boolean {
  try {
    const probe = [{ role: 'system', content: SYSTEM_PROBE }, { role: 'user', content: 'User message' }];
    return template.render(probe, { addGenerationPrompt: false, bosToken: '', eosToken: '' }).includes(SYSTEM_PROBE);
  } catch (error) {
    return !(error instanceof ChatTemplateError && error.kind === 'raised');
  }
}

/**
 * llama.cpp's workaround for templates without a system role: the system message becomes the
 * start of the next message ("system\nnext"), or is dropped when it is the only one.
 */
function mergeSystemMessage(messages: readonly ChatMessage[]): readonly ChatMessage[] {
  if (messages[0]?.role !== 'system') return messages;
  if (messages.length === 1) return [];
  const [system, next, ...rest] = messages;
  return [{ ...next!, content: `${system!.content}\n${next!.content}` }, ...rest];
}

/**
 * Chooses the chat format for a model from its metadata.
 * @throws {ChatTemplateError} when the template is Jinja that cannot be parsed and llama.cpp's
 *   heuristics do not recognise its family either (there is nothing sensible to fall back to). A
 *   template that fails to render and has no known family is kept: formatting will report the error.
 */
export function chooseChatFormat(meta: ChatTemplateMetadata): ChatFormatChoice {
  const own = meta.chatTemplate || undefined;
  // llama.cpp treats a template that is just "chatml" like a missing one, preferring tool_use.
  const source = own === undefined || own === 'chatml' ? meta.toolUseTemplate || own : own;
  if (source !== undefined) {
    if (isBuiltinTemplateName(source)) {
      return { format: { kind: 'builtin', name: source }, source: 'named', family: source, notice: undefined };
    }
    return fromJinja(source, 'template');
  }
  if (meta.tokenizerPre === 'tekken' && meta.layerCount === 40) {
    return {
      format: { kind: 'builtin', name: 'mistral-v7-tekken' },
      source: 'default',
      family: 'mistral-v7-tekken',
      notice: 'This model has no chat template; using Mistral v7 (Tekken), as llama.cpp does for Mistral Small 2503.',
    };
  }
  return {
    ...fromJinja(CHATML_TEMPLATE, 'default'),
    notice: "This model has no chat template; using ChatML (llama.cpp's default). Replies may be poor if the model was trained on another format.",
  };
}

export interface FormatChatOptions extends RenderChatOptions {
  /**
   * The tokenizer adds BOS itself (`tokenizer.ggml.add_bos_token`): a BOS the template writes at
   * the start is removed, so the prompt does not start with two (llama.cpp does the same).
   */
  tokenizerAddsBos?: boolean;
  /** Likewise for an EOS the template writes at the end (`tokenizer.ggml.add_eos_token`). */
  tokenizerAddsEos?: boolean;
}

/**
 * Formats a conversation into the prompt text.
 * @throws {ChatTemplateError} when a Jinja template rejects the conversation or fails to render.
 */
export function formatChat(format: ChatFormat, messages: readonly ChatMessage[], options: FormatChatOptions): string {
  let text =
    format.kind === 'jinja'
      ? format.template.render(format.systemRole ? messages : mergeSystemMessage(messages), options)
      : applyBuiltinTemplate(format.name, messages, options.addGenerationPrompt);
  if (options.tokenizerAddsBos && options.bosToken !== '' && text.startsWith(options.bosToken)) {
    text = text.slice(options.bosToken.length);
  }
  if (options.tokenizerAddsEos && options.eosToken !== '' && text.endsWith(options.eosToken)) {
    text = text.slice(0, text.length - options.eosToken.length);
  }
  return text;
}
