/**
 * The chat as React state: the saved conversations (read from and written to IndexedDB), the open
 * one, the reply being streamed in, and what the chat tells the user (notices, the screen-reader
 * announcement, the context meter's count). Replies stream through the page's engine client
 * (`engineClient().chat.completions.create`), stopped through its AbortSignal; or, when the user
 * chose a remote model, through the same OpenAI-shaped client over that server
 * (remote-servers.ts). Either way the conversation is stored here, in this browser.
 */
import { useCallback, useEffect, useState } from 'react';
import type { ChatMessage, PromptFormat } from '../engine/api.ts';
import type { CatalogMode } from './catalog.ts';
import {
  addReplyVersion,
  autoTitle,
  deleteConversation,
  findEmptyConversation,
  isWorthSaving,
  listConversations,
  mergeListed,
  newConversation,
  newId,
  parseExport,
  readImportFile,
  saveConversation,
  setShownReply,
  showReplyVersion,
  type Conversation,
  type ReplyStats,
  type StoredMessage,
} from './conversations.ts';
import { serverHost } from '../engine/rpc/openai-server.ts';
import { engineClient } from './engine-client.ts';
import { describeError, errorText } from './errors.ts';
import { remoteChatClient, type RemoteChoice } from './remote-servers.ts';
import { remoteSamplingRequest, samplingRequest, type Preferences } from './settings.ts';
import { loadedModel, type ModelState } from './useEngine.ts';

/** The reply being streamed in. */
export interface Streaming {
  conversationId: string;
  messageId: string;
  /** Stops the reply (it then finishes with what it has). */
  stop: AbortController;
}

const ACTIVE_KEY = 'hearth.activeConversation';

export interface ContextUse {
  used: number;
  total: number;
  /** Oldest messages the next request leaves out. */
  dropped: number;
}

export interface ChatHandle {
  conversations: Conversation[];
  active: Conversation | undefined;
  /** Whether the saved conversations have been read. */
  loaded: boolean;
  streaming: Streaming | undefined;
  /** Whether a reply can start now: a model is ready and no reply is streaming. */
  canReply: boolean;
  /** What a screen reader announces about the reply (started, finished, failed). */
  announce: string;
  notice: string | undefined;
  dismissNotice(): void;
  /**
   * What the open conversation takes of the context window: before a reply, what the next request
   * would send (after the oldest turns that do not fit are dropped); while a reply streams, its
   * prompt and the tokens generated so far.
   */
  context: ContextUse | undefined;
  select(id: string): void;
  /**
   * Opens an empty conversation with the default system prompt: the empty one there is, if any
   * (it is saved only once it has a message), else a new one.
   */
  startConversation(): Conversation;
  /** Adds a user message to `conversation` (naming a new one after it) and streams the reply. */
  send(conversation: Conversation, text: string): void;
  stop(): void;
  /** Replies again to the open conversation's last user message, as a new version of the last reply. */
  regenerate(): void;
  /** Shows version `index` of a regenerated reply of the open conversation. */
  showVersion(messageId: string, index: number): void;
  /**
   * Changes a message of the open conversation; with `resend`, drops what follows and replies to
   * it. Returns false when there is no such message.
   */
  editMessage(id: string, text: string, resend: boolean): boolean;
  deleteMessage(id: string): void;
  /** The open conversation's own system prompt (the default for new chats is a preference). */
  setSystemPrompt(text: string): void;
  rename(id: string, title: string): void;
  remove(conversation: Conversation): Promise<void>;
  importFile(file: File): Promise<void>;
}

/**
 * `mode` is the loaded model's catalog mode: 'continuation' (a base model, such as the built-in
 * demo) sends the conversation as text to continue, with no template and no system prompt.
 */
const NO_ADAPTERS: ReadonlyArray<{ id: string; scale: number }> = [];

export function useChat({
  model,
  prefs,
  mode = 'chat',
  adapters = NO_ADAPTERS,
  remote,
}: {
  model: ModelState;
  prefs: Preferences;
  mode?: CatalogMode | undefined;
  /** LoRA adapters each reply applies, at their scales. */
  adapters?: ReadonlyArray<{ id: string; scale: number }>;
  /** The remote model chats go to, instead of the local engine. */
  remote?: RemoteChoice | undefined;
}): ChatHandle {
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [activeId, setActiveId] = useState<string>();
  const [loaded, setLoaded] = useState(false);
  const [streaming, setStreaming] = useState<Streaming>();
  const [announce, setAnnounce] = useState('');
  const [notice, setNotice] = useState<string>();
  const [context, setContext] = useState<ContextUse>();

  const active = conversations.find((c) => c.id === activeId);
  // A model kept after a failed load answers; during a load a reply would wait for the new model.
  const inUse = loadedModel(model);
  // A remote model is ready as soon as it is chosen: the server says otherwise when a reply is asked.
  const modelReady = remote !== undefined || (inUse !== undefined && model.state !== 'loading');
  const format: PromptFormat = mode === 'continuation' && !remote ? 'text' : 'chat';

  useEffect(() => {
    listConversations()
      .then((list) => {
        setConversations((inView) => mergeListed(inView, list));
        // A conversation opened before the list came (a "New chat" click) stays open.
        const remembered = localStorage.getItem(ACTIVE_KEY);
        setActiveId((open) => open ?? list.find((c) => c.id === remembered)?.id ?? list[0]?.id);
      })
      .catch((error: unknown) => setNotice(`Saved conversations could not be read: ${(error as Error).message}`))
      .finally(() => setLoaded(true));
  }, []);

  useEffect(() => {
    if (activeId) localStorage.setItem(ACTIVE_KEY, activeId);
  }, [activeId]);

  /** Replaces one conversation in state and in IndexedDB (where an empty one is not kept). */
  const put = useCallback((conversation: Conversation, persist = true) => {
    setConversations((list) => {
      const others = list.filter((c) => c.id !== conversation.id);
      return [conversation, ...others].sort((a, b) => b.updatedAt - a.updatedAt);
    });
    if (!persist) return;
    const saved = isWorthSaving(conversation) ? saveConversation(conversation) : deleteConversation(conversation.id);
    saved.catch((error: unknown) => setNotice(`Could not save: ${(error as Error).message}`));
  }, []);

  // The context meter between replies: what the next request would send, as the engine fits it.
  // The text's length changes with an edit or a switch to another version of a reply, too.
  const textLength = active?.messages.reduce((n, m) => n + m.content.length, 0) ?? 0;
  const messagesKey = active ? `${active.id}:${active.messages.length}:${textLength}:${active.systemPrompt.length}` : '';
  useEffect(() => {
    if (!modelReady || streaming) return;
    // A server's context window is not known here: no meter (its replies report their usage).
    if (remote) return setContext(undefined);
    let stale = false;
    void measure(active ? toChat(active, format) : [], format).then((use) => {
      if (use && !stale) setContext(use);
    });
    return () => {
      stale = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [messagesKey, modelReady, streaming, inUse?.info, format, remote]);

  /**
   * Runs a reply for the conversation's last message (a user turn) and streams it into
   * `assistant`: a new message, or a new version of the reply being regenerated.
   */
  const generate = useCallback(
    async (conversation: Conversation, assistant: StoredMessage = { id: newId(), role: 'assistant', content: '' }) => {
      let current: Conversation = { ...conversation, messages: [...conversation.messages, assistant], updatedAt: Date.now() };
      put(current, false);
      const controller = new AbortController();
      setStreaming({ conversationId: current.id, messageId: assistant.id, stop: controller });
      setAnnounce('The assistant is replying…');
      const messages = toChat(conversation, format);
      // The meter shows this request's prompt until the first token comes, then follows the reply.
      const before = remote ? undefined : await measure(messages, format);
      if (before) setContext(before);
      let text = '';
      let frame = 0;
      const flush = () => {
        frame = 0;
        current = { ...current, messages: current.messages.map((m) => (m.id === assistant.id ? setShownReply(m, { content: text }) : m)) };
        put(current, false);
      };
      try {
        const sampling = remote ? remoteSamplingRequest(prefs.sampling) : samplingRequest(prefs.sampling);
        const jsonMode = prefs.jsonMode;
        const client = remote ? remoteChatClient(remote) : engineClient();
        const reply = client.chat.completions.create({
          ...sampling,
          ...(format === 'text' ? { prompt_format: format } : {}),
          ...(jsonMode ? { response_format: { type: 'json_object' as const } } : {}),
          ...(adapters.length && !remote ? { adapters: adapters.map((a) => ({ ...a })) } : {}),
          messages,
          stream: true,
          signal: controller.signal,
        });
        for await (const chunk of reply) {
          const fill = chunk.context;
          if (fill) setContext({ used: fill.used, total: fill.total, dropped: before?.dropped ?? 0 });
          const delta = chunk.choices[0].delta.content;
          if (!delta) continue;
          text += delta;
          // One render per frame, however fast tokens come.
          if (!frame) frame = requestAnimationFrame(flush);
        }
        const result = await reply.completion;
        if (frame) cancelAnimationFrame(frame);
        const u = result.usage;
        const stats: ReplyStats = {
          promptTokens: u.prompt_tokens,
          completionTokens: u.completion_tokens,
          cachedPromptTokens: u.cached_prompt_tokens,
          timeToFirstTokenMs: u.time_to_first_token_ms,
          decodeTokensPerSecond: u.decode_tokens_per_second,
          prefillTokensPerSecond: u.prefill_tokens_per_second,
          // The app sends no tools, so a reply never ends in calls; 'tool_calls' would be one.
          finishReason: result.choices[0].finish_reason === 'tool_calls' ? 'stop' : result.choices[0].finish_reason,
          model: result.model,
          lengthLimit: u.length_limit,
          droppedMessages: u.dropped_messages,
          contextLength: before?.total,
          maxTokens: sampling.max_tokens,
          jsonMode,
          ...(remote ? { server: serverHost(remote.server.baseUrl) } : {}),
        };
        current = {
          ...current,
          messages: current.messages.map((m) => (m.id === assistant.id ? setShownReply(m, { content: result.choices[0].message.content ?? '', stats }) : m)),
          updatedAt: Date.now(),
        };
        setAnnounce(stats.finishReason === 'abort' ? 'Reply stopped.' : `Reply finished: ${stats.completionTokens} tokens.`);
        if (u.dropped_messages > 0) {
          setNotice(
            `This conversation is longer than the model's context window (${before?.total ?? '?'} tokens): its ${u.dropped_messages} oldest messages were left out of this reply, ` +
              'so the model no longer sees them. Start a new chat to begin afresh, or load a model with a longer context.',
          );
        }
      } catch (error) {
        if (frame) cancelAnimationFrame(frame);
        current = {
          ...current,
          messages: current.messages.map((m) => (m.id === assistant.id ? setShownReply(m, { content: text, error: errorText(error) }) : m)),
          updatedAt: Date.now(),
        };
        setAnnounce(`The reply failed: ${describeError(error).title}.`);
      } finally {
        put(current);
        setStreaming(undefined);
      }
    },
    [prefs.sampling, prefs.jsonMode, put, format, adapters, remote],
  );

  const startConversation = useCallback((): Conversation => {
    const empty = findEmptyConversation(conversations);
    // Text to continue has no system prompt: a base model would only continue it as text.
    const systemPrompt = format === 'text' ? '' : (empty?.systemPrompt ?? prefs.systemPrompt);
    const conversation = empty ? { ...empty, systemPrompt, updatedAt: Date.now() } : newConversation(systemPrompt);
    put(conversation);
    setActiveId(conversation.id);
    return conversation;
  }, [conversations, prefs.systemPrompt, put, format]);

  const send = (base: Conversation, text: string) => {
    const user: StoredMessage = { id: newId(), role: 'user', content: text };
    const next: Conversation = { ...base, messages: [...base.messages, user], updatedAt: Date.now() };
    next.title = autoTitle(base, next);
    put(next);
    void generate(next);
  };

  const stop = () => {
    streaming?.stop.abort();
  };

  const regenerate = () => {
    if (!active || streaming || !modelReady) return;
    const last = active.messages.at(-1);
    if (last?.role !== 'assistant') return;
    // The earlier versions stay with the reply; the new one is shown as it streams in.
    void generate({ ...active, messages: active.messages.slice(0, -1) }, addReplyVersion(last));
  };

  const showVersion = (messageId: string, index: number) => {
    if (!active || streaming?.messageId === messageId) return;
    put({ ...active, messages: active.messages.map((m) => (m.id === messageId ? showReplyVersion(m, index) : m)) });
  };

  const editMessage = (id: string, text: string, resend: boolean): boolean => {
    if (!active) return false;
    const index = active.messages.findIndex((m) => m.id === id);
    if (index < 0) return false;
    const old = active.messages[index]!;
    const edited = old.role === 'assistant' ? setShownReply(old, { ...old, content: text }) : { ...old, content: text };
    // Resending drops everything after the edited message: the replies answered the old text.
    const messages = resend ? [...active.messages.slice(0, index), edited] : active.messages.map((m, i) => (i === index ? edited : m));
    const next = { ...active, messages, updatedAt: Date.now() };
    next.title = autoTitle(active, next);
    put(next);
    if (resend && edited.role === 'user' && modelReady) void generate(next);
    return true;
  };

  const deleteMessage = (id: string) => {
    if (!active || streaming) return;
    put({ ...active, messages: active.messages.filter((m) => m.id !== id), updatedAt: Date.now() });
  };

  const setSystemPrompt = (systemPrompt: string) => {
    if (active) return put({ ...active, systemPrompt });
    // With no conversation open, the prompt starts one (kept in memory until its first message).
    const conversation = newConversation(systemPrompt);
    put(conversation);
    setActiveId(conversation.id);
  };

  const rename = (id: string, title: string) => {
    const conversation = conversations.find((c) => c.id === id);
    if (conversation && title.trim()) put({ ...conversation, title: title.trim().slice(0, 200) });
  };

  const remove = async (conversation: Conversation) => {
    await deleteConversation(conversation.id);
    setConversations((list) => list.filter((c) => c.id !== conversation.id));
    if (activeId === conversation.id) setActiveId(conversations.find((c) => c.id !== conversation.id)?.id);
  };

  const importFile = async (file: File) => {
    try {
      const imported = parseExport(await readImportFile(file), new Set(conversations.map((c) => c.id)));
      for (const c of imported) await saveConversation(c);
      setConversations((list) => [...imported, ...list].sort((a, b) => b.updatedAt - a.updatedAt));
      if (imported[0]) setActiveId(imported[0].id);
      setNotice(`Imported ${imported.length} conversation${imported.length === 1 ? '' : 's'}.`);
    } catch (error) {
      setNotice(errorText(error));
    }
  };

  return {
    conversations,
    active,
    loaded,
    streaming,
    canReply: modelReady && !streaming,
    announce,
    notice,
    dismissNotice: () => setNotice(undefined),
    context,
    select: setActiveId,
    startConversation,
    send,
    stop,
    regenerate,
    showVersion,
    editMessage,
    deleteMessage,
    setSystemPrompt,
    rename,
    remove,
    importFile,
  };
}

/** The request's messages; text to continue leaves the system prompt out (prompt_format 'text'). */
function toChat(conversation: Conversation, format: PromptFormat): ChatMessage[] {
  const messages: ChatMessage[] = conversation.messages.filter((m) => m.content.trim() !== '' || m.role === 'user').map((m) => ({ role: m.role, content: m.content }));
  return format === 'chat' && conversation.systemPrompt.trim() ? [{ role: 'system', content: conversation.systemPrompt }, ...messages] : messages;
}

/** What `messages` take of the context window as the engine fits them; undefined when it cannot say. */
async function measure(messages: ChatMessage[], format: PromptFormat): Promise<ContextUse | undefined> {
  try {
    if (messages.length === 0) {
      const info = await engineClient().engine.status();
      return info.state === 'ready' ? { used: 0, total: info.model.contextLength, dropped: 0 } : undefined;
    }
    const m = await engineClient().engine.measureContext(messages, { prompt_format: format });
    return { used: m.fitted_tokens, total: m.context_length, dropped: m.dropped_messages };
  } catch {
    return undefined;
  }
}
