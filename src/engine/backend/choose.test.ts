/**
 * chooseBackend: the CPU backend is sized from one plan, made against the CPU's ceiling and handed
 * back for the load; auto falls back to the CPU only when WebGPU cannot start.
 */
import { describe, expect, it } from 'vitest';
import { WebGPUUnavailableError } from '../errors.ts';
import { CPU_PLAN_TARGET, chooseBackend, type BackendRequest } from './choose.ts';

const MiB = 1 << 20;

function request(overrides: Partial<BackendRequest<{ plan: { totalBytes: number } }>> = {}) {
  const targets: unknown[] = [];
  const req: BackendRequest<{ plan: { totalBytes: number } }> = {
    threads: 1,
    gpuDevice: () => Promise.reject(new WebGPUUnavailableError('no adapter.')),
    softwareAdapter: () => Promise.resolve(undefined),
    planForCpu: (target) => {
      targets.push(target);
      return { plan: { totalBytes: 3 * MiB } };
    },
    ...overrides,
  };
  return { req, targets };
}

describe('chooseBackend', () => {
  it('cpu: plans once against the CPU ceiling and sizes the backend from that plan', async () => {
    const { req, targets } = request({ backend: 'cpu' });
    const chosen = await chooseBackend(req);
    try {
      expect(targets).toEqual([CPU_PLAN_TARGET]);
      expect(chosen.kind).toBe('cpu');
      expect(chosen.planned).toEqual({ plan: { totalBytes: 3 * MiB } });
      expect(chosen.backend.limits.memoryBudgetBytes).toBe(3 * MiB);
      expect(chosen.notice).toMatch(/^Running on the CPU, as chosen \(1 thread\)/);
    } finally {
      chosen.backend.destroy();
    }
  });

  it('auto: falls back to the CPU when WebGPU cannot start, and says why', async () => {
    const { req } = request();
    const chosen = await chooseBackend(req);
    try {
      expect(chosen.kind).toBe('cpu');
      expect(chosen.notice).toMatch(/^WebGPU unavailable: no adapter; running on the CPU \(1 thread\)/);
    } finally {
      chosen.backend.destroy();
    }
  });

  it.each([
    ['a software adapter', { softwareAdapter: () => Promise.resolve('swiftshader') }, /^The WebGPU adapter is a software renderer \(swiftshader\), slower than the CPU; running on the CPU \(1 thread\)/],
  ] as const)('auto: takes the CPU for %s without opening a device', async (_, overrides, notice) => {
    let opened = false;
    const { req } = request({
      ...overrides,
      gpuDevice: () => {
        opened = true;
        return Promise.reject(new Error('not to be called'));
      },
    });
    const chosen = await chooseBackend(req);
    try {
      expect(opened).toBe(false);
      expect(chosen.kind).toBe('cpu');
      expect(chosen.notice).toMatch(notice);
    } finally {
      chosen.backend.destroy();
    }
  });

  it('webgpu: a WebGPU failure is thrown, not fallen back from', async () => {
    const { req, targets } = request({ backend: 'webgpu' });
    await expect(chooseBackend(req)).rejects.toThrow(WebGPUUnavailableError);
    expect(targets).toEqual([]);
  });
});
