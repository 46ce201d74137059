/**
 * The backend a CLI command runs on, from its `--backend webgpu|cpu` and `--threads N` flags.
 * WebGPU (Dawn) is imported only when chosen, so `--backend cpu` loads no native GPU module.
 */
import type { Backend } from '../../engine/backend/ops.ts';
import type { CPU_PLAN_TARGET, CpuPlanned } from '../../engine/backend/cpu/backend.ts';
import type { RangedSource } from '../../engine/gguf/source.ts';
import { openGgufModel } from '../../engine/gguf/split.ts';
import { planLoad, type LoadOptions, type PlannedLoad } from '../../engine/model/loader.ts';
import { UsageError } from '../command.ts';

export interface CliBackend<P = never> {
  backend: Backend;
  /** The CPU's: the model as planned to size the backend (its memories); load it as is. */
  planned?: P;
  /** Frees what the model does not own (the GPU context); call after the model is destroyed. */
  close(): void;
}

/** Checks `--backend` and `--threads` (a UsageError when wrong), before any work starts. */
export function backendFlags(values: Map<string, string>): { name: 'webgpu' | 'cpu'; threads: number } {
  const name = values.get('--backend') ?? 'webgpu';
  const rawThreads = values.get('--threads');
  const threads = rawThreads === undefined ? 1 : Number(rawThreads);
  if (name !== 'webgpu' && name !== 'cpu') throw new UsageError(`unknown backend '${name}' (webgpu, cpu)`);
  if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads must be a positive integer, got '${rawThreads}'`);
  if (name === 'webgpu' && rawThreads !== undefined) throw new UsageError('--threads applies to --backend cpu only');
  return { name, threads };
}

/**
 * `planForCpu`: the model planned on the CPU's target (the loader's `planLoad(file, target, ...)`):
 * the CPU backend is then sized from it, over as many WebAssembly memories as its weights need
 * (models over 4 GiB), and the plan comes back to load. Without it, one memory.
 */
export async function cliBackend<P extends CpuPlanned = never>(values: Map<string, string>, planForCpu?: (target: typeof CPU_PLAN_TARGET) => P | Promise<P>): Promise<CliBackend<P>> {
  const { name, threads } = backendFlags(values);
  if (name === 'cpu') {
    const { CpuBackend, CPU_PLAN_TARGET } = await import('../../engine/backend/cpu/backend.ts');
    const planned = planForCpu ? await planForCpu(CPU_PLAN_TARGET) : undefined;
    const backend = planned ? await CpuBackend.createFor(planned, { threads }) : await CpuBackend.create({ threads });
    if (backend.threadingFallback) process.stderr.write(`cpu: single-threaded: ${backend.threadingFallback}\n`);
    return { backend, close: () => undefined, ...(planned ? { planned } : {}) };
  }
  const [{ WebGpuBackend }, { createGpuContext }, { nodeGpu, nodeProbeOptions }] = await Promise.all([
    import('../../engine/backend/webgpu/backend.ts'),
    import('../../engine/backend/webgpu/device.ts'),
    import('../../node/webgpu.ts'),
  ]);
  const context = await createGpuContext(nodeGpu(), nodeProbeOptions());
  return { backend: new WebGpuBackend(context.device, { kernelPaths: context.kernelPaths }), close: () => context.destroy() };
}

/**
 * `cliBackend` for the decoder-only model in `source`, planned at `sizing` on the CPU (so a model
 * over 4 GiB gets several memories): load `made.planned ?? source` with the same `sizing`. Every
 * command that loads a `Model` makes its backend here.
 */
export function cliModelBackend(values: Map<string, string>, source: RangedSource, sizing: Pick<LoadOptions, 'contextLength' | 'batch'>): Promise<CliBackend<PlannedLoad>> {
  return cliBackend(values, async (target) => planLoad(await openGgufModel([source]), target, sizing));
}
