/**
 * State-space hybrids (mamba2, lfm2, granitehybrid) on the WebGPU backend: tests/model/hybrid-harness.ts
 * against llama.cpp and the float64 references. Figures are "[hybrid webgpu]" lines.
 */
import { afterAll, beforeAll } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { describeHybridForward, HYBRID_CASES } from './hybrid-harness.ts';

let gpu: TestGpu;
let kernels: KernelCache;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
});
afterAll(() => gpu?.destroy());

// SwiftShader is slow: every architecture and mix but two of the CPU test's cases (one of each
// pair of F32 mamba2 and lfm2 shapes, and the embd-256 lfm2 Q8_0), which the CPU test runs.
const GPU_CASES = HYBRID_CASES.filter((c) => !['mamba2 F32, 8 heads x 16, state 16, 1 group', 'lfm2 F32, attention at 2, conv 4, tied', 'lfm2 Q8_0'].includes(c.label));
describeHybridForward('webgpu', async () => new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths }), GPU_CASES);
