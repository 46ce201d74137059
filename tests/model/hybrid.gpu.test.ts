/**
 * State-space hybrids (mamba2, lfm2, granitehybrid) on the WebGPU backend: tests/model/hybrid-harness.ts
 * against llama.cpp and the float64 references. Figures are "[hybrid webgpu]" lines.
 */
import { afterAll, beforeAll } from 'vitest';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/backend.ts';
import { KernelCache } from '../../src/engine/backend/webgpu/kernel.ts';
import { acquireTestGpu, type TestGpu } from '../../src/testing/gpu.ts';
import { describeHybridForward } from './hybrid-harness.ts';

let gpu: TestGpu;
let kernels: KernelCache;
beforeAll(async () => {
  gpu = await acquireTestGpu();
  kernels = new KernelCache(gpu.device);
});
afterAll(() => gpu?.destroy());

describeHybridForward('webgpu', async () => new WebGpuBackend(gpu.device, { kernels, kernelPaths: gpu.kernelPaths }));
