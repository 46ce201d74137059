import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const HEARTH = ['bin/hearth.js'];

describe('hearth CLI', () => {
  it('probe prints the adapter, its features and limits as JSON', () => {
    const out = execFileSync(process.execPath, [...HEARTH, 'probe'], { encoding: 'utf8', timeout: 60_000 });
    const report = JSON.parse(out);
    expect(report.available).toBe(true);
    expect(typeof report.adapter.vendor).toBe('string');
    expect(typeof report.adapter.isFallbackAdapter).toBe('boolean');
    expect(report.adapter.features).toEqual([...report.adapter.features].sort());
    expect(report.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    expect(report.adapter.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
    expect(report.kernelPaths.f16).toBe(report.adapter.features.includes('shader-f16'));
  });

  it('rejects an unknown command with exit code 2 and the usage', () => {
    const result = spawnSync(process.execPath, [...HEARTH, 'frobnicate'], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown command 'frobnicate'");
    expect(result.stderr).toContain('hearth probe');
  });

  it('prints the package version', () => {
    const out = execFileSync(process.execPath, [...HEARTH, '--version'], { encoding: 'utf8' });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
