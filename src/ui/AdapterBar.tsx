/**
 * The chat's LoRA adapters: the ones in use shown in the model line (name and scale), and, with
 * the chat settings, a panel to attach one from the model store (those made for the loaded
 * model's architecture; the others listed as not matching) or from a .gguf file, switch each on
 * or off, set its scale, detach it, or attach again one the engine dropped.
 */
import { useRef } from 'react';
import type { CachedModel } from '../engine/api.ts';
import { formatBytes } from './CapabilityReport.tsx';
import type { AdaptersHandle } from './useAdapters.ts';

/** The adapters in use, for the model line: " · LoRA: style ×1.5, tone ×0.5"; nothing when none is. */
export function ActiveAdapters({ adapters }: { adapters: AdaptersHandle }) {
  const inUse = adapters.list.filter((a) => a.active && !a.dropped);
  const dropped = adapters.list.filter((a) => a.dropped);
  if (inUse.length === 0 && dropped.length === 0) return null;
  if (inUse.length === 0) {
    return (
      <span data-testid="adapters-dropped" className="message-error">
        {' · '}LoRA dropped: {dropped.map((a) => a.info.id).join(', ')}
      </span>
    );
  }
  return (
    <span data-testid="adapters-active">
      {' · '}LoRA:{' '}
      {inUse.map((a, i) => (
        <span key={a.info.id} data-testid="adapter-chip">
          {i > 0 && ', '}
          <strong>{a.info.id}</strong> ×{a.scale}
        </span>
      ))}
      {dropped.length > 0 && <span className="message-error" data-testid="adapters-dropped"> (dropped: {dropped.map((a) => a.info.id).join(', ')})</span>}
    </span>
  );
}

/** With the chat settings: attach an adapter, switch each on or off, set its scale, detach. */
export function AdapterPanel({
  adapters,
  disabled,
  stored,
  architecture,
}: {
  adapters: AdaptersHandle;
  disabled: boolean;
  /** The adapters kept in the model store (Models → Adapters). */
  stored: CachedModel[];
  /** The loaded model's architecture: only adapters made for it can be attached. */
  architecture: string | undefined;
}) {
  const input = useRef<HTMLInputElement>(null);
  const attachedFromStore = new Set(adapters.list.flatMap((a) => (a.source.kind === 'cached' ? [a.source.id] : [])));
  const complete = stored.filter((m) => m.state === 'complete');
  return (
    <div className="panel adapters" data-testid="adapters-panel">
      <strong>LoRA adapters</strong>
      {adapters.list.length === 0 && <p className="muted small">A LoRA adapter (a .gguf made for the model in use) changes how it answers, without changing the model.</p>}
      {adapters.list.map((a) => (
        <div className="adapter-row" key={a.info.id} data-testid="adapter-row">
          <label>
            <input type="checkbox" checked={a.active} onChange={(e) => adapters.setActive(a.info.id, e.target.checked)} /> {a.info.id}
          </label>{' '}
          <span className="muted">
            (rank {a.info.rank}, {a.info.targets.length} tensors{a.source.kind === 'cached' ? ', from the store' : ''})
          </span>{' '}
          {a.dropped && (
            <span className="message-error" data-testid="adapter-dropped">
              Dropped when the model was reloaded: {a.dropped}{' '}
              <button type="button" className="ghost small" disabled={adapters.busy} onClick={() => void adapters.reattach(a.info.id)}>
                Re-attach
              </button>
            </span>
          )}
          <label>
            Scale{' '}
            <input
              type="number"
              step="0.1"
              min="-4"
              max="4"
              value={a.scale}
              onChange={(e) => adapters.setScale(a.info.id, Number(e.target.value))}
              aria-label={`Scale of ${a.info.id}`}
              data-testid="adapter-scale"
            />
          </label>{' '}
          <button type="button" className="ghost small" onClick={() => adapters.detach(a.info.id)} data-testid="adapter-detach">
            Detach
          </button>
        </div>
      ))}
      {complete.length > 0 && (
        <ul className="stored-adapters" data-testid="stored-adapters">
          {complete.map((m) => {
            const fits = architecture !== undefined && m.architecture === architecture;
            return (
              <li key={m.id} data-testid="stored-adapter">
                {m.name}{' '}
                <span className="muted small">
                  for {m.architecture ?? 'an unnamed architecture'}
                  {m.adapter ? `, rank ${m.adapter.rank}` : ''}
                  {m.size !== undefined ? `, ${formatBytes(m.size)}` : ''}
                  {!fits && ` (not for this model: it is ${architecture ?? 'not loaded'})`}
                </span>{' '}
                {fits && (
                  <button
                    type="button"
                    className="ghost small"
                    disabled={disabled || adapters.busy || attachedFromStore.has(m.id)}
                    onClick={() => void adapters.attachStored(m.id)}
                    aria-label={`Attach ${m.name}`}
                    data-testid="stored-adapter-attach"
                  >
                    {attachedFromStore.has(m.id) ? 'Attached' : 'Attach'}
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <input
        ref={input}
        type="file"
        accept=".gguf"
        hidden
        data-testid="adapter-file"
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) void adapters.attach(file);
        }}
      />
      <button type="button" className="ghost" disabled={disabled || adapters.busy} onClick={() => input.current?.click()} data-testid="adapter-attach">
        {adapters.busy ? 'Attaching…' : 'Attach a LoRA adapter…'}
      </button>
      {adapters.error && (
        <div className="notice error" role="alert" data-testid="adapter-error">
          <span>{adapters.error}</span>
          <button type="button" className="ghost" onClick={adapters.dismissError}>
            OK
          </button>
        </div>
      )}
    </div>
  );
}
