/**
 * The chat as React state: the saved conversations (read from and written to IndexedDB), the open
 * one, the reply being streamed in, and what the chat tells the user (notices, the screen-reader
 * announcement, the context meter's count). Replies stream through the page's engine client
 * (`engineClient().chat.completions.create`), stopped through its AbortSignal.
 */
import { useCallback, useEffect, useState } from 'react';
import type { ChatMessage } from '../engine/api.ts';
import {
  deleteConversation,
  listConversations,
  newConversation,
  newId,
  parseExport,
  saveConversation,
  titleFrom,
  type Conversation,
  type ReplyStats,
  type StoredMessage,
} from './conversations.ts';
import { engineClient } from './engine-client.ts';
import { describeError, errorText } from './errors.ts';
import { samplingRequest, type Preferences } from './settings.ts';
import type { ModelState } from './useEngine.ts';

/** The reply being streamed in. */
export interface Streaming {
  conversationId: string;
  messageId: string;
  /** Stops the reply (it then finishes with what it has). */
  stop: AbortController;
}

const ACTIVE_KEY = 'hearth.activeConversation';

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
  /** Prompt tokens the open conversation takes with the loaded model's template. */
  contextUsed: number | undefined;
  select(id: string): void;
  /** Starts an empty conversation with the preferred system prompt and opens it. */
  startConversation(): Conversation;
  /** Adds a user message to `conversation` (naming a new one after it) and streams the reply. */
  send(conversation: Conversation, text: string): void;
  stop(): void;
  /** Replies again to the open conversation's last user message, replacing the last reply. */
  regenerate(): void;
  /**
   * Changes a message of the open conversation; with `resend`, drops what follows and replies to
   * it. Returns false when there is no such message.
   */
  editMessage(id: string, text: string, resend: boolean): boolean;
  deleteMessage(id: string): void;
  setSystemPrompt(text: string): void;
  rename(id: string, title: string): void;
  remove(conversation: Conversation): Promise<void>;
  importFile(file: File): Promise<void>;
}

export function useChat({ model, prefs }: { model: ModelState; prefs: Preferences }): ChatHandle {
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [activeId, setActiveId] = useState<string>();
  const [loaded, setLoaded] = useState(false);
  const [streaming, setStreaming] = useState<Streaming>();
  const [announce, setAnnounce] = useState('');
  const [notice, setNotice] = useState<string>();
  const [contextUsed, setContextUsed] = useState<number>();

  const active = conversations.find((c) => c.id === activeId);
  const modelReady = model.state === 'ready';

  useEffect(() => {
    listConversations()
      .then((list) => {
        setConversations(list);
        const remembered = localStorage.getItem(ACTIVE_KEY);
        setActiveId(list.find((c) => c.id === remembered)?.id ?? list[0]?.id);
      })
      .catch((error: unknown) => setNotice(`Saved conversations could not be read: ${(error as Error).message}`))
      .finally(() => setLoaded(true));
  }, []);

  useEffect(() => {
    if (activeId) localStorage.setItem(ACTIVE_KEY, activeId);
  }, [activeId]);

  /** Replaces one conversation in state and in IndexedDB. */
  const put = useCallback((conversation: Conversation, persist = true) => {
    setConversations((list) => {
      const others = list.filter((c) => c.id !== conversation.id);
      return [conversation, ...others].sort((a, b) => b.updatedAt - a.updatedAt);
    });
    if (persist) saveConversation(conversation).catch((error: unknown) => setNotice(`Could not save: ${(error as Error).message}`));
  }, []);

  // The context meter: prompt tokens of the open conversation with the loaded model's template.
  const messagesKey = active ? `${active.id}:${active.messages.length}:${active.systemPrompt.length}` : '';
  useEffect(() => {
    if (!modelReady || streaming || !active) {
      if (!active) setContextUsed(undefined);
      return;
    }
    let stale = false;
    engineClient()
      .engine.countTokens(toChat(active))
      .then((n) => !stale && setContextUsed(n))
      .catch(() => !stale && setContextUsed(undefined));
    return () => {
      stale = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [messagesKey, modelReady, streaming, model.state === 'ready' ? model.info : undefined]);

  /** Runs a reply for the conversation's last message (a user turn) and streams it in. */
  const generate = useCallback(
    async (conversation: Conversation) => {
      const assistant: StoredMessage = { id: newId(), role: 'assistant', content: '' };
      let current: Conversation = { ...conversation, messages: [...conversation.messages, assistant], updatedAt: Date.now() };
      put(current, false);
      const controller = new AbortController();
      setStreaming({ conversationId: current.id, messageId: assistant.id, stop: controller });
      setAnnounce('The assistant is replying…');
      let text = '';
      let frame = 0;
      const flush = () => {
        frame = 0;
        current = { ...current, messages: current.messages.map((m) => (m.id === assistant.id ? { ...m, content: text } : m)) };
        put(current, false);
      };
      try {
        const reply = engineClient().chat.completions.create({ ...samplingRequest(prefs.sampling), messages: toChat(conversation), stream: true, signal: controller.signal });
        for await (const chunk of reply) {
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
          finishReason: result.choices[0].finish_reason,
          model: result.model,
        };
        current = {
          ...current,
          messages: current.messages.map((m) => (m.id === assistant.id ? { ...m, content: result.choices[0].message.content, stats } : m)),
          updatedAt: Date.now(),
        };
        setContextUsed(u.prompt_tokens + u.completion_tokens);
        setAnnounce(stats.finishReason === 'abort' ? 'Reply stopped.' : `Reply finished: ${stats.completionTokens} tokens.`);
        if (u.dropped_messages > 0) setNotice(`The conversation no longer fits the context window: the ${u.dropped_messages} oldest messages were left out of this reply.`);
      } catch (error) {
        if (frame) cancelAnimationFrame(frame);
        current = {
          ...current,
          messages: current.messages.map((m) => (m.id === assistant.id ? { ...m, content: text, error: errorText(error) } : m)),
          updatedAt: Date.now(),
        };
        setAnnounce(`The reply failed: ${describeError(error).title}.`);
      } finally {
        put(current);
        setStreaming(undefined);
      }
    },
    [prefs.sampling, put],
  );

  const startConversation = useCallback((): Conversation => {
    const conversation = newConversation(prefs.systemPrompt);
    put(conversation);
    setActiveId(conversation.id);
    return conversation;
  }, [prefs.systemPrompt, put]);

  const send = (base: Conversation, text: string) => {
    const user: StoredMessage = { id: newId(), role: 'user', content: text };
    const next: Conversation = {
      ...base,
      title: base.messages.length === 0 && base.title === 'New chat' ? titleFrom(text) : base.title,
      messages: [...base.messages, user],
      updatedAt: Date.now(),
    };
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
    const next = { ...active, messages: active.messages.slice(0, -1) };
    void generate(next);
  };

  const editMessage = (id: string, text: string, resend: boolean): boolean => {
    if (!active) return false;
    const index = active.messages.findIndex((m) => m.id === id);
    if (index < 0) return false;
    const edited = { ...active.messages[index]!, content: text };
    // Resending drops everything after the edited message: the replies answered the old text.
    const messages = resend ? [...active.messages.slice(0, index), edited] : active.messages.map((m, i) => (i === index ? edited : m));
    const next = { ...active, messages, updatedAt: Date.now() };
    put(next);
    if (resend && edited.role === 'user' && modelReady) void generate(next);
    return true;
  };

  const deleteMessage = (id: string) => {
    if (!active || streaming) return;
    put({ ...active, messages: active.messages.filter((m) => m.id !== id), updatedAt: Date.now() });
  };

  const setSystemPrompt = (systemPrompt: string) => {
    if (active) put({ ...active, systemPrompt });
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
      const imported = parseExport(await file.text(), new Set(conversations.map((c) => c.id)));
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
    contextUsed,
    select: setActiveId,
    startConversation,
    send,
    stop,
    regenerate,
    editMessage,
    deleteMessage,
    setSystemPrompt,
    rename,
    remove,
    importFile,
  };
}

function toChat(conversation: Conversation): ChatMessage[] {
  const messages: ChatMessage[] = conversation.messages.filter((m) => m.content.trim() !== '' || m.role === 'user').map((m) => ({ role: m.role, content: m.content }));
  return conversation.systemPrompt.trim() ? [{ role: 'system', content: conversation.systemPrompt }, ...messages] : messages;
}
