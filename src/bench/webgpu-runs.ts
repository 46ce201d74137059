/**
 * The runs of this engine on a WebGPU device, the same under Node (Dawn) and in the page
 * (Chromium): a fresh backend per run on one device, whose buffers are tracked for the peak memory
 * and whose objects, submits and dispatches are counted for decode's host costs.
 */
import type { GpuContext } from '../engine/backend/webgpu/device.ts';
import { WebGpuBackend } from '../engine/backend/webgpu/backend.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import { describeSample } from './describe.ts';
import { trackGpuMemory } from './gpu-memory.ts';
import { countGpuObjects } from './gpu-objects.ts';
import { measureOurs } from './measure.ts';
import type { RunSample, Workload } from './types.ts';

export interface WebGpuRunsOptions {
  context: GpuContext;
  source: RangedSource;
  workload: Workload;
  runs: number;
  /** JS heap in use now, where the platform tells. */
  heapBytes: () => number | undefined;
  log: (line: string) => void;
}

export async function measureWebGpuRuns(o: WebGpuRunsOptions): Promise<RunSample[]> {
  const { device, kernelPaths } = o.context;
  const memory = trackGpuMemory(device);
  const objects = countGpuObjects(device);
  const samples: RunSample[] = [];
  for (let run = 0; run < o.runs; run++) {
    memory.resetPeak();
    let backend: WebGpuBackend | undefined;
    const sample = await measureOurs({
      workload: o.workload,
      run,
      source: o.source,
      backend: async () => (backend = new WebGpuBackend(device, { kernelPaths })),
      deviceBytes: () => memory.peakBytes,
      heapBytes: o.heapBytes,
      stepCounts: () => {
        const c = objects.snapshot();
        return { dispatches: backend?.counters.dispatches ?? 0, submits: c.submits, objects: c.objects };
      },
    });
    o.log(`    run ${run + 1}: ${describeSample(sample)}`);
    samples.push(sample);
  }
  return samples;
}
