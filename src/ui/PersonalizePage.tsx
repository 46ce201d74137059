/**
 * The Personalize page: train a LoRA adapter on the loaded model, on this device. Data is pasted
 * text, dropped or chosen text and Markdown files, or conversations from the chat history (trained
 * on the assistant's turns, with the model's chat template). Before starting, the engine measures
 * a step and says how long the run will take and how much memory it needs. While it trains: a live
 * plot of the train and held-out loss, tokens/s and time left; the run goes on while other pages
 * are open (useTrainingRun.ts holds it). Pause keeps the run's checkpoint in IndexedDB, so it
 * resumes here, after a reload too; Cancel drops it. At the end: held-out
 * perplexity before and after, sample answers with and without the adapter (model output, shown as
 * plain text), and "Use this adapter", which keeps it in the model store and attaches it in the chat.
 */
import { useEffect, useRef, useState, type DragEvent } from 'react';
import type { TrainingData, TrainingEstimate, TrainingOptions, TrainingSamples } from '../engine/api.ts';
import { formatBytes } from '../engine/format-bytes.ts';
import { listConversations, type Conversation } from './conversations.ts';
import { engineClient } from './engine-client.ts';
import { errorText } from './errors.ts';
import { LossPlot } from './LossPlot.tsx';
import { defaultPrompts, formatDuration, hasTrainableReply, trainingConversation, type LossPoint, type SavedRun } from './personalize.ts';
import { loadedModel, type EngineHandle } from './useEngine.ts';
import { trainingRun, useTrainingRun } from './useTrainingRun.ts';

const TEXT_FILE = /\.(txt|md|markdown|text)$/i;

interface Settings {
  rank: number;
  steps: number;
  lr: number;
  window: number;
  heldOut: number;
  name: string;
}

const DEFAULTS: Settings = { rank: 8, steps: 50, lr: 1e-3, window: 64, heldOut: 0.1, name: 'personalized' };

export function PersonalizePage({ engine, onUseAdapter }: { engine: EngineHandle; onUseAdapter: (storeId: string) => void }) {
  const model = loadedModel(engine.model);
  const [pasted, setPasted] = useState('');
  const [files, setFiles] = useState<Array<{ name: string; text: string }>>([]);
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [settings, setSettings] = useState<Settings>(DEFAULTS);
  const [promptText, setPromptText] = useState('');
  const [estimate, setEstimate] = useState<{ key: string; value: TrainingEstimate }>();
  const [estimating, setEstimating] = useState(false);
  const [using, setUsing] = useState(false);
  const [dropNotice, setDropNotice] = useState<string>();
  const fileInput = useRef<HTMLInputElement>(null);
  const { phase, progress, history, saved, result, error, stopping } = useTrainingRun();
  const setError = trainingRun.setError;

  useEffect(() => {
    void listConversations().then((all) => setConversations(all.filter(hasTrainableReply)));
  }, []);

  const data: TrainingData = {
    texts: [...files.map((f) => f.text), pasted].filter((t) => t.trim() !== ''),
    conversations: conversations.filter((c) => chosen.has(c.id)).map(trainingConversation),
  };
  const options: TrainingOptions = { rank: settings.rank, steps: settings.steps, lr: settings.lr, window: settings.window, heldOutFraction: settings.heldOut, name: settings.name };
  const typedPrompts = promptText.split('\n').map((p) => p.trim()).filter(Boolean);
  const samples: TrainingSamples = {
    prompts: (typedPrompts.length > 0 ? typedPrompts : defaultPrompts(data)).slice(0, 8),
    // Conversations alone: ask as a chat; any text: continue the prompt as text.
    format: data.texts!.length === 0 && data.conversations!.length > 0 ? 'chat' : 'text',
  };
  const requestKey = JSON.stringify([data, options, model?.info.name, model?.info.fileSize]);
  const hasData = data.texts!.length > 0 || data.conversations!.length > 0;
  const currentEstimate = estimate?.key === requestKey ? estimate.value : undefined;

  const addFiles = async (list: FileList | File[]) => {
    const all = [...list];
    const texts = all.filter((f) => TEXT_FILE.test(f.name) || f.type.startsWith('text/'));
    const skipped = all.filter((f) => !texts.includes(f)).map((f) => f.name);
    setDropNotice(skipped.length ? `${skipped.join(', ')}: not a text or Markdown file (.txt, .md), left out.` : undefined);
    const read = await Promise.all(texts.map(async (f) => ({ name: f.name, text: await f.text() })));
    setFiles((old) => [...old, ...read]);
  };
  const onDrop = (e: DragEvent) => {
    // The app's own drop handler loads GGUF models: a text file dropped here is data, not a model.
    e.preventDefault();
    e.stopPropagation();
    void addFiles(e.dataTransfer.files);
  };

  const runEstimate = async () => {
    setEstimating(true);
    setError(undefined);
    try {
      const value = await engineClient().engine.estimateTraining({ data, options, samples });
      setEstimate({ key: requestKey, value });
    } catch (e) {
      setError(errorText(e));
    } finally {
      setEstimating(false);
    }
  };

  const start = () => {
    if (!model) return;
    const record: SavedRun = {
      model: { id: model.id, label: model.label, name: model.info.name, fileSize: model.info.fileSize },
      data,
      options,
      samples,
      step: 0,
      steps: settings.steps,
      history: [],
      paused: false,
      savedAt: Date.now(),
    };
    trainingRun.start({ data, options, samples }, record);
  };

  const savedModelLoaded = saved !== undefined && model !== undefined && model.info.name === saved.model.name && model.info.fileSize === saved.model.fileSize;
  const useAdapter = async () => {
    if (!result) return;
    setUsing(true);
    setError(undefined);
    try {
      const name = result.adapterInfo.name;
      const slug = name.replace(/[^\w.-]+/g, '-').slice(0, 60) || 'adapter';
      // A file name of its own: the store keys a copied file by its name and size.
      const file = new File([result.adapter as Uint8Array<ArrayBuffer>], `${slug}-${Date.now().toString(36)}.gguf`, { type: 'application/octet-stream' });
      const stored = await engineClient().engine.importModelFile([file], { copy: true, name: `${slug}.gguf` });
      await engine.refreshStore();
      onUseAdapter(stored.id);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setUsing(false);
    }
  };

  const set = <K extends keyof Settings>(key: K, value: Settings[K]) => setSettings((s) => ({ ...s, [key]: value }));
  const num = (key: Exclude<keyof Settings, 'name'>, label: string, attrs: { min: number; max?: number; step?: number | 'any' }) => (
    <label>
      {label}{' '}
      <input type="number" value={settings[key]} {...attrs} onChange={(e) => set(key, Number(e.target.value))} disabled={phase !== 'setup'} data-testid={`train-${key}`} />
    </label>
  );
  const steps = progress?.steps ?? saved?.steps ?? settings.steps;
  const stepNow = progress?.step ?? saved?.step ?? 0;

  return (
    <div className="personalize">
      <section className="panel" aria-labelledby="personalize-heading">
        <h2 id="personalize-heading">Personalize</h2>
        <p className="muted">
          Teach the loaded model your style or facts with a small LoRA adapter, trained here on this device: nothing you give it leaves the browser. The model
          itself is not changed; the adapter is attached to it in the chat, and can be switched off.
        </p>
        {model ? (
          <p data-testid="train-model">
            Base model: <strong>{model.info.name}</strong> ({model.info.architecture}, {model.info.quantization}).
          </p>
        ) : (
          <p>No model is loaded: load one on the Models page first.</p>
        )}
        {engine.cached.some((m) => m.kind !== 'adapter' && m.state !== 'partial') && (
          <label>
            Train another stored model{' '}
            <select value="" disabled={phase === 'running'} onChange={(e) => e.target.value && void engine.loadCached(e.target.value, engine.cached.find((m) => m.id === e.target.value)?.name ?? e.target.value)} data-testid="train-model-pick">
              <option value="">Choose…</option>
              {engine.cached
                .filter((m) => m.kind !== 'adapter' && m.state !== 'partial')
                .map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.name}
                  </option>
                ))}
            </select>
          </label>
        )}
      </section>

      {phase === 'setup' && (
        <section className="panel" aria-labelledby="train-data-heading">
          <h3 id="train-data-heading">Data</h3>
          <label className="block">
            Text to learn from (plain text or Markdown)
            <textarea value={pasted} onChange={(e) => setPasted(e.target.value)} rows={6} placeholder="Paste notes, letters, articles…" data-testid="train-text" />
          </label>
          <div className="drop-zone" onDragOver={(e) => (e.preventDefault(), e.stopPropagation())} onDrop={onDrop} data-testid="train-drop">
            Drop .txt or .md files here, or{' '}
            <button type="button" className="ghost" onClick={() => fileInput.current?.click()}>
              choose files…
            </button>
            <input ref={fileInput} type="file" multiple accept=".txt,.md,.markdown,text/plain,text/markdown" className="sr-only" tabIndex={-1} aria-hidden="true" onChange={(e) => (void addFiles(e.target.files ?? []), (e.target.value = ''))} data-testid="train-files" />
          </div>
          {dropNotice && <p className="notice">{dropNotice}</p>}
          {files.length > 0 && (
            <ul className="train-files" data-testid="train-file-list">
              {files.map((f, i) => (
                <li key={`${f.name}-${i}`}>
                  {f.name} ({f.text.length.toLocaleString()} characters){' '}
                  <button type="button" className="ghost" onClick={() => setFiles((old) => old.filter((_, k) => k !== i))} aria-label={`Remove ${f.name}`}>
                    Remove
                  </button>
                </li>
              ))}
            </ul>
          )}
          <fieldset>
            <legend>Conversations from your chat history (trained on the assistant's replies)</legend>
            {conversations.length === 0 ? (
              <p className="muted small">No conversation with a reply yet.</p>
            ) : (
              conversations.map((c) => (
                <label key={c.id} className="check">
                  <input type="checkbox" checked={chosen.has(c.id)} onChange={(e) => setChosen((s) => (e.target.checked ? new Set([...s, c.id]) : new Set([...s].filter((x) => x !== c.id))))} data-testid="train-conversation" />
                  {c.title} ({c.messages.length} messages)
                </label>
              ))
            )}
          </fieldset>

          <h3>Settings</h3>
          <div className="row wrap">
            {num('steps', 'Steps', { min: 1, max: 100000 })}
            {num('rank', 'Rank', { min: 1, max: 256 })}
            {num('lr', 'Learning rate', { min: 0, step: 'any' })}
            {num('window', 'Tokens per window', { min: 2, max: 8192 })}
            {num('heldOut', 'Held-out fraction', { min: 0, max: 0.9, step: 0.05 })}
            <label>
              Adapter name <input value={settings.name} onChange={(e) => set('name', e.target.value)} data-testid="train-name" />
            </label>
          </div>
          <label className="block">
            Sample prompts, one per line (answered with and without the adapter at the end; empty: the first words of your data)
            <textarea value={promptText} onChange={(e) => setPromptText(e.target.value)} rows={2} data-testid="train-prompts" />
          </label>

          <div className="row wrap">
            <button type="button" onClick={() => void runEstimate()} disabled={!model || !hasData || estimating} data-testid="train-estimate">
              {estimating ? 'Measuring a step…' : 'Estimate'}
            </button>
            <button type="button" onClick={start} disabled={!model || !currentEstimate} data-testid="train-start">
              Start training
            </button>
          </div>
          {currentEstimate && <EstimateView estimate={currentEstimate} />}
        </section>
      )}

      {phase !== 'setup' && (
        <section className="panel" aria-labelledby="train-run-heading">
          <h3 id="train-run-heading">Training</h3>
          {phase === 'paused' && saved && (
            <div className="notice" role="status" data-testid="train-saved">
              {saved.checkpoint ? (
                <span>
                  A run is paused at step {saved.step} of {saved.steps} (saved {new Date(saved.savedAt).toLocaleString()}), on {saved.model.name}.
                </span>
              ) : (
                <span>A run on {saved.model.name} stopped before its first checkpoint; it starts again from the beginning.</span>
              )}
              {!savedModelLoaded && (
                <span>
                  Load {saved.model.name} to resume it.{' '}
                  {saved.model.id && (
                    <button type="button" className="ghost" onClick={() => void engine.loadCached(saved.model.id!, saved.model.label)}>
                      Load it
                    </button>
                  )}
                </span>
              )}
              <button type="button" onClick={trainingRun.resume} disabled={!savedModelLoaded} data-testid="train-resume">
                {saved.checkpoint ? 'Resume' : 'Start again'}
              </button>
              <button type="button" className="ghost" onClick={() => void trainingRun.discard()} data-testid="train-discard">
                Discard
              </button>
            </div>
          )}
          <LossPlot history={history} steps={steps} />
          <p className="stats train-stats" role="status" data-testid="train-progress" data-step={stepNow}>
            <span>
              {phase === 'done' ? 'Done · ' : phase !== 'running' ? '' : progress?.phase === 'evaluating' ? 'Measuring held-out loss · ' : progress?.phase === 'sampling' ? 'Writing samples · ' : progress?.phase === 'preparing' ? 'Preparing · ' : ''}
              Step {stepNow} of {steps}
            </span>
            {lastOf(history, 'loss') !== undefined && <span>train loss {lastOf(history, 'loss')!.toFixed(3)}</span>}
            {lastOf(history, 'heldOutLoss') !== undefined && <span>held-out loss {lastOf(history, 'heldOutLoss')!.toFixed(3)}</span>}
            {progress && phase === 'running' && <span data-testid="train-backend">training on the {progress.backend === 'webgpu' ? 'GPU' : 'CPU'}</span>}
            {progress?.tokensPerSecond !== undefined && phase === 'running' && <span data-testid="train-speed">{progress.tokensPerSecond.toFixed(1)} tokens/s</span>}
            {progress?.secondsLeft !== undefined && phase === 'running' && <span data-testid="train-left">about {formatDuration(progress.secondsLeft)} left</span>}
          </p>
          {phase === 'running' && (
            <div className="row">
              <button type="button" onClick={trainingRun.pause} disabled={stopping !== undefined} data-testid="train-pause">
                {stopping === 'pause' ? 'Pausing after this step…' : 'Pause'}
              </button>
              <button type="button" className="ghost" onClick={trainingRun.cancel} disabled={stopping !== undefined} data-testid="train-cancel">
                {stopping === 'cancel' ? 'Cancelling…' : 'Cancel'}
              </button>
            </div>
          )}
        </section>
      )}

      {phase === 'done' && result && (
        <section className="panel" aria-labelledby="train-result-heading" data-testid="train-result" data-steps={result.steps} data-seconds={result.seconds} data-tokens-per-second={result.tokensPerSecond}>
          <h3 id="train-result-heading">Result</h3>
          <dl className="facts">
            <dt>Trained</dt>
            <dd>
              {result.steps} steps{result.stepsThisRun < result.steps ? ` (${result.stepsThisRun} since the resume)` : ''}, {result.tokens.toLocaleString()} tokens in {formatDuration(result.seconds)} ({result.tokensPerSecond.toFixed(1)} tokens/s)
            </dd>
            {result.heldOut && (
              <>
                <dt>Held-out perplexity</dt>
                <dd data-testid="train-perplexity" data-before={result.heldOut.before.perplexity} data-after={result.heldOut.after.perplexity}>
                  {result.heldOut.before.perplexity.toFixed(2)} without the adapter → {result.heldOut.after.perplexity.toFixed(2)} with it (lower is better; {result.heldOut.tokens} tokens the training never saw)
                </dd>
              </>
            )}
            <dt>Adapter</dt>
            <dd>
              {result.adapterInfo.name}: rank {result.adapterInfo.rank}, {result.adapterInfo.tensors} tensors, {result.adapterInfo.parameters.toLocaleString()} parameters, {formatBytes(result.adapter.byteLength)}
            </dd>
          </dl>
          {result.samples.length > 0 && (
            <table className="samples" data-testid="train-samples">
              <caption>Sample answers (greedy), without and with the adapter</caption>
              <thead>
                <tr>
                  <th scope="col">Prompt</th>
                  <th scope="col">Without</th>
                  <th scope="col">With the adapter</th>
                </tr>
              </thead>
              <tbody>
                {result.samples.map((s, i) => (
                  // Model output is untrusted: shown as text, never as HTML or Markdown.
                  <tr key={i} data-testid="train-sample">
                    <th scope="row" className="sample-text">{s.prompt}</th>
                    <td className="sample-text">{s.base}</td>
                    <td className="sample-text">{s.adapted}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {result.samplesNotice && <p className="notice">{result.samplesNotice}</p>}
          <div className="row">
            <button type="button" onClick={() => void useAdapter()} disabled={using} data-testid="train-use">
              {using ? 'Storing…' : 'Use this adapter'}
            </button>
            <button type="button" className="ghost" onClick={trainingRun.reset} data-testid="train-again">
              Train another
            </button>
          </div>
        </section>
      )}

      {error && (
        <p className="message-error" role="alert" data-testid="train-error">
          {error}
        </p>
      )}
    </div>
  );
}

function lastOf(history: readonly LossPoint[], key: 'loss' | 'heldOutLoss'): number | undefined {
  for (let i = history.length - 1; i >= 0; i--) if (history[i]![key] !== undefined) return history[i]![key];
  return undefined;
}

function EstimateView({ estimate: e }: { estimate: TrainingEstimate }) {
  return (
    <dl className="facts" data-testid="train-estimate-view" data-seconds={e.seconds} data-tokens-per-second={e.tokensPerSecond} data-memory={e.memory.total}>
      <dt>Time</dt>
      <dd>
        about {formatDuration(e.seconds)}: {e.steps} steps of {formatDuration(e.secondsPerStep)} ({e.tokensPerSecond.toFixed(1)} tokens/s on the <span title={e.backendNotice} data-testid="train-estimate-backend">{e.backend === 'webgpu' ? 'GPU' : 'CPU'}</span>), with held-out checks
      </dd>
      <dt>Memory</dt>
      <dd>
        about {formatBytes(e.memory.total)}: base model {formatBytes(e.memory.base)}, adapter {formatBytes(e.memory.adapter)}, optimizer {formatBytes(e.memory.optimizer)}, gradients {formatBytes(e.memory.gradients)}, activations {formatBytes(e.memory.activations)}, the training kernels' copy {formatBytes(e.memory.ops)}
      </dd>
      <dt>Data</dt>
      <dd>
        {e.trainWindows} training windows, {e.heldOutWindows} held out; {e.parameters.toLocaleString()} trainable parameters
      </dd>
    </dl>
  );
}
