import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_QUANTS, FULL_BENCH_QUANTS, MODEL_SHAPES } from '../../bench/models.ts';
import { RUNTIMES, type RuntimeId } from '../../bench/report.ts';
import { createGpuContext, type GpuContext } from '../../engine/backend/webgpu/device.ts';
import type { MatmulBenchOptions } from '../../bench/webgpu/matmul.ts';
import type { SsmBenchOptions } from '../../bench/webgpu/ssm.ts';
import { ggmlTypeByName } from '../../engine/gguf/ggml-types.ts';
import { nodeGpu, nodeProbeOptions } from '../../node/webgpu.ts';
import { backendArg, parseFlags, positiveIntFlag, UsageError, type CliCommand } from '../command.ts';

const KERNEL_FLAGS = { values: ['--types', '--shapes', '--prefill', '--seconds', '--json', '--matvec'], switches: ['--wall'] } as const;

/** `hearth bench kernels`: GB/s and GFLOP/s of the matmul kernels per format beside the copy bandwidth. */
async function benchKernels(args: string[]): Promise<number> {
  const { positional, values, switches } = parseFlags(args, KERNEL_FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const options: MatmulBenchOptions = { log: (line) => process.stdout.write(line + '\n') };
  const types = values.get('--types');
  if (types) {
    options.types = types.split(',').map((name) => {
      const info = ggmlTypeByName(name);
      if (!info) throw new UsageError(`unknown type ${name}`);
      return info.type;
    });
  }
  const shapes = values.get('--shapes');
  if (shapes) {
    options.shapes = shapes.split(',').map((shape) => {
      const [rows, k] = shape.split('x').map(Number);
      if (!rows || !k) throw new UsageError(`bad shape ${shape}: expected ROWSxK`);
      return [rows, k] as const;
    });
  }
  if (values.has('--prefill')) options.prefillTokens = Number(values.get('--prefill'));
  if (values.has('--seconds')) options.seconds = Number(values.get('--seconds'));
  const matvec = values.get('--matvec');
  if (matvec !== undefined) {
    if (matvec !== 'workgroup' && matvec !== 'subgroup' && matvec !== 'invocation') {
      throw new UsageError(`bad --matvec ${matvec}: expected workgroup, subgroup or invocation`);
    }
    options.matvec = matvec;
  }
  if (switches.has('--wall')) options.wallTime = true;
  // Imported when run: the bench modules pull in node-llama-cpp and Playwright, which every
  // other command would otherwise load at start-up.
  return runGpuBench(values.get('--json'), async (context) => (await import('../../bench/webgpu/matmul.ts')).benchMatmul(context, options));
}

/** Runs a GPU benchmark on this machine's adapter and writes its report to `json` when given. */
async function runGpuBench(json: string | undefined, bench: (context: GpuContext) => Promise<unknown>): Promise<number> {
  const context = await createGpuContext(nodeGpu(), nodeProbeOptions());
  try {
    const report = await bench(context);
    if (json) writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  } finally {
    context.destroy();
  }
  return 0;
}

const SSM_FLAGS = { values: ['--shapes', '--tokens', '--seconds', '--json'], switches: ['--wall'] } as const;

/** `hearth bench ssm`: the state-space kernels (the scan in both forms, the convolution) per token count. */
async function benchSsmSuite(args: string[]): Promise<number> {
  const { positional, values, switches } = parseFlags(args, SSM_FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const options: SsmBenchOptions = { log: (line) => process.stdout.write(line + '\n') };
  const shapes = values.get('--shapes');
  if (shapes) {
    options.shapes = shapes.split(',').map((shape) => {
      const [heads, headDim, stateSize, groups] = shape.split('x').map(Number);
      if (!heads || !headDim || !stateSize || !groups || heads % groups !== 0) throw new UsageError(`bad shape ${shape}: expected HEADSxHEAD_DIMxSTATExGROUPS`);
      return { heads, headDim, stateSize, groups };
    });
  }
  const tokens = values.get('--tokens');
  if (tokens) {
    options.tokens = tokens.split(',').map((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`bad --tokens ${v}`);
      return n;
    });
  }
  if (values.has('--seconds')) options.seconds = Number(values.get('--seconds'));
  if (switches.has('--wall')) options.wallTime = true;
  return runGpuBench(values.get('--json'), async (context) => (await import('../../bench/webgpu/ssm.ts')).benchSsm(context, options));
}

const MODEL_FLAGS = {
  values: ['--models', '--quants', '--runtimes', '--prompt', '--contexts', '--decode', '--runs', '--rounds', '--threads', '--cpu-memory-mib', '--out', '--cache'],
  switches: ['--full'],
} as const;

/** The quick default: one small model, minutes on the shared 2-core VM (SwiftShader is slow). */
const QUICK = { models: 'qwen2.5-0.5b', quants: 'q4_k_m,q8_0', runtimes: 'webgpu-node,cpu-chromium,llama.cpp,wllama', prompt: 16, contexts: '32', decode: 4, runs: 1 };
/** `--full`: every model, mix and runtime, the workload. */
const FULL = { models: MODEL_SHAPES.map((m) => m.id).join(','), quants: FULL_BENCH_QUANTS.join(','), runtimes: RUNTIMES.join(','), prompt: 512, contexts: '128,2048', decode: 32, runs: 3 };

function list(values: Map<string, string>, flag: string, fallback: string, allowed: readonly string[]): string[] {
  const items = (values.get(flag) ?? fallback).split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of items) if (!allowed.includes(x)) throw new UsageError(`${flag}: unknown '${x}' (${allowed.join(', ')})`);
  if (items.length === 0) throw new UsageError(`${flag} is empty`);
  return items;
}

/** `--cpu-memory-mib`: the CPU backend's WebAssembly memories at most this size (1..4096 MiB), so a small model takes several. */
function cpuMemoryMiB(values: Map<string, string>): number {
  const mib = positiveIntFlag(values, '--cpu-memory-mib', 4096);
  if (mib > 4096) throw new UsageError(`--cpu-memory-mib: at most 4096 (a wasm32 memory), got ${mib}`);
  return mib;
}

/** `hearth bench` (`npm run bench`): load time, TTFT, prefill and decode speed beside llama.cpp and wllama. */
async function benchModels(args: string[]): Promise<number> {
  const { positional, values, switches } = parseFlags(args, MODEL_FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const preset = switches.has('--full') ? FULL : QUICK;
  const contexts = (values.get('--contexts') ?? preset.contexts).split(',').map((c) => {
    const n = Number(c);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--contexts: bad context '${c}'`);
    return n;
  });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const { runBench } = await import('../../bench/run.ts');
  await runBench({
    models: list(values, '--models', preset.models, MODEL_SHAPES.map((m) => m.id)),
    quants: list(values, '--quants', preset.quants, BENCH_QUANTS),
    runtimes: list(values, '--runtimes', preset.runtimes, RUNTIMES) as RuntimeId[],
    workload: {
      promptTokens: positiveIntFlag(values, '--prompt', preset.prompt),
      contexts,
      decodeTokens: positiveIntFlag(values, '--decode', preset.decode),
      threads: positiveIntFlag(values, '--threads', 1),
      ...(values.has('--cpu-memory-mib') ? { cpuMemoryMiB: cpuMemoryMiB(values) } : {}),
    },
    runs: positiveIntFlag(values, '--runs', preset.runs),
    rounds: positiveIntFlag(values, '--rounds', 1),
    cacheDir: values.get('--cache') ?? join('.cache', 'bench-models'),
    out: values.get('--out') ?? join('bench-results', `${stamp}.json`),
    log: (line) => process.stdout.write(line + '\n'),
  });
  return 0;
}

const CONSTRAINED_FLAGS = { values: ['--backend', '--threads', '--decode', '--runs', '--embd', '--layers'] } as const;

/** `hearth bench constrained`: decode tok/s without a constraint, under json_object and a nested json_schema. */
async function benchConstrainedSuite(args: string[]): Promise<number> {
  const { positional, values } = parseFlags(args, CONSTRAINED_FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const backend = values.get('--backend') ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'webgpu') throw new UsageError(`bad --backend ${backend}: expected cpu or webgpu`);
  const { benchConstrained } = await import('../../bench/constrained.ts');
  await benchConstrained({
    backend,
    gpu: backend === 'webgpu' ? nodeGpu() : undefined,
    threads: positiveIntFlag(values, '--threads', 1),
    decodeTokens: positiveIntFlag(values, '--decode', 64),
    runs: positiveIntFlag(values, '--runs', 3),
    embd: positiveIntFlag(values, '--embd', 256),
    layers: positiveIntFlag(values, '--layers', 2),
    log: (line) => process.stdout.write(line + '\n'),
  });
  return 0;
}

const SUITES: Record<string, (args: string[]) => Promise<number>> = { kernels: benchKernels, ssm: benchSsmSuite, models: benchModels, constrained: benchConstrainedSuite };

export const benchCommand: CliCommand = {
  usage: 'bench [--full] [--models M,..] [--quants q4_k_m,q8_0,f16] [--runtimes R,..] [--prompt N]\n' +
    '              [--contexts 128,2048] [--decode N] [--runs N] [--rounds N] [--threads N] [--cpu-memory-mib N] [--out FILE] [--cache DIR]\n' +
    '                           model benchmark: load, TTFT, prefill and decode tok/s beside llama.cpp and wllama\n' +
    `                           (models: ${MODEL_SHAPES.map((m) => m.id).join(', ')}; runtimes: ${RUNTIMES.join(', ')})\n` +
    '  hearth bench kernels [--types Q4_K,Q8_0] [--shapes 4096x4096] [--prefill 512] [--matvec workgroup|subgroup|invocation] [--json FILE]\n' +
    '                           matmul kernel GB/s and GFLOP/s beside the copy bandwidth\n' +
    '  hearth bench ssm [--shapes 24x64x128x1] [--tokens 1,16,64,512] [--seconds 1] [--wall] [--json FILE]\n' +
    '                           state-space kernels: the scan sequential vs chunked, the convolution, per token count\n' +
    '  hearth bench constrained [--backend cpu|webgpu] [--threads N] [--decode N] [--runs N] [--embd N] [--layers N]\n' +
    '                           decode tok/s unconstrained vs json_object vs a nested json_schema (Qwen2 vocabulary)',
  // The constrained bench runs on the CPU unless asked for WebGPU.
  needsGpu: (args) => args[0] !== 'constrained' || backendArg(args) === 'webgpu',
  async run(args) {
    const [suite, ...rest] = args;
    // No suite (or flags first): the model benchmark.
    if (suite === undefined || suite.startsWith('-')) return benchModels(args);
    const run = SUITES[suite];
    if (!run) throw new UsageError(`unknown bench suite '${suite}' (${Object.keys(SUITES).join(', ')})`);
    return run(rest);
  },
};
