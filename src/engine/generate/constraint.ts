/**
 * A request's output constraint: the grammar its response_format, grammar or tool_choice asks for, and the
 * vocabulary a constraint walks (token byte strings in a trie, built once per tokenizer).
 */
import type { ChatCompletionRequest } from '../api.ts';
import { anyJsonObjectGbnf, CompiledGrammar, jsonSchemaToGbnf, parseGbnf, TokenTrie, type ConstraintVocabulary, type Grammar } from '../grammar/index.ts';
import { ATTR, type Tokenizer } from '../tokenizer/index.ts';
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
  const gbnf = requestGbnf(request, toolFormat);
  return gbnf === undefined ? undefined : parseGbnf(gbnf);
}

/** The GBNF text of the grammar {@link requestGrammar} parses (the key of the compiled-grammar cache). */
export function requestGbnf(
  request: Pick<ChatCompletionRequest, 'response_format' | 'grammar' | 'tools' | 'tool_choice'>,
  toolFormat: ToolCallFormat = 'hermes',
): string | undefined {
  const forced = forcedTools(request);
  if (forced) return toolCallGbnf(forced, toolFormat);
  if (request.grammar !== undefined) return request.grammar;
  const format = request.response_format;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return anyJsonObjectGbnf();
  return jsonSchemaToGbnf(format.json_schema.schema ?? true);
}

/** Grammars compiled per tokenizer, most recently used last; a few, since each holds its masks. */
const compiledGrammars = new WeakMap<Tokenizer, Map<string, CompiledGrammar>>();
const MAX_COMPILED_GRAMMARS = 8;
/** Masks per compiled grammar at most: 2048 masks of a 152k vocabulary are 39 MB. */
const MAX_MASKS_PER_GRAMMAR = 2048;

/**
 * `gbnf` compiled for `tokenizer`, shared across requests: the automaton and the per-state masks
 * built by one request serve every later request with the same grammar (a schema an app sends with
 * every message pays its trie walks once). Throws GrammarError as parseGbnf does.
 */
export function compiledGrammar(
  tokenizer: Tokenizer,
  endTokens: readonly number[],
  gbnf: string,
  keptTokens: ReadonlySet<number> = new Set(),
): CompiledGrammar {
  let cache = compiledGrammars.get(tokenizer);
  if (!cache) compiledGrammars.set(tokenizer, (cache = new Map()));
  // The end tokens are in the masks of accepting states and the kept tokens in the vocabulary the
  // masks are built over, so both are part of the key.
  const kept = [...keptTokens].sort((a, b) => a - b).join(',');
  const key = `${endTokens.join(',')}\n${kept}\n${gbnf}`;
  let compiled = cache.get(key);
  if (compiled) cache.delete(key);
  else compiled = new CompiledGrammar(parseGbnf(gbnf), constraintVocabulary(tokenizer, endTokens, keptTokens), MAX_MASKS_PER_GRAMMAR);
  cache.set(key, compiled);
  if (cache.size > MAX_COMPILED_GRAMMARS) cache.delete(cache.keys().next().value!);
  return compiled;
}

/** Per tokenizer, per set of kept control tokens (their ids joined), the built vocabulary. */
const vocabularies = new WeakMap<Tokenizer, Map<string, { trie: TokenTrie; pieces: Array<Uint8Array | null> }>>();

/**
 * Token attributes a grammar never allows: control, unknown and unused tokens, and user-defined ones
 * (the added tokens of a vocabulary, such as Qwen2's `[PAD151646]` padding or a chat template's
 * markers), whose text is markup rather than the model writing. Their text, when a grammar wants it,
 * is still reachable through ordinary tokens.
 */
const NEVER_ALLOWED = ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN | ATTR.UNUSED;

/**
 * The vocabulary of `tokenizer` for constraints: each token's bytes, except the tokens of
 * {@link NEVER_ALLOWED} kinds, which a grammar never allows, but for `keptTokens` (a tool-call
 * marker such as `[TOOL_CALLS]`), which count as their text; `endTokens` are allowed once the
 * grammar is complete.
 */
export function constraintVocabulary(tokenizer: Tokenizer, endTokens: readonly number[], keptTokens: ReadonlySet<number> = new Set()): ConstraintVocabulary {
  let byKept = vocabularies.get(tokenizer);
  if (!byKept) vocabularies.set(tokenizer, (byKept = new Map()));
  const key = [...keptTokens].sort((a, b) => a - b).join(',');
  let built = byKept.get(key);
  if (!built) {
    const pieces = Array.from({ length: tokenizer.size }, (_, id) => {
      const kept = keptTokens.has(id);
      if (!kept && tokenizer.tokenAttr(id) & NEVER_ALLOWED) return null;
      const piece = tokenizer.tokenToPiece(id, { special: kept });
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
