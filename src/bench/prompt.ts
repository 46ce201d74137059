/**
 * The benchmark's prompts, in the vocabulary of models.ts `benchVocab` (platform-agnostic: the page
 * and every runner use them).
 */

/** Token ids of the single-letter word pieces "▁e", "▁t", ...: one token per word of a {@link benchPrompt}. */
export const WORD_LETTERS = 'etaoinshrdlucmfwypvbgkjqxz';
export const FIRST_WORD_ID = 3 + 256;

/**
 * A prompt of `n` tokens (BOS, then n - 1 one-letter words), as ids and as the text that
 * tokenizes to them. `variant` changes the first word, so a runtime that caches prompt prefixes
 * (llama-server in wllama) evaluates every run's prompt in full.
 */
export function benchPrompt(n: number, variant = 0): { ids: number[]; text: string } {
  const ids = [1];
  const words: string[] = [];
  for (let i = 0; i < n - 1; i++) {
    const w = (i * 7 + (i === 0 ? variant : 0)) % 26;
    ids.push(FIRST_WORD_ID + w);
    words.push(WORD_LETTERS[w]!);
  }
  return { ids, text: words.join(' ') };
}
