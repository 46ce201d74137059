/**
 * Text to text with an encoder-decoder model (T5, Flan-T5): the input is encoded once, then the
 * decoder generates from the model's decoder start token, one token per step, until an
 * end-of-generation token or `maxTokens`. Sampling is the engine's chain (llama.cpp's default)
 * on the host, drawn from a seeded generator, so a seed reproduces the output.
 */
import type { T5Model } from '../model/t5-forward.ts';
import { sampleRow } from '../sampling/chain.ts';
import type { SamplingParams } from '../sampling/params.ts';
import { SeededRandom, randomSeed } from './rng.ts';

export interface T5TransformOptions {
  /** Most tokens to generate (the end token not counted). */
  maxTokens: number;
  sampling: SamplingParams;
  seed?: number;
  /** Ids that end the output (the tokenizer's end-of-generation set). */
  isEnd: (id: number) => boolean;
  /** Each generated token as it comes (end token excluded); return (or resolve to) true to stop. */
  onToken?: (id: number) => boolean | void | Promise<boolean | void>;
}

export interface T5TransformResult {
  tokens: number[];
  finishReason: 'stop' | 'length';
  seed: number;
}

export async function t5Transform(model: T5Model, input: readonly number[], options: T5TransformOptions): Promise<T5TransformResult> {
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 0) throw new RangeError(`maxTokens must be a non-negative integer, got ${options.maxTokens}`);
  const seed = options.seed ?? randomSeed();
  const rng = new SeededRandom(seed);
  await model.encode(input);
  const tokens: number[] = [];
  let next = model.config.decoderStart;
  // The decoder's cache bounds the output: the start token takes one position.
  const room = Math.min(options.maxTokens, model.kv.capacity - 1);
  while (tokens.length < room) {
    const logits = await model.decode([next]);
    next = sampleRow(logits, options.sampling, rng.nextFloat());
    if (options.isEnd(next)) return { tokens, finishReason: 'stop', seed };
    tokens.push(next);
    if ((await options.onToken?.(next)) === true) return { tokens, finishReason: 'stop', seed };
  }
  return { tokens, finishReason: 'length', seed };
}
