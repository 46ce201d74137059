import { describe, expect, it } from 'vitest';
import { adapterName, isSoftwareAdapter, kernelPathsFor, type AdapterReport } from './probe.ts';

function adapter(fields: Partial<AdapterReport>): AdapterReport {
  return {
    vendor: '',
    architecture: '',
    device: '',
    description: '',
    isFallbackAdapter: false,
    features: [],
    limits: {} as AdapterReport['limits'],
    ...fields,
  };
}

const swiftshader = adapter({ vendor: 'google', architecture: 'swiftshader', device: 'swiftshader-device-subzero-', description: 'SwiftShader driver 5.0.0' });
const nvidia = adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA: 560.35.03' });

describe('software adapters', () => {
  it('recognizes emulated GPUs by the fallback flag or by name', () => {
    expect(isSoftwareAdapter(swiftshader)).toBe(true);
    expect(isSoftwareAdapter(adapter({ isFallbackAdapter: true, vendor: 'someone' }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 17.0.6, 256 bits)' }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' }))).toBe(true);
    expect(isSoftwareAdapter(nvidia)).toBe(false);
    expect(isSoftwareAdapter(adapter({ vendor: 'intel', architecture: 'gen-12lp', description: 'Intel(R) Iris(R) Xe Graphics' }))).toBe(false);
  });
});

describe('kernel paths', () => {
  it('runs matvec a row per invocation on software adapters, by subgroups where the device has them', () => {
    expect(kernelPathsFor(['subgroups'], swiftshader)).toEqual({ f16: false, subgroups: true, software: true, matvec: 'invocation' });
    expect(kernelPathsFor(['shader-f16', 'subgroups'], nvidia)).toEqual({ f16: true, subgroups: true, software: false, matvec: 'subgroup' });
    expect(kernelPathsFor([], nvidia)).toEqual({ f16: false, subgroups: false, software: false, matvec: 'workgroup' });
  });
});

describe('adapter names', () => {
  it('names vendor and architecture, with detail also device and driver, and nothing when unknown', () => {
    expect(adapterName(swiftshader)).toBe('google swiftshader');
    expect(adapterName(swiftshader, true)).toBe('google swiftshader swiftshader-device-subzero- SwiftShader driver 5.0.0');
    expect(adapterName(adapter({ description: 'only a driver' }))).toBe('');
    expect(adapterName(adapter({ description: 'only a driver' }), true)).toBe('only a driver');
  });
});
