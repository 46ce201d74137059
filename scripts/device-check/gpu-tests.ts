/**
 * The GPU test layer on the device machine: the kernel tests (src/**\/*.gpu.test.ts: every WGSL
 * kernel against its float64 CPU reference) run unchanged through the Vitest shim, one file at a
 * time. The generated bundle entry (scripts/device-check/bundle.mjs) passes the files as lazy
 * imports so each file's tests are collected and run before the next file loads. The tests under
 * tests/ are left out: they need llama.cpp's reference binary (built with a compiler) and fixtures.
 */
import { writeFileSync } from 'node:fs';
import { runCollected, type TestOutcome } from './vitest-shim.ts';

export interface GpuTestReport {
  files: Array<{ file: string; passed: number; failed: number; skipped: number; ms: number; error?: string }>;
  passed: number;
  failed: number;
  skipped: number;
  failures: TestOutcome[];
  ms: number;
}

export async function runGpuTests(files: ReadonlyArray<readonly [string, () => Promise<unknown>]>, outJson: string | undefined): Promise<number> {
  const only = process.env.HEARTH_GPU_TESTS_FILTER;
  const report: GpuTestReport = { files: [], passed: 0, failed: 0, skipped: 0, failures: [], ms: 0 };
  const t0 = performance.now();
  const save = () => {
    report.ms = performance.now() - t0;
    if (outJson) writeFileSync(outJson, JSON.stringify(report, null, 2) + '\n');
  };
  for (const [file, load] of files) {
    if (only && !file.includes(only)) continue;
    const f0 = performance.now();
    const entry: GpuTestReport['files'][number] = { file, passed: 0, failed: 0, skipped: 0, ms: 0 };
    report.files.push(entry);
    process.stdout.write(`${file}\n`);
    try {
      await load();
      const outcomes = await runCollected(file, (o) => {
        const mark = o.status === 'pass' ? 'ok  ' : o.status === 'skip' ? 'skip' : 'FAIL';
        process.stdout.write(`  ${mark} ${o.name.slice(file.length + 3)} (${o.ms.toFixed(0)} ms)${o.error ? `\n       ${o.error}` : ''}\n`);
      });
      for (const o of outcomes) {
        if (o.status === 'pass') entry.passed++;
        else if (o.status === 'skip') entry.skipped++;
        else {
          entry.failed++;
          report.failures.push(o);
        }
      }
    } catch (error) {
      entry.failed++;
      entry.error = `${(error as Error).name}: ${(error as Error).message}`;
      report.failures.push({ name: file, status: 'fail', ms: 0, error: entry.error });
      process.stdout.write(`  FAIL loading the file: ${entry.error}\n`);
    }
    entry.ms = performance.now() - f0;
    report.passed += entry.passed;
    report.failed += entry.failed;
    report.skipped += entry.skipped;
    save();
  }
  save();
  process.stdout.write(`gpu tests: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped in ${(report.ms / 1000).toFixed(1)} s\n`);
  return report.failed === 0 ? 0 : 1;
}
