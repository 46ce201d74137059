/**
 * Chat formatting: the model's own Jinja template (`tokenizer.chat_template`) rendered as Python's
 * jinja2 renders it for Hugging Face transformers, llama.cpp's built-in formats for templates given
 * by name, a reported default (ChatML) for models without one, and the tokens and text that end a turn.
 */
export {
  ChatTemplate,
  ChatTemplateError,
  renderChat,
  type ChatMessage,
  type ChatRole,
  type ChatTool,
  type ChatToolCall,
  type ChatTemplateErrorKind,
  type RenderChatOptions,
} from './template.ts';
export {
  BUILTIN_TEMPLATE_NAMES,
  applyBuiltinTemplate,
  detectBuiltinTemplate,
  isBuiltinTemplateName,
  type BuiltinTemplateName,
  type BuiltinTurn,
} from './builtin.ts';
export {
  CHATML_TEMPLATE,
  chatFormatLabel,
  chooseChatFormat,
  formatChat,
  type ChatFormat,
  type ChatFormatChoice,
  type ChatFormatSource,
  type ChatTemplateMetadata,
  type FormatChatOptions,
} from './format.ts';
export {
  TokenType,
  assistantTurnSuffix,
  endOfGenerationTokens,
  llamaCppEndOfGenerationIds,
  stopStrings,
  tokenText,
  type EndOfGeneration,
  type StopVocab,
} from './stop.ts';
export { strftime } from './strftime.ts';
export { chatTemplateMetadata, stopVocab } from './metadata.ts';
