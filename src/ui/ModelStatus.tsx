/**
 * What the app says about the model: the chat's banner (the model in use, a load in progress, a
 * failed load) and, on the Models page, a load's progress and error shown where it was asked for.
 * A failed load leaves the model in use loaded, so both say which model still answers.
 */
import type { LoadOrigin, LoadedModel, ModelState } from './useEngine.ts';

const PHASES: Record<string, string> = {
  'reading-header': 'Reading',
  'uploading-weights': 'Uploading weights of',
  'compiling-kernels': 'Compiling kernels for',
  'warming-up': 'Warming up',
};

type Loading = Extract<ModelState, { state: 'loading' }>;
type Failed = Extract<ModelState, { state: 'error' }>;

/** "Uploading weights of X… [progress]" for a load or the demo's first fetch. */
function LoadProgressLine({ model, testId }: { model: Loading; testId: string }) {
  const p = model.download ?? model.progress;
  const total = model.download ? (model.download.total ?? 0) : (model.progress?.total ?? 0);
  const done = model.download ? model.download.bytes : (model.progress?.loaded ?? 0);
  const uploaded = model.progress?.phase === 'uploading-weights' && total > 0 && done >= total;
  // After the last weight is uploaded the engine compiles its kernels (slow on software GPUs).
  const phase = model.download ? 'Fetching' : uploaded ? 'Preparing the GPU kernels for' : model.progress ? PHASES[model.progress.phase] : 'Opening';
  return (
    <div className="model-line" role="status" data-testid={testId}>
      {phase} {model.label}…{' '}
      {p && total > 0 && <progress max={total} value={done} aria-label={`${phase} ${model.label}`} />}
      {model.current && <span className="muted"> {model.current.info.name} stays in use until it is ready.</span>}
    </div>
  );
}

function LoadError({ model, testId, onOpenModels }: { model: Failed; testId: string; onOpenModels?: () => void }) {
  return (
    <div className="notice error" role="alert" data-testid={testId}>
      <span>
        <strong>{model.error.title}</strong> ({model.label}): {model.error.message}
        {model.current ? (
          <span data-testid="still-loaded"> {model.current.info.name} is still loaded and answers.</span>
        ) : (
          ' No model is loaded.'
        )}
      </span>
      {onOpenModels && <button type="button" className="ghost" onClick={onOpenModels}>Open Models</button>}
    </div>
  );
}

function ModelLine({ model }: { model: LoadedModel }) {
  const { info } = model;
  return (
    <p className="model-line" data-testid="model-ready">
      Model: <strong>{info.name}</strong> <span className="muted">({info.quantization}, <span data-testid="model-backend">{info.backend === 'cpu' ? 'CPU' : 'WebGPU'}</span>, context {info.contextLength.toLocaleString('en-US')})</span>
      {!info.hasChatTemplate && info.templateFallback && <span className="muted"> · {info.templateFallback}</span>}
      {info.backendNotice && (
        <span className="muted" data-testid="backend-notice" data-backend={info.backend}>
          {' '}
          · {info.backendNotice}
        </span>
      )}
      {info.loadNotice && <span className="muted" data-testid="load-notice"> · {info.loadNotice}</span>}
    </p>
  );
}

/** The chat's banner: the model in use, or what is happening instead. */
export function ModelBanner({ model, onOpenModels }: { model: ModelState; onOpenModels: () => void }) {
  switch (model.state) {
    case 'starting':
      return (
        <p className="model-line muted" role="status" data-testid="model-starting">
          Starting the engine and opening a model…
        </p>
      );
    case 'ready':
      return <ModelLine model={model} />;
    case 'loading':
      return <LoadProgressLine model={model} testId="model-loading" />;
    case 'error':
      return (
        <>
          {model.current && <ModelLine model={model.current} />}
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
