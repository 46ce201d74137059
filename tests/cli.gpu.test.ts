import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('serve stops, child and all, on a SIGTERM sent to the parent alone (the software-Vulkan re-launch forwards it)', async () => {
    // HEARTH_SOFTWARE_GPU=1 makes the CLI re-launch itself where SwiftShader is installed.
    const cli = spawn(process.execPath, [...HEARTH, 'serve', 'public/models/hearth-demo-kjv-q8_0.gguf', '--port', '0', '--backend', 'webgpu'], {
      env: { ...process.env, HEARTH_SOFTWARE_GPU: '1' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    let err = '';
    cli.stderr.setEncoding('utf8');
    const url = await new Promise<string>((resolve, reject) => {
      cli.stderr.on('data', (text: string) => {
        err += text;
        const m = /serving '[^']+' at (\S+)\/v1/.exec(err);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`serve exited early: ${err}`)));
    });
    expect((await fetch(`${url}/health`)).status).toBe(200);
    cli.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err).toContain('stopping: ending requests in flight');
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  }, 120_000);

  it('prints the package version', () => {
    const out = execFileSync(process.execPath, [...HEARTH, '--version'], { encoding: 'utf8' });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('bench kernels measures matvec and matmul and writes a JSON report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
    try {
      const json = join(dir, 'bench.json');
      const args = ['bench', 'kernels', '--types', 'Q8_0,Q4_K', '--shapes', '64x256', '--prefill', '8', '--seconds', '0.05', '--json', json];
      execFileSync(process.execPath, [...HEARTH, ...args], { encoding: 'utf8', timeout: 120_000 });
      const report = JSON.parse(readFileSync(json, 'utf8'));
      expect(report.copyGbPerS).toBeGreaterThan(0);
      const ops = report.entries.map((e: { type: string; op: string }) => `${e.type} ${e.op}`).sort();
      expect(ops).toEqual(['Q4_K matmul', 'Q4_K matvec', 'Q8_0 matmul', 'Q8_0 matvec']);
      for (const entry of report.entries) {
        expect(entry.ms).toBeGreaterThan(0);
        expect(entry.gbPerS).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bench ssm times the conv and both scans and writes a JSON report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-ssm-'));
    try {
      const json = join(dir, 'ssm.json');
      const args = ['bench', 'ssm', '--shapes', '2x4x8x1', '--tokens', '1,20', '--seconds', '0.05', '--json', json];
      execFileSync(process.execPath, [...HEARTH, ...args], { encoding: 'utf8', timeout: 120_000 });
      const report = JSON.parse(readFileSync(json, 'utf8'));
      const runs = report.entries.map((e: { kernel: string; tokens: number }) => `${e.kernel} ${e.tokens}`).sort();
      expect(runs).toEqual(['conv 1', 'conv 20', 'scan-chunked 20', 'scan-sequential 1', 'scan-sequential 20']);
      for (const entry of report.entries) expect(entry.ms).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
