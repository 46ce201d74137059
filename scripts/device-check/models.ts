/**
 * The device check's model part: random-weight GGUF files with the exact shapes of the benchmark's
 * models (src/bench/models.ts), generated on the device machine (carrying them would not fit), then
 * this engine's decode and prefill on them through the same runner as `hearth bench`
 * (runNodeWebGpu). The peer (llama-bench) runs on the same files from scripts/device-check.sh.
 *
 * Generation is split over processes: the file is laid out once (header and tensor offsets), and
 * each process quantizes its share of the tensors and writes them in place. The bytes are those
 * `writeGgufFile` writes; only the time changes (an 8B file is ~8e9 random values to quantize).
 *
 * `--rehearse` swaps in small shapes of the same architecture so the whole script can be rehearsed
 * on the software adapter (SwiftShader) in minutes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { BENCH_QUANTS, benchModelFile, benchVocab, modelOptions, modelShape, type ModelShape } from '../../src/bench/models.ts';
import { runNodeWebGpu } from '../../src/bench/node-webgpu.ts';
import { weightBytesPerToken } from '../../src/bench/stats.ts';
import type { Workload } from '../../src/bench/types.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { layoutGguf } from '../../src/engine/gguf/writer.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { ggmlTypeName } from '../../src/engine/gguf/ggml-types.ts';
import { planTestModel } from '../../src/testing/make-model.ts';

/**
 * The shapes the device check measures: the smallest and the largest Llama of the issue, and the
 * hybrid LFM2-1.2B (Llama-3.2-1B's width and depth with 6 attention layers of 16) whose decode
 * against context length is set beside the 1B's.
 */
export const DEVICE_SHAPES = ['llama-3.2-1b', 'lfm2-1.2b', 'llama-3.1-8b'] as const;
export const DEVICE_QUANT = 'q4_k_m';

/**
 * Rehearsal stand-ins: the same architecture and flags (tied or not, rope_freqs), widths that
 * Q4_K's 256-element blocks divide, small enough for SwiftShader on two cores.
 */
const REHEARSAL_SHAPES: Record<string, Partial<ModelShape>> = {
  'llama-3.2-1b': { embd: 256, layers: 2, heads: 4, kvHeads: 1, ff: 768, vocab: 4096 },
  'llama-3.1-8b': { embd: 512, layers: 2, heads: 8, kvHeads: 2, ff: 1536, vocab: 4096 },
  'lfm2-1.2b': { embd: 256, layers: 4, heads: 4, kvHeads: 1, ff: 768, vocab: 4096, attnLayers: [1, 3] },
};

const REHEARSAL_SUFFIX = '-rehearsal';

/** The flags that name `shape` to another process (deviceShape's inverse). */
function shapeFlags(shape: ModelShape): string[] {
  const rehearsal = shape.id.endsWith(REHEARSAL_SUFFIX);
  return ['--shapes', rehearsal ? shape.id.slice(0, -REHEARSAL_SUFFIX.length) : shape.id, ...(rehearsal ? ['--rehearse'] : [])];
}

export function deviceShape(id: string, rehearse: boolean): ModelShape {
  const shape = modelShape(id);
  if (!rehearse) return shape;
  const small = REHEARSAL_SHAPES[id];
  if (!small) throw new RangeError(`no rehearsal shape for '${id}'`);
  return { ...shape, ...small, id: `${id}${REHEARSAL_SUFFIX}`, name: `${shape.name} (rehearsal shape)` };
}

function planFor(shape: ModelShape, quant: string) {
  if (!(BENCH_QUANTS as readonly string[]).includes(quant)) throw new RangeError(`unknown quant '${quant}'`);
  return planTestModel(modelOptions(shape, quant, benchVocab(shape.vocab)));
}

export interface ModelSize {
  shape: string;
  quant: string;
  fileBytes: number;
  weightBytesPerToken: number;
  tensors: Record<string, number>;
}

/** What generating the model would write, without generating it. */
export function modelSize(shape: ModelShape, quant: string): ModelSize {
  const plan = planFor(shape, quant);
  const layout = layoutGguf(plan.spec);
  const tensors: Record<string, number> = {};
  for (const t of plan.tensors) tensors[ggmlTypeName(t.type)] = (tensors[ggmlTypeName(t.type)] ?? 0) + 1;
  return { shape: shape.id, quant, fileBytes: layout.fileSize, weightBytesPerToken: weightBytesPerToken(layout.tensors), tensors };
}

/** Tensor indices of part `part` of `parts`: largest first, each to the part with the fewest bytes. */
function share(byteSizes: readonly number[], parts: number, part: number): number[] {
  const load = new Array<number>(parts).fill(0);
  const mine: number[] = [];
  const order = byteSizes.map((b, i) => [b, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [bytes, index] of order) {
    let least = 0;
    for (let p = 1; p < parts; p++) if (load[p]! < load[least]!) least = p;
    load[least]! += bytes;
    if (least === part) mine.push(index);
  }
  return mine;
}

/** One process's share: quantize its tensors and write them at their offsets in `file`. */
export async function generatePart(shape: ModelShape, quant: string, file: string, parts: number, part: number): Promise<void> {
  const plan = planFor(shape, quant);
  const layout = layoutGguf(plan.spec);
  const handle = await open(file, 'r+');
  try {
    for (const i of share(layout.tensors.map((t) => t.byteSize), parts, part)) {
      const t = layout.tensors[i]!;
      const bytes = await plan.data(t, i);
      if (bytes.length !== t.byteSize) throw new RangeError(`tensor ${t.name}: ${bytes.length} bytes, expected ${t.byteSize}`);
      let done = 0;
      while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done, t.fileOffset + done)).bytesWritten;
    }
  } finally {
    await handle.close();
  }
}

/** The model's file in `dir`, generated by `parts` processes when missing; the path. */
export async function generateModel(dir: string, shape: ModelShape, quant: string, parts: number, log: (line: string) => void): Promise<string> {
  const path = join(dir, benchModelFile(shape, quant));
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const plan = planFor(shape, quant);
  const layout = layoutGguf(plan.spec);
  const partial = `${path}.partial`;
  const t0 = performance.now();
  log(`generating ${path}: ${(layout.fileSize / 2 ** 20).toFixed(0)} MiB, ${layout.tensors.length} tensors, ${parts} processes`);
  const handle = await open(partial, 'w');
  try {
    await handle.truncate(layout.fileSize);
    await handle.write(layout.header, 0, layout.header.length, 0);
  } finally {
    await handle.close();
  }
  const script = process.argv[1]!;
  const children = Array.from({ length: parts }, (_, part) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [script, 'device', 'generate-part', ...shapeFlags(shape), '--quant', quant, '--file', partial, '--parts', String(parts), '--part', String(part)], { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`generator part ${part} exited with ${signal ?? code}`))));
    }));
  try {
    await Promise.all(children);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
  // Every part must have written the same model's tensors: read the header back before it counts as done.
  const source = await nodeFileSource(partial);
  try {
    const header = await readGguf(source);
    const last = header.tensors.at(-1);
    if (header.tensors.length !== layout.tensors.length || last?.name !== layout.tensors.at(-1)?.name) throw new Error(`generated ${partial} does not read back as planned`);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  } finally {
    await source.close();
  }
  renameSync(partial, path);
  log(`  ${(statSync(path).size / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

export interface OursResult {
  shape: string;
  file: string;
  fileBytes: number;
  weightBytesPerToken: number;
  workload: Workload;
  adapter?: string;
  bandwidth?: { bytesPerS: number; method: string };
  samples?: unknown[];
  error?: string;
  ms: number;
}

/** This engine on one generated file: load, warm-up, prefill (TTFT) and decode at each context. */
export async function benchOurs(shape: ModelShape, file: string, workload: Workload, runs: number, log: (line: string) => void): Promise<OursResult> {
  const t0 = performance.now();
  const size = modelSize(shape, DEVICE_QUANT);
  const result: OursResult = { shape: shape.id, file, fileBytes: statSync(file).size, weightBytesPerToken: size.weightBytesPerToken, workload, ms: 0 };
  try {
    const x = await runNodeWebGpu(file, workload, runs, log);
    Object.assign(result, { adapter: x.adapter, bandwidth: x.bandwidth, samples: x.samples });
  } catch (error) {
    result.error = `${(error as Error).name}: ${(error as Error).message.split('\n')[0]}`;
    log(`  failed: ${result.error}`);
  }
  result.ms = performance.now() - t0;
  return result;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function numberFlag(args: string[], name: string, fallback: number): number {
  const v = flag(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} needs a positive integer, got '${v}'`);
  return n;
}

/**
 * `node hearth.mjs device <sizes|generate|generate-part|bench|collect> ...`, the steps scripts/device-check.sh
 * runs, each in its own process so each has its own timeout.
 */
export async function deviceCommand(args: string[]): Promise<number> {
  const [step, ...rest] = args;
  const log = (line: string) => process.stdout.write(line + '\n');
  const rehearse = rest.includes('--rehearse');
  const quant = flag(rest, '--quant') ?? DEVICE_QUANT;
  const shapes = (flag(rest, '--shapes') ?? DEVICE_SHAPES.join(',')).split(',').map((id) => deviceShape(id, rehearse));
  switch (step) {
    case 'sizes': {
      // Both the full shapes and, when rehearsing, the stand-ins: the rehearsal prints what the real run generates.
      const sizes = [...DEVICE_SHAPES.map((id) => modelSize(deviceShape(id, false), quant)), ...(rehearse ? shapes.map((s) => modelSize(s, quant)) : [])];
      for (const s of sizes) {
        log(`${s.shape} ${s.quant}: ${(s.fileBytes / 2 ** 20).toFixed(0)} MiB file, ${(s.weightBytesPerToken / 2 ** 20).toFixed(0)} MiB of weights read per token (${Object.entries(s.tensors).map(([t, n]) => `${n} ${t}`).join(', ')})`);
      }
      const out = flag(rest, '--json');
      if (out) writeFileSync(out, JSON.stringify(sizes, null, 2) + '\n');
      return 0;
    }
    case 'generate': {
      const dir = flag(rest, '--dir') ?? join('.cache', 'device-models');
      const parts = numberFlag(rest, '--parts', Math.max(1, availableParallelism()));
      for (const shape of shapes) log(await generateModel(dir, shape, quant, parts, log));
      return 0;
    }
    case 'generate-part': {
      const [shape] = shapes;
      const file = flag(rest, '--file');
      if (!shape || !file) throw new RangeError('generate-part needs --shapes and --file');
      await generatePart(shape, quant, file, numberFlag(rest, '--parts', 1), Number(flag(rest, '--part') ?? 0));
      return 0;
    }
    case 'bench': {
      const [shape] = shapes;
      const file = flag(rest, '--file');
      if (!shape || !file) throw new RangeError('bench needs --shapes ID and --file');
      const workload: Workload = {
        promptTokens: numberFlag(rest, '--prompt', 512),
        contexts: (flag(rest, '--contexts') ?? '128,2048').split(',').map(Number),
        decodeTokens: numberFlag(rest, '--decode', 32),
        threads: 1,
      };
      const result = await benchOurs(shape, file, workload, numberFlag(rest, '--runs', 1), log);
      const out = flag(rest, '--json');
      if (out) writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
      return result.error ? 1 : 0;
    }
    case 'collect': {
      const dir = flag(rest, '--dir');
      if (!dir) throw new RangeError('collect needs --dir');
      const { collect } = await import('./collect.ts');
      collect(dir, flag(rest, '--mode') ?? 'device', Number(flag(rest, '--seconds') ?? 0));
      log(`wrote ${join(dir, 'device-check.json')}`);
      return 0;
    }
    default:
      process.stderr.write('usage: device sizes|generate|generate-part|bench|collect [--rehearse] [--shapes A,B] [--dir D] [--file F] [--json F]\n');
      return 2;
  }
}
