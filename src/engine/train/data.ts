/**
 * Training data: texts and conversations turned into windows of tokens with a loss weight per
 * predicted token. Plain text (and Markdown) is tokenized and packed: consecutive windows share one
 * token so every token after the first is predicted exactly once. Conversations are rendered with
 * the model's chat template and only the assistant turns are trained (weight 1; the rest 0). Windows
 * are split into train and held-out parts, the held-out ones taken evenly through the data.
 */
import type { ChatMessage } from '../chat/template.ts';
import { TrainingDataError } from './errors.ts';

/** A window of tokens; `weights[t]` weighs the prediction of tokens[t + 1] (length tokens.length - 1). */
export interface TrainingWindow {
  tokens: number[];
  weights: Float64Array;
}

/** text -> ids; `first` is true for a document's first piece (the only place BOS may go). */
export type Encode = (text: string, first: boolean) => number[];

/** A conversation as prompt text: `addGenerationPrompt` ends with an assistant turn's header. */
export type RenderChat = (messages: readonly ChatMessage[], addGenerationPrompt: boolean) => string;

/** Cuts a token stream into windows of `window` tokens overlapping by one; a short tail is kept when it predicts at least one token. */
export function packTokens(tokens: readonly number[], weights: ArrayLike<number> | undefined, window: number): TrainingWindow[] {
  if (!Number.isInteger(window) || window < 2) throw new TrainingDataError(`the window must be an integer >= 2 tokens, got ${window}`, { window });
  const out: TrainingWindow[] = [];
  for (let start = 0; start + 1 < tokens.length; start += window - 1) {
    const end = Math.min(tokens.length, start + window);
    const w = new Float64Array(end - start - 1);
    for (let t = 0; t < w.length; t++) w[t] = weights ? weights[start + t]! : 1;
    if (w.some((x) => x > 0)) out.push({ tokens: tokens.slice(start, end), weights: w });
  }
  return out;
}

/** Each text tokenized (BOS as the tokenizer adds it) and packed into windows. */
export function textWindows(texts: readonly string[], encode: Encode, window: number): TrainingWindow[] {
  const out: TrainingWindow[] = [];
  for (const text of texts) {
    if (text.trim() === '') continue;
    out.push(...packTokens(encode(text, true), undefined, window));
  }
  if (out.length === 0) throw new TrainingDataError('the training text is empty', {});
  return out;
}

/**
 * Tokens of a conversation with weight 1 on the assistant turns' tokens (as targets), 0 elsewhere.
 * Each assistant turn is the text the template adds between the conversation up to it with the
 * generation prompt and the conversation through it.
 */
export function conversationTokens(messages: readonly ChatMessage[], render: RenderChat, encode: Encode): { tokens: number[]; weights: number[] } {
  const tokens: number[] = [];
  const targetWeight: number[] = []; // per token: 1 when it is to be predicted
  let covered = 0;
  const push = (text: string, weight: number) => {
    if (text === '') return;
    const ids = encode(text, tokens.length === 0);
    for (const id of ids) {
      tokens.push(id);
      targetWeight.push(weight);
    }
  };
  let full = '';
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.role !== 'assistant') continue;
    const prompt = render(messages.slice(0, i), true);
    full = render(messages.slice(0, i + 1), false);
    if (!full.startsWith(prompt) || prompt.length < covered) {
      throw new TrainingDataError(`the chat template does not render assistant turn ${i} as an extension of the conversation before it; it cannot be masked`, { message: i });
    }
    push(prompt.slice(covered), 0);
    push(full.slice(prompt.length), 1);
    covered = full.length;
  }
  if (covered === 0) throw new TrainingDataError('the conversation has no assistant turn to train on', {});
  // weights[t] weighs predicting tokens[t + 1].
  return { tokens, weights: targetWeight.slice(1) };
}

/** Conversations as windows trained on assistant turns only. */
export function chatWindows(conversations: readonly (readonly ChatMessage[])[], render: RenderChat, encode: Encode, window: number): TrainingWindow[] {
  const out: TrainingWindow[] = [];
  for (const c of conversations) {
    const { tokens, weights } = conversationTokens(c, render, encode);
    out.push(...packTokens(tokens, weights, window));
  }
  if (out.length === 0) throw new TrainingDataError('the conversations have nothing to train on', {});
  return out;
}

/** Every k-th window held out (k from the fraction), at least one of each part when there are two or more windows. */
export function splitHeldOut(windows: readonly TrainingWindow[], fraction: number): { train: TrainingWindow[]; heldOut: TrainingWindow[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new TrainingDataError(`the held-out fraction must be in [0, 1), got ${fraction}`, { fraction });
  if (fraction === 0 || windows.length < 2) return { train: [...windows], heldOut: [] };
  const count = Math.min(windows.length - 1, Math.max(1, Math.round(windows.length * fraction)));
  const every = windows.length / count;
  const held = new Set<number>();
  for (let k = 0; k < count; k++) held.add(Math.min(windows.length - 1, Math.floor(k * every + every / 2)));
  return { train: windows.filter((_, i) => !held.has(i)), heldOut: windows.filter((_, i) => held.has(i)) };
}
