/**
 * The chat: conversations (listed, renamed, deleted, exported, imported), the messages of the
 * open one with streaming replies, the composer, and the settings (system prompt, sampling).
 */
import { useCallback, useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { ChatMessage } from '../engine/api.ts';
import {
  deleteConversation,
  exportConversations,
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
import { Markdown } from './Markdown.tsx';
import { samplingRequest, type Preferences, type SamplingSettings } from './settings.ts';
import type { ModelState } from './useEngine.ts';

interface Streaming {
  conversationId: string;
  messageId: string;
  /** Stops the reply (it then finishes with what it has). */
  stop: AbortController;
}

const ACTIVE_KEY = 'hearth.activeConversation';

export function ChatView({
  model,
  prefs,
  setPrefs,
  onOpenModels,
}: {
  model: ModelState;
  prefs: Preferences;
  setPrefs: (patch: Partial<Preferences>) => void;
  onOpenModels: () => void;
}) {
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [activeId, setActiveId] = useState<string>();
  const [loaded, setLoaded] = useState(false);
  const [draft, setDraft] = useState('');
  const [streaming, setStreaming] = useState<Streaming>();
  const [announce, setAnnounce] = useState('');
  const [notice, setNotice] = useState<string>();
  const [contextUsed, setContextUsed] = useState<number>();
  const [editing, setEditing] = useState<{ id: string; text: string }>();
  const [renaming, setRenaming] = useState<{ id: string; title: string }>();
  const [showSettings, setShowSettings] = useState(false);
  const [showList, setShowList] = useState(false);
  const composer = useRef<HTMLTextAreaElement>(null);
  const listEnd = useRef<HTMLDivElement>(null);
  const importInput = useRef<HTMLInputElement>(null);

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

  useEffect(() => {
    listEnd.current?.scrollIntoView({ block: 'end' });
  }, [active?.messages]);

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
    setShowList(false);
    return conversation;
  }, [prefs.systemPrompt, put]);

  const send = (event?: FormEvent) => {
    event?.preventDefault();
    const text = draft.trim();
    if (!text || streaming || !modelReady) return;
    const base = active ?? startConversation();
    const user: StoredMessage = { id: newId(), role: 'user', content: text };
    const next: Conversation = {
      ...base,
      title: base.messages.length === 0 && base.title === 'New chat' ? titleFrom(text) : base.title,
      messages: [...base.messages, user],
      updatedAt: Date.now(),
    };
    put(next);
    setDraft('');
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

  const saveEdit = (resend: boolean) => {
    if (!active || !editing) return;
    const index = active.messages.findIndex((m) => m.id === editing.id);
    if (index < 0) return;
    const edited = { ...active.messages[index]!, content: editing.text };
    // Resending drops everything after the edited message: the replies answered the old text.
    const messages = resend ? [...active.messages.slice(0, index), edited] : active.messages.map((m, i) => (i === index ? edited : m));
    const next = { ...active, messages, updatedAt: Date.now() };
    setEditing(undefined);
    put(next);
    if (resend && edited.role === 'user' && modelReady) void generate(next);
  };

  const deleteMessage = (id: string) => {
    if (!active || streaming) return;
    put({ ...active, messages: active.messages.filter((m) => m.id !== id), updatedAt: Date.now() });
  };

  const remove = async (conversation: Conversation) => {
    if (!confirm(`Delete "${conversation.title}"? This cannot be undone.`)) return;
    await deleteConversation(conversation.id);
    setConversations((list) => list.filter((c) => c.id !== conversation.id));
    if (activeId === conversation.id) setActiveId(conversations.find((c) => c.id !== conversation.id)?.id);
  };

  const rename = () => {
    if (!renaming) return;
    const conversation = conversations.find((c) => c.id === renaming.id);
    if (conversation && renaming.title.trim()) put({ ...conversation, title: renaming.title.trim().slice(0, 200) });
    setRenaming(undefined);
  };

  const exportAll = () => {
    const blob = new Blob([exportConversations(conversations)], { type: 'application/json' });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `hearth-conversations-${new Date().toISOString().slice(0, 10)}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
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

  const onComposerKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) send(event);
  };

  useEffect(() => {
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key === 'Escape' && streaming) stop();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  const contextLength = model.state === 'ready' ? model.info.contextLength : undefined;
  const lastAssistant = active?.messages.at(-1)?.role === 'assistant' ? active.messages.at(-1) : undefined;

  return (
    <div className="chat-layout">
      <aside className={`sidebar${showList ? ' open' : ''}`} aria-label="Conversations">
        <div className="sidebar-actions">
          <button type="button" onClick={() => { startConversation(); composer.current?.focus(); }} data-testid="new-chat">
            + New chat
          </button>
        </div>
        <ul className="conversation-list" data-testid="conversation-list">
          {conversations.map((c) => (
            <li key={c.id} className={c.id === activeId ? 'active' : ''}>
              {renaming?.id === c.id ? (
                <form onSubmit={(e) => { e.preventDefault(); rename(); }} className="rename">
                  <label className="sr-only" htmlFor={`rename-${c.id}`}>New name</label>
                  <input
                    id={`rename-${c.id}`}
                    autoFocus
                    value={renaming.title}
                    onChange={(e) => setRenaming({ id: c.id, title: e.target.value })}
                    onBlur={rename}
                    onKeyDown={(e) => e.key === 'Escape' && setRenaming(undefined)}
                  />
                </form>
              ) : (
                <button
                  type="button"
                  className="conversation-title"
                  aria-current={c.id === activeId ? 'true' : undefined}
                  onClick={() => { setActiveId(c.id); setShowList(false); }}
                >
                  {c.title}
                </button>
              )}
              <span className="conversation-actions">
                <button type="button" className="icon" aria-label={`Rename "${c.title}"`} title="Rename" onClick={() => setRenaming({ id: c.id, title: c.title })}>✎</button>
                <button type="button" className="icon" aria-label={`Delete "${c.title}"`} title="Delete" onClick={() => void remove(c)} disabled={streaming?.conversationId === c.id}>✕</button>
              </span>
            </li>
          ))}
          {loaded && conversations.length === 0 && <li className="muted empty">No conversations yet.</li>}
        </ul>
        <div className="sidebar-actions">
          <button type="button" className="ghost" onClick={exportAll} disabled={conversations.length === 0}>Export all</button>
          <button type="button" className="ghost" onClick={() => importInput.current?.click()}>Import…</button>
          <input
            ref={importInput}
            type="file"
            accept="application/json,.json"
            className="sr-only"
            aria-label="Import conversations from a JSON file"
            data-testid="import-conversations"
            tabIndex={-1}
            onChange={(e) => {
              const file = e.target.files?.[0];
              e.target.value = '';
              if (file) void importFile(file);
            }}
          />
        </div>
      </aside>

      <section className="chat" aria-label="Chat">
        <div className="chat-toolbar">
          <button type="button" className="ghost list-toggle" aria-expanded={showList} onClick={() => setShowList((v) => !v)}>
            ☰ Chats
          </button>
          <h2 className="chat-title">{active?.title ?? 'New chat'}</h2>
          <ContextMeter used={contextUsed} total={contextLength} />
          <button type="button" className="ghost" aria-expanded={showSettings} aria-controls="chat-settings" onClick={() => setShowSettings((v) => !v)} data-testid="settings-toggle">
            ⚙ Settings
          </button>
        </div>

        {showSettings && (
          <ChatSettings
            systemPrompt={active?.systemPrompt ?? prefs.systemPrompt}
            onSystemPrompt={(systemPrompt) => {
              if (active) put({ ...active, systemPrompt });
              setPrefs({ systemPrompt });
            }}
            sampling={prefs.sampling}
            onSampling={(sampling) => setPrefs({ sampling })}
          />
        )}

        <ModelBanner model={model} onOpenModels={onOpenModels} />
        {notice && (
          <div className="notice" role="status">
            <span>{notice}</span>
            <button type="button" className="icon" aria-label="Dismiss" onClick={() => setNotice(undefined)}>✕</button>
          </div>
        )}

        <div className="messages" role="log" aria-live="polite" aria-relevant="additions" aria-label="Messages" data-testid="messages">
          {active?.messages.length ? null : (
            <p className="muted empty-chat">
              {modelReady ? 'Ask something. Enter sends, Shift+Enter adds a line, Escape stops a reply.' : 'Load a model to start chatting.'}
            </p>
          )}
          {active?.messages.map((m) => {
            const isStreaming = streaming?.messageId === m.id;
            return (
              <article
                key={m.id}
                className={`message ${m.role}`}
                data-testid={`message-${m.role}`}
                data-streaming={isStreaming ? 'true' : undefined}
                aria-busy={isStreaming}
                aria-label={m.role === 'user' ? 'You' : 'Assistant'}
              >
                {editing?.id === m.id ? (
                  <div className="edit">
                    <label className="sr-only" htmlFor={`edit-${m.id}`}>Edit message</label>
                    <textarea id={`edit-${m.id}`} autoFocus value={editing.text} onChange={(e) => setEditing({ id: m.id, text: e.target.value })} rows={4} />
                    <div className="row">
                      {m.role === 'user' && (
                        <button type="button" onClick={() => saveEdit(true)} disabled={!modelReady || !!streaming} data-testid="save-resend">
                          Save & resend
                        </button>
                      )}
                      <button type="button" className="ghost" onClick={() => saveEdit(false)}>Save</button>
                      <button type="button" className="ghost" onClick={() => setEditing(undefined)}>Cancel</button>
                    </div>
                  </div>
                ) : m.role === 'user' ? (
                  <p className="user-text" data-testid="user-text">{m.content}</p>
                ) : (
                  <>
                    {m.content ? <Markdown text={m.content} /> : isStreaming ? <p className="muted typing">Thinking…</p> : null}
                    {m.error && <p className="message-error" role="alert">{m.error}</p>}
                    {m.stats && <Stats stats={m.stats} />}
                  </>
                )}
                {!isStreaming && editing?.id !== m.id && (
                  <div className="message-actions">
                    <button type="button" className="ghost small" onClick={() => setEditing({ id: m.id, text: m.content })} disabled={!!streaming}>Edit</button>
                    <button type="button" className="ghost small" onClick={() => void navigator.clipboard?.writeText(m.content)}>Copy</button>
                    <button type="button" className="ghost small" onClick={() => deleteMessage(m.id)} disabled={!!streaming}>Delete</button>
                    {m === lastAssistant && (
                      <button type="button" className="ghost small" onClick={regenerate} disabled={!modelReady || !!streaming} data-testid="regenerate">
                        ↻ Regenerate
                      </button>
                    )}
                  </div>
                )}
              </article>
            );
          })}
          <div ref={listEnd} />
        </div>
        <p className="sr-only" role="status" data-testid="chat-announcer">{announce}</p>

        <form className="composer" onSubmit={send}>
          <label htmlFor="composer-input" className="sr-only">Message</label>
          <textarea
            id="composer-input"
            ref={composer}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onComposerKey}
            placeholder={modelReady ? 'Message (Enter to send, Shift+Enter for a new line)' : 'Load a model to chat'}
            rows={2}
            data-testid="composer"
          />
          {streaming ? (
            <button type="button" className="stop" onClick={stop} data-testid="stop">
              ■ Stop
            </button>
          ) : (
            <button type="submit" disabled={!modelReady || !draft.trim()} data-testid="send">
              Send
            </button>
          )}
        </form>
      </section>
    </div>
  );
}

function toChat(conversation: Conversation): ChatMessage[] {
  const messages: ChatMessage[] = conversation.messages.filter((m) => m.content.trim() !== '' || m.role === 'user').map((m) => ({ role: m.role, content: m.content }));
  return conversation.systemPrompt.trim() ? [{ role: 'system', content: conversation.systemPrompt }, ...messages] : messages;
}

function Stats({ stats }: { stats: ReplyStats }) {
  const reason = stats.finishReason === 'abort' ? 'stopped' : stats.finishReason === 'length' ? 'hit the length limit' : undefined;
  return (
    <p className="stats" data-testid="reply-stats">
      <span title="Decode speed">{stats.decodeTokensPerSecond.toFixed(1)} tokens/s</span>
      <span title="Time to first token">TTFT {Math.round(stats.timeToFirstTokenMs)} ms</span>
      <span title="Tokens generated">{stats.completionTokens} tokens</span>
      <span title="Prompt tokens (reused from the previous turn)">
        prompt {stats.promptTokens}
        {stats.cachedPromptTokens > 0 ? ` (${stats.cachedPromptTokens} cached)` : ''}
      </span>
      {reason && <span className="finish">{reason}</span>}
    </p>
  );
}

function ContextMeter({ used, total }: { used: number | undefined; total: number | undefined }) {
  if (!total) return <span className="context-meter muted" />;
  const value = used ?? 0;
  const ratio = value / total;
  return (
    <span className="context-meter" data-testid="context-meter" title="Tokens of the model's context window this conversation uses">
      <label htmlFor="context-meter">Context</label>
      <meter id="context-meter" min={0} max={total} low={total * 0.7} high={total * 0.9} optimum={0} value={value} />
      <span className={ratio > 0.9 ? 'warn' : ''}>
        {used === undefined ? '…' : value.toLocaleString('en-US')} / {total.toLocaleString('en-US')}
      </span>
    </span>
  );
}

function ModelBanner({ model, onOpenModels }: { model: ModelState; onOpenModels: () => void }) {
  switch (model.state) {
    case 'ready':
      return (
        <p className="model-line" data-testid="model-ready">
          Model: <strong>{model.info.name}</strong> <span className="muted">({model.info.quantization}, <span data-testid="model-backend">{model.info.backend === 'cpu' ? 'CPU' : 'WebGPU'}</span>, context {model.info.contextLength.toLocaleString('en-US')})</span>
          {!model.info.hasChatTemplate && model.info.templateFallback && <span className="muted"> · {model.info.templateFallback}</span>}
          {model.info.backendNotice && (
            <span className="muted" data-testid="backend-notice" data-backend={model.info.backend}>
              {' '}
              · {model.info.backendNotice}
            </span>
          )}
        </p>
      );
    case 'loading': {
      const p = model.download ?? model.progress;
      const total = model.download ? (model.download.total ?? 0) : (model.progress?.total ?? 0);
      const done = model.download ? model.download.bytes : (model.progress?.loaded ?? 0);
      const uploaded = model.progress?.phase === 'uploading-weights' && total > 0 && done >= total;
      // After the last weight is uploaded the engine compiles its kernels (slow on software GPUs).
      const phase = model.download ? 'Fetching' : uploaded ? 'Preparing the GPU kernels for' : model.progress ? PHASES[model.progress.phase] : 'Opening';
      return (
        <div className="model-line" role="status" data-testid="model-loading">
          {phase} {model.label}…{' '}
          {p && total > 0 && <progress max={total} value={done} aria-label={`${phase} ${model.label}`} />}
        </div>
      );
    }
    case 'error':
      return (
        <div className="notice error" role="alert" data-testid="model-error">
          <strong>{model.error.title}</strong> ({model.label}): {model.error.message}{' '}
          <button type="button" className="ghost" onClick={onOpenModels}>Open Models</button>
        </div>
      );
    case 'none':
      return (
        <div className="notice" data-testid="model-none">
          {model.notice ?? 'No model is loaded.'}{' '}
          <button type="button" className="ghost" onClick={onOpenModels}>Open Models</button>
        </div>
      );
  }
}

const PHASES: Record<string, string> = {
  'reading-header': 'Reading',
  'uploading-weights': 'Uploading weights of',
  'compiling-kernels': 'Compiling kernels for',
  'warming-up': 'Warming up',
};

function ChatSettings({
  systemPrompt,
  onSystemPrompt,
  sampling,
  onSampling,
}: {
  systemPrompt: string;
  onSystemPrompt: (text: string) => void;
  sampling: SamplingSettings;
  onSampling: (s: SamplingSettings) => void;
}) {
  const field = (key: keyof Omit<SamplingSettings, 'seed'>, label: string, min: number, max: number, step: number, help: string) => (
    <label className="setting">
      <span>{label}</span>
      <input
        type="number"
        min={min}
        max={max}
        step={step}
        value={sampling[key]}
        onChange={(e) => onSampling({ ...sampling, [key]: Number(e.target.value) })}
        aria-describedby={`help-${key}`}
      />
      <small id={`help-${key}`} className="muted">{help}</small>
    </label>
  );
  return (
    <div id="chat-settings" className="panel settings" data-testid="chat-settings">
      <label className="setting wide">
        <span>System prompt (this conversation, and new ones)</span>
        <textarea value={systemPrompt} onChange={(e) => onSystemPrompt(e.target.value)} rows={3} data-testid="system-prompt" />
      </label>
      <div className="settings-grid">
        {field('temperature', 'Temperature', 0, 2, 0.05, '0 is greedy; higher is more varied.')}
        {field('top_p', 'Top-p', 0, 1, 0.01, 'Sample from the smallest set with this much probability.')}
        {field('top_k', 'Top-k', 0, 1000, 1, 'Sample from the k likeliest tokens (0: all).')}
        {field('min_p', 'Min-p', 0, 1, 0.01, 'Drop tokens below this fraction of the likeliest.')}
        {field('repetition_penalty', 'Repetition penalty', 0.5, 2, 0.05, 'Above 1 discourages repeating tokens.')}
        {field('max_tokens', 'Max reply tokens', 1, 32768, 1, 'The reply stops here.')}
        <label className="setting">
          <span>Seed</span>
          <input type="text" inputMode="numeric" value={sampling.seed} placeholder="random" onChange={(e) => onSampling({ ...sampling, seed: e.target.value })} />
          <small className="muted">The same seed repeats a reply.</small>
        </label>
      </div>
    </div>
  );
}
