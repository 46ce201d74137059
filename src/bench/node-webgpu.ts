/** Runner: this engine on WebGPU in Node (Dawn; SwiftShader where there is no GPU driver). */
import { createGpuContext } from '../engine/backend/webgpu/device.ts';
import { nodeFileSource } from '../node/file-source.ts';
import { nodeGpu, nodeProbeOptions } from '../node/webgpu.ts';
import { gpuCopyBandwidth } from './bandwidth.ts';
import { adapterName } from './describe.ts';
import type { Bandwidth, RunSample, Workload } from './types.ts';
import { measureWebGpuRuns } from './webgpu-runs.ts';

export interface NodeWebGpuResult {
  adapter: string;
  bandwidth: Bandwidth;
  samples: RunSample[];
}

export async function runNodeWebGpu(path: string, workload: Workload, runs: number, log: (line: string) => void): Promise<NodeWebGpuResult> {
  const context = await createGpuContext(nodeGpu(), nodeProbeOptions());
  const source = await nodeFileSource(path);
  try {
    const bandwidth = await gpuCopyBandwidth(context.device);
    const samples = await measureWebGpuRuns({ context, source, workload, runs, heapBytes: () => process.memoryUsage().heapUsed, log });
    return { adapter: adapterName(context.adapter), bandwidth, samples };
  } finally {
    await source.close();
    context.destroy();
  }
}
