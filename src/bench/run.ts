/**
 * The model benchmark (`hearth bench`, `npm run bench`): for each model shape and quantization,
 * generate the file once, then run every runtime on it in turn (never two at once: they share the
 * CPU) and compare. Each runtime failing (an unsupported weight type, say) is recorded and the
 * rest go on.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, platform } from 'node:os';
import { dirname } from 'node:path';
import { readGguf } from '../engine/gguf/reader.ts';
import { nodeFileSource } from '../node/file-source.ts';
import { ChromiumBench } from './chromium.ts';
import { runLlamaCpp } from './llama-cpp.ts';
import { ensureBenchModel, modelShape } from './models.ts';
import { runNodeWebGpu } from './node-webgpu.ts';
import { analyze, formatHostTable, formatTable, type BenchReport, type ModelResult, type RuntimeId, type RuntimeResult } from './report.ts';
import { weightBytesPerToken } from './stats.ts';
import type { Workload } from './types.ts';

export interface BenchOptions {
  models: string[];
  quants: string[];
  runtimes: RuntimeId[];
  workload: Workload;
  runs: number;
  /**
   * Rounds: every runtime runs `runs` times per round, the runtimes taking turns round after round,
   * and each one's samples pool across rounds. On a shared, noisy machine the ratios then compare
   * runs from the same stretches of time instead of one runtime's minutes against another's.
   */
  rounds?: number;
  cacheDir: string;
  /** JSON output path. */
  out: string;
  log: (line: string) => void;
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const report: BenchReport = {
    date: new Date().toISOString(),
    host: { platform: `${platform()} ${process.arch}`, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    workload: o.workload,
    runs: o.runs,
    ...(o.rounds && o.rounds > 1 ? { rounds: o.rounds } : {}),
    results: [],
  };
  let chromium: ChromiumBench | undefined;
  const browser = async () => {
    if (!chromium) {
      chromium = await ChromiumBench.start(o.cacheDir, o.log);
      report.host.chromium = chromium.version;
    }
    return chromium;
  };
  try {
    for (const id of o.models) {
      const shape = modelShape(id);
      for (const quant of o.quants) {
        const file = await ensureBenchModel(o.cacheDir, shape, quant, o.log);
        const source = await nodeFileSource(file);
        const header = await readGguf(source).finally(() => source.close());
        const used = header.metadata.get(`${header.metadata.get('general.architecture')}.expert_used_count`);
        const expertsUsed = typeof used === 'number' ? used : undefined;
        const result: ModelResult = {
          model: id, quant, file, fileBytes: statSync(file).size,
          weightBytesPerToken: weightBytesPerToken(header.tensors, expertsUsed),
          ...(expertsUsed !== undefined ? { weightBytesAll: weightBytesPerToken(header.tensors) } : {}),
          runtimes: [],
        };
        report.results.push(result);
        const rounds = o.rounds ?? 1;
        for (let round = 0; round < rounds; round++) for (const runtime of o.runtimes) {
          o.log(`${id} ${quant} on ${runtime}${rounds > 1 ? ` (round ${round + 1} of ${rounds})` : ''}`);
          let r = result.runtimes.find((x) => x.runtime === runtime);
          if (!r) result.runtimes.push((r = { runtime, samples: [] }));
          if (r.error) continue;
          const pooled = r.samples;
          try {
            switch (runtime) {
              case 'webgpu-node': {
                const x = await runNodeWebGpu(file, o.workload, o.runs, o.log);
                Object.assign(r, { device: `Dawn: ${x.adapter}`, bandwidth: x.bandwidth, samples: x.samples });
                break;
              }
              case 'webgpu-chromium': {
                const x = await (await browser()).oursWebGpu(file, o.workload, o.runs);
                Object.assign(r, { device: `Chromium: ${x.device}`, bandwidth: x.bandwidth, samples: x.samples });
                break;
              }
              case 'cpu-chromium': {
                const x = await (await browser()).oursCpu(file, o.workload, o.runs);
                Object.assign(r, { device: x.device, bandwidth: x.bandwidth, samples: x.samples, threads: x.threads });
                break;
              }
              case 'llama.cpp':
              case 'llama.cpp-gpu': {
                const x = await runLlamaCpp(file, o.workload, o.runs, o.log, runtime === 'llama.cpp-gpu');
                Object.assign(r, { device: `node-llama-cpp, llama.cpp ${x.version}, ${x.build}`, samples: x.samples, threads: o.workload.threads });
                break;
              }
              case 'wllama': {
                const x = await (await browser()).wllama(file, o.workload, o.runs);
                Object.assign(r, { device: `wllama ${x.version}${x.multithread ? ' multi-thread' : ''}`, samples: x.samples, threads: x.threads });
                break;
              }
            }
          } catch (error) {
            const e = error as Error;
            r.error = `${e.name}: ${e.message.split('\n')[0]}`;
            o.log(`  failed: ${r.error}`);
          }
          // Each round's Object.assign replaced the samples: the earlier rounds' go first.
          if (r.samples !== pooled) r.samples = [...pooled, ...r.samples];
        }
        analyze(result);
        save(o.out, report);
      }
    }
  } finally {
    await chromium?.close();
  }
  o.log('');
  o.log(formatTable(report));
  const host = formatHostTable(report);
  if (host) o.log(`\nDecode host costs (WebGPU): JavaScript time recording and submitting a step, per token\n${host}`);
  o.log(`\nJSON: ${o.out}`);
  return report;
}

function save(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
}
