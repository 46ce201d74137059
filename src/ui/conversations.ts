/**
 * Conversations, persisted in IndexedDB (idb-keyval, a database of their own so they never touch
 * the model store), and their JSON export/import. Imported files are untrusted: `parseExport`
 * validates every field and rebuilds plain objects, dropping anything it does not know.
 */
import { createStore, del, get, set, values, type UseStore } from 'idb-keyval';

export interface ReplyStats {
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  timeToFirstTokenMs: number;
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  finishReason: 'stop' | 'length' | 'abort';
  model: string;
  /** With finishReason 'length': Max reply tokens, or a full context window. */
  lengthLimit?: 'max_tokens' | 'context_window' | undefined;
  /** Oldest messages left out so the conversation fit the context window. */
  droppedMessages?: number | undefined;
  /** The context window the reply ran in, and the Max reply tokens it asked for. */
  contextLength?: number | undefined;
  maxTokens?: number | undefined;
  /** The reply was constrained to a JSON object (JSON mode). */
  jsonMode?: boolean | undefined;
  /** The host of the server that wrote the reply (a remote model); absent: this device did. */
  server?: string | undefined;
}

/** One version of a reply: Regenerate adds one, and the user switches between them. */
export interface ReplyVersion {
  content: string;
  stats?: ReplyStats | undefined;
  /** An error that ended this reply (name: message), shown under it. */
  error?: string | undefined;
}

export interface StoredMessage extends ReplyVersion {
  id: string;
  role: 'user' | 'assistant';
  /**
   * Every version of a regenerated reply, oldest first; absent until the first Regenerate. The
   * message's own content, stats and error are always those of `versions[version]` (the one shown
   * and the one the next request sends), so code that ignores versions stays right.
   */
  versions?: ReplyVersion[] | undefined;
  version?: number | undefined;
}

export interface Conversation {
  id: string;
  title: string;
  systemPrompt: string;
  messages: StoredMessage[];
  createdAt: number;
  updatedAt: number;
}

export const EXPORT_FORMAT = 'hearth-conversations';
export const EXPORT_VERSION = 1;

export interface ConversationExport {
  format: typeof EXPORT_FORMAT;
  version: number;
  exportedAt: string;
  conversations: Conversation[];
}

export function newId(): string {
  return typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

export function newConversation(systemPrompt = ''): Conversation {
  const now = Date.now();
  return { id: newId(), title: 'New chat', systemPrompt, messages: [], createdAt: now, updatedAt: now };
}

/** A title from the first user message: its first line, cut at a word near 48 characters. */
export function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0]?.trim() ?? '';
  if (line.length <= 48) return line || 'New chat';
  const cut = line.slice(0, 48);
  const space = cut.lastIndexOf(' ');
  return `${space > 24 ? cut.slice(0, space) : cut}…`;
}

function firstUserText(conversation: Conversation): string | undefined {
  return conversation.messages.find((m) => m.role === 'user')?.content;
}

/**
 * The title after a change from `before` to `after`: a title that came from the first user
 * message (or the "New chat" of an empty one) follows that message, through the first send and
 * any later edit; one the user gave (a rename, an import's title) stays.
 */
export function autoTitle(before: Conversation, after: Conversation): string {
  const was = firstUserText(before);
  const automatic = was === undefined ? before.title === 'New chat' : before.title === titleFrom(was);
  const now = firstUserText(after);
  return automatic && now !== undefined ? titleFrom(now) : before.title;
}

/**
 * An empty conversation is kept only in memory: "New chat" clicked again reuses it, and it is
 * saved once it has a message (so a row of empty chats never piles up in the store).
 */
export function isWorthSaving(conversation: Conversation): boolean {
  return conversation.messages.length > 0;
}

/** The empty conversation a "New chat" click reuses instead of making another. */
export function findEmptyConversation(conversations: readonly Conversation[]): Conversation | undefined {
  return conversations.find((c) => !isWorthSaving(c));
}

/**
 * The conversations once the saved list has been read: the saved ones, with those already in the
 * view winning. The list is read asynchronously when the chat opens, so a "New chat" click or a send
 * may come first; replacing the view's state with the list would lose that conversation (an empty
 * one is not saved, a new message may not be yet) and switch the view away from it mid-reply.
 */
export function mergeListed(inView: readonly Conversation[], listed: readonly Conversation[]): Conversation[] {
  const shown = new Set(inView.map((c) => c.id));
  return [...inView, ...listed.filter((c) => !shown.has(c.id))].sort((a, b) => b.updatedAt - a.updatedAt);
}

function versionOf(message: ReplyVersion): ReplyVersion {
  return { content: message.content, ...(message.stats ? { stats: message.stats } : {}), ...(message.error ? { error: message.error } : {}) };
}

/** The reply with a new, empty version added after the others and shown (for Regenerate to fill). */
export function addReplyVersion(message: StoredMessage): StoredMessage {
  const versions = [...(message.versions ?? [versionOf(message)]), { content: '' }];
  return { id: message.id, role: message.role, content: '', versions, version: versions.length - 1 };
}

/** The reply with its shown version replaced by `reply` (a streamed text, the finished reply). */
export function setShownReply(message: StoredMessage, reply: ReplyVersion): StoredMessage {
  const shown = versionOf(reply);
  const next: StoredMessage = { id: message.id, role: message.role, ...shown };
  if (message.versions) {
    const at = message.version ?? message.versions.length - 1;
    next.versions = message.versions.map((v, i) => (i === at ? shown : v));
    next.version = at;
  }
  return next;
}

/** The reply showing its version `index` (clamped to the versions there are). */
export function showReplyVersion(message: StoredMessage, index: number): StoredMessage {
  const versions = message.versions;
  if (!versions?.length) return message;
  const at = Math.min(versions.length - 1, Math.max(0, Math.trunc(index)));
  return { id: message.id, role: message.role, ...versions[at]!, versions, version: at };
}

let store: UseStore | undefined;
function db(): UseStore {
  store ??= createStore('hearth-chat', 'conversations');
  return store;
}

export async function listConversations(): Promise<Conversation[]> {
  const all = await values<Conversation>(db());
  return all.sort((a, b) => b.updatedAt - a.updatedAt);
}

export function saveConversation(conversation: Conversation): Promise<void> {
  return set(conversation.id, conversation, db());
}

export function deleteConversation(id: string): Promise<void> {
  return del(id, db());
}

export function getConversation(id: string): Promise<Conversation | undefined> {
  return get<Conversation>(id, db());
}

export function exportConversations(conversations: Conversation[]): string {
  const data: ConversationExport = { format: EXPORT_FORMAT, version: EXPORT_VERSION, exportedAt: new Date().toISOString(), conversations };
  return JSON.stringify(data, null, 2);
}

export class ImportFormatError extends Error {
  override name = 'ImportFormatError';
}

const MAX_TEXT = 1_000_000;

/**
 * The largest file an import reads. Without a limit a 120 MB file blocked the tab 86 s and took a
 * 2.3 GB heap (parse, validate, store, render); 32 MiB is still thousands of long conversations.
 */
export const MAX_IMPORT_BYTES = 32 * 1024 * 1024;

export class ImportTooLargeError extends Error {
  override name = 'ImportTooLargeError';
}

function checkImportSize(size: number): void {
  if (size <= MAX_IMPORT_BYTES) return;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  throw new ImportTooLargeError(`This file is ${mib(size)}; an import can be at most ${mib(MAX_IMPORT_BYTES)}. Import it in smaller files.`);
}

/** An import file's text, refused by its size before any of it is read. */
export async function readImportFile(file: Blob): Promise<string> {
  checkImportSize(file.size);
  return file.text();
}

function str(value: unknown, what: string, max = MAX_TEXT): string {
  if (typeof value !== 'string') throw new ImportFormatError(`${what} should be text.`);
  if (value.length > max) throw new ImportFormatError(`${what} is too long (${value.length} characters).`);
  return value;
}

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function parseStats(value: unknown): ReplyStats | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const s = value as Record<string, unknown>;
  const finish = s.finishReason === 'length' || s.finishReason === 'abort' ? s.finishReason : 'stop';
  return {
    promptTokens: num(s.promptTokens, 0),
    completionTokens: num(s.completionTokens, 0),
    cachedPromptTokens: num(s.cachedPromptTokens, 0),
    timeToFirstTokenMs: num(s.timeToFirstTokenMs, 0),
    decodeTokensPerSecond: num(s.decodeTokensPerSecond, 0),
    prefillTokensPerSecond: num(s.prefillTokensPerSecond, 0),
    finishReason: finish,
    model: typeof s.model === 'string' ? s.model.slice(0, 200) : '',
    ...(finish === 'length' && (s.lengthLimit === 'max_tokens' || s.lengthLimit === 'context_window') ? { lengthLimit: s.lengthLimit } : {}),
    ...(num(s.droppedMessages, 0) > 0 ? { droppedMessages: num(s.droppedMessages, 0) } : {}),
    ...(num(s.contextLength, 0) > 0 ? { contextLength: num(s.contextLength, 0) } : {}),
    ...(num(s.maxTokens, 0) > 0 ? { maxTokens: num(s.maxTokens, 0) } : {}),
    ...(typeof s.server === 'string' && s.server ? { server: s.server.slice(0, 200) } : {}),
  };
}

const MAX_VERSIONS = 100;

function parseVersion(r: Record<string, unknown>, role: StoredMessage['role'], what: string): ReplyVersion {
  const version: ReplyVersion = { content: str(r.content, what) };
  const stats = role === 'assistant' ? parseStats(r.stats) : undefined;
  if (stats) version.stats = stats;
  if (typeof r.error === 'string') version.error = r.error.slice(0, 2000);
  return version;
}

/**
 * Reads an export file (or a single conversation). Returns conversations with fresh ids where the
 * file's clash with `existingIds`, so an import never overwrites.
 */
export function parseExport(text: string, existingIds: ReadonlySet<string> = new Set()): Conversation[] {
  checkImportSize(text.length); // characters: at most the file's UTF-8 bytes
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ImportFormatError(`This file is not JSON (${(error as Error).message}).`);
  }
  const list: unknown[] =
    data && typeof data === 'object' && Array.isArray((data as ConversationExport).conversations)
      ? (data as ConversationExport).conversations
      : Array.isArray(data)
        ? data
        : data && typeof data === 'object' && Array.isArray((data as Conversation).messages)
          ? [data]
          : (() => {
              throw new ImportFormatError('No conversations found: expected a Hearth export with a "conversations" list.');
            })();
  const seen = new Set(existingIds);
  return list.map((raw, i) => {
    if (!raw || typeof raw !== 'object') throw new ImportFormatError(`Conversation ${i + 1} is not an object.`);
    const c = raw as Record<string, unknown>;
    if (!Array.isArray(c.messages)) throw new ImportFormatError(`Conversation ${i + 1} has no messages list.`);
    const messages = c.messages.map((m: unknown, j: number): StoredMessage => {
      if (!m || typeof m !== 'object') throw new ImportFormatError(`Message ${j + 1} of conversation ${i + 1} is not an object.`);
      const r = m as Record<string, unknown>;
      if (r.role !== 'user' && r.role !== 'assistant') throw new ImportFormatError(`Message ${j + 1} of conversation ${i + 1} has role ${JSON.stringify(r.role)}; expected "user" or "assistant".`);
      const what = `Message ${j + 1} of conversation ${i + 1}`;
      const message: StoredMessage = { id: newId(), role: r.role, ...parseVersion(r, r.role, what) };
      if (r.role !== 'assistant' || !Array.isArray(r.versions) || r.versions.length === 0) return message;
      if (r.versions.length > MAX_VERSIONS) throw new ImportFormatError(`${what} has ${r.versions.length} versions; at most ${MAX_VERSIONS} are kept.`);
      const versions = r.versions.map((v: unknown, k: number) => {
        if (!v || typeof v !== 'object') throw new ImportFormatError(`Version ${k + 1} of ${what.toLowerCase()} is not an object.`);
        return parseVersion(v as Record<string, unknown>, 'assistant', `Version ${k + 1} of ${what.toLowerCase()}`);
      });
      return showReplyVersion({ ...message, versions }, num(r.version, versions.length - 1));
    });

    let id = typeof c.id === 'string' && c.id.length > 0 && c.id.length < 100 ? c.id : newId();
    if (seen.has(id)) id = newId();
    seen.add(id);
    const now = Date.now();
    return {
      id,
      title: typeof c.title === 'string' && c.title.trim() ? c.title.slice(0, 200) : 'Imported chat',
      systemPrompt: typeof c.systemPrompt === 'string' ? str(c.systemPrompt, 'A system prompt') : '',
      messages,
      createdAt: num(c.createdAt, now),
      updatedAt: num(c.updatedAt, now),
    };
  });
}
