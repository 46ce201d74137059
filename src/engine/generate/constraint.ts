/**
 * A request's output constraint: the grammar its response_format or grammar asks for, and the
 * vocabulary a constraint walks (token byte strings in a trie, built once per tokenizer).
 */
import type { ChatCompletionRequest } from '../api.ts';
import { anyJsonObjectGbnf, jsonSchemaToGbnf, parseGbnf, TokenTrie, type ConstraintVocabulary, type Grammar } from '../grammar/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

export { GrammarError, UnsupportedSchemaError } from '../grammar/index.ts';

/** The grammar a request constrains its reply to, or undefined; throws GrammarError / UnsupportedSchemaError. */
export function requestGrammar(request: Pick<ChatCompletionRequest, 'response_format' | 'grammar'>): Grammar | undefined {
  if (request.grammar !== undefined) return parseGbnf(request.grammar);
  const format = request.response_format;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return parseGbnf(anyJsonObjectGbnf());
  return parseGbnf(jsonSchemaToGbnf(format.json_schema.schema ?? true));
}

const vocabularies = new WeakMap<Tokenizer, { trie: TokenTrie; pieces: Array<Uint8Array | null> }>();

/**
 * The vocabulary of `tokenizer` for constraints: each token's bytes, except special and control
 * tokens (their text is markup, not the model writing), which a grammar never allows; `endTokens`
 * are allowed once the grammar is complete.
 */
export function constraintVocabulary(tokenizer: Tokenizer, endTokens: readonly number[]): ConstraintVocabulary {
  let built = vocabularies.get(tokenizer);
  if (!built) {
    const pieces = Array.from({ length: tokenizer.size }, (_, id) => {
      const piece = tokenizer.tokenToPiece(id);
      return piece.length > 0 ? piece : null;
    });
    built = { trie: TokenTrie.build(pieces), pieces };
    vocabularies.set(tokenizer, built);
  }
  return { ...built, endTokens };
}
