/**
 * Tool calls in the model's own format, both ways: the grammar that makes a reply one call to a
 * given tool (tool_choice 'required' or a named function), and the parser that turns a finished
 * reply into OpenAI-shaped `tool_calls`. Formats (as llama.cpp's common/chat.cpp reads them):
 * - 'hermes': Hermes / Qwen2.5 / Qwen3 / Granite 4, `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`,
 *   one block per call;
 * - 'llama3': Llama 3.x, a bare JSON object `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`;
 * - 'mistral-nemo': Mistral Nemo / v0.3, `[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "<9 alphanumerics>"}]`;
 * - 'mistral': Mistral Small 3.2 / Devstral / Ministral 3, `[TOOL_CALLS]name[ARGS]{...}` per call
 *   (`[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}` where the template has `[CALL_ID]`);
 * - 'granite': Granite 3.x, `<|tool_call|>[{"name": ..., "arguments": {...}}, ...]`;
 * - 'phi4': Phi-4-mini, `functools[{"name": ..., "arguments": {...}}, ...]` (the marker its system
 *   prompt asks for; vLLM's phi4_mini_json parser reads the same).
 * In every format the text before the first call is content.
 *
 * The session (chat-session.ts) picks the format from the model's template (`toolCallFormatOf`),
 * renders requests' tool calls the way templates read them (`templateMessages`), and streams a
 * reply's calls in pieces, never as content (`ToolCallStream`). `scanReply` reads a reply as far as
 * it goes; the stream reads with the same pieces, resuming where the decided text ends.
 */
import type { ChatMessage as RequestMessage, ToolCallDelta } from '../api.ts';
import type { ChatFormatChoice, ChatMessage as TemplateMessage } from '../chat/index.ts';
import { jsonSchemaToGbnf } from '../grammar/index.ts';

export type ToolCallFormat = 'hermes' | 'llama3' | 'mistral-nemo' | 'mistral' | 'granite' | 'phi4';

export interface ToolFunction {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The key a format puts the arguments under. */
function argumentsKey(format: ToolCallFormat): string {
  return format === 'llama3' ? 'parameters' : 'arguments';
}

/** The text that starts a call (or the list of calls) in the formats that mark calls. */
const MARKERS: Partial<Record<ToolCallFormat, string>> = {
  hermes: '<tool_call>',
  'mistral-nemo': '[TOOL_CALLS]',
  mistral: '[TOOL_CALLS]',
  granite: '<|tool_call|>',
  phi4: 'functools',
};

/**
 * The marker texts of a format that vocabularies hold as control tokens, which decode to nothing
 * and which a grammar never allows unless they are kept (llama.cpp's preserved_tokens for the same
 * formats): with tools, the session renders them as text and lets a forced call use them.
 */
export function toolCallTokenTexts(format: ToolCallFormat): string[] {
  switch (format) {
    case 'hermes':
      return ['<tool_call>', '</tool_call>'];
    case 'llama3':
      return ['<|python_tag|>'];
    case 'mistral-nemo':
      return ['[TOOL_CALLS]'];
    case 'mistral':
      return ['[TOOL_CALLS]', '[CALL_ID]', '[ARGS]'];
    case 'granite':
      return ['<|tool_call|>'];
    case 'phi4':
      return [];
  }
}

const NO_ARGUMENTS = { type: 'object', properties: {}, additionalProperties: false };

/** `gbnf`'s first line is `root ::= <value rule>`: the value rule, and the other rules. */
function splitRoot(gbnf: string): { value: string; rules: string } {
  const newline = gbnf.indexOf('\n');
  return { value: gbnf.slice('root ::= '.length, newline), rules: gbnf.slice(newline) };
}

/**
 * GBNF for exactly one call to one of `tools` in `format`, its arguments valid against the tool's
 * parameter schema (the JSON schema subset; others throw UnsupportedSchemaError). The markers are
 * written as text, as llama.cpp's grammars write them.
 */
export function toolCallGbnf(tools: readonly ToolFunction[], format: ToolCallFormat): string {
  if (format === 'mistral') return mistralArgsGbnf(tools);
  const key = argumentsKey(format);
  const calls = tools.map((t) => ({
    type: 'object',
    properties: {
      name: { const: t.name },
      [key]: t.parameters ?? NO_ARGUMENTS,
      // Nemo's template refuses ids that are not 9 characters (llama.cpp's grammar asks for the same).
      ...(format === 'mistral-nemo' ? { id: { type: 'string', minLength: 9, maxLength: 9 } } : {}),
    },
    required: format === 'mistral-nemo' ? ['name', key, 'id'] : ['name', key],
    additionalProperties: false,
  }));
  const call = calls.length === 1 ? calls[0] : { anyOf: calls };
  if (format === 'llama3') return jsonSchemaToGbnf(call);
  if (format === 'hermes') {
    const { value, rules } = splitRoot(jsonSchemaToGbnf(call));
    return `root ::= "<tool_call>\\n" ${value} "\\n</tool_call>"${rules}`;
  }
  // The list formats: a marker, then a list of one call.
  const { value, rules } = splitRoot(jsonSchemaToGbnf({ type: 'array', items: call, minItems: 1, maxItems: 1 }));
  return `root ::= ${gbnfLiteral(MARKERS[format]!)} ${value}${rules}`;
}

/** `[TOOL_CALLS]name[ARGS]{...}`: each tool's arguments grammar under its own rule names. */
function mistralArgsGbnf(tools: readonly ToolFunction[]): string {
  const alternatives: string[] = [];
  let rules = '';
  tools.forEach((t, i) => {
    const { value, rules: own } = splitRoot(jsonSchemaToGbnf(t.parameters ?? NO_ARGUMENTS));
    alternatives.push(`${gbnfLiteral(`[TOOL_CALLS]${t.name}[ARGS]`)} ${prefixRuleNames(value, `t${i}-`)}`);
    rules += prefixRuleNames(own, `t${i}-`);
  });
  return `root ::= ${alternatives.join(' | ')}${rules}`;
}

function gbnfLiteral(text: string): string {
  return JSON.stringify(text);
}

/** `gbnf` with every rule name prefixed (literals and character classes left as they are), so grammars can be combined. */
function prefixRuleNames(gbnf: string, prefix: string): string {
  return gbnf.replace(/"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|\{[0-9, ]*\}|[a-zA-Z][a-zA-Z0-9-]*/g, (m) => (/^[a-zA-Z]/.test(m) ? prefix + m : m));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isJsonObject(text: string): boolean {
  const value = parseJson(text);
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Where the JSON value (object or array) starting at `text[start]` ends, by its brackets outside
 * strings; -1 when it does not close. The slice is then parsed for real.
 */
function jsonValueEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** Where the JSON string starting at `text[start]` (a quote) ends, after its closing quote; -1 when it does not close. */
function jsonStringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return -1;
}

const OPEN = -1;
const BROKEN = -2;

/** Where the JSON value at `text[start]` ends: OPEN when the text stops inside it, BROKEN when no value starts there. */
function valueEnd(text: string, start: number): number {
  if (start >= text.length) return OPEN;
  const c = text[start]!;
  if (c === '"') return jsonStringEnd(text, start);
  if (c === '{' || c === '[') return jsonValueEnd(text, start);
  let i = start;
  while (i < text.length && /[A-Za-z0-9.+-]/.test(text[i]!)) i++;
  if (i === text.length) return OPEN; // a number or literal may go on
  return i === start ? BROKEN : i;
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && /\s/.test(text[at]!)) at++;
  return at;
}

/** What a scan of a call object found so far: its name once whole, and where its arguments value lies. */
interface ObjectScan {
  state: 'open' | 'closed' | 'broken';
  /** After the closing brace when closed; where it broke when broken. */
  end: number;
  name?: string;
  /** The arguments value: `end` undefined while the text stops inside it. */
  args?: { start: number; end?: number };
}

/**
 * Scans the JSON object at `text[start]` (a brace) key by key, as far as the text goes: a call's
 * `name` and its arguments (under the first of `argKeys` present) are known before it closes.
 */
function scanObject(text: string, start: number, argKeys: readonly string[]): ObjectScan {
  const scan: ObjectScan = { state: 'open', end: text.length };
  const stop = (state: ObjectScan['state'], end: number) => Object.assign(scan, { state, end });
  let at = skipSpace(text, start + 1);
  if (text[at] === '}') return stop('closed', at + 1);
  for (;;) {
    if (at >= text.length) return scan;
    if (text[at] !== '"') return stop('broken', at);
    const keyEnd = jsonStringEnd(text, at);
    if (keyEnd < 0) return scan;
    const key = parseJson(text.slice(at, keyEnd));
    at = skipSpace(text, keyEnd);
    if (at >= text.length) return scan;
    if (text[at] !== ':') return stop('broken', at);
    const value = skipSpace(text, at + 1);
    if (value >= text.length) return scan;
    const end = valueEnd(text, value);
    if (end === BROKEN) return stop('broken', value);
    if (typeof key === 'string' && argKeys.includes(key) && !scan.args) scan.args = end === OPEN ? { start: value } : { start: value, end };
    if (end === OPEN) return scan;
    if (key === 'name') {
      const name = parseJson(text.slice(value, end));
      if (typeof name === 'string') scan.name = name;
    }
    at = skipSpace(text, end);
    if (at >= text.length) return scan;
    if (text[at] === '}') return stop('closed', at + 1);
    if (text[at] !== ',') return stop('broken', at);
    at = skipSpace(text, at + 1);
  }
}

/**
 * A call as far as the reply has written it: `arguments` is the model's JSON with the spaces
 * outside strings removed, which only grows as the reply does (a stream sends its new end);
 * `complete` once it is a whole JSON object and the call around it has closed.
 */
export interface CallSoFar {
  name: string;
  arguments: string;
  complete: boolean;
}

/** `json` without the white space outside its strings; a prefix of the JSON gives a prefix of the result. */
function compactJson(json: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i]!;
    if (inString) {
      out += c;
      if (c === '\\' && i + 1 < json.length) out += json[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!/\s/.test(c)) out += c;
  }
  return out;
}

/**
 * The call in the object at `text[start]`: undefined while it may still become one (its name or
 * the start of its arguments not written yet), null when it is none (an unknown tool, arguments
 * that are no object, broken JSON before both were known). A call is one from the moment its name
 * is a known tool's and its arguments start with a brace: it stays one however the text goes on.
 */
function callInObject(text: string, start: number, argKeys: readonly string[], names: ReadonlySet<string>): { call: CallSoFar; scan: ObjectScan } | null | undefined {
  const scan = scanObject(text, start, argKeys);
  const undecided = scan.state === 'open' ? undefined : null;
  if (scan.name === undefined) return undecided;
  if (!names.has(scan.name)) return null;
  if (!scan.args) return undecided;
  if (text[scan.args.start] !== '{') return null;
  const raw = text.slice(scan.args.start, scan.args.end ?? text.length);
  return { call: { name: scan.name, arguments: compactJson(raw), complete: scan.state === 'closed' && scan.args.end !== undefined && isJsonObject(raw) }, scan };
}

/**
 * Calls found from a marker (or the reply's start, Llama 3): `end` is where the decided text ends
 * (the calls' text, and what closes them); `open` when the text after `end` may still be part of
 * them. null: no call starts here, the marker is text.
 */
type CallsScan = { calls: CallSoFar[]; end: number; open: boolean } | null;

/** One `<tool_call>` block: the object, then the closing tag. */
function hermesBlock(text: string, at: number, names: ReadonlySet<string>): CallsScan {
  const brace = skipSpace(text, at + '<tool_call>'.length);
  if (brace >= text.length) return { calls: [], end: at, open: true };
  if (text[brace] !== '{') return null;
  const found = callInObject(text, brace, ['arguments', 'parameters'], names);
  if (found === undefined) return { calls: [], end: at, open: true };
  if (found === null) return null;
  const { call, scan } = found;
  if (scan.state !== 'closed') return { calls: [call], end: scan.end, open: scan.state === 'open' };
  const tag = skipSpace(text, scan.end);
  const rest = text.slice(tag);
  if (rest.startsWith('</tool_call>')) return { calls: [call], end: tag + '</tool_call>'.length, open: false };
  return { calls: [call], end: scan.end, open: '</tool_call>'.startsWith(rest) };
}

/** A marker, then a JSON list of call objects (Mistral Nemo, Granite 3, Phi-4-mini). */
function callList(text: string, at: number, marker: string, names: ReadonlySet<string>): CallsScan {
  const p = skipSpace(text, at + marker.length);
  if (p >= text.length) return { calls: [], end: at, open: true };
  if (text[p] !== '[') return null;
  return callObjects(text, skipSpace(text, p + 1), at, ['arguments'], names, ',', ']');
}

/**
 * Call objects one after another from `text[p]`, separated by `separator`, up to `close` where
 * they are a list. While none is decided, the text from `pendingFrom` on is held.
 */
function callObjects(text: string, p: number, pendingFrom: number, argKeys: readonly string[], names: ReadonlySet<string>, separator: string, close?: string): CallsScan {
  const calls: CallSoFar[] = [];
  const undecided = (end: number): CallsScan => (calls.length === 0 ? { calls, end: pendingFrom, open: true } : { calls, end, open: true });
  const notACall = (end: number): CallsScan => (calls.length === 0 ? null : { calls, end, open: false });
  for (;;) {
    if (p >= text.length) return undecided(p);
    if (text[p] !== '{') return notACall(p);
    const found = callInObject(text, p, argKeys, names);
    if (found === undefined) return undecided(p);
    if (found === null) return notACall(p);
    calls.push(found.call);
    if (found.scan.state !== 'closed') return { calls, end: found.scan.end, open: found.scan.state === 'open' };
    const after = skipSpace(text, found.scan.end);
    if (after >= text.length) return { calls, end: found.scan.end, open: true };
    if (close !== undefined && text[after] === close) return { calls, end: after + 1, open: false };
    if (text[after] !== separator) return { calls, end: found.scan.end, open: false };
    p = skipSpace(text, after + 1);
  }
}

/** Whether `rest` (from a `[TOOL_CALLS]` marker) may still become a whole `[TOOL_CALLS]name[CALL_ID]id[ARGS]` head. */
function mayBecomeMistralHead(rest: string): boolean {
  let after = rest.slice(/^\[TOOL_CALLS\][a-zA-Z0-9_.-]*/.exec(rest)![0].length);
  if ('[ARGS]'.startsWith(after) || '[CALL_ID]'.startsWith(after)) return true;
  if (!after.startsWith('[CALL_ID]')) return false;
  after = after.slice('[CALL_ID]'.length).replace(/^[a-zA-Z0-9]*/, '');
  return '[ARGS]'.startsWith(after);
}

const MISTRAL_HEAD = /^\[TOOL_CALLS\]([a-zA-Z0-9_.-]+)(?:\[CALL_ID\][a-zA-Z0-9]*)?\[ARGS\]/;

/** `[TOOL_CALLS]name[ARGS]{...}` or `[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}`: one call. */
function mistralArgsCall(text: string, at: number, names: ReadonlySet<string>): CallsScan {
  const pending = { calls: [], end: at, open: true };
  const rest = text.slice(at);
  const head = MISTRAL_HEAD.exec(rest);
  if (!head) return mayBecomeMistralHead(rest) ? pending : null;
  if (!names.has(head[1]!)) return null;
  const open = at + head[0].length;
  if (open >= text.length) return pending;
  if (text[open] !== '{') return null;
  const end = jsonValueEnd(text, open);
  const raw = text.slice(open, end < 0 ? text.length : end);
  const call = { name: head[1]!, arguments: compactJson(raw), complete: end >= 0 && isJsonObject(raw) };
  return end < 0 ? { calls: [call], end: text.length, open: true } : { calls: [call], end, open: false };
}

const LLAMA3_TAG = '<|python_tag|>';

/** Llama 3.x: the whole reply is calls, `{"name": ..., "parameters": {...}}` separated by `;`, optionally after `<|python_tag|>`. */
function llama3Calls(text: string, names: ReadonlySet<string>): CallsScan {
  let p = skipSpace(text, 0);
  const head = text.slice(p);
  if (head.length < LLAMA3_TAG.length && LLAMA3_TAG.startsWith(head)) return { calls: [], end: 0, open: true };
  if (head.startsWith(LLAMA3_TAG)) p = skipSpace(text, p + LLAMA3_TAG.length);
  return callObjects(text, p, 0, ['parameters', 'arguments'], names, ';');
}

/**
 * The reply so far read for calls: the calls (as far as written), and the text outside them, of
 * which a stream may show `outside` (text that may still start a call, such as the start of a
 * marker or a call not yet decided, is held back; with `final`, it is text after all).
 */
export function scanReply(text: string, format: ToolCallFormat, names: ReadonlySet<string>, final: boolean, thinkingOpen = false): { outside: string; calls: CallSoFar[] } {
  // A thinking block is content (Hearth has no reasoning_content), and never holds calls: the
  // calls a model drafts while it thinks are not made (llama.cpp's reasoning parsers agree).
  const start = thinkingEnd(text, thinkingOpen);
  if (start === undefined) return { outside: text, calls: [] };
  if (format === 'llama3') {
    const rest = text.slice(start);
    const found = llama3Calls(rest, names);
    if (found === null || (final && found.calls.length === 0)) return { outside: text, calls: [] };
    return { outside: text.slice(0, start) + (found.open && !final ? '' : rest.slice(found.end)), calls: found.calls };
  }
  const marker = MARKERS[format]!;
  let outside = text.slice(0, start);
  const calls: CallSoFar[] = [];
  for (let pos = start; ; ) {
    const at = text.indexOf(marker, pos);
    if (at < 0) {
      const tail = text.slice(pos);
      outside += final ? tail : tail.slice(0, tail.length - heldPrefixLength(tail, marker));
      break;
    }
    outside += text.slice(pos, at);
    const found = format === 'hermes' ? hermesBlock(text, at, names) : format === 'mistral' ? mistralArgsCall(text, at, names) : callList(text, at, marker, names);
    if (found === null || (final && found.calls.length === 0)) {
      outside += marker;
      pos = at + marker.length;
      continue;
    }
    calls.push(...found.calls);
    if (found.open && !final) break;
    pos = found.end;
  }
  return { outside, calls };
}

/** The tags of thinking blocks: Qwen3 / DeepSeek-R1 style, and Magistral / Ministral reasoning. */
const THINKING_TAGS: ReadonlyArray<readonly [string, string]> = [
  ['<think>', '</think>'],
  ['[THINK]', '[/THINK]'],
];

/** The tag texts of thinking blocks, which a reply with tools keeps as text where they are control tokens (as llama.cpp's preserved tokens). */
export function thinkingTokenTexts(): string[] {
  return THINKING_TAGS.flat();
}

/** Whether a prompt ends inside an opened thinking block (templates that open the assistant's thinking themselves). */
export function endsInsideThinking(promptText: string): boolean {
  const tail = promptText.trimEnd();
  return THINKING_TAGS.some(([open]) => tail.endsWith(open));
}

/**
 * Where the thinking block a reply starts with ends (after its closing tag); 0 when the reply
 * starts with none; undefined while it has not closed. `open`: the prompt opened the block.
 */
function thinkingEnd(text: string, open: boolean): number | undefined {
  const block = thinkingBlock(text, open);
  return block === 'none' ? 0 : closingTagEnd(text, block.from, block.closes);
}

/** The longest thinking tag: a stream looks for a closing tag again from this far before where it stopped. */
const THINK_TAG_LENGTH = Math.max(...THINKING_TAGS.flat().map((tag) => tag.length));

/** The thinking block a reply starts in: the tags that may close it, and where they may start. */
type ThinkingBlock = 'none' | { closes: readonly string[]; from: number };

function thinkingBlock(text: string, open: boolean): ThinkingBlock {
  if (open) return { closes: THINKING_TAGS.map(([, close]) => close), from: 0 };
  const first = skipSpace(text, 0);
  const tags = THINKING_TAGS.find(([openTag]) => text.startsWith(openTag, first));
  return tags ? { closes: [tags[1]], from: first + tags[0].length } : 'none';
}

/** After the earliest of `closes` in `text` from `from` on; undefined when none. */
function closingTagEnd(text: string, from: number, closes: readonly string[]): number | undefined {
  const ends = closes.map((close) => [text.indexOf(close, from), close.length] as const).filter(([at]) => at >= 0);
  if (ends.length === 0) return undefined;
  const [at, length] = ends.reduce((a, b) => (b[0] < a[0] ? b : a));
  return at + length;
}

/**
 * The tool calls in a finished reply and the text around them. Anything that is not a well-formed
 * call to a known tool stays in `content` (model output is untrusted text, never executed here);
 * a reply with a call cut short is all content.
 */
export function parseToolCalls(text: string, format: ToolCallFormat, tools: readonly ToolFunction[], thinkingOpen = false): { content: string; tool_calls: ToolCall[] } {
  const { outside, calls } = scanReply(text, format, new Set(tools.map((t) => t.name)), true, thinkingOpen);
  if (calls.length === 0 || calls.some((c) => !c.complete)) return { content: text, tool_calls: [] };
  return {
    content: outside.trim(),
    tool_calls: calls.map((c, i) => ({ id: `call_${i}`, type: 'function', function: { name: c.name, arguments: c.arguments } })),
  };
}

/**
 * The format a model writes calls in, from its chat template, by llama.cpp's rules: Mistral when
 * the template has `[TOOL_CALLS]` (the `[ARGS]` form when it also has `[ARGS]`, the Nemo JSON list
 * otherwise); Hermes / Qwen / Granite 4 when it mentions `<tool_call>`; Granite 3.x for
 * `<|tool_call|>`; Phi-4-mini for its `<|tool|>` tool list; Llama 3.x when it is a Llama 3 template
 * (llama.cpp's detection, or the `<|python_tag|>` it documents); Hermes otherwise, the format most
 * tool-trained models share.
 */
export function toolCallFormatOf(choice: ChatFormatChoice): ToolCallFormat {
  const source = choice.format.kind === 'jinja' ? choice.format.template.source : '';
  if (source.includes('[TOOL_CALLS]')) return source.includes('[ARGS]') ? 'mistral' : 'mistral-nemo';
  if (source.includes('<tool_call>')) return 'hermes';
  if (source.includes('<|tool_call|>')) return 'granite';
  if (source.includes('<|tool|>')) return 'phi4';
  if (choice.family === 'llama3' || source.includes('<|python_tag|>')) return 'llama3';
  return 'hermes';
}

/**
 * The id the session gives a reply's call `index`: Mistral's templates take only 9 alphanumerics
 * (Nemo's raises otherwise), so those formats get that shape; the others OpenAI's `call_` ids.
 */
export function toolCallId(format: ToolCallFormat, replyId: string, index: number): string {
  if (format !== 'mistral' && format !== 'mistral-nemo') return `call_${replyId}_${index}`;
  let hash = 2166136261;
  for (const c of `${replyId}/${index}`) hash = Math.imul(hash ^ c.charCodeAt(0), 16777619) >>> 0;
  return (hash.toString(36) + index.toString(36)).padStart(9, '0').slice(-9);
}

/**
 * Messages as chat templates read them: a call's `arguments` as the object it encodes (Qwen's and
 * Llama 3.1's templates apply `tojson` to it; llama.cpp's common/chat.cpp parses the string the
 * same way), kept as the string when it is not a JSON object. Phi-4-mini's template reads neither
 * a `tools` variable nor `tool_calls` (phi4TemplateMessages).
 */
export function templateMessages(messages: readonly RequestMessage[], format?: ToolCallFormat, tools?: readonly ToolFunction[]): TemplateMessage[] {
  const out = messages.map((m) => {
    const message: TemplateMessage = { role: m.role, content: m.content };
    if (m.tool_call_id !== undefined) message.tool_call_id = m.tool_call_id;
    if (m.tool_calls) {
      message.tool_calls = m.tool_calls.map((c) => {
        const parsed = parseJson(c.function.arguments);
        const args = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : c.function.arguments;
        return { id: c.id, type: 'function', function: { name: c.function.name, arguments: args } };
      });
    }
    return message;
  });
  return format === 'phi4' ? phi4TemplateMessages(out, tools) : out;
}

/**
 * Phi-4-mini's template shows the tools only as the system message's `tools` field, a JSON string
 * of the functions (its model card builds it with Python's `json.dumps`), and an assistant turn's
 * content only: the tools go there (a system message with no text is added when there is none),
 * and a turn's calls are written into its content as the model writes them, `functools[...]`.
 */
function phi4TemplateMessages(messages: TemplateMessage[], tools: readonly ToolFunction[] | undefined): TemplateMessage[] {
  const out = messages.map((m) => {
    if (!m.tool_calls) return m;
    const { tool_calls: calls, ...rest } = m;
    const written = `functools${pythonJson(calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments })))}`;
    return { ...rest, content: m.content === '' ? written : `${m.content}\n${written}` };
  });
  if (!tools || tools.length === 0) return out;
  const list = pythonJson(tools.map((t) => ({ name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters } : {}) })));
  const system = out.findIndex((m) => m.role === 'system');
  if (system < 0) return [{ role: 'system', content: '', tools: list }, ...out];
  out[system] = { ...out[system]!, tools: list };
  return out;
}

/** JSON as Python's `json.dumps` writes it by default: `, ` and `: ` between items, non-ASCII escaped. */
function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`)
      .join(', ')}}`;
  }
  const json = JSON.stringify(value) ?? 'null';
  return typeof value === 'string' ? json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
}

/** A piece of a streamed reply: text, or a piece of a call (OpenAI's `delta.tool_calls[i]`). */
export type ToolCallEvent = { content: string } | { tool_call: ToolCallDelta };

/**
 * Streams a reply that may hold tool calls, as OpenAI streams them: the text outside calls as
 * content (held back where a call may be starting: a marker such as `<tool_call>` or `[TOOL_CALLS]`
 * or the start of one; Llama 3: a reply whose first non-space text is `{` or `<|python_tag|>`, since
 * its calls are the whole reply; and white space, which goes with a call that follows it); a call,
 * once its name is a known tool's and its arguments start, as `{index, id, type, function: {name,
 * arguments: ''}}`; then its arguments as they come, `{index, function: {arguments}}`, the pieces
 * adding up to the call's `arguments`. A call's markup is never content.
 */
export class ToolCallStream {
  /** The reply's pieces (joined once, at the end), and the text from `base` on that a scan may still read. */
  private readonly pieces: string[] = [];
  private window = '';
  private base = 0;
  /** How much content the stream has shown, and its last characters (to check a scan kept them). */
  private shownLength = 0;
  private shownTail = '';
  private readonly shownCalls: CallSoFar[] = [];
  private readonly names: ReadonlySet<string>;
  private calls: readonly CallSoFar[] = [];
  /**
   * Where the scan resumes: the text before `pos` is decided (what a longer reply cannot change),
   * its calls are `decidedCalls`, and its content `decidedLength` characters, of which `unshown`
   * ends it (trailing space held back). undefined until the reply's start is settled.
   */
  private resume?: { start?: number; thinking?: ThinkingBlock; pos: number; textOnly: boolean; decidedCalls: CallSoFar[]; decidedLength: number; unshown: string };
  private scanned = 0;

  constructor(
    private readonly format: ToolCallFormat,
    tools: readonly ToolFunction[],
    /** The id of the reply's call `index`. */
    private readonly idOf: (index: number) => string = (index) => `call_${index}`,
    /** The prompt opened a thinking block, which the reply closes before any call (endsInsideThinking). */
    private readonly thinkingOpen = false,
  ) {
    this.names = new Set(tools.map((t) => t.name));
  }

  /**
   * What `piece` (with what was held before it) adds to the stream. The scan resumes where the
   * decided text ends (rescanning the whole reply each token made long replies quadratic); only an
   * unfinished marker or call is read again.
   */
  push(piece: string): ToolCallEvent[] {
    this.pieces.push(piece);
    this.window += piece;
    if (!this.resume) {
      if (!this.startSettled()) {
        // A few characters that may yet open a thinking block: the whole scan, as the reply is short.
        this.scanned += this.window.length;
        const { outside, calls } = scanReply(this.window, this.format, this.names, false, this.thinkingOpen);
        this.calls = calls;
        return this.changes(outside.trimEnd(), calls);
      }
      this.resume = { pos: 0, textOnly: false, decidedCalls: [], decidedLength: 0, unshown: '' };
    }
    const live = this.scanOn(this.resume);
    this.dropDecidedText(this.resume);
    const calls = live.length > 0 ? [...this.resume.decidedCalls, ...live] : this.resume.decidedCalls;
    this.calls = calls;
    const content = this.resume.unshown.trimEnd();
    this.resume.unshown = this.resume.unshown.slice(content.length);
    return this.events(content, calls);
  }

  /** Whether the scan's start (after a thinking block, if the reply opens one) can no longer change. */
  private startSettled(): boolean {
    if (this.thinkingOpen) return true;
    const first = skipSpace(this.window, 0);
    if (first >= this.window.length) return false;
    const head = this.window.slice(first, first + 8);
    return !THINKING_TAGS.some(([open]) => head.length < open.length && open.startsWith(head));
  }

  /**
   * Keeps only the text a later scan may read (growing one string by every token and reading it
   * copied all of it each time): from the resume point, from the start of Llama 3's calls, or a
   * tag's length back while a thinking block is open.
   */
  private dropDecidedText(r: NonNullable<ToolCallStream['resume']>): void {
    let keep = r.pos;
    if (r.start === undefined) keep -= THINK_TAG_LENGTH;
    else if (this.format === 'llama3' && !r.textOnly) keep = r.start;
    if (keep - this.base < 4096) return;
    this.window = this.window.slice(keep - this.base);
    this.base = keep;
  }

  /** Scans on from `r.pos`, adding what is decided to `r`; returns the calls still open. Positions in `r` count from the reply's start. */
  private scanOn(r: NonNullable<ToolCallStream['resume']>): CallSoFar[] {
    const text = this.window;
    const base = this.base;
    this.scanned += base + text.length - r.pos;
    const decide = (end: number, content: string) => {
      const skip = Math.max(0, this.shownLength - r.decidedLength);
      r.unshown += skip > 0 ? content.slice(skip) : content;
      r.decidedLength += content.length;
      r.pos = end;
    };
    if (r.start === undefined) {
      // Inside the thinking block every character is content; look for its end from where the last look stopped.
      r.thinking ??= thinkingBlock(text, this.thinkingOpen); // the first scan: base is 0
      const end = r.thinking === 'none' ? 0 : closingTagEnd(text, Math.max(r.thinking.from - base, r.pos - base - THINK_TAG_LENGTH), r.thinking.closes);
      if (end === undefined) {
        decide(base + text.length, text.slice(r.pos - base));
        return [];
      }
      r.start = base + end;
      decide(r.start, text.slice(r.pos - base, end));
    }
    if (r.textOnly) {
      decide(base + text.length, text.slice(r.pos - base));
      return [];
    }
    if (this.format === 'llama3') {
      const rest = text.slice(r.start - base);
      const found = llama3Calls(rest, this.names);
      if (found === null) {
        r.textOnly = true;
        decide(base + text.length, rest);
        return [];
      }
      if (found.open) return found.calls;
      r.decidedCalls.push(...found.calls);
      r.textOnly = true;
      decide(base + text.length, rest.slice(found.end));
      return [];
    }
    const marker = MARKERS[this.format]!;
    for (;;) {
      const pos = r.pos - base;
      const at = text.indexOf(marker, pos);
      if (at < 0) {
        const tail = text.slice(pos);
        const kept = tail.length - heldPrefixLength(tail, marker);
        decide(r.pos + kept, tail.slice(0, kept));
        return [];
      }
      decide(base + at, text.slice(pos, at));
      const found = this.format === 'hermes' ? hermesBlock(text, at, this.names) : this.format === 'mistral' ? mistralArgsCall(text, at, this.names) : callList(text, at, marker, this.names);
      if (found === null) {
        decide(base + at + marker.length, marker);
        continue;
      }
      if (found.open) return found.calls;
      r.decidedCalls.push(...found.calls);
      r.pos = base + found.end;
    }
  }

  /** How many characters the scans have started from, over all pushes (tests check it grows linearly with the reply). */
  get scannedChars(): number {
    return this.scanned;
  }

  /** How many of the calls so far are whole. */
  get completeCalls(): number {
    return this.calls.filter((c) => c.complete).length;
  }

  /**
   * The end of the stream: the held text that is content after all (around calls, only text that
   * says something), and every call the stream started, `complete` when all of them are whole.
   */
  finish(): { events: ToolCallEvent[]; tool_calls: ToolCall[]; complete: boolean } {
    const { outside, calls } = scanReply(this.pieces.join(''), this.format, this.names, true, this.thinkingOpen);
    const events = this.changes(calls.length > 0 ? outside.trimEnd() : outside, calls);
    return {
      events,
      tool_calls: calls.map((c, i) => ({ id: this.idOf(i), type: 'function', function: { name: c.name, arguments: c.arguments } })),
      complete: calls.every((c) => c.complete),
    };
  }

  /** The events that the scan's whole `content` and `calls` add to what the stream has shown. */
  private changes(content: string, calls: readonly CallSoFar[]): ToolCallEvent[] {
    // What a scan decided stays decided (the text only grows), so the shown text is a prefix.
    // (Checked on the last characters shown: comparing all of it each token made long replies quadratic.)
    if (content.length < this.shownLength || !content.startsWith(this.shownTail, this.shownLength - this.shownTail.length)) {
      throw new Error(`tool-call stream: a scan took back content it had shown (${JSON.stringify(this.shownTail)})`);
    }
    return this.events(content.slice(this.shownLength), calls);
  }

  /** The events for `content` shown after what was, and for what `calls` add to the calls shown. */
  private events(content: string, calls: readonly CallSoFar[]): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    if (content.length > 0) {
      events.push({ content });
      this.shownLength += content.length;
      this.shownTail = (this.shownTail + content).slice(-32);
    }
    calls.forEach((call, index) => {
      let shown = this.shownCalls[index];
      if (!shown) {
        shown = { name: call.name, arguments: '', complete: false };
        this.shownCalls.push(shown);
        events.push({ tool_call: { index, id: this.idOf(index), type: 'function', function: { name: call.name, arguments: '' } } });
      }
      if (call.arguments.length > shown.arguments.length) {
        events.push({ tool_call: { index, function: { arguments: call.arguments.slice(shown.arguments.length) } } });
        shown.arguments = call.arguments;
      }
    });
    return events;
  }
}

/** How many characters at the end of `text` are the start of `marker` (they may be about to become it). */
function heldPrefixLength(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) if (marker.startsWith(text.slice(text.length - n))) return n;
  return 0;
}
