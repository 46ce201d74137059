/**
 * The chat's LoRA adapters: the ones in use shown in the model line (name and scale), and, with
 * the chat settings, a panel to attach one from a .gguf file, switch each on or off, set its
 * scale, or detach it.
 */
import { useRef } from 'react';
import type { AdaptersHandle } from './useAdapters.ts';

/** The adapters in use, for the model line: " · LoRA: style ×1.5, tone ×0.5"; nothing when none is. */
export function ActiveAdapters({ adapters }: { adapters: AdaptersHandle }) {
  const inUse = adapters.list.filter((a) => a.active);
  if (inUse.length === 0) return null;
  return (
    <span data-testid="adapters-active">
      {' · '}LoRA:{' '}
      {inUse.map((a, i) => (
        <span key={a.info.id} data-testid="adapter-chip">
          {i > 0 && ', '}
          <strong>{a.info.id}</strong> ×{a.scale}
        </span>
      ))}
    </span>
  );
}

/** With the chat settings: attach an adapter, switch each on or off, set its scale, detach. */
export function AdapterPanel({ adapters, disabled }: { adapters: AdaptersHandle; disabled: boolean }) {
  const input = useRef<HTMLInputElement>(null);
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
            (rank {a.info.rank}, {a.info.targets.length} tensors)
          </span>{' '}
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
