/**
 * `node hearth.mjs device collect --dir RESULTS`: the device check's raw files (one per part, see
 * scripts/device-check.sh) summarised into RESULTS/device-check.json: adapter, driver, each part's
 * status and time, the GPU tests' counts, the kernel figures, and per model ours beside llama-bench.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summarize } from '../../src/bench/stats.ts';
import type { RunSample } from '../../src/bench/types.ts';
import { DEVICE_SHAPES } from './models.ts';

function readJson(path: string): unknown {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return { unreadable: (error as Error).message };
  }
}

function readText(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
}

/** One row of `llama-bench -o json`. */
interface LlamaBenchRow {
  n_prompt: number;
  n_gen: number;
  n_depth?: number;
  avg_ts: number;
  stddev_ts: number;
  gpu_info?: string;
  backends?: string;
  build_commit?: string;
  build_number?: number;
  model_size?: number;
  flash_attn?: unknown;
}

export interface PeerSummary {
  prefillTps?: number;
  decodeTps: Record<string, number>;
  device?: string;
  backends?: string;
  build?: string;
}

function peerSummary(dir: string, id: string): PeerSummary | undefined {
  const rows = [readJson(join(dir, `peer-${id}.pp.json`)), readJson(join(dir, `peer-${id}.tg.json`))].flatMap((x) => (Array.isArray(x) ? (x as LlamaBenchRow[]) : []));
  if (rows.length === 0) return undefined;
  const out: PeerSummary = { decodeTps: {} };
  for (const r of rows) {
    if (r.n_prompt > 0 && r.n_gen === 0) out.prefillTps = r.avg_ts;
    if (r.n_gen > 0) out.decodeTps[String(r.n_depth ?? 0)] = r.avg_ts;
    out.device ??= r.gpu_info;
    out.backends ??= r.backends;
    out.build ??= r.build_commit !== undefined ? `${r.build_commit} (${r.build_number ?? '?'})` : undefined;
  }
  return out;
}

export function collect(dir: string, mode: string, seconds: number): unknown {
  const parts = (readText(join(dir, 'parts.tsv')) ?? '')
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((line) => {
      const [name, status, s, rc] = line.split('\t');
      return { name, status, seconds: Number(s), rc };
    });
  const probe = readJson(join(dir, 'probe.json')) as { adapter?: Record<string, unknown> } | undefined;
  const gpuTests = readJson(join(dir, 'gpu-tests.json')) as { passed?: number; failed?: number; skipped?: number; ms?: number; failures?: unknown[] } | undefined;
  const models = DEVICE_SHAPES.map((id) => {
    const ours = readJson(join(dir, `ours-${id}.json`)) as { samples?: RunSample[]; error?: string; bandwidth?: unknown; adapter?: string; fileBytes?: number; weightBytesPerToken?: number; shape?: string } | undefined;
    const summary = ours?.samples?.length ? summarize(ours.samples) : undefined;
    return {
      model: id,
      shape: ours?.shape,
      fileBytes: ours?.fileBytes,
      weightBytesPerToken: ours?.weightBytesPerToken,
      ours: ours
        ? {
            error: ours.error,
            prefillTps: summary?.prefillTps?.median,
            decodeTps: Object.fromEntries(Object.entries(summary?.decodeTps ?? {}).map(([c, s]) => [c, s?.median])),
            loadMs: summary?.loadMs?.median,
            ttftMs: summary?.ttftMs?.median,
            bandwidth: ours.bandwidth,
          }
        : undefined,
      peer: peerSummary(dir, id),
    };
  });
  const report = {
    date: new Date().toISOString(),
    mode,
    seconds,
    adapter: probe?.adapter
      ? { vendor: probe.adapter.vendor, architecture: probe.adapter.architecture, device: probe.adapter.device, description: probe.adapter.description, isFallbackAdapter: probe.adapter.isFallbackAdapter }
      : undefined,
    driver: readText(join(dir, 'nvidia-smi.csv')),
    host: readText(join(dir, 'host.txt')),
    peerDevices: readText(join(dir, 'peer-devices.txt')),
    parts,
    sizes: readJson(join(dir, 'sizes.json')),
    gpuTests: gpuTests ? { passed: gpuTests.passed, failed: gpuTests.failed, skipped: gpuTests.skipped, ms: gpuTests.ms, failures: gpuTests.failures?.slice(0, 20) } : undefined,
    kernels: readJson(join(dir, 'kernels.json')),
    probe,
    models,
    finetune: finetuneLines(dir),
  };
  writeFileSync(join(dir, 'device-check.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** The WebGPU LoRA training parts (finetune-SHAPE.txt): tokens/s and the device cost line hearth finetune prints. */
function finetuneLines(dir: string): { shape: string; tokensPerSecond: number | undefined; line: string | undefined; steps: string[] }[] {
  return readdirSync(dir)
    .filter((f) => /^finetune-.+\.txt$/.test(f))
    .map((f) => {
      const text = readText(join(dir, f)) ?? '';
      const done = /^trained \d+ tokens in [\d.]+ s: ([\d.]+) tokens\/s.*$/m.exec(text);
      return { shape: f.slice('finetune-'.length, -'.txt'.length), tokensPerSecond: done ? Number(done[1]) : undefined, line: done?.[0], steps: text.split('\n').filter((l) => l.startsWith('step ')) };
    });
}
