/** The results: one JSON document and the table printed on stdout. */
import { decodeFloor, ratios, summarize, type Stat, type Summary } from './stats.ts';
import type { Bandwidth, RunSample, Workload } from './types.ts';

export type RuntimeId = 'webgpu-node' | 'webgpu-chromium' | 'cpu-chromium' | 'llama.cpp' | 'llama.cpp-gpu' | 'wllama';
export const OUR_RUNTIMES: readonly RuntimeId[] = ['webgpu-node', 'webgpu-chromium', 'cpu-chromium'];
/** llama.cpp-gpu: its CUDA or Vulkan build, every layer on the GPU (the peer of our WebGPU runs). */
export const PEER_RUNTIMES: readonly RuntimeId[] = ['llama.cpp', 'llama.cpp-gpu', 'wllama'];
export const RUNTIMES: readonly RuntimeId[] = [...OUR_RUNTIMES, ...PEER_RUNTIMES];

export interface RuntimeResult {
  runtime: RuntimeId;
  /** Adapter, build or version. */
  device?: string;
  threads?: number;
  bandwidth?: Bandwidth;
  samples: RunSample[];
  summary?: Summary;
  /** ours / peer of each speed figure's median, per peer (ours only). */
  ratios?: Partial<Record<RuntimeId, Record<string, number | undefined>>>;
  /** Decode floor from weight bytes per token and `bandwidth`, with our fraction of it per context. */
  floor?: { ceilingTps: number; floorMsPerToken: number; fraction: Record<string, number | undefined> };
  error?: string;
}

export interface ModelResult {
  model: string;
  quant: string;
  file: string;
  fileBytes: number;
  /** Bytes of weights one decode step reads (a mixture of experts: the used experts' share). */
  weightBytesPerToken: number;
  /** A mixture of experts: the bytes a step would read if every expert ran (all of them stay resident). */
  weightBytesAll?: number;
  runtimes: RuntimeResult[];
}

export interface BenchReport {
  date: string;
  host: { platform: string; cpus: number; cpuModel: string; node: string; chromium?: string };
  workload: Workload;
  runs: number;
  /** Rounds the runtimes took turns (runs each); absent: one. */
  rounds?: number;
  results: ModelResult[];
}

/** Fills in summaries, ratios to the peers and the decode floor of every runtime of a model. */
export function analyze(m: ModelResult): void {
  for (const r of m.runtimes) if (r.samples.length > 0) r.summary = summarize(r.samples);
  const peers = m.runtimes.filter((r) => PEER_RUNTIMES.includes(r.runtime) && r.summary);
  for (const r of m.runtimes) {
    if (!r.summary) continue;
    if (OUR_RUNTIMES.includes(r.runtime)) r.ratios = Object.fromEntries(peers.map((p) => [p.runtime, ratios(r.summary!, p.summary!)]));
    if (r.bandwidth) {
      const f = decodeFloor(m.weightBytesPerToken, r.bandwidth.bytesPerS);
      const fraction = Object.fromEntries(Object.entries(r.summary.decodeTps).map(([c, s]) => [c, s ? s.median / f.ceilingTps : undefined]));
      r.floor = { ceilingTps: f.ceilingTps, floorMsPerToken: f.floorMsPerToken, fraction };
    }
  }
}

const fmtStat = (s: Stat | undefined, digits: number, scale = 1): string => {
  if (!s) return '-';
  const v = (x: number) => (x * scale).toFixed(digits);
  return s.runs > 1 ? `${v(s.median)} (${v(s.min)}–${v(s.max)})` : v(s.median);
};
const fmtRatio = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(2)}x`);
const mib = (s: Stat | undefined): string => (s ? `${(s.median / 2 ** 20).toFixed(0)}` : '-');

/** A plain-text table, one row per model and runtime; also valid Markdown. */
export function formatTable(report: BenchReport): string {
  const contexts = [...report.workload.contexts].sort((a, b) => a - b);
  const header = [
    'model',
    'quant',
    'weights MiB/tok',
    'runtime',
    'load s',
    `ttft s (${report.workload.promptTokens})`,
    'prefill tok/s',
    ...contexts.map((c) => `decode@${c} tok/s`),
    ...contexts.map((c) => `floor@${c}`),
    'vs llama.cpp (prefill / decode)',
    'vs llama.cpp GPU (prefill / decode)',
    'vs wllama (prefill / decode)',
    'GPU/wasm MiB',
    'heap MiB',
  ];
  const rows: string[][] = [];
  for (const m of report.results) {
    for (const r of m.runtimes) {
      const s = r.summary;
      const vs = (peer: RuntimeId) => {
        const x = r.ratios?.[peer];
        if (!x) return '-';
        return `${fmtRatio(x.prefillTps)} / ${contexts.map((c) => fmtRatio(x[`decodeTps@${c}`])).join(', ')}`;
      };
      const perToken = `${(m.weightBytesPerToken / 2 ** 20).toFixed(0)}` + (m.weightBytesAll !== undefined ? ` of ${(m.weightBytesAll / 2 ** 20).toFixed(0)}` : '');
      rows.push([
        m.model,
        m.quant,
        perToken,
        r.runtime + (r.threads !== undefined ? ` t${r.threads}` : ''),
        ...(r.error || !s
          ? [`error: ${(r.error ?? 'no runs').slice(0, 80)}`, ...Array(header.length - 5).fill('')]
          : [
              fmtStat(s.loadMs, 2, 1e-3),
              fmtStat(s.ttftMs, 2, 1e-3),
              fmtStat(s.prefillTps, 1),
              ...contexts.map((c) => fmtStat(s.decodeTps[String(c)], 2)),
              ...contexts.map((c) => {
                const f = r.floor?.fraction[String(c)];
                return f === undefined ? '-' : `${(100 * f).toFixed(1)}% of ${r.floor!.ceilingTps.toFixed(0)}`;
              }),
              vs('llama.cpp'),
              vs('llama.cpp-gpu'),
              vs('wllama'),
              mib(s.peakDeviceBytes),
              mib(s.peakHeapBytes),
            ]),
      ]);
    }
  }
  return markdownTable(header, rows);
}

/**
 * Decode's host costs beside its speed, one row per model and WebGPU runtime that reported them:
 * JavaScript ms per token (recording and submitting a step), the decode rate that host time alone
 * allows, and what each token asked of the device. Empty when no runtime reported them.
 */
export function formatHostTable(report: BenchReport): string {
  const contexts = [...report.workload.contexts].sort((a, b) => a - b);
  const header = ['model', 'quant', 'runtime', ...contexts.map((c) => `decode@${c} tok/s`), 'host ms/tok', 'of which submit', 'host ceiling tok/s', 'dispatches/tok', 'submits/tok', 'GPU objects/tok'];
  const rows: string[][] = [];
  for (const m of report.results) {
    for (const r of m.runtimes) {
      const s = r.summary;
      if (!s?.host) continue;
      rows.push([
        m.model,
        m.quant,
        r.runtime,
        ...contexts.map((c) => fmtStat(s.decodeTps[String(c)], 2)),
        fmtStat(s.host.hostMsPerToken, 3),
        fmtStat(s.host.submitMsPerToken, 3),
        s.host.ceilingTps.toFixed(0),
        fmtStat(s.host.dispatchesPerToken, 0),
        fmtStat(s.host.submitsPerToken, 2),
        fmtStat(s.host.objectsPerToken, 2),
      ]);
    }
  }
  return rows.length > 0 ? markdownTable(header, rows) : '';
}

function markdownTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((v, c) => (v ?? '').padEnd(widths[c]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
