/**
 * The model manager: the catalog with a "fits this device" verdict, downloads with progress,
 * models in the store (load, delete), loading a local GGUF file, and the LoRA adapters kept in
 * the store (AdapterStore).
 */
import { useEffect, useRef, useState } from 'react';
import type { BackendChoice, GpuReport } from '../engine/api.ts';
import { CPU_DEFAULT_MODEL_BYTES, fitVerdict, runningBackend, type CatalogModel, type DeviceFacts } from './catalog.ts';
import { formatBytes } from './CapabilityReport.tsx';
import { LoadOutcome } from './ModelStatus.tsx';
import { TransferProgress } from './TransferProgress.tsx';
import type { RemoteServersHandle } from './remote-servers.ts';
import { ServersPanel } from './ServersPanel.tsx';
import { AdapterStore } from './AdapterStore.tsx';
import { loadedModel, type EngineHandle } from './useEngine.ts';

export function ModelManager({ engine, gpu, remote }: { engine: EngineHandle; gpu: GpuReport | undefined; remote: RemoteServersHandle }) {
  const [copy, setCopy] = useState(true);
  const fileInput = useRef<HTMLInputElement>(null);
  const { catalog, cached, usage, downloads, downloadErrors, model } = engine;

  useEffect(() => {
    void engine.refreshStore();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const cpu = engine.boot.status === 'ready' ? engine.boot.cpu : undefined;
  const device: DeviceFacts = {
    backend: runningBackend(engine.backend, gpu, cpu),
    maxBufferSize: gpu?.available ? gpu.adapter.limits.maxBufferSize : undefined,
    deviceMemoryGiB: (navigator as Navigator & { deviceMemory?: number }).deviceMemory,
    freeStorage: usage?.quota !== undefined && usage.usage !== undefined ? usage.quota - usage.usage : undefined,
    usable: { webgpu: runningBackend('webgpu', gpu, cpu) === 'webgpu' && !(gpu?.available && gpu.kernelPaths.software), cpu: runningBackend('cpu', gpu, cpu) === 'cpu' },
    cpuMaxBytes: cpu?.maxModelBytes,
  };
  const busy = model.state === 'loading';
  const inUse = loadedModel(model);
  const loadedLabel = inUse?.label;
  const catalogIds = new Set(catalog.map((m) => m.id));
  // Adapters are listed apart (AdapterStore) and never offered as a model to load.
  const others = cached.filter((m) => !catalogIds.has(m.id) && m.kind !== 'adapter');

  return (
    <div className="models">
      <section className="panel" aria-labelledby="backend-heading">
        <h2 id="backend-heading">Backend</h2>
        <div className="row wrap">
          <label>
            Run models on{' '}
            <select value={engine.backend} onChange={(e) => engine.setBackend(e.target.value as BackendChoice)} disabled={busy} data-testid="backend-choice">
              <option value="auto">Auto (WebGPU, else the CPU)</option>
              <option value="webgpu">WebGPU</option>
              <option value="cpu">CPU (WebAssembly)</option>
            </select>
          </label>
          {cpu?.threadsAvailable && engine.backend !== 'webgpu' && (
            <label>
              CPU threads{' '}
              <select
                value={engine.threads ?? 'auto'}
                onChange={(e) => engine.setThreads(e.target.value === 'auto' ? undefined : Number(e.target.value))}
                disabled={busy}
                data-testid="threads-choice"
              >
                <option value="auto">Auto ({cpu.defaultThreads})</option>
                {Array.from({ length: Math.max(1, cpu.hardwareConcurrency) }, (_, i) => i + 1).map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
          )}
          {inUse && (
            <span className="muted small" data-testid="backend-in-use">
              Now: {inUse.info.backend === 'cpu' ? `CPU, ${inUse.info.threads ?? 1} thread${inUse.info.threads === 1 ? '' : 's'}` : 'WebGPU'}
            </span>
          )}
        </div>
        <p className="muted small">
          The CPU is slower than a GPU but works everywhere; it holds models up to {formatBytes(cpu?.maxModelBytes ?? CPU_DEFAULT_MODEL_BYTES)} here (each badge says whether one fits).
          {gpu && !gpu.available ? ' This browser has no usable WebGPU, so Auto runs on the CPU.' : ''}
          {gpu?.available && gpu.kernelPaths.software ? " This browser's WebGPU is a software renderer, slower than the CPU, so Auto runs on the CPU." : ''}
        </p>
      </section>

      <section className="panel" aria-labelledby="local-heading">
        <h2 id="local-heading">Load a model file</h2>
        <p className="muted">A GGUF file from your disk (for example one downloaded from Hugging Face), or all the parts of a split model (<code>…-00001-of-00003.gguf</code> and the rest) selected together; or drop the file anywhere on this page. It is read here and never uploaded.</p>
        <div className="row wrap">
          <button type="button" onClick={() => fileInput.current?.click()} disabled={busy}>
            Choose a .gguf file…
          </button>
          <label className="check">
            <input type="checkbox" checked={copy} onChange={(e) => setCopy(e.target.checked)} aria-describedby="keep-copy-help" /> Keep a copy in this browser
          </label>
          <small id="keep-copy-help" className="muted">Works offline and survives reloads.</small>
          {/* Opened by the button above; hidden from screen readers so the picker is met once. */}
          <input
            ref={fileInput}
            type="file"
            accept=".gguf"
            multiple
            className="sr-only"
            tabIndex={-1}
            aria-hidden="true"
            data-testid="model-file"
            onChange={(e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              if (files.length > 0) void engine.loadFile(files, copy);
            }}
          />
        </div>
        <LoadOutcome model={model} where={{ kind: 'file' }} />
        {usage && (
          <p className="muted" data-testid="storage-usage">
            Models use {formatBytes(usage.modelBytes)}
            {usage.quota !== undefined && usage.usage !== undefined && ` · this site may store ${formatBytes(Math.max(0, usage.quota - usage.usage))} more`}
            {usage.persisted === true ? ' · storage is persistent' : usage.persisted === false ? ' · the browser may evict it under pressure' : ''}
          </p>
        )}
      </section>

      <section className="panel" aria-labelledby="catalog-heading">
        <h2 id="catalog-heading">Catalog</h2>
        {engine.catalogError && <p role="alert" className="message-error">{engine.catalogError}</p>}
        <p className="muted">
          Memory estimates include a 4096-token context (text-to-text models: 512 input and 512 output tokens). Browsers round the device memory they report down (many cap it at 8 GiB)
          {device.deviceMemoryGiB !== undefined ? `; this one reports ${device.deviceMemoryGiB} GiB` : ''}, and never report the GPU's own.
        </p>
        <ul className="catalog" data-testid="catalog">
          {catalog.map((entry) => {
            const stored = cached.find((m) => m.id === entry.id);
            const complete = stored?.state === 'complete';
            const progress = downloads[entry.id];
            const error = downloadErrors[entry.id];
            const verdict = fitVerdict(entry, device, complete);
            return (
              <li key={entry.id} className="catalog-item" data-testid={`catalog-${entry.id}`}>
                <div className="catalog-main">
                  <h3>
                    {entry.name} <span className="quant">{entry.quantization}</span>
                    {entry.builtin && <span className="badge">built in</span>}
                    {entry.mode === 'transform' && <span className="badge" data-testid="badge-transform">text to text</span>}
                  </h3>
                  <p className="muted small">
                    {entry.parameters} parameters · {entry.builtin ? '' : 'about '}
                    {formatBytes(entry.approxSize)} · needs ≈{formatBytes(entry.memoryEstimate)} · {entry.license}
                    {entry.contextLength ? ` · ${entry.mode === 'transform' ? 'input' : 'context'} ${entry.contextLength.toLocaleString('en-US')}` : ''}
                  </p>
                  {entry.notes && <p className="small">{entry.notes}</p>}
                  <span className={`fit ${verdict.level}`} title={verdict.reason} data-testid="fit" id={`fit-${entry.id}`}>
                    {verdict.level === 'fits' ? '✓ Fits this device' : verdict.level === 'tight' ? '⚠ May not fit' : '✕ Will not fit'}
                    {verdict.level !== 'no' && verdict.only && <span data-testid="fit-only"> ({verdict.only === 'webgpu' ? 'WebGPU' : 'CPU'} only)</span>}
                    <span className="sr-only">: {verdict.reason}</span>
                  </span>
                  {(verdict.level === 'no' || verdict.only) && <p className="small" data-testid="fit-reason">{verdict.reason}</p>}
                  {progress && <DownloadBar progress={progress} label={entry.name} />}
                  {error && <p className="message-error" role="alert">{error.title}: {error.message}</p>}
                  <LoadOutcome model={model} where={{ kind: 'entry', id: entry.id }} />
                  {/* A resume is promised only where bytes were kept and nothing failed since. */}
                  {stored && !complete && !progress && !error && stored.storedBytes > 0 && (
                    <p className="muted small" data-testid="partial-note">
                      Partly downloaded ({formatBytes(stored.storedBytes)}
                      {stored.size ? ` of ${formatBytes(stored.size)}` : ''}); Resume continues from there.
                    </p>
                  )}
                </div>
                <div className="catalog-actions">
                  {complete ? (
                    <>
                      <LoadButton label={entry.name} loaded={loadedLabel === entry.name} remote={remote} disabled={busy} onLoad={() => void engine.loadCached(entry.id, entry.name)} />
                      <button type="button" className="ghost" onClick={() => confirm(`Delete ${entry.name} from this browser?`) && void engine.remove(entry.id)}>
                        Delete
                      </button>
                    </>
                  ) : progress ? (
                    <button type="button" className="ghost" onClick={() => void engine.cancelDownload(entry.id)}>
                      Pause
                    </button>
                  ) : (
                    <>
                      <button type="button" onClick={() => void engine.download(entry)} disabled={verdict.level === 'no'} aria-describedby={verdict.level === 'no' ? `fit-${entry.id}` : undefined}>
                        {stored && stored.storedBytes > 0 ? 'Resume' : 'Download'}
                      </button>
                      {stored && (
                        <button type="button" className="ghost" onClick={() => void engine.remove(entry.id)}>
                          Delete
                        </button>
                      )}
                    </>
                  )}
                  {entry.homepage && (
                    <a href={entry.homepage} target="_blank" rel="noopener noreferrer" className="small">
                      Model page
                    </a>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      </section>

      <ServersPanel remote={remote} />

      <AdapterStore engine={engine} />

      {others.length > 0 && (
        <section className="panel" aria-labelledby="stored-heading">
          <h2 id="stored-heading">Your files</h2>
          <ul className="catalog" data-testid="stored-models">
            {others.map((m) => (
              <li key={m.id} className="catalog-item">
                <div className="catalog-main">
                  <h3>
                    {m.name} {m.quantization && <span className="quant">{m.quantization}</span>}
                  </h3>
                  <p className="muted small">
                    {m.size !== undefined ? formatBytes(m.size) : ''} · {m.origin === 'session' ? 'read in place (this session only)' : 'stored in this browser'}
                    {m.state === 'partial' ? ' · incomplete' : ''}
                  </p>
                  {m.state === 'partial' && (
                    <p className="small" id={`incomplete-${m.id}`} data-testid="incomplete-note">
                      {m.origin === 'file'
                        ? `Copying this file stopped at ${formatBytes(m.storedBytes)}${m.size ? ` of ${formatBytes(m.size)}` : ''} (it was cancelled, or the page closed). It cannot be loaded until the copy is complete: choose the same file again to continue, or delete it.`
                        : `Only ${formatBytes(m.storedBytes)}${m.size ? ` of ${formatBytes(m.size)}` : ''} is stored, so it cannot be loaded yet. Delete it, or download it again.`}
                    </p>
                  )}
                  <LoadOutcome model={model} where={{ kind: 'entry', id: m.id }} />
                </div>
                <div className="catalog-actions">
                  {m.state === 'partial' && m.origin === 'file' ? (
                    <button
                      type="button"
                      onClick={() => {
                        // Continuing needs the file itself again, copied (the copy resumes from its stored bytes).
                        setCopy(true);
                        fileInput.current?.click();
                      }}
                      disabled={busy}
                      aria-describedby={`incomplete-${m.id}`}
                      data-testid="resume-copy"
                    >
                      Resume…
                    </button>
                  ) : (
                    <LoadButton
                      label={m.name}
                      loaded={loadedLabel === m.name}
                      remote={remote}
                      disabled={busy || m.state !== 'complete'}
                      describedBy={m.state === 'partial' ? `incomplete-${m.id}` : undefined}
                      onLoad={() => void engine.loadCached(m.id, m.name)}
                    />
                  )}
                  {m.origin !== 'session' && (
                    <button type="button" className="ghost" onClick={() => confirm(`Delete ${m.name} from this browser?`) && void engine.remove(m.id)}>
                      Delete
                    </button>
                  )}
                </div>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}

/**
 * Load, or Loaded for the model that answers. While a server's model answers, the local model
 * stays loaded: Use sends the chats back to it without loading it again.
 */
function LoadButton({ label, loaded, remote, disabled, describedBy, onLoad }: { label: string; loaded: boolean; remote: RemoteServersHandle; disabled: boolean; describedBy?: string | undefined; onLoad: () => void }) {
  if (loaded && remote.choice) {
    return (
      <button type="button" onClick={remote.chooseLocal} aria-label={`Use ${label} on this device`} data-testid="use-loaded">
        Use
      </button>
    );
  }
  return (
    <button type="button" onClick={onLoad} disabled={disabled || loaded} aria-describedby={describedBy}>
      {loaded ? 'Loaded' : 'Load'}
    </button>
  );
}

function DownloadBar({ progress, label }: { progress: NonNullable<EngineHandle['downloads'][string]>; label: string }) {
  const status = progress.phase === 'verifying' ? 'Verifying…' : progress.phase === 'retrying' ? `Retrying (${progress.reason ?? 'network error'})…` : undefined;
  return (
    <div data-testid="download-progress">
      <TransferProgress label={`Downloading ${label}`} figures={{ done: progress.bytes, total: progress.total, rate: progress.rate, eta: progress.eta }} status={status} />
    </div>
  );
}

export type { CatalogModel };
