import { describe, expect, it } from 'vitest';
import { parseBindings } from './bindings.ts';

describe('WGSL binding declarations', () => {
  it('reads kind and name, in binding order, ignoring comments', () => {
    const wgsl = `
      // @group(0) @binding(9) var<storage, read> commented: array<f32>;
      @group(0) @binding(2) var<storage, read_write> out: array<f32>;
      @group(0) @binding(0) var<uniform> params: Params;
      @group(0)
      @binding(1) var<storage, read> weights: array<u32>;
      @group(0) @binding(3) var<storage> implicit_read: array<f32>;
    `;
    expect(parseBindings(wgsl)).toEqual([
      { binding: 0, name: 'params', kind: 'uniform' },
      { binding: 1, name: 'weights', kind: 'read-only-storage' },
      { binding: 2, name: 'out', kind: 'storage' },
      { binding: 3, name: 'implicit_read', kind: 'read-only-storage' },
    ]);
  });

  it('rejects a binding declared twice', () => {
    const wgsl = `@group(0) @binding(0) var<uniform> a: P;\n@group(0) @binding(0) var<uniform> b: P;`;
    expect(() => parseBindings(wgsl)).toThrow(/declared twice/);
  });
});
