/**
 * The Compare page: pick a stored model, quantize it to one or more of llama-quantize's mixes
 * (in the worker, streamed into the store, with progress and cancel), give a calibration text, and
 * measure every version: size, compression rate, perplexity, KL and top-1 against the original,
 * prefill and decode speed, as a table and a size/perplexity plot. The results are kept
 * (compare-results.ts) so they survive switching pages.
 */
import { useEffect, useMemo, useState, type DragEvent } from 'react';
import type { CachedModel, EvaluateProgress, QuantizationType, QuantizeModelProgress } from '../engine/api.ts';
import { formatBytes } from '../engine/format-bytes.ts';
import { loadCompareState, saveCompareState, type CompareState } from './compare-results.ts';
import { downloadBlob } from './download.ts';
import { engineClient } from './engine-client.ts';
import { describeError, type FriendlyError } from './errors.ts';
import { SizePerplexityPlot } from './SizePerplexityPlot.tsx';
import type { EngineHandle } from './useEngine.ts';

const TYPES: QuantizationType[] = ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'Q4_0'];

/** The store id a quantized version of `sourceId` is written under. */
export function versionId(sourceId: string, type: QuantizationType): string {
  return `${sourceId}:${type}`;
}

type Job = { type: QuantizationType; progress?: QuantizeModelProgress };

export function ComparePage({ engine }: { engine: EngineHandle }) {
  const [state, setState] = useState<CompareState>(loadCompareState);
  const [types, setTypes] = useState<Set<QuantizationType>>(new Set(['Q8_0', 'Q4_0']));
  const [job, setJob] = useState<Job>();
  const [evaluating, setEvaluating] = useState<{ id: string; progress?: EvaluateProgress }>();
  const [error, setError] = useState<FriendlyError>();
  const [notice, setNotice] = useState<string>();
  const update = (patch: Partial<CompareState>) => setState((s) => ({ ...s, ...patch }));

  useEffect(() => saveCompareState(state), [state]);
  useEffect(() => {
    void engine.refreshStore();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const complete = engine.cached.filter((m) => m.state === 'complete');
  const originals = complete.filter((m) => !TYPES.some((t) => complete.some((o) => m.id === versionId(o.id, t))));
  const sourceId = state.sourceId && complete.some((m) => m.id === state.sourceId) ? state.sourceId : originals[0]?.id;
  const versions: CachedModel[] = useMemo(() => {
    const source = complete.find((m) => m.id === sourceId);
    if (!source) return [];
    const derived = TYPES.map((t) => complete.find((m) => m.id === versionId(source.id, t))).filter((m): m is CachedModel => m !== undefined);
    return [source, ...derived];
  }, [complete, sourceId]);
  const busy = job !== undefined || evaluating !== undefined;

  const quantize = async () => {
    if (!sourceId) return;
    setError(undefined);
    setNotice(undefined);
    const api = engineClient().engine;
    for (const type of TYPES.filter((t) => types.has(t))) {
      setJob({ type });
      try {
        await api.quantizeModel({ source: { kind: 'cached', id: sourceId }, type, id: versionId(sourceId, type) }, (progress) => setJob({ type, progress }));
      } catch (e) {
        if ((e as Error)?.name === 'AbortError') setNotice(`Quantizing to ${type} was cancelled; nothing of it was kept.`);
        else setError(describeError(e));
        break;
      } finally {
        await engine.refreshStore();
      }
    }
    setJob(undefined);
  };

  const cancelQuantize = () => {
    if (job && sourceId) void engineClient().engine.cancelDownload(versionId(sourceId, job.type));
  };

  const evaluate = async () => {
    setError(undefined);
    setNotice(undefined);
    const requestId = `compare-${Date.now()}`;
    setEvaluating({ id: requestId });
    try {
      const evaluation = await engineClient().engine.evaluateModels(
        { ids: versions.map((v) => v.id), text: state.text, context_length: state.contextLength, request_id: requestId },
        (progress) => setEvaluating({ id: requestId, progress }),
      );
      update({ evaluation, sourceId });
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') setNotice('The evaluation was cancelled.');
      else setError(describeError(e));
    } finally {
      setEvaluating(undefined);
    }
  };

  const download = async (model: CachedModel) => {
    try {
      const blob = await engineClient().engine.exportModel(model.id);
      downloadBlob(`${model.name.replace(/[^\w.-]+/g, '-')}.gguf`, blob);
    } catch (e) {
      setError(describeError(e));
    }
  };

  /** A local GGUF is copied into the store first: the versions and the results then refer to stored models. */
  const addLocalModel = async (file: File | undefined) => {
    if (!file) return;
    setError(undefined);
    setNotice(`Copying ${file.name} into the store…`);
    try {
      const stored = await engineClient().engine.importModelFile([file], { copy: true });
      await engine.refreshStore();
      update({ sourceId: stored.id, evaluation: undefined });
      setNotice(undefined);
    } catch (e) {
      setNotice(undefined);
      setError(describeError(e));
    }
  };

  const readTextFile = async (file: File | undefined) => {
    if (file) update({ text: await file.text() });
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    e.stopPropagation();
    void readTextFile(e.dataTransfer.files[0]);
  };

  const evaluation = state.evaluation;
  return (
    <div className="compare">
      <section className="panel" aria-labelledby="compare-heading">
        <h2 id="compare-heading">Compress and compare</h2>
        <p className="muted">
          Quantize a stored model to smaller versions (the same per-tensor types and bytes as llama.cpp's llama-quantize), then measure what each one costs in
          quality and gains in size and speed, on your own text. Everything runs on this device.
        </p>
        {originals.length === 0 ? (
          <p>No stored model yet: download one (the demo model works) on the Models page, or pick a local file.</p>
        ) : (
          <div className="row">
            <label htmlFor="compare-source">Model</label>
            <select id="compare-source" value={sourceId} disabled={busy} onChange={(e) => update({ sourceId: e.target.value, evaluation: undefined })} data-testid="compare-source">
              {originals.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name} {m.quantization ? `(${m.quantization})` : ''}
                </option>
              ))}
            </select>
          </div>
        )}
        <div className="row">
          <label htmlFor="compare-local">Or a local GGUF file (F32, F16, BF16 or quantized)</label>
          <input id="compare-local" type="file" accept=".gguf" disabled={busy} onChange={(e) => void addLocalModel(e.target.files?.[0])} data-testid="compare-local" />
        </div>
      </section>

      <section className="panel" aria-labelledby="quantize-heading">
        <h3 id="quantize-heading">Quantize</h3>
        <fieldset className="types" disabled={busy}>
          <legend>Types to make</legend>
          {TYPES.map((t) => (
            <label key={t} className="check">
              <input
                type="checkbox"
                checked={types.has(t)}
                onChange={(e) => setTypes((s) => (e.target.checked ? new Set([...s, t]) : new Set([...s].filter((x) => x !== t))))}
                data-testid={`quant-type-${t}`}
              />
              {t}
            </label>
          ))}
        </fieldset>
        <div className="row">
          <button type="button" disabled={busy || !sourceId || types.size === 0} onClick={() => void quantize()} data-testid="quantize">
            Quantize
          </button>
          {job && (
            <>
              <span role="status" data-testid="quantize-progress">
                {job.type}: {job.progress ? `tensor ${job.progress.index + 1} of ${job.progress.count}, ${formatBytes(job.progress.bytes)} of ${formatBytes(job.progress.total)}` : 'starting…'}
              </span>
              <progress max={job.progress?.total ?? 1} value={job.progress?.bytes ?? 0} aria-label={`Quantizing to ${job.type}`} />
              <button type="button" className="ghost" onClick={cancelQuantize} data-testid="quantize-cancel">
                Cancel
              </button>
            </>
          )}
        </div>
        {versions.length > 0 && (
          <ul className="versions-list" data-testid="compare-versions">
            {versions.map((v, i) => (
              <li key={v.id}>
                <span>
                  {v.name} <span className="quant">{v.quantization ?? '?'}</span> {v.size !== undefined && formatBytes(v.size)} {i === 0 && <em>(original)</em>}
                </span>
                <button type="button" className="ghost" onClick={() => void download(v)} data-testid="compare-download">
                  Download
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>

      <section className="panel" aria-labelledby="measure-heading">
        <h3 id="measure-heading">Measure</h3>
        <label htmlFor="compare-text">Calibration text (paste it, drop a text file here, or pick one)</label>
        <textarea
          id="compare-text"
          rows={6}
          value={state.text}
          onChange={(e) => update({ text: e.target.value })}
          onDragOver={(e) => e.preventDefault()}
          onDrop={onDrop}
          placeholder="A few paragraphs of the kind of text the model will see."
          data-testid="compare-text"
        />
        <div className="row">
          <input type="file" accept=".txt,text/plain" aria-label="Pick a text file" onChange={(e) => void readTextFile(e.target.files?.[0])} />
          <label htmlFor="compare-ctx">Window (tokens)</label>
          <input
            id="compare-ctx"
            type="number"
            min={4}
            step={1}
            value={state.contextLength}
            onChange={(e) => update({ contextLength: Math.max(4, Math.floor(Number(e.target.value) || 4)) })}
            data-testid="compare-ctx"
          />
          <button type="button" disabled={busy || versions.length === 0 || state.text.length === 0} onClick={() => void evaluate()} data-testid="evaluate">
            Evaluate {versions.length} version{versions.length === 1 ? '' : 's'}
          </button>
          {evaluating && (
            <>
              <span role="status" data-testid="evaluate-progress">
                {evaluating.progress ? `version ${evaluating.progress.model + 1} of ${versions.length}, window ${evaluating.progress.window} of ${evaluating.progress.windows}` : 'loading…'}
              </span>
              <button type="button" className="ghost" onClick={() => void engineClient().engine.abort(evaluating.id)} data-testid="evaluate-cancel">
                Cancel
              </button>
            </>
          )}
        </div>
        <p className="muted">
          Perplexity as llama.cpp's llama-perplexity computes it: windows of this many tokens, the second half of each scored. KL divergence and top-1 agreement compare
          each version's next-token distribution with the original's. Speeds are on the backend the loaded model uses.
        </p>
      </section>

      {notice && (
        <div className="notice" role="status" data-testid="compare-notice">
          {notice}
        </div>
      )}
      {error && (
        <div className="notice error" role="alert" data-testid="compare-error">
          <strong>{error.title}</strong> {error.message}
        </div>
      )}

      {evaluation && (
        <section className="panel" aria-labelledby="results-heading">
          <h3 id="results-heading">Results</h3>
          <p className="muted">
            {evaluation.tokens} tokens, {evaluation.windows} windows of {evaluation.context_length}, {evaluation.scored} scored positions per version.
          </p>
          <div className="table-scroll">
            <table className="limits results" data-testid="compare-table">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Size</th>
                  <th scope="col">Compression</th>
                  <th scope="col">Perplexity</th>
                  <th scope="col">KL (nats)</th>
                  <th scope="col">Top-1</th>
                  <th scope="col">Prefill tok/s</th>
                  <th scope="col">Decode tok/s</th>
                </tr>
              </thead>
              <tbody>
                {evaluation.models.map((m) => (
                  <tr key={m.id} data-testid="compare-row">
                    <th scope="row">
                      {m.name} <span className="quant">{m.quantization ?? '?'}</span>
                    </th>
                    <td data-bytes={m.bytes}>{formatBytes(m.bytes)}</td>
                    <td>{m.compression.toFixed(2)}×</td>
                    <td data-value={m.perplexity}>{m.perplexity.toFixed(3)}</td>
                    <td>{m.kl.toExponential(2)}</td>
                    <td>{(100 * m.top1).toFixed(1)}%</td>
                    <td>{m.prefill_tokens_per_second.toFixed(0)}</td>
                    <td>
                      {m.decode_tokens_per_second.toFixed(1)} <span className="muted">({m.backend})</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <SizePerplexityPlot points={evaluation.models.map((m) => ({ x: m.bytes, y: m.perplexity, label: m.quantization ?? m.name }))} />
        </section>
      )}
    </div>
  );
}
