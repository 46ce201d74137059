import { defineConfig } from '@playwright/test';

/**
 * Browser tests drive the system's Chromium (Debian's /usr/bin/chromium; never a downloaded
 * browser) against the production build served by `vite preview` on localhost. WebGPU runs on
 * Chromium's bundled SwiftShader where there is no GPU.
 */
const executablePath = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';
const PORT = Number(process.env.HEARTH_E2E_PORT ?? 4317);

/** Flags for running as root on a closed network (see shared/DESIGN.md). */
const BASE_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--no-first-run',
];

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results/e2e',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  reporter: [['list'], ['json', { outputFile: 'test-results/e2e.json' }]],
  use: {
    baseURL: `http://localhost:${PORT}`,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'webgpu',
      testIgnore: [/no-webgpu\.spec\.ts/, /cpu-chat\.spec\.ts/],
      use: { launchOptions: { executablePath, args: [...BASE_ARGS, '--enable-unsafe-webgpu'] } },
    },
    {
      name: 'no-webgpu',
      testMatch: [/no-webgpu\.spec\.ts/, /cpu-chat\.spec\.ts/],
      use: { launchOptions: { executablePath, args: [...BASE_ARGS, '--disable-features=WebGPU,Vulkan', '--disable-gpu'] } },
    },
  ],
  webServer: {
    command: `npx vite preview --strictPort --port ${PORT} --host localhost`,
    url: `http://localhost:${PORT}`,
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
