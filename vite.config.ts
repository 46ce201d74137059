/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { softwareVulkanEnv } from './src/node/vulkan-env.ts';

// GPU tests run WGSL on Dawn. Without a GPU driver, point it at Chromium's SwiftShader; this must
// happen here, before Vitest forks its workers, because the dynamic linker reads LD_LIBRARY_PATH
// only at process start.
Object.assign(process.env, softwareVulkanEnv() ?? {});

/**
 * One config for the app build, the dev server and the test runner.
 * Tests are split into projects so each layer can run on its own:
 * - unit: pure TypeScript in Node, fast, no GPU.
 * - gpu:  WGSL executed on real WebGPU through Dawn (the npm `webgpu` package).
 * The browser layer (e2e/) runs under Playwright, not Vitest.
 */
export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
  preview: { host: '127.0.0.1', port: 4173 },
  server: { host: '127.0.0.1', port: 5173 },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
          exclude: ['**/*.gpu.test.ts', 'node_modules/**'],
          environment: 'node',
        },
      },
      {
        extends: true,
        test: {
          name: 'gpu',
          include: ['src/**/*.gpu.test.ts', 'tests/**/*.gpu.test.ts'],
          environment: 'node',
          // One Dawn device per file; SwiftShader is CPU-bound, so run files one at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
