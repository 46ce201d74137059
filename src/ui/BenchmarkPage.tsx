/**
 * The Benchmark page: `hearth bench` for the loaded model, in the app. Each run is a plain-text
 * completion of a fixed-length prompt (a different first word per run, so no run reuses the
 * previous one's KV prefix) and a fixed number of greedy tokens; the engine's usage figures give
 * the time to first token and the prefill and decode rates. Medians with min-max over the runs,
 * the device described from the capabilities API, exportable as JSON.
 */
import { useState } from 'react';
import type { Capabilities, ModelInfo } from '../engine/api.ts';
import { formatBytes } from '../engine/format-bytes.ts';
import { stat, type Stat } from '../bench/stats.ts';
import { downloadText } from './download.ts';
import { engineClient } from './engine-client.ts';
import { describeError, type FriendlyError } from './errors.ts';
import { loadedModel, type EngineHandle } from './useEngine.ts';

const WORDS = 'the of and to in is that for it as with was on be by at this from or an are'.split(' ');

/** About `words` words of text, its first word set by `variant` (so each run's prompt differs at once). */
export function benchText(words: number, variant: number): string {
  const out = [`run${variant}`];
  for (let i = 1; i < words; i++) out.push(WORDS[(i * 7) % WORDS.length]!);
  return out.join(' ');
}

export interface BenchReport {
  kind: 'hearth-app-bench';
  date: string;
  model: Pick<ModelInfo, 'name' | 'architecture' | 'quantization' | 'parameterCount' | 'fileSize' | 'contextLength' | 'backend' | 'threads'>;
  device: { gpu: string | undefined; cpu: string; userAgent: string; deviceMemoryGiB: number | undefined };
  settings: { runs: number; promptTokens: number; decodeTokens: number };
  ttftMs: Stat | undefined;
  prefillTokensPerSecond: Stat | undefined;
  decodeTokensPerSecond: Stat | undefined;
  memory: { weightsBytes: number; jsHeapBytes: number | undefined };
}

/** A one-line description of the GPU adapter and the CPU backend. */
export function describeDevice(caps: Capabilities): { gpu: string | undefined; cpu: string } {
  const gpu = caps.gpu.available
    ? [caps.gpu.adapter.vendor, caps.gpu.adapter.architecture, caps.gpu.adapter.device, caps.gpu.adapter.description].filter(Boolean).join(' ') + (caps.gpu.adapter.isFallbackAdapter ? ' (software)' : '')
    : undefined;
  const cpu = `${caps.cpu.hardwareConcurrency} logical cores, ${caps.cpu.threadsAvailable ? `${caps.cpu.defaultThreads} threads` : 'single-threaded'}, SIMD ${caps.cpu.wasmSimd ? 'yes' : 'no'}, relaxed SIMD ${caps.cpu.relaxedSimd ? 'yes' : 'no'}`;
  return { gpu: gpu || (caps.gpu.available ? 'unnamed adapter' : undefined), cpu };
}

function fmt(s: Stat | undefined, digits: number): string {
  if (!s) return '–';
  return s.runs > 1 ? `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})` : s.median.toFixed(digits);
}

export function BenchmarkPage({ engine }: { engine: EngineHandle }) {
  const model = loadedModel(engine.model);
  const [runs, setRuns] = useState(3);
  const [promptWords, setPromptWords] = useState(128);
  const [decodeTokens, setDecodeTokens] = useState(32);
  const [running, setRunning] = useState<{ run: number; requestId: string }>();
  const [report, setReport] = useState<BenchReport>();
  const [error, setError] = useState<FriendlyError>();

  const start = async () => {
    if (!model) return;
    setError(undefined);
    const api = engineClient().engine;
    const ttft: number[] = [];
    const prefill: number[] = [];
    const decode: number[] = [];
    let promptTokens = 0;
    try {
      const caps = await api.capabilities();
      // One warm-up run first: the first pass compiles kernels and fills caches.
      for (let r = 0; r <= runs; r++) {
        const requestId = `bench-${Date.now()}-${r}`;
        setRunning({ run: r, requestId });
        const result = await api.chatCompletion({
          messages: [{ role: 'user', content: benchText(promptWords, r) }],
          prompt_format: 'text',
          max_tokens: decodeTokens,
          temperature: 0,
          request_id: requestId,
        });
        if (result.choices[0].finish_reason === 'abort') throw new DOMException('The benchmark was cancelled.', 'AbortError');
        if (r === 0) continue;
        const u = result.usage;
        promptTokens = u.prompt_tokens - u.cached_prompt_tokens;
        ttft.push(u.time_to_first_token_ms);
        prefill.push(u.prefill_tokens_per_second);
        if (u.completion_tokens > 1) decode.push(u.decode_tokens_per_second);
      }
      const heap = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize;
      const info = model.info;
      setReport({
        kind: 'hearth-app-bench',
        date: new Date().toISOString(),
        model: { name: info.name, architecture: info.architecture, quantization: info.quantization, parameterCount: info.parameterCount, fileSize: info.fileSize, contextLength: info.contextLength, backend: info.backend, threads: info.threads },
        device: { ...describeDevice(caps), userAgent: navigator.userAgent, deviceMemoryGiB: (navigator as Navigator & { deviceMemory?: number }).deviceMemory },
        settings: { runs, promptTokens, decodeTokens },
        ttftMs: stat(ttft),
        prefillTokensPerSecond: stat(prefill),
        decodeTokensPerSecond: stat(decode),
        memory: { weightsBytes: info.fileSize, jsHeapBytes: heap },
      });
    } catch (e) {
      if ((e as Error)?.name !== 'AbortError') setError(describeError(e));
    } finally {
      setRunning(undefined);
    }
  };

  return (
    <section className="panel" aria-labelledby="bench-heading">
      <h2 id="bench-heading">Benchmark</h2>
      {!model ? (
        <p>Load a model first (Models page): the benchmark measures the loaded model on this device.</p>
      ) : (
        <>
          <p className="muted">
            Measures {model.info.name} ({model.info.quantization}) on {model.info.backend === 'webgpu' ? 'the GPU (WebGPU)' : 'the CPU'}: time to first token, prompt (prefill) and
            generation (decode) speed. One warm-up run, then medians over the runs, with the range.
          </p>
          <div className="row">
            <label htmlFor="bench-runs">Runs</label>
            <input id="bench-runs" type="number" min={1} max={20} value={runs} onChange={(e) => setRuns(Math.min(20, Math.max(1, Math.floor(Number(e.target.value) || 1))))} />
            <label htmlFor="bench-prompt">Prompt words</label>
            <input id="bench-prompt" type="number" min={1} value={promptWords} onChange={(e) => setPromptWords(Math.max(1, Math.floor(Number(e.target.value) || 1)))} />
            <label htmlFor="bench-decode">Generated tokens</label>
            <input id="bench-decode" type="number" min={2} value={decodeTokens} onChange={(e) => setDecodeTokens(Math.max(2, Math.floor(Number(e.target.value) || 2)))} />
            <button type="button" disabled={running !== undefined} onClick={() => void start()} data-testid="bench-run">
              Run benchmark
            </button>
            {running && (
              <>
                <span role="status" data-testid="bench-progress">
                  {running.run === 0 ? 'warming up…' : `run ${running.run} of ${runs}…`}
                </span>
                <button type="button" className="ghost" onClick={() => void engineClient().engine.abort(running.requestId)}>
                  Cancel
                </button>
              </>
            )}
          </div>
        </>
      )}
      {error && (
        <div className="notice error" role="alert">
          <strong>{error.title}</strong> {error.message}
        </div>
      )}
      {report && (
        <>
          <dl className="facts" data-testid="bench-report">
            <dt>Model</dt>
            <dd>
              {report.model.name} ({report.model.quantization}, {formatBytes(report.model.fileSize)}) on {report.model.backend}
              {report.model.threads ? `, ${report.model.threads} threads` : ''}
            </dd>
            <dt>GPU</dt>
            <dd>{report.device.gpu ?? 'none (WebGPU unavailable)'}</dd>
            <dt>CPU</dt>
            <dd>{report.device.cpu}</dd>
            <dt>Time to first token</dt>
            <dd data-testid="bench-ttft">{fmt(report.ttftMs, 1)} ms</dd>
            <dt>Prefill</dt>
            <dd data-testid="bench-prefill">
              {fmt(report.prefillTokensPerSecond, 1)} tokens/s ({report.settings.promptTokens} prompt tokens)
            </dd>
            <dt>Decode</dt>
            <dd data-testid="bench-decode">{fmt(report.decodeTokensPerSecond, 1)} tokens/s</dd>
            <dt>Memory</dt>
            <dd>
              weights {formatBytes(report.memory.weightsBytes)}
              {report.memory.jsHeapBytes !== undefined ? `, page JS heap ${formatBytes(report.memory.jsHeapBytes)}` : ''}
              {report.device.deviceMemoryGiB !== undefined ? `, device about ${report.device.deviceMemoryGiB} GiB` : ''}
            </dd>
          </dl>
          <button type="button" onClick={() => downloadText(`hearth-bench-${report.date.slice(0, 19).replace(/:/g, '-')}.json`, JSON.stringify(report, null, 2), 'application/json')} data-testid="bench-export">
            Export JSON
          </button>
        </>
      )}
    </section>
  );
}
