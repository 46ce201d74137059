/**
 * The saved conversations beside the chat (a drawer over it on a phone): open, start, rename and
 * delete one; export them all to a JSON file or import such a file.
 *
 * The list is one tab stop (a roving tabindex): Up/Down/Home/End move between conversations, Enter
 * opens one, Right/Left reach its Rename and Delete buttons, F2 renames and Delete deletes it.
 */
import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
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

  const list = useRef<HTMLUListElement>(null);
  // The conversation whose title is the list's one tab stop: the last one focused, else the open one.
  const [rovingId, setRovingId] = useState<string>();
  useEffect(() => setRovingId(activeId), [activeId]);
  const has = (id: string | undefined) => id !== undefined && conversations.some((c) => c.id === id);
  const tabStop = has(rovingId) ? rovingId : has(activeId) ? activeId : conversations[0]?.id;

  // After a delete from the keyboard, the focus goes to the conversation that took its place.
  const refocusAt = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (refocusAt.current === undefined) return;
    const all = titles();
    all[Math.min(refocusAt.current, all.length - 1)]?.focus();
    refocusAt.current = undefined;
  }, [conversations]);

  const titles = () => [...(list.current?.querySelectorAll<HTMLButtonElement>('.conversation-title') ?? [])];
  const focusTitle = (id: string) => list.current?.querySelector<HTMLButtonElement>(`[data-conversation="${CSS.escape(id)}"] .conversation-title`)?.focus();

  /** Arrow keys, Home and End between the conversations and within a row; F2 and Delete on a title. */
  const onListKey = (event: KeyboardEvent<HTMLUListElement>) => {
    const target = event.target as HTMLElement;
    const row = target.closest<HTMLElement>('[data-conversation]');
    if (target.tagName !== 'BUTTON' || !row) return; // the rename field keeps its keys
    const all = titles();
    const at = all.findIndex((t) => row.contains(t));
    const inRow = [...row.querySelectorAll<HTMLButtonElement>('button:not(:disabled)')];
    const step = (to: HTMLElement | undefined) => {
      event.preventDefault();
      to?.focus();
    };
    switch (event.key) {
      case 'ArrowDown': return step(all[Math.min(at + 1, all.length - 1)]);
      case 'ArrowUp': return step(all[Math.max(at - 1, 0)]);
      case 'Home': return step(all[0]);
      case 'End': return step(all.at(-1));
      case 'ArrowRight': return step(inRow[Math.min(inRow.indexOf(target as HTMLButtonElement) + 1, inRow.length - 1)]);
      case 'ArrowLeft': return step(inRow[Math.max(inRow.indexOf(target as HTMLButtonElement) - 1, 0)]);
    }
    const conversation = conversations.find((c) => c.id === row.dataset.conversation);
    if (!conversation || !target.classList.contains('conversation-title')) return;
    if (event.key === 'F2') {
      event.preventDefault();
      setRenaming({ id: conversation.id, title: conversation.title });
    } else if (event.key === 'Delete' && busyId !== conversation.id) {
      event.preventDefault();
      refocusAt.current = at;
      void remove(conversation).then((deleted) => {
        if (!deleted) refocusAt.current = undefined;
      });
    }
  };

  const finishRename = (refocus = false) => {
    if (!renaming) return;
    onRename(renaming.id, renaming.title);
    setRenaming(undefined);
    if (refocus) requestAnimationFrame(() => focusTitle(renaming.id));
  };

  /** Whether the user confirmed and it was deleted. */
  const remove = async (conversation: Conversation): Promise<boolean> => {
    if (!confirm(`Delete "${conversation.title}"? This cannot be undone.`)) return false;
    await onDelete(conversation);
    return true;
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
      <ul className="conversation-list" data-testid="conversation-list" ref={list} onKeyDown={onListKey}>
        {conversations.map((c) => (
          <li key={c.id} className={c.id === activeId ? 'active' : ''} data-conversation={c.id}>
            {renaming?.id === c.id ? (
              <form onSubmit={(e) => { e.preventDefault(); finishRename(true); }} className="rename">
                <label className="sr-only" htmlFor={`rename-${c.id}`}>New name</label>
                <input
                  id={`rename-${c.id}`}
                  autoFocus
                  value={renaming.title}
                  onChange={(e) => setRenaming({ id: c.id, title: e.target.value })}
                  onBlur={() => finishRename()}
                  onKeyDown={(e) => {
                    if (e.key !== 'Escape') return;
                    setRenaming(undefined);
                    requestAnimationFrame(() => focusTitle(c.id));
                  }}
                />
              </form>
            ) : (
              <button
                type="button"
                className="conversation-title"
                aria-current={c.id === activeId ? 'true' : undefined}
                aria-keyshortcuts="F2 Delete"
                tabIndex={c.id === tabStop ? 0 : -1}
                onFocus={() => setRovingId(c.id)}
                onClick={() => onSelect(c.id)}
              >
                {c.title}
              </button>
            )}
            <span className="conversation-actions">
              <button type="button" className="icon" tabIndex={-1} aria-label={`Rename "${c.title}"`} title="Rename (F2)" onClick={() => setRenaming({ id: c.id, title: c.title })}>✎</button>
              <button type="button" className="icon" tabIndex={-1} aria-label={`Delete "${c.title}"`} title="Delete (Delete key)" onClick={() => void remove(c)} disabled={busyId === c.id}>✕</button>
            </span>
          </li>
        ))}
        {loaded && conversations.length === 0 && <li className="muted empty">No conversations yet.</li>}
      </ul>
      <div className="sidebar-actions">
        <button type="button" className="ghost" onClick={exportAll} disabled={conversations.length === 0} aria-label="Export all conversations">Export all</button>
        <button type="button" className="ghost" onClick={() => importInput.current?.click()} aria-label="Import conversations…">Import…</button>
        {/* Opened by the button above; hidden from screen readers so the picker is met once. */}
        <input
          ref={importInput}
          type="file"
          accept="application/json,.json"
          className="sr-only"
          aria-hidden="true"
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
