/**
 * The backend a CLI command runs on, from its `--backend webgpu|cpu` and `--threads N` flags.
 * WebGPU (Dawn) is imported only when chosen, so `--backend cpu` loads no native GPU module.
 */
import type { Backend } from '../../engine/backend/ops.ts';
import { UsageError } from '../command.ts';

export interface CliBackend {
  backend: Backend;
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

export async function cliBackend(values: Map<string, string>): Promise<CliBackend> {
  const { name, threads } = backendFlags(values);
  if (name === 'cpu') {
    const { CpuBackend } = await import('../../engine/backend/cpu/backend.ts');
    const backend = await CpuBackend.create({ threads });
    if (backend.threadingFallback) process.stderr.write(`cpu: single-threaded: ${backend.threadingFallback}\n`);
    return { backend, close: () => undefined };
  }
  const [{ WebGpuBackend }, { createGpuContext }, { nodeGpu, nodeProbeOptions }] = await Promise.all([
    import('../../engine/backend/webgpu/backend.ts'),
    import('../../engine/backend/webgpu/device.ts'),
    import('../../node/webgpu.ts'),
  ]);
  const context = await createGpuContext(nodeGpu(), nodeProbeOptions());
  return { backend: new WebGpuBackend(context.device, { kernelPaths: context.kernelPaths }), close: () => context.destroy() };
}
