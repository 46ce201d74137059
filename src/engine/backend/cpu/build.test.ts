/**
 * generated/kernels-wasm.ts is committed (so Vite, tsc and the tests need no build step) and must
 * be what build.mjs makes from assembly/kernels.ts today: rebuild and compare.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

it('generated/kernels-wasm.ts is up to date with assembly/kernels.ts', () => {
  const script = fileURLToPath(new URL('./build.mjs', import.meta.url));
  let output = '';
  try {
    output = execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`build.mjs --check failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
  expect(output).toContain('up to date');
}, 120_000);
