/**
 * Models → Adapters: the LoRA adapters kept in the model store, listed apart from the models (a
 * file whose `general.type` is `adapter`): the base architecture each is made for, rank, size,
 * where it came from; import one from a local file or download one by URL (checked like a model:
 * size, SHA-256 when given, GGUF header), delete one. They are attached in the chat settings, to
 * a loaded model of their architecture, never loaded as a model.
 */
import { useRef, useState } from 'react';
import type { CachedModel } from '../engine/api.ts';
import { formatBytes } from './CapabilityReport.tsx';
import { engineClient } from './engine-client.ts';
import { errorText } from './errors.ts';
import { loadedModel, type EngineHandle } from './useEngine.ts';

/** A file stored as an adapter turned out to be something else: it is deleted again. */
class NotAnAdapterError extends Error {
  override name = 'NotAnAdapterError';
}

/**
 * Keeps `stored` if it is an adapter; otherwise says what it is, and deletes it unless it was in
 * the store before (a model picked here by mistake that was already kept stays).
 */
async function keepAdapter(stored: CachedModel, before: ReadonlySet<string>): Promise<CachedModel> {
  if (stored.kind === 'adapter') return stored;
  if (!before.has(stored.id)) await engineClient().engine.deleteModel(stored.id);
  throw new NotAnAdapterError(`"${stored.name}" is a model, not a LoRA adapter (its general.type is not 'adapter'); load it as a model above instead.`);
}

/** The store id of an adapter downloaded from `url` (the same URL again finds it). */
export function adapterUrlId(url: string): string {
  return `adapter:${url}`;
}

export function AdapterStore({ engine }: { engine: EngineHandle }) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [url, setUrl] = useState('');
  const [sha256, setSha256] = useState('');
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<string>();
  const adapters = engine.cached.filter((m) => m.kind === 'adapter');
  const architecture = loadedModel(engine.model)?.info.architecture;

  const run = async (what: string, body: () => Promise<CachedModel>) => {
    setBusy(what);
    setError(undefined);
    const before = new Set(engine.cached.map((m) => m.id));
    try {
      await keepAdapter(await body(), before);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(undefined);
      await engine.refreshStore();
    }
  };
  const importFile = (file: File) => run('Copying…', () => engineClient().engine.importModelFile([file], { copy: true, name: file.name }));
  const download = () => {
    const trimmed = url.trim();
    let parsed: URL;
    try {
      parsed = new URL(trimmed, document.baseURI);
    } catch {
      setError(`"${trimmed}" is not a URL.`);
      return;
    }
    const hash = sha256.trim().toLowerCase();
    if (hash && !/^[0-9a-f]{64}$/.test(hash)) {
      setError('The SHA-256 must be 64 hexadecimal digits (or left empty).');
      return;
    }
    void run('Downloading…', () =>
      engineClient().engine.downloadModel({ id: adapterUrlId(parsed.href), urls: [parsed.href], ...(hash ? { sha256: hash } : {}) }),
    );
  };

  return (
    <section className="panel" aria-labelledby="adapters-heading" data-testid="adapter-store">
      <h2 id="adapters-heading">Adapters</h2>
      <p className="muted">
        LoRA adapters (.gguf files with <code>general.type = adapter</code>) change how a model answers without changing it. Keep them here, then attach
        one in the chat settings to a loaded model of the architecture it is made for.
      </p>
      {adapters.length > 0 ? (
        <ul className="catalog" data-testid="stored-adapter-list">
          {adapters.map((m) => (
            <li key={m.id} className="catalog-item" data-testid="adapter-item">
              <div className="catalog-main">
                <h3>
                  {m.name} <span className="badge">adapter</span>
                </h3>
                <p className="muted small" data-testid="adapter-facts">
                  for {m.architecture ?? 'an unnamed architecture'} models
                  {m.adapter ? ` · rank ${m.adapter.rank} · alpha ${m.adapter.alpha} · ${m.adapter.targets} tensors` : ''}
                  {m.size !== undefined ? ` · ${formatBytes(m.size)}` : ''}
                  {' · '}
                  {m.origin === 'download' ? 'downloaded' : m.origin === 'session' ? 'read in place (this session only)' : 'copied from a file'}
                  {m.sha256 ? ' · SHA-256 checked' : ''}
                  {m.state === 'partial' ? ' · incomplete' : ''}
                  {architecture !== undefined && m.architecture !== architecture ? ` · not for the loaded model (${architecture})` : ''}
                </p>
              </div>
              <div className="catalog-actions">
                {m.origin !== 'session' && (
                  <button type="button" className="ghost" onClick={() => confirm(`Delete ${m.name} from this browser?`) && void engine.remove(m.id)} aria-label={`Delete ${m.name}`} data-testid="adapter-delete">
                    Delete
                  </button>
                )}
              </div>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted small">No adapters stored yet.</p>
      )}
      <div className="row wrap">
        <button type="button" onClick={() => fileInput.current?.click()} disabled={busy !== undefined} data-testid="adapter-import">
          {busy === 'Copying…' ? busy : 'Import an adapter file…'}
        </button>
        <input
          ref={fileInput}
          type="file"
          accept=".gguf"
          className="sr-only"
          tabIndex={-1}
          aria-hidden="true"
          data-testid="adapter-store-file"
          onChange={(e) => {
            const file = e.target.files?.[0];
            e.target.value = '';
            if (file) void importFile(file);
          }}
        />
      </div>
      <div className="row wrap">
        <label>
          Adapter URL <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://…/adapter.gguf" data-testid="adapter-url" />
        </label>
        <label>
          SHA-256 (optional) <input value={sha256} onChange={(e) => setSha256(e.target.value)} size={20} data-testid="adapter-sha256" />
        </label>
        <button type="button" onClick={download} disabled={busy !== undefined || url.trim() === ''} data-testid="adapter-download">
          {busy === 'Downloading…' ? busy : 'Download'}
        </button>
      </div>
      {error && (
        <p className="message-error" role="alert" data-testid="adapter-store-error">
          {error}
        </p>
      )}
    </section>
  );
}
