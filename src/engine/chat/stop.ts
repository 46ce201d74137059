/**
 * When generation stops: the token ids that end the assistant's turn, and the text that does.
 *
 * The ids are llama.cpp's end-of-generation set (src/llama-vocab.cpp, `special_eog_ids`), computed
 * the same way from the same metadata, plus the token the chat format writes right after an
 * assistant reply when llama.cpp's list misses it (Command-R's `<|END_OF_TURN_TOKEN|>`, Llama 4's
 * `<|eot|>`, EXAONE's `[|endofturn|]`, ...). llama.cpp decides by token text, "which is obviously
 * not ideal" (its words, issue 9606); the template tells us what this model actually ends a turn with.
 */
import { applyBuiltinTemplate } from './builtin.ts';
import type { ChatFormat } from './format.ts';
import type { ChatMessage } from './template.ts';

/** GGUF token types (`tokenizer.ggml.token_type`), as llama.cpp's llama_token_type. */
export const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** The vocabulary metadata the stop rules read, as plain values (ids as stored; absent when the key is). */
export interface StopVocab {
  /** `tokenizer.ggml.tokens` */
  tokens: readonly string[];
  /** `tokenizer.ggml.token_type`; when absent, tokens shaped like `<...>` or `[...]` count as markers. */
  tokenTypes?: ArrayLike<number>;
  /**
   * `tokenizer.ggml.model`: decides the default EOS id when `eosTokenId` is absent, as in llama.cpp
   * ("llama" 2, "gpt2" 11, "t5" 1). Without it there is no default.
   */
  model?: string;
  /** `tokenizer.ggml.bos_token_id` */
  bosTokenId?: number;
  /** `tokenizer.ggml.eos_token_id` */
  eosTokenId?: number;
  /** `tokenizer.ggml.eot_token_id` */
  eotTokenId?: number;
  /** `tokenizer.ggml.eom_token_id` */
  eomTokenId?: number;
  /** `tokenizer.ggml.fim_pad_token_id`, `fim_rep_token_id`, `fim_sep_token_id`: llama.cpp ends generation on these too. */
  fimPadTokenId?: number;
  fimRepTokenId?: number;
  fimSepTokenId?: number;
}

/** Token texts llama.cpp treats as end of generation wherever they are in the vocabulary. */
const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>',
  '<end_of_utterance>', '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
]);

/** Texts llama.cpp recognises as FIM pad / repo / file-separator tokens when the metadata names none. */
const FIM_PAD_TEXTS = ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'];
const FIM_REP_TEXTS = ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'];
const FIM_SEP_TEXTS = ['<|file_sep|>'];

/** llama.cpp's default EOS per tokenizer model, used when the file has no `eos_token_id`. */
const DEFAULT_EOS: Record<string, number | undefined> = { llama: 2, gpt2: 11, hybriddna: 11, whitespace: 11, t5: 1, plamo2: 2 };

function defaultEos(vocab: StopVocab): number | undefined {
  return vocab.model !== undefined && Object.hasOwn(DEFAULT_EOS, vocab.model) ? DEFAULT_EOS[vocab.model] : undefined;
}

function validId(vocab: StopVocab, id: number | undefined): number | undefined {
  return id !== undefined && Number.isInteger(id) && id >= 0 && id < vocab.tokens.length ? id : undefined;
}

/** The special id llama.cpp ends up with: the metadata's if in range, else the default if in range. */
function specialId(vocab: StopVocab, fromMetadata: number | undefined, fallback: number | undefined): number | undefined {
  return validId(vocab, fromMetadata) ?? validId(vocab, fallback);
}

/** llama.cpp's text auto-detection: one token (here the lowest id) among the candidate texts. */
function detectByText(vocab: StopVocab, texts: readonly string[]): number | undefined {
  const wanted = new Set(texts);
  const index = vocab.tokens.findIndex((t) => wanted.has(t));
  return index < 0 ? undefined : index;
}

/** llama.cpp's two corrections to the text rule, applied after everything is added. */
function applyLlamaCppExclusions(vocab: StopVocab, ids: Set<number>): void {
  const texts = new Map<string, number>();
  for (const id of ids) texts.set(vocab.tokens[id]!, id);
  // o200k_harmony (gpt-oss) and solar-open: <|end|> ends a message inside the turn, not the turn.
  const hasReturn = texts.has('<|return|>');
  const hasCall = texts.has('<|call|>') || texts.has('<|calls|>');
  const hasFlush = texts.has('<|flush|>');
  const end = texts.get('<|end|>');
  if (end !== undefined && ((hasReturn && hasCall) || (hasCall && hasFlush))) ids.delete(end);
  // Gemma 4 and PaddleOCR: </s> is not an end of generation there.
  const s = texts.get('</s>');
  if (s !== undefined && texts.has('<|tool_response>')) ids.delete(s);
}

/** llama.cpp's `special_eog_ids` for this vocabulary, sorted. */
export function llamaCppEndOfGenerationIds(vocab: StopVocab): number[] {
  const ids = new Set<number>();
  const fim = [
    specialId(vocab, vocab.fimPadTokenId, undefined) ?? detectByText(vocab, FIM_PAD_TEXTS),
    specialId(vocab, vocab.fimRepTokenId, undefined) ?? detectByText(vocab, FIM_REP_TEXTS),
    specialId(vocab, vocab.fimSepTokenId, undefined) ?? detectByText(vocab, FIM_SEP_TEXTS),
  ];
  for (const id of fim) if (id !== undefined) ids.add(id);
  vocab.tokens.forEach((text, id) => {
    if (EOG_TEXTS.has(text)) ids.add(id);
  });
  const named = [
    specialId(vocab, vocab.eosTokenId, defaultEos(vocab)),
    specialId(vocab, vocab.eotTokenId, undefined),
    specialId(vocab, vocab.eomTokenId, undefined),
  ];
  for (const id of named) if (id !== undefined) ids.add(id);
  applyLlamaCppExclusions(vocab, ids);
  return [...ids].sort((a, b) => a - b);
}

const PROBE_USER = 'Hearth probe question';
const PROBE_REPLY = 'Hearth-probe-reply';

/**
 * What a chat format writes right after an assistant reply (e.g. `<|im_end|>\n`, `<|eot_id|>`,
 * `<end_of_turn>\n`), found by formatting a one-exchange conversation; undefined when the format
 * cannot format it or drops the reply.
 */
export function assistantTurnSuffix(format: ChatFormat, tokens: { bosToken: string; eosToken: string }): string | undefined {
  const messages: ChatMessage[] = [
    { role: 'user', content: PROBE_USER },
    { role: 'assistant', content: PROBE_REPLY },
  ];
  let text: string;
  try {
    text =
      format.kind === 'jinja'
        ? format.template.render(messages, { addGenerationPrompt: false, ...tokens })
        : applyBuiltinTemplate(format.name, messages, false);
  } catch {
    // A template that cannot format this exchange says nothing about how turns end.
    return undefined;
  }
  const at = text.lastIndexOf(PROBE_REPLY);
  return at < 0 ? undefined : text.slice(at + PROBE_REPLY.length);
}

export interface EndOfGeneration {
  /** Every token id that ends generation, sorted. */
  ids: number[];
  /** The ones llama.cpp marks (its `special_eog_ids`). */
  llamaCppIds: number[];
  /** The token the chat format writes first after a reply (e.g. `<|eot_id|>`), if it is one token of this vocabulary. */
  turnEndToken: number | undefined;
  /** {@link turnEndToken} when llama.cpp's set lacks it, so that it was added to `ids`. */
  fromTemplate: number | undefined;
  /** What the format writes after a reply (see {@link assistantTurnSuffix}). */
  turnSuffix: string | undefined;
  /**
   * The text that ends a turn: the text of {@link turnEndToken}, or when the suffix starts with no
   * token of this vocabulary, the suffix without surrounding whitespace (e.g. "<|im_end|>" for the
   * ChatML default on a vocabulary without that token). Undefined when the suffix is only
   * whitespace, or starts with a token llama.cpp rules out as an end (gpt-oss's `<|end|>`).
   */
  turnEndText: string | undefined;
}

/**
 * Tokens that can mark a turn's end: control and user-defined tokens; when the file has no token
 * types, tokens that look like markers (`<...>`, `[...]`).
 */
function isMarkerToken(vocab: StopVocab, id: number): boolean {
  if (!vocab.tokenTypes) return /^[<[].*[>\]]$/s.test(vocab.tokens[id] ?? '');
  const type = vocab.tokenTypes[id];
  return type === TokenType.control || type === TokenType.userDefined;
}

/** The longest marker token the text starts with, after leading whitespace. */
function leadingMarker(vocab: StopVocab, text: string): number | undefined {
  const trimmed = text.replace(/^[ \t\n\r]+/, '');
  let best: number | undefined;
  vocab.tokens.forEach((token, id) => {
    if (token.length < 2 || !trimmed.startsWith(token) || !isMarkerToken(vocab, id)) return;
    if (best === undefined || token.length > vocab.tokens[best]!.length) best = id;
  });
  return best;
}

/** The text of a token id, or '' when there is none (as llama.cpp passes bos_token/eos_token). */
export function tokenText(vocab: StopVocab, id: number | undefined): string {
  return id === undefined ? '' : (vocab.tokens[id] ?? '');
}

/**
 * The token ids that end the assistant's turn for this vocabulary and chat format.
 * Without a format, llama.cpp's set alone.
 */
export function endOfGenerationTokens(vocab: StopVocab, format?: ChatFormat): EndOfGeneration {
  const llamaCppIds = llamaCppEndOfGenerationIds(vocab);
  const tokens = {
    bosToken: tokenText(vocab, specialId(vocab, vocab.bosTokenId, undefined)),
    eosToken: tokenText(vocab, specialId(vocab, vocab.eosTokenId, defaultEos(vocab))),
  };
  const turnSuffix = format ? assistantTurnSuffix(format, tokens) : undefined;
  const marker = turnSuffix === undefined ? undefined : leadingMarker(vocab, turnSuffix);
  const ids = new Set(llamaCppIds);
  let turnEndToken = marker;
  let fromTemplate: number | undefined;
  if (marker !== undefined && !ids.has(marker)) {
    ids.add(marker);
    // llama.cpp's exclusions win over the template (gpt-oss's <|end|> closes a message, not the turn).
    applyLlamaCppExclusions(vocab, ids);
    if (ids.has(marker)) fromTemplate = marker;
    else turnEndToken = undefined;
  }
  let turnEndText: string | undefined;
  if (turnEndToken !== undefined) turnEndText = vocab.tokens[turnEndToken];
  else if (marker === undefined) turnEndText = turnSuffix?.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '') || undefined;
  return { ids: [...ids].sort((a, b) => a - b), llamaCppIds, turnEndToken, fromTemplate, turnSuffix, turnEndText };
}

/**
 * Text that ends the reply if the model writes it as text rather than as the special token: the
 * format's {@link EndOfGeneration.turnEndText} and the texts of the end-of-generation marker tokens.
 * Longest first, no duplicates. A format whose turns end in whitespace only (RWKV World's "\n\n")
 * gives no string of its own: its vocabulary's EOT token covers it.
 */
export function stopStrings(vocab: StopVocab, eog: EndOfGeneration): string[] {
  const out = new Set<string>();
  if (eog.turnEndText) out.add(eog.turnEndText);
  for (const id of eog.ids) {
    const text = vocab.tokens[id];
    if (text && isMarkerToken(vocab, id)) out.add(text);
  }
  return [...out].sort((a, b) => b.length - a.length);
}
