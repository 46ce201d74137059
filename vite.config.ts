/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { VitePWA } from 'vite-plugin-pwa';
import { softwareVulkanEnv } from './src/node/vulkan-env.ts';

// GPU tests run WGSL on Dawn. Without a GPU driver, point it at Chromium's SwiftShader; this must
// happen here, before Vitest forks its workers, because the dynamic linker reads LD_LIBRARY_PATH
// only at process start.
Object.assign(process.env, softwareVulkanEnv() ?? {});

/**
 * Cross-origin isolation, which SharedArrayBuffer and so the CPU backend's worker threads need.
 * COEP `credentialless` rather than `require-corp`: model downloads from hubs (Hugging Face) are
 * CORS fetches, which either allows, but `credentialless` also lets no-cors subresources without a
 * Cross-Origin-Resource-Policy header load (without cookies) instead of being blocked. A static
 * host must send the same two headers for threads; without them the CPU backend runs on one thread
 * and the Device page says why. The PWA's generated Workbox service worker answers from its cache
 * with the headers the host sent and has no option to add others, so a host without them would
 * need a coi-serviceworker-style service worker (not done).
 */
const CROSS_ORIGIN_ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'credentialless',
};

/**
 * One config for the app build, the dev server and the test runner.
 * Tests are split into projects so each layer can run on its own:
 * - unit: pure TypeScript in Node, fast, no GPU.
 * - gpu:  WGSL executed on real WebGPU through Dawn (the npm `webgpu` package).
 * The browser layer (e2e/) runs under Playwright, not Vitest.
 */
export default defineConfig({
  plugins: [
    react(),
    // The service worker precaches the app shell (HTML, JS, CSS, WASM, icons, the catalog), so after
    // the first visit the app opens with the network off. Model weights are not precached: they
    // live in the engine's IndexedDB store. `prompt`: a new version waits for the user's reload.
    VitePWA({
      registerType: 'prompt',
      injectRegister: false,
      manifest: false,
      includeAssets: ['icon.svg', 'icons/*', 'models.json'],
      workbox: {
        // woff2: KaTeX's math fonts, bundled from node_modules. Its CSS also names .woff and .ttf
        // fallbacks, which no browser that runs this app picks, so only woff2 is precached.
        globPatterns: ['**/*.{js,css,html,svg,png,webmanifest,json,wasm,woff2}'],
        globIgnores: ['**/*.map', 'models/**'],
        // The engine worker bundle and the WASM kernels are larger than Workbox's 2 MiB default.
        maximumFileSizeToCacheInBytes: 16 * 1024 * 1024,
        navigateFallback: 'index.html',
        navigateFallbackDenylist: [/^\/models\//],
        cleanupOutdatedCaches: true,
      },
    }),
  ],
  // keepNames: engine errors take their stable `name` from their class (`new.target.name`), which
  // the minifier would otherwise rename; the UI switches on those names.
  worker: { format: 'es', rolldownOptions: { output: { keepNames: true } } },
  build: {
    target: 'es2022',
    sourcemap: true,
    // Fonts (KaTeX's) stay files: the page's CSP allows fonts from 'self' only, not data: URLs,
    // and the service worker precaches them for offline use.
    assetsInlineLimit: (file: string) => (/\.(woff2?|ttf)$/.test(file) ? false : undefined),
  },
  preview: { host: '127.0.0.1', port: 4173, headers: CROSS_ORIGIN_ISOLATION },
  server: { host: '127.0.0.1', port: 5173, headers: CROSS_ORIGIN_ISOLATION },
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
