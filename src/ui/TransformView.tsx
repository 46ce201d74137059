/**
 * The "Transform text" view, shown instead of the chat when the loaded model is encoder-decoder
 * (T5, Flan-T5): such a model does not chat, it turns one text into another. A task (a Flan-T5
 * instruction prefix, transform-tasks.ts), the text, Run; the output streams in. The output is the
 * model's untrusted text, rendered as text by React (never as HTML, never executed).
 */
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { TransformResult } from '../engine/api.ts';
import { engineClient } from './engine-client.ts';
import { describeError, type FriendlyError } from './errors.ts';
import { ModelBanner } from './ModelStatus.tsx';
import { TRANSFORM_TASKS, transformInput } from './transform-tasks.ts';
import { loadedModel, type ModelState } from './useEngine.ts';

let nextRun = 1;

interface Run {
  id: string;
  output: string;
  result?: TransformResult | undefined;
  error?: FriendlyError | undefined;
}

export function TransformView({ model, onOpenModels }: { model: ModelState; onOpenModels: () => void }) {
  const inUse = loadedModel(model);
  const [taskId, setTaskId] = useState(TRANSFORM_TASKS[0]!.id);
  const task = TRANSFORM_TASKS.find((t) => t.id === taskId) ?? TRANSFORM_TASKS[0]!;
  const [text, setText] = useState('');
  const [maxTokens, setMaxTokens] = useState(128);
  const [temperature, setTemperature] = useState(0);
  const [run, setRun] = useState<Run>();
  const [running, setRunning] = useState<string>();
  const mounted = useRef(true);
  // The run in flight, to stop it when the view goes (another view, another kind of model).
  const inFlight = useRef<string | undefined>(undefined);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      if (inFlight.current) void engineClient().engine.abort(inFlight.current);
    };
  }, []);

  const ready = model.state === 'ready' && inUse !== undefined;
  const canRun = ready && !running && text.trim() !== '';

  const start = async (event?: FormEvent) => {
    event?.preventDefault();
    if (!canRun) return;
    const id = `transform-ui-${nextRun++}`;
    setRunning(id);
    inFlight.current = id;
    setRun({ id, output: '' });
    try {
      const result = await engineClient().engine.transform(
        { input: transformInput(task, text), max_tokens: maxTokens, temperature, request_id: id },
        (chunk) => {
          if (chunk.delta && mounted.current) setRun((r) => (r?.id === id ? { ...r, output: r.output + chunk.delta } : r));
        },
      );
      if (mounted.current) setRun({ id, output: result.output, result });
    } catch (error) {
      if (mounted.current) setRun((r) => ({ id, output: r?.id === id ? r.output : '', error: describeError(error) }));
    } finally {
      inFlight.current = undefined;
      if (mounted.current) setRunning(undefined);
    }
  };
  const stop = () => {
    if (running) void engineClient().engine.abort(running);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void start();
    else if (e.key === 'Escape') stop();
  };

  const stats = run?.result && describeResult(run.result);
  return (
    <section className="transform" aria-labelledby="transform-heading" data-testid="transform-view">
      <ModelBanner model={model} onOpenModels={onOpenModels} />
      <h2 id="transform-heading">Transform text</h2>
      <p className="muted small">
        {inUse?.info.name ?? 'This model'} is a text-to-text (encoder-decoder) model: it does not chat, it turns the text you give it into another, as the task says.
        Ctrl+Enter runs, Escape stops.
      </p>
      <form className="transform-form" onSubmit={(e) => void start(e)}>
        <div className="transform-options">
          <span>
            <label htmlFor="transform-task">Task</label>{' '}
            <select id="transform-task" value={task.id} onChange={(e) => setTaskId(e.target.value)} data-testid="transform-task">
              {TRANSFORM_TASKS.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.label}
                </option>
              ))}
            </select>
          </span>
          <span>
            <label htmlFor="transform-max-tokens">Max output tokens</label>{' '}
            <input id="transform-max-tokens" type="number" min={1} max={inUse?.info.outputCapacity ?? 512} value={maxTokens} onChange={(e) => setMaxTokens(Math.max(1, Math.floor(Number(e.target.value) || 1)))} data-testid="transform-max-tokens" />
          </span>
          <span>
            <label htmlFor="transform-temperature">Temperature</label>{' '}
            <input id="transform-temperature" type="number" min={0} max={2} step={0.1} value={temperature} onChange={(e) => setTemperature(Math.max(0, Number(e.target.value) || 0))} data-testid="transform-temperature" />
          </span>
        </div>
        <div className="transform-input">
          <label htmlFor="transform-input">Text to transform</label>
          <textarea id="transform-input" value={text} onChange={(e) => setText(e.target.value)} onKeyDown={onKeyDown} rows={6} placeholder={task.placeholder} data-testid="transform-input" />
        </div>
        {task.prefix && (
          <p className="muted small" data-testid="transform-prefix">
            The model reads: <q>{task.prefix.trim()}</q> followed by your text.
          </p>
        )}
        <div className="transform-actions">
          {running ? (
            <button type="button" onClick={stop} data-testid="transform-stop">
              Stop
            </button>
          ) : (
            <button type="submit" disabled={!canRun} data-testid="transform-run">
              Run
            </button>
          )}
        </div>
      </form>
      {/* Not a live region (a screen reader would read every token); the status line announces the end. */}
      <section className="transform-output" aria-label="Output" aria-busy={running !== undefined} data-testid="transform-output">
        {run?.output ? <p className="transform-text">{run.output}</p> : <p className="muted">{running ? 'Writing…' : 'The output appears here.'}</p>}
      </section>
      <p role="status" className="muted small" data-testid="transform-status">
        {stats ?? ''}
      </p>
      {run?.error && (
        <div className="notice error" role="alert" data-testid="transform-error">
          <strong>{run.error.title}</strong> {run.error.message}
        </div>
      )}
    </section>
  );
}

/** The line under a finished output: why it ended and how fast it came. */
function describeResult(result: TransformResult): string {
  const { usage } = result;
  const why =
    result.finish_reason === 'abort'
      ? 'stopped'
      : result.finish_reason === 'length'
        ? usage.length_limit === 'output_capacity'
          ? 'reached the most output the model was loaded for'
          : 'reached the token limit'
        : 'done';
  const speed = usage.decode_tokens_per_second > 0 ? ` · ${usage.decode_tokens_per_second.toFixed(1)} tokens/s` : '';
  return `${why}: ${usage.completion_tokens} tokens from ${usage.prompt_tokens} input tokens${speed}`;
}
