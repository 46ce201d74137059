/**
 * A request's output constraint: the grammar its response_format, grammar or tool_choice asks for, and the
 * vocabulary a constraint walks (token byte strings in a trie, built once per tokenizer).
 */
import type { ChatCompletionRequest } from '../api.ts';
import { anyJsonObjectGbnf, jsonSchemaToGbnf, parseGbnf, TokenTrie, type ConstraintVocabulary, type Grammar } from '../grammar/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { toolCallGbnf, type ToolCallFormat } from './tool-calls.ts';

export { GrammarError, UnsupportedSchemaError } from '../grammar/index.ts';

/**
 * The grammar a request constrains its reply to, or undefined; throws GrammarError /
 * UnsupportedSchemaError. tool_choice 'required' or a named function: one call, in the model's
 * `toolFormat`, to one of the tools it allows.
 */
export function requestGrammar(
  request: Pick<ChatCompletionRequest, 'response_format' | 'grammar' | 'tools' | 'tool_choice'>,
  toolFormat: ToolCallFormat = 'hermes',
): Grammar | undefined {
  const forced = forcedTools(request);
  if (forced) return parseGbnf(toolCallGbnf(forced, toolFormat));
  if (request.grammar !== undefined) return parseGbnf(request.grammar);
  const format = request.response_format;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return parseGbnf(anyJsonObjectGbnf());
  return parseGbnf(jsonSchemaToGbnf(format.json_schema.schema ?? true));
}

/** Per tokenizer, per set of kept control tokens (their ids joined), the built vocabulary. */
const vocabularies = new WeakMap<Tokenizer, Map<string, { trie: TokenTrie; pieces: Array<Uint8Array | null> }>>();

/**
 * The vocabulary of `tokenizer` for constraints: each token's bytes, except special and control
 * tokens (their text is markup, not the model writing), which a grammar never allows, but for
 * `keptTokens` (a tool-call marker such as `[TOOL_CALLS]`), which count as their text; `endTokens`
 * are allowed once the grammar is complete.
 */
export function constraintVocabulary(tokenizer: Tokenizer, endTokens: readonly number[], keptTokens: ReadonlySet<number> = new Set()): ConstraintVocabulary {
  let byKept = vocabularies.get(tokenizer);
  if (!byKept) vocabularies.set(tokenizer, (byKept = new Map()));
  const key = [...keptTokens].sort((a, b) => a - b).join(',');
  let built = byKept.get(key);
  if (!built) {
    const pieces = Array.from({ length: tokenizer.size }, (_, id) => {
      const piece = tokenizer.tokenToPiece(id, { special: keptTokens.has(id) });
      return piece.length > 0 ? piece : null;
    });
    built = { trie: TokenTrie.build(pieces), pieces };
    byKept.set(key, built);
  }
  return { ...built, endTokens };
}

/** The tools a reply must call one of (tool_choice 'required' or a named function), or undefined. */
export function forcedTools(request: Pick<ChatCompletionRequest, 'tools' | 'tool_choice'>) {
  const choice = request.tool_choice;
  const tools = (request.tools ?? []).map((t) => t.function);
  if (tools.length === 0 || choice === undefined || choice === 'none' || choice === 'auto') return undefined;
  return choice === 'required' ? tools : tools.filter((t) => t.name === choice.function.name);
}
