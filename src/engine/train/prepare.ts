/**
 * Training data as the app and the CLI hand it over (texts, conversations) turned into windows for
 * one model: texts tokenized as plain text, conversations rendered with the model's own chat
 * template (or the format the chat uses when it has none) and trained on the assistant turns only.
 */
import { chatTemplateMetadata, chooseChatFormat, formatChat, stopVocab, tokenText, type ChatMessage } from '../chat/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { chatWindows, textWindows, type TrainingWindow } from './data.ts';
import { TrainingDataError } from './errors.ts';

export interface TrainingData {
  /** Plain text or Markdown documents, trained on every token. */
  texts?: string[];
  /** Conversations ({role, content} messages), trained on the assistant turns. */
  conversations?: Array<Array<{ role: string; content: string }>>;
}

type Metadata = ReadonlyMap<string, unknown>;

/** Windows of `window` tokens from the texts and the conversations, in that order. */
export function trainingWindows(data: TrainingData, metadata: Metadata, tokenizer: Tokenizer, window: number): TrainingWindow[] {
  const texts = data.texts ?? [];
  const conversations = data.conversations ?? [];
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === 'string')) throw new TrainingDataError("'texts' must be an array of strings", { param: 'texts' });
  if (!Array.isArray(conversations) || !conversations.every((c) => Array.isArray(c) && c.every((m) => m && typeof m.role === 'string' && typeof m.content === 'string'))) {
    throw new TrainingDataError("'conversations' must be arrays of {role, content} messages", { param: 'conversations' });
  }
  const windows: TrainingWindow[] = [];
  const nonEmpty = texts.filter((t) => t.trim() !== '');
  if (nonEmpty.length > 0) windows.push(...textWindows(nonEmpty, (text, first) => tokenizer.encode(text, { addSpecial: first, parseSpecial: false }), window));
  if (conversations.length > 0) {
    const choice = chooseChatFormat(chatTemplateMetadata(metadata));
    const vocab = stopVocab(metadata);
    const bosToken = vocab ? tokenText(vocab, vocab.bosTokenId) : '';
    const eosToken = vocab ? tokenText(vocab, vocab.eosTokenId) : '';
    const render = (messages: readonly ChatMessage[], addGenerationPrompt: boolean) => formatChat(choice.format, messages, { addGenerationPrompt, bosToken, eosToken, tokenizerAddsBos: true });
    // The template's own special tokens (turn markers) are parsed as the chat parses them.
    const encode = (text: string, first: boolean) => tokenizer.encode(text, { addSpecial: first, parseSpecial: true });
    windows.push(...chatWindows(conversations as ChatMessage[][], render, encode, window));
  }
  if (windows.length === 0) throw new TrainingDataError('there is nothing to train on: no text and no conversation', { param: 'data' });
  return windows;
}

/** FNV-1a over the windows' tokens and which predictions count: a resumed run checks it has the same data. */
export function windowsFingerprint(windows: readonly TrainingWindow[]): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h ^= x & 0xffff;
    h = Math.imul(h, 0x01000193);
    h ^= x >>> 16;
    h = Math.imul(h, 0x01000193);
  };
  for (const w of windows) {
    mix(w.tokens.length);
    for (const t of w.tokens) mix(t);
    for (const x of w.weights) mix(x > 0 ? 1 : 0);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
