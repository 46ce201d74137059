/** Runner: this engine on WebGPU in Node (Dawn; SwiftShader where there is no GPU driver). */
import { createGpuContext } from '../engine/backend/webgpu/device.ts';
import { WebGpuBackend } from '../engine/backend/webgpu/backend.ts';
import { nodeFileSource } from '../node/file-source.ts';
import { nodeGpu, nodeProbeOptions } from '../node/webgpu.ts';
import { gpuCopyBandwidth } from './bandwidth.ts';
import { adapterName, describeSample } from './describe.ts';
import { trackGpuMemory } from './gpu-memory.ts';
import { measureOurs } from './measure.ts';
import type { Bandwidth, RunSample, Workload } from './types.ts';

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
    const memory = trackGpuMemory(context.device);
    const samples: RunSample[] = [];
    for (let run = 0; run < runs; run++) {
      memory.resetPeak();
      const sample = await measureOurs({
        workload,
        run,
        source,
        backend: async () => new WebGpuBackend(context.device, { kernelPaths: context.kernelPaths }),
        deviceBytes: () => memory.peakBytes,
        heapBytes: () => process.memoryUsage().heapUsed,
      });
      log(`    run ${run + 1}: ${describeSample(sample)}`);
      samples.push(sample);
    }
    return { adapter: adapterName(context.adapter), bandwidth, samples };
  } finally {
    await source.close();
    context.destroy();
  }
}
