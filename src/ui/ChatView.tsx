/**
 * The chat screen: the conversation list, the messages of the open conversation with the reply
 * streaming in, the composer, and the settings (system prompt, sampling). The chat's state and
 * its engine calls are in useChat.ts.
 */
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { ReplyStats } from './conversations.ts';
import { ConversationList } from './ConversationList.tsx';
import { Markdown } from './Markdown.tsx';
import type { Preferences, SamplingSettings } from './settings.ts';
import { useChat } from './useChat.ts';
import type { ModelState } from './useEngine.ts';

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
  const chat = useChat({ model, prefs });
  const { active, streaming, stop } = chat;
  const [draft, setDraft] = useState('');
  const [editing, setEditing] = useState<{ id: string; text: string }>();
  const [showSettings, setShowSettings] = useState(false);
  const [showList, setShowList] = useState(false);
  const composer = useRef<HTMLTextAreaElement>(null);
  const listEnd = useRef<HTMLDivElement>(null);

  const modelReady = model.state === 'ready';

  useEffect(() => {
    listEnd.current?.scrollIntoView({ block: 'end' });
  }, [active?.messages]);

  const startConversation = () => {
    const conversation = chat.startConversation();
    setShowList(false);
    return conversation;
  };

  const send = (event?: FormEvent) => {
    event?.preventDefault();
    const text = draft.trim();
    if (!text || !chat.canReply) return;
    chat.send(active ?? startConversation(), text);
    setDraft('');
  };

  const saveEdit = (resend: boolean) => {
    if (editing && chat.editMessage(editing.id, editing.text, resend)) setEditing(undefined);
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
          setShowList(false);
        }}
        onRename={chat.rename}
        onDelete={chat.remove}
        onImport={chat.importFile}
      />

      <section className="chat" aria-label="Chat">
        <div className="chat-toolbar">
          <button type="button" className="ghost list-toggle" aria-expanded={showList} onClick={() => setShowList((v) => !v)}>
            ☰ Chats
          </button>
          <h2 className="chat-title">{active?.title ?? 'New chat'}</h2>
          <ContextMeter used={chat.contextUsed} total={contextLength} />
          <button type="button" className="ghost" aria-expanded={showSettings} aria-controls="chat-settings" onClick={() => setShowSettings((v) => !v)} data-testid="settings-toggle">
            ⚙ Settings
          </button>
        </div>

        {showSettings && (
          <ChatSettings
            systemPrompt={active?.systemPrompt ?? prefs.systemPrompt}
            onSystemPrompt={(systemPrompt) => {
              chat.setSystemPrompt(systemPrompt);
              setPrefs({ systemPrompt });
            }}
            sampling={prefs.sampling}
            onSampling={(sampling) => setPrefs({ sampling })}
          />
        )}

        <ModelBanner model={model} onOpenModels={onOpenModels} />
        {chat.notice && (
          <div className="notice" role="status">
            <span>{chat.notice}</span>
            <button type="button" className="icon" aria-label="Dismiss" onClick={chat.dismissNotice}>✕</button>
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
                    <button type="button" className="ghost small" onClick={() => chat.deleteMessage(m.id)} disabled={!!streaming}>Delete</button>
                    {m === lastAssistant && (
                      <button type="button" className="ghost small" onClick={chat.regenerate} disabled={!modelReady || !!streaming} data-testid="regenerate">
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
        <p className="sr-only" role="status" data-testid="chat-announcer">{chat.announce}</p>

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
