/**
 * The chat screen: the conversation list, the messages of the open conversation with the reply
 * streaming in, the composer, and the settings (system prompt, sampling). The chat's state and
 * its engine calls are in useChat.ts.
 */
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { serverHost } from '../engine/rpc/openai-server.ts';
import type { CachedModel } from '../engine/api.ts';
import type { CatalogModel } from './catalog.ts';
import { conversationMarkdown, exportFileName } from './conversation-markdown.ts';
import { exportConversations, type Conversation, type ReplyStats, type StoredMessage } from './conversations.ts';
import { ConversationList } from './ConversationList.tsx';
import { downloadText } from './download.ts';
import { Markdown } from './Markdown.tsx';
import { ModelBanner, RemoteModelLine } from './ModelStatus.tsx';
import type { RemoteChoice } from './remote-servers.ts';
import { ActiveAdapters, AdapterPanel } from './AdapterBar.tsx';
import { useAdapters } from './useAdapters.ts';
import type { Preferences, SamplingSettings } from './settings.ts';
import { useChat, type ContextUse } from './useChat.ts';
import { loadedModel, type ModelState } from './useEngine.ts';

export function ChatView({
  model,
  catalog,
  prefs,
  setPrefs,
  onOpenModels,
  remote,
  storedAdapters = [],
  attachAdapter,
  onAdapterAttached,
}: {
  model: ModelState;
  /** LoRA adapters kept in the model store, to attach in the chat settings. */
  storedAdapters?: CachedModel[];
  /** A stored adapter to attach as soon as a model is in use (the Personalize page's "Use this adapter"). */
  attachAdapter?: string | undefined;
  onAdapterAttached?: () => void;
  /** The remote model chats go to instead of the local one (Models → Servers). */
  remote?: RemoteChoice | undefined;
  /** The catalog, to know the loaded model's mode (a text-continuation demo, or a chat model). */
  catalog: CatalogModel[];
  prefs: Preferences;
  setPrefs: (patch: Partial<Preferences>) => void;
  onOpenModels: () => void;
}) {
  // With a remote model chosen, the local one (if any) stays loaded but does not answer.
  const inUse = remote ? undefined : loadedModel(model);
  const entry = inUse?.id !== undefined ? catalog.find((m) => m.id === inUse.id) : undefined;
  const continuation = entry?.mode === 'continuation';
  const adapters = useAdapters(model);
  const { attachStored } = adapters;
  useEffect(() => {
    if (attachAdapter === undefined || !inUse) return;
    onAdapterAttached?.();
    void attachStored(attachAdapter);
  }, [attachAdapter, inUse, attachStored, onAdapterAttached]);
  const chat = useChat({ model, prefs, mode: entry?.mode, adapters: adapters.request, remote });
  const { active, streaming, stop } = chat;
  const [draft, setDraft] = useState('');
  const [editing, setEditing] = useState<{ id: string; text: string }>();
  const [showSettings, setShowSettings] = useState(false);
  const [showList, setShowList] = useState(false);
  const composer = useRef<HTMLTextAreaElement>(null);
  const listToggle = useRef<HTMLButtonElement>(null);
  const messagesBox = useRef<HTMLElement>(null);
  // Whether the view follows the reply as it grows: only while the user is at the bottom, so
  // reading back during a reply is not interrupted.
  const stickToBottom = useRef(true);
  // Where the view last scrolled itself to: a view above it now was moved up by the user, even if
  // the scroll event saying so has not arrived yet (it comes a frame later, after new tokens may).
  const autoScrolledTo = useRef<number | undefined>(undefined);
  /** Follow the reply again from now on (a send, a regenerate, another conversation). */
  const followFromNowOn = () => {
    stickToBottom.current = true;
    autoScrolledTo.current = undefined;
  };

  const modelReady = remote !== undefined || (inUse !== undefined && model.state !== 'loading');

  const onMessagesScroll = () => {
    const box = messagesBox.current;
    if (box) stickToBottom.current = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  };
  // Another conversation opens at its end.
  useEffect(followFromNowOn, [active?.id]);
  const hasMessages = !!active?.messages.length;
  useEffect(() => {
    const box = messagesBox.current;
    // An empty chat shows its introduction from the top.
    if (!box || !hasMessages) return;
    const follow = () => {
      if (!stickToBottom.current) return;
      if (autoScrolledTo.current !== undefined && box.scrollTop < autoScrolledTo.current - 48) {
        stickToBottom.current = false;
        return;
      }
      box.scrollTop = box.scrollHeight;
      autoScrolledTo.current = box.scrollTop;
    };
    follow();
    // Every change of the messages' DOM, not each state update: a streaming reply's Markdown
    // renders on its own schedule, after the message text it shows has changed.
    const observer = new MutationObserver(follow);
    observer.observe(box, { childList: true, subtree: true, characterData: true });
    return () => observer.disconnect();
  }, [hasMessages, active?.id]);

  /** Closes the conversation drawer (phones), returning focus to its toggle when it had it. */
  const closeList = (refocus = false) => {
    setShowList(false);
    if (refocus) listToggle.current?.focus();
  };

  const startConversation = () => {
    const conversation = chat.startConversation();
    closeList();
    return conversation;
  };

  /** A conversation to write into: the open one, unless it is a chat and the model continues text. */
  const target = (): Conversation => (active && !(continuation && active.systemPrompt.trim()) ? active : startConversation());

  const send = (event?: FormEvent) => {
    event?.preventDefault();
    // Text to continue keeps its spaces: a trailing space changes what the model writes next.
    const text = continuation ? draft : draft.trim();
    if (!text.trim() || !chat.canReply) return;
    followFromNowOn();
    chat.send(target(), text);
    setDraft('');
  };

  const saveEdit = (resend: boolean) => {
    if (resend) followFromNowOn();
    if (editing && chat.editMessage(editing.id, editing.text, resend)) setEditing(undefined);
  };

  const onComposerKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) send(event);
  };

  useEffect(() => {
    // The message box is where a visit starts; not on touch screens, where focus opens the keyboard.
    if (matchMedia('(pointer: fine)').matches) composer.current?.focus({ preventScroll: true });
  }, []);

  const replying = streaming !== undefined;
  const wasReplying = useRef(replying);
  useEffect(() => {
    if (wasReplying.current === replying) return;
    wasReplying.current = replying;
    // Send and Stop swap places as a reply starts and ends, so a click on either leaves the focus on
    // nothing: give it back to the message box, but never take it from where the user moved it.
    const lost = document.activeElement === null || document.activeElement === document.body;
    if (lost) composer.current?.focus({ preventScroll: true });
  }, [replying]);

  useEffect(() => {
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key !== 'Escape') return;
      // Escape closes the open drawer first (unless it cancels a rename there); otherwise it stops a reply.
      if (showList) {
        if (!(event.target instanceof HTMLInputElement)) closeList(true);
      }
      else if (streaming) stop();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  const contextLength = inUse?.info.contextLength;
  const intro = (compact: boolean) =>
    entry && (
      <DemoIntro
        entry={entry}
        assistant={catalog.find((m) => m.id === entry.assistant)}
        compact={compact}
        canReply={chat.canReply}
        onExample={(text) => chat.send(target(), text)}
        onOpenModels={onOpenModels}
      />
    );
  const lastAssistant = active?.messages.at(-1)?.role === 'assistant' ? active.messages.at(-1) : undefined;
  const regenerate = () => {
    followFromNowOn();
    chat.regenerate();
  };

  return (
    <div className="chat-layout">
      <ConversationList
        conversations={chat.conversations}
        activeId={active?.id}
        loaded={chat.loaded}
        open={showList}
        busyId={streaming?.conversationId}
        onNew={() => {
          startConversation();
          composer.current?.focus();
        }}
        onSelect={(id) => {
          chat.select(id);
          closeList();
        }}
        onClose={() => closeList(true)}
        onRename={chat.rename}
        onDelete={chat.remove}
        onImport={chat.importFile}
      />

      {/* On a phone the list is a drawer over the chat: a tap beside it closes it. */}
      {showList && <div className="drawer-backdrop" aria-hidden="true" onClick={() => closeList()} data-testid="drawer-backdrop" />}

      <section className="chat" aria-label="Chat">
        <div className="chat-toolbar">
          <button ref={listToggle} type="button" className="ghost list-toggle" aria-expanded={showList} onClick={() => setShowList((v) => !v)} data-testid="list-toggle">
            ☰ <span className="toolbar-label">Chats</span>
          </button>
          <h2 className="chat-title" data-testid="chat-title">{active?.title ?? 'New chat'}</h2>
          <ContextMeter use={chat.context} total={contextLength} />
          <button type="button" className="ghost" aria-expanded={showSettings} aria-controls="chat-settings" onClick={() => setShowSettings((v) => !v)} data-testid="settings-toggle">
            ⚙ <span className="toolbar-label">Settings</span>
          </button>
          <ExportMenu conversation={active} />
        </div>

        {showSettings && (
          <ChatSettings
            continuation={continuation}
            systemPrompt={active?.systemPrompt ?? prefs.systemPrompt}
            onSystemPrompt={chat.setSystemPrompt}
            defaultSystemPrompt={prefs.systemPrompt}
            onDefaultSystemPrompt={(systemPrompt) => setPrefs({ systemPrompt })}
            sampling={prefs.sampling}
            onSampling={(sampling) => setPrefs({ sampling })}
            jsonMode={prefs.jsonMode}
            onJsonMode={(jsonMode) => setPrefs({ jsonMode })}
          />
        )}

        {showSettings && inUse && !remote && <AdapterPanel adapters={adapters} disabled={model.state === 'loading'} stored={storedAdapters} architecture={inUse.info.architecture} />}

        {remote ? (
          <RemoteModelLine remote={remote} />
        ) : (
          <ModelBanner model={model} onOpenModels={onOpenModels} extra={<ActiveAdapters adapters={adapters} />} />
        )}
        {chat.notice && (
          <div className="notice" role="status">
            <span>{chat.notice}</span>
            <button type="button" className="icon" aria-label="Dismiss" onClick={chat.dismissNotice}>✕</button>
          </div>
        )}

        {/* Once there is text, the demo's introduction shrinks to a line above it. */}
        {continuation && entry && active?.messages.length ? intro(true) : null}

        {/* Not a live region: a screen reader would read every token. The status line below announces replies. */}
        <section ref={messagesBox} onScroll={onMessagesScroll} className="messages" aria-label="Messages" data-testid="messages">
          {continuation && entry && !active?.messages.length && intro(false)}
          {active?.messages.length || continuation ? null : (
            <p className="muted empty-chat">
              {remote
                ? `Messages go to ${serverHost(remote.server.baseUrl)}, which writes the replies; the conversation is kept in this browser. Enter sends, Escape stops a reply.`
                : modelReady
                ? 'Ask something. Enter sends, Shift+Enter adds a line, Escape stops a reply.'
                : model.state === 'starting' || model.state === 'loading'
                  ? 'The model is loading; you can write while it does.'
                  : 'Load a model to start chatting.'}
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
                aria-label={m.role === 'user' ? 'You' : continuation ? 'Continuation' : 'Assistant'}
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
                    {m.content ? <Markdown text={m.content} streaming={isStreaming} /> : isStreaming ? <p className="muted typing">Thinking…</p> : null}
                    {m.error && <p className="message-error" role="alert">{m.error}</p>}
                    {m.stats && <Stats stats={m.stats} />}
                  </>
                )}
                {!isStreaming && editing?.id !== m.id && (
                  <div className="message-actions">
                    <button type="button" className="ghost small" onClick={() => setEditing({ id: m.id, text: m.content })} disabled={!!streaming}>Edit</button>
                    <CopyButton text={m.content} />
                    <button type="button" className="ghost small" onClick={() => chat.deleteMessage(m.id)} disabled={!!streaming}>Delete</button>
                    {m === lastAssistant && (
                      <button type="button" className="ghost small" onClick={regenerate} disabled={!modelReady || !!streaming} data-testid="regenerate">
                        ↻ Regenerate
                      </button>
                    )}
                    <VersionSwitch message={m} disabled={!!streaming} onShow={(index) => chat.showVersion(m.id, index)} />
                  </div>
                )}
              </article>
            );
          })}
        </section>
        <p className="sr-only" role="status" data-testid="chat-announcer">{chat.announce}</p>

        <form className="composer" onSubmit={send}>
          <label htmlFor="composer-input" className="sr-only">Message</label>
          <span id="composer-keys" className="sr-only">Enter sends, Shift+Enter adds a line, Escape stops a reply.</span>
          <textarea
            id="composer-input"
            ref={composer}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onComposerKey}
            placeholder={
              !modelReady ? 'Load a model to chat' : continuation ? 'The opening of a passage, for the model to continue (Enter to send)' : 'Message (Enter to send, Shift+Enter for a new line)'
            }
            rows={2}
            aria-describedby="composer-keys"
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

/** Why a reply ended where it did, and what to do about it; undefined for a natural end. */
function finishText(stats: ReplyStats): string | undefined {
  // 'stopped' is kept for the user's Stop alone.
  if (stats.finishReason === 'abort') return 'stopped';
  if (stats.finishReason !== 'length') return undefined;
  if (stats.lengthLimit === 'max_tokens') return `reached Max reply tokens (${stats.maxTokens ?? stats.completionTokens}); raise it in Settings for longer replies`;
  if (stats.lengthLimit === 'context_window') {
    return `the context window (${stats.contextLength ?? '?'} tokens) is full. Send again to go on (the oldest messages are then left out), start a new chat, or load a model with a longer context`;
  }
  return 'hit the length limit';
}

function Stats({ stats }: { stats: ReplyStats }) {
  const reason = finishText(stats);
  return (
    <>
      <p className="stats" data-testid="reply-stats">
        <span title="Decode speed">{stats.decodeTokensPerSecond.toFixed(1)} tokens/s</span>
        <span title="Time to first token">TTFT {Math.round(stats.timeToFirstTokenMs)} ms</span>
        <span title="Tokens generated">{stats.completionTokens} tokens</span>
        {stats.jsonMode && <span title="Constrained to one JSON object (JSON mode)" data-testid="json-mode-stat">JSON</span>}
        {stats.server && (
          <span title={`Written by ${stats.model} on the server ${stats.server}; speeds include the network`} data-testid="reply-server">
            ↗ {stats.server}
          </span>
        )}
        <span title="Prompt tokens (reused from the previous turn)">
          prompt {stats.promptTokens}
          {stats.cachedPromptTokens > 0 ? ` (${stats.cachedPromptTokens} cached)` : ''}
        </span>
        {reason && <span className="finish" data-testid="finish-reason">{reason}</span>}
      </p>
      {stats.droppedMessages ? (
        <p className="stats" data-testid="dropped-note">
          The {stats.droppedMessages} oldest messages did not fit the context window and were left out of this reply.
        </p>
      ) : null}
    </>
  );
}

function ContextMeter({ use, total }: { use: ContextUse | undefined; total: number | undefined }) {
  const size = use?.total ?? total;
  if (!size) return <span className="context-meter muted" />;
  const value = use?.used ?? 0;
  const ratio = value / size;
  return (
    <span
      className="context-meter"
      data-testid="context-meter"
      title={
        use?.dropped
          ? `Tokens of the model's context window in use; the ${use.dropped} oldest messages no longer fit and are left out`
          : "Tokens of the model's context window this conversation uses"
      }
    >
      <label htmlFor="context-meter">Context</label>
      <meter id="context-meter" min={0} max={size} low={size * 0.7} high={size * 0.9} optimum={0} value={value} />
      <span className={ratio > 0.9 ? 'warn' : ''} data-testid="context-count">
        {value.toLocaleString('en-US')} / {size.toLocaleString('en-US')}
      </span>
      {use?.dropped ? <span className="muted small" data-testid="context-dropped"> ({use.dropped} oldest left out)</span> : null}
    </span>
  );
}

/**
 * What the built-in demo is, openings to click, and where to get a model that answers questions:
 * all from the catalog entry (its notes, examples and suggested assistant).
 */
function DemoIntro({
  entry,
  assistant,
  compact,
  canReply,
  onExample,
  onOpenModels,
}: {
  entry: CatalogModel;
  assistant: CatalogModel | undefined;
  compact: boolean;
  canReply: boolean;
  onExample: (text: string) => void;
  onOpenModels: () => void;
}) {
  const suggestion = assistant && (
    <>
      For answers to questions, download an assistant such as <strong>{assistant.name}</strong> ({assistant.quantization}, about{' '}
      {Math.round(assistant.approxSize / 1e6)} MB) in{' '}
      <button type="button" className="link" onClick={onOpenModels} data-testid="get-assistant">
        Models
      </button>
      .
    </>
  );
  if (compact) {
    return (
      <p className="muted small demo-intro compact" data-testid="demo-intro">
        Text continuation: {entry.name} continues what you write; it does not answer. {suggestion}
      </p>
    );
  }
  return (
    <section className="panel demo-intro" aria-labelledby="demo-heading" data-testid="demo-intro">
      <h3 id="demo-heading">{entry.name}: text continuation</h3>
      {entry.notes && <p>{entry.notes}</p>}
      <p>Write the opening of a passage and it carries on; there is no system prompt and no chat. Or start with one of these:</p>
      <div className="row wrap examples">
        {(entry.examples ?? []).map((text) => (
          <button key={text} type="button" className="ghost" onClick={() => onExample(text)} disabled={!canReply} data-testid="example">
            {text}
          </button>
        ))}
      </div>
      {suggestion && <p data-testid="assistant-suggestion">{suggestion}</p>}
    </section>
  );
}

function ChatSettings({
  continuation,
  systemPrompt,
  onSystemPrompt,
  defaultSystemPrompt,
  onDefaultSystemPrompt,
  sampling,
  onSampling,
  jsonMode,
  onJsonMode,
}: {
  continuation: boolean;
  /** This conversation's own system prompt. */
  systemPrompt: string;
  onSystemPrompt: (text: string) => void;
  /** The system prompt new chats start with. */
  defaultSystemPrompt: string;
  onDefaultSystemPrompt: (text: string) => void;
  sampling: SamplingSettings;
  onSampling: (s: SamplingSettings) => void;
  jsonMode: boolean;
  onJsonMode: (on: boolean) => void;
}) {
  const field = (key: keyof Omit<SamplingSettings, 'seed'>, label: string, min: number, max: number, step: number, help: string) => (
    <div className="setting">
      <label htmlFor={`setting-${key}`}>{label}</label>
      <input
        id={`setting-${key}`}
        type="number"
        min={min}
        max={max}
        step={step}
        value={sampling[key]}
        onChange={(e) => onSampling({ ...sampling, [key]: Number(e.target.value) })}
        aria-describedby={`help-${key}`}
      />
      <small id={`help-${key}`} className="muted">{help}</small>
    </div>
  );
  return (
    <div id="chat-settings" className="panel settings" data-testid="chat-settings">
      {continuation ? (
        <p className="muted small" data-testid="no-system-prompt">This model continues text: it gets no system prompt.</p>
      ) : (
        <div className="setting wide">
          <label htmlFor="setting-system-prompt">System prompt</label>
          <textarea id="setting-system-prompt" value={systemPrompt} onChange={(e) => onSystemPrompt(e.target.value)} rows={3} aria-describedby="help-system-prompt" data-testid="system-prompt" />
          <small id="help-system-prompt" className="muted">Of this chat only.</small>
        </div>
      )}
      <div className="setting wide">
        <label htmlFor="setting-default-system-prompt">Default system prompt</label>
        <textarea id="setting-default-system-prompt" value={defaultSystemPrompt} onChange={(e) => onDefaultSystemPrompt(e.target.value)} rows={2} aria-describedby="help-default-system-prompt" data-testid="default-system-prompt" />
        <small id="help-default-system-prompt" className="muted">New chats start with it.</small>
      </div>
      <div className="settings-grid">
        {field('temperature', 'Temperature', 0, 2, 0.05, '0 is greedy; higher is more varied.')}
        {field('top_p', 'Top-p', 0, 1, 0.01, 'Sample from the smallest set with this much probability.')}
        {field('top_k', 'Top-k', 0, 1000, 1, 'Sample from the k likeliest tokens (0: all).')}
        {field('min_p', 'Min-p', 0, 1, 0.01, 'Drop tokens below this fraction of the likeliest.')}
        {field('repetition_penalty', 'Repetition penalty', 0.5, 2, 0.05, 'Above 1 discourages repeating tokens.')}
        {field('max_tokens', 'Max reply tokens', 1, 32768, 1, 'The reply stops here.')}
        <div className="setting">
          <label htmlFor="setting-seed">Seed</label>
          <input id="setting-seed" type="text" inputMode="numeric" value={sampling.seed} placeholder="random" onChange={(e) => onSampling({ ...sampling, seed: e.target.value })} aria-describedby="help-seed" />
          <small id="help-seed" className="muted">The same seed repeats a reply.</small>
        </div>
        <div className="setting">
          <label htmlFor="setting-json-mode">JSON mode</label>
          <input id="setting-json-mode" type="checkbox" checked={jsonMode} onChange={(e) => onJsonMode(e.target.checked)} aria-describedby="help-json-mode" data-testid="json-mode" />
          <small id="help-json-mode" className="muted">Replies are one JSON object, always valid (unless cut off by Max reply tokens).</small>
        </div>
      </div>
    </div>
  );
}

/** Copy, confirming with "Copied" (or saying the browser refused) for a moment. */
function CopyButton({ text }: { text: string }) {
  const [result, setResult] = useState<'copied' | 'failed'>();
  useEffect(() => {
    if (!result) return;
    const timer = setTimeout(() => setResult(undefined), 2000);
    return () => clearTimeout(timer);
  }, [result]);
  const copy = async () => {
    try {
      // navigator.clipboard is missing outside secure contexts: that is a failure too.
      await navigator.clipboard.writeText(text);
      setResult('copied');
    } catch {
      setResult('failed');
    }
  };
  return (
    <button type="button" className="ghost small" onClick={() => void copy()} data-testid="copy">
      <span aria-live="polite">{result === 'copied' ? 'Copied' : result === 'failed' ? 'Copy failed' : 'Copy'}</span>
    </button>
  );
}

/** "‹ 2/3 ›" on a regenerated reply: which version is shown, and the others a click away. */
function VersionSwitch({ message, disabled, onShow }: { message: StoredMessage; disabled: boolean; onShow: (index: number) => void }) {
  const count = message.versions?.length ?? 0;
  if (count < 2) return null;
  const at = message.version ?? count - 1;
  return (
    <span className="versions" role="group" aria-label="Versions of this reply" data-testid="versions">
      <button type="button" className="icon" aria-label="Previous version" disabled={disabled || at === 0} onClick={() => onShow(at - 1)} data-testid="version-previous">
        ‹
      </button>
      <span data-testid="version-label">
        {at + 1}/{count}
      </span>
      <button type="button" className="icon" aria-label="Next version" disabled={disabled || at === count - 1} onClick={() => onShow(at + 1)} data-testid="version-next">
        ›
      </button>
    </span>
  );
}

/** Export of the open conversation: Markdown to read, or JSON to import again (all versions kept). */
function ExportMenu({ conversation }: { conversation: Conversation | undefined }) {
  const menu = useRef<HTMLDetailsElement>(null);
  const save = (ext: 'md' | 'json') => {
    if (!conversation) return;
    if (ext === 'md') downloadText(exportFileName(conversation.title, ext), conversationMarkdown(conversation), 'text/markdown;charset=utf-8');
    else downloadText(exportFileName(conversation.title, ext), exportConversations([conversation]), 'application/json');
    if (menu.current) menu.current.open = false;
  };
  const disabled = !conversation?.messages.length;
  return (
    <details ref={menu} className="menu" data-testid="export-menu">
      <summary className="ghost">
        ⤓ <span className="toolbar-label">Export</span>
      </summary>
      <div className="menu-items">
        <button type="button" className="ghost" onClick={() => save('md')} disabled={disabled} data-testid="export-markdown">
          This chat as Markdown
        </button>
        <button type="button" className="ghost" onClick={() => save('json')} disabled={disabled} data-testid="export-json">
          This chat as JSON
        </button>
      </div>
    </details>
  );
}
