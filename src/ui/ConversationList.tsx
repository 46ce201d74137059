/**
 * The saved conversations beside the chat (a drawer over it on a phone): open, start, rename and
 * delete one; export them all to a JSON file or import such a file.
 */
import { useEffect, useRef, useState } from 'react';
import { exportConversations, type Conversation } from './conversations.ts';
import { downloadText } from './download.ts';

export function ConversationList({
  conversations,
  activeId,
  loaded,
  open,
  busyId,
  onNew,
  onSelect,
  onRename,
  onDelete,
  onImport,
  onClose,
}: {
  conversations: Conversation[];
  activeId: string | undefined;
  /** Whether the saved conversations have been read (before that, an empty list says nothing). */
  loaded: boolean;
  /** Shown over the chat on narrow screens, as a drawer. */
  open: boolean;
  /** The conversation a reply is streaming into: it cannot be deleted meanwhile. */
  busyId: string | undefined;
  onNew: () => void;
  onSelect: (id: string) => void;
  onRename: (id: string, title: string) => void;
  onDelete: (conversation: Conversation) => Promise<void>;
  onImport: (file: File) => Promise<void>;
  /** Closes the drawer. */
  onClose: () => void;
}) {
  const [renaming, setRenaming] = useState<{ id: string; title: string }>();
  const importInput = useRef<HTMLInputElement>(null);
  const closeButton = useRef<HTMLButtonElement>(null);

  // The drawer takes the focus when it opens, so the keyboard is where the eyes are.
  useEffect(() => {
    if (open) closeButton.current?.focus();
  }, [open]);

  const finishRename = () => {
    if (!renaming) return;
    onRename(renaming.id, renaming.title);
    setRenaming(undefined);
  };

  const remove = async (conversation: Conversation) => {
    if (!confirm(`Delete "${conversation.title}"? This cannot be undone.`)) return;
    await onDelete(conversation);
  };

  const exportAll = () => {
    downloadText(`hearth-conversations-${new Date().toISOString().slice(0, 10)}.json`, exportConversations(conversations), 'application/json');
  };

  return (
    <aside className={`sidebar${open ? ' open' : ''}`} aria-label="Conversations">
      <div className="sidebar-actions">
        <button type="button" onClick={onNew} data-testid="new-chat">
          + New chat
        </button>
        <button ref={closeButton} type="button" className="icon drawer-close" aria-label="Close conversations" onClick={onClose} data-testid="close-list">
          ✕
        </button>
      </div>
      <ul className="conversation-list" data-testid="conversation-list">
        {conversations.map((c) => (
          <li key={c.id} className={c.id === activeId ? 'active' : ''}>
            {renaming?.id === c.id ? (
              <form onSubmit={(e) => { e.preventDefault(); finishRename(); }} className="rename">
                <label className="sr-only" htmlFor={`rename-${c.id}`}>New name</label>
                <input
                  id={`rename-${c.id}`}
                  autoFocus
                  value={renaming.title}
                  onChange={(e) => setRenaming({ id: c.id, title: e.target.value })}
                  onBlur={finishRename}
                  onKeyDown={(e) => e.key === 'Escape' && setRenaming(undefined)}
                />
              </form>
            ) : (
              <button
                type="button"
                className="conversation-title"
                aria-current={c.id === activeId ? 'true' : undefined}
                onClick={() => onSelect(c.id)}
              >
                {c.title}
              </button>
            )}
            <span className="conversation-actions">
              <button type="button" className="icon" aria-label={`Rename "${c.title}"`} title="Rename" onClick={() => setRenaming({ id: c.id, title: c.title })}>✎</button>
              <button type="button" className="icon" aria-label={`Delete "${c.title}"`} title="Delete" onClick={() => void remove(c)} disabled={busyId === c.id}>✕</button>
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
            if (file) void onImport(file);
          }}
        />
      </div>
    </aside>
  );
}
