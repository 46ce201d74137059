/**
 * What the app says about the model: the chat's banner (the model in use, a load in progress, a
 * failed load) and, on the Models page, a load's progress and error shown where it was asked for.
 * A failed load leaves the model in use loaded, so both say which model still answers.
 */
import type { ReactNode } from 'react';
import { serverHost } from '../engine/rpc/openai-server.ts';
import type { RemoteChoice } from './remote-servers.ts';
import { TransferProgress } from './TransferProgress.tsx';
import type { LoadOrigin, LoadedModel, ModelState } from './useEngine.ts';

type Loading = Extract<ModelState, { state: 'loading' }>;
type Failed = Extract<ModelState, { state: 'error' }>;

/**
 * What the wait is, in words that are true on the backend that runs: on the CPU nothing is
 * uploaded (the weights are copied and unpacked into WebAssembly memory), and no GPU kernels are
 * compiled after them.
 */
function waitPhase(model: Loading): string {
  const { download, progress } = model;
  if (download) {
    if (download.phase === 'verifying') return 'Verifying';
    return model.origin.kind === 'file' ? 'Copying into this browser:' : 'Downloading';
  }
  if (!progress) return 'Opening';
  if (progress.phase === 'uploading-weights') {
    const cpu = progress.backend === 'cpu';
    const finished = progress.total > 0 && progress.loaded >= progress.total;
    if (finished) return cpu ? 'Starting' : 'Preparing the GPU kernels for';
    return cpu ? 'Preparing weights (CPU) of' : 'Uploading weights to the GPU:';
  }
  return { 'reading-header': 'Reading', 'compiling-kernels': 'Compiling kernels for', 'warming-up': 'Warming up' }[progress.phase];
}

/** "Copying into this browser: X… [bar] 45% · 26 MiB of 58 MiB · 12 MiB/s · 3 s left [Cancel]" for any load. */
function LoadProgressLine({ model, testId }: { model: Loading; testId: string }) {
  const phase = waitPhase(model);
  const { download, progress } = model;
  const figures = download
    ? { done: download.bytes, total: download.total, rate: download.rate, eta: download.eta }
    : // Only the weights phase counts bytes; the header read reports its total with nothing done.
      progress?.phase === 'uploading-weights' && progress.total > 0
      ? { done: progress.loaded, total: progress.total, rate: progress.rate, eta: progress.eta }
      : undefined;
  const status = download?.phase === 'retrying' ? `Retrying (${download.reason ?? 'network error'})…` : undefined;
  return (
    <div className="model-line" role="status" data-testid={testId}>
      <span data-testid="load-phase">
        {phase} {model.label}…
      </span>{' '}
      {figures ? (
        <TransferProgress label={`${phase} ${model.label}`} figures={figures} status={status} onCancel={model.cancel} testId="load-transfer" />
      ) : (
        model.cancel && (
          <button type="button" className="ghost small" onClick={model.cancel} data-testid="transfer-cancel">
            Cancel
          </button>
        )
      )}
      {model.current && <span className="muted"> {displayName(model.current)} stays in use until it is ready.</span>}
    </div>
  );
}

function LoadError({ model, testId, onOpenModels }: { model: Failed; testId: string; onOpenModels?: () => void }) {
  return (
    <div className="notice error" role="alert" data-testid={testId}>
      <span>
        <strong>{model.error.title}</strong>
        {/* The file's name once: most messages name it already. */}
        {model.error.message.includes(model.label) ? '' : ` (${model.label})`}: {model.error.message}
        {model.current ? (
          <span data-testid="still-loaded"> {displayName(model.current)} is still loaded and answers.</span>
        ) : (
          ' No model is loaded.'
        )}
      </span>
      {onOpenModels && <button type="button" className="ghost" onClick={onOpenModels}>Open Models</button>}
    </div>
  );
}

/**
 * The name to show for a loaded model, one per model: the catalog's name for a catalog model (the
 * same as on the Models page), else the file's own `general.name`.
 */
export function displayName(model: LoadedModel): string {
  return model.id !== undefined && !model.id.startsWith('file:') ? model.label : model.info.name;
}

function ModelLine({ model, extra }: { model: LoadedModel; extra?: ReactNode }) {
  const { info } = model;
  return (
    <p className="model-line" data-testid="model-ready">
      Model: <strong data-testid="model-name">{displayName(model)}</strong> <span className="muted">({info.quantization}, <span data-testid="model-backend">{info.backend === 'cpu' ? 'CPU' : 'WebGPU'}</span>, {info.kind === 'encoder-decoder' ? `text to text, input ${info.contextLength.toLocaleString('en-US')} tokens` : `context ${info.contextLength.toLocaleString('en-US')}`})</span>
      {!info.hasChatTemplate && info.templateFallback && <span className="muted"> · {info.templateFallback}</span>}
      {info.backendNotice && (
        <span className="muted" data-testid="backend-notice" data-backend={info.backend}>
          {' '}
          · {info.backendNotice}
        </span>
      )}
      {info.loadNotice && <span className="muted" data-testid="load-notice"> · {info.loadNotice}</span>}
      {extra}
    </p>
  );
}

/**
 * The chat's banner for a remote model: which model, on which server, and plainly that the
 * messages leave this device (for a local model the footer says nothing leaves it).
 */
export function RemoteModelLine({ remote }: { remote: RemoteChoice }) {
  const host = serverHost(remote.server.baseUrl);
  return (
    <p className="model-line remote" data-testid="model-ready" data-remote="true">
      Model: <strong data-testid="model-name">{remote.model}</strong> <span className="muted">on</span> <strong data-testid="model-server">{host}</strong>{' '}
      <span className="leaves-device" data-testid="leaves-device">
        ↗ Leaves this device: your messages are sent to {host}
      </span>
    </p>
  );
}

/** The chat's banner: the model in use, or what is happening instead. */
/** `extra`: more about the model in use, at the end of its line (the LoRA adapters applied). */
export function ModelBanner({ model, onOpenModels, extra }: { model: ModelState; onOpenModels: () => void; extra?: ReactNode }) {
  switch (model.state) {
    case 'starting':
      return (
        <p className="model-line muted" role="status" data-testid="model-starting">
          Starting the engine and opening a model…
        </p>
      );
    case 'ready':
      return <ModelLine model={model} extra={extra} />;
    case 'loading':
      return <LoadProgressLine model={model} testId="model-loading" />;
    case 'error':
      return (
        <>
          {model.current && <ModelLine model={model.current} extra={extra} />}
          <LoadError model={model} testId="model-error" onOpenModels={onOpenModels} />
        </>
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

function sameOrigin(a: LoadOrigin, b: LoadOrigin): boolean {
  return a.kind === b.kind && (a.kind !== 'entry' || a.id === (b as { id: string }).id);
}

/** On the Models page: the progress or the error of a load asked for at `where`, else nothing. */
export function LoadOutcome({ model, where }: { model: ModelState; where: LoadOrigin }) {
  if (model.state === 'loading' && sameOrigin(model.origin, where)) return <LoadProgressLine model={model} testId="load-progress" />;
  if (model.state === 'error' && sameOrigin(model.origin, where)) return <LoadError model={model} testId="load-error" />;
  return null;
}
