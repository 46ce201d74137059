import { describe, expect, it } from 'vitest';
import { packUniforms, uniformLayout } from './uniforms.ts';

const SHADER = `
// a comment mentioning struct Params { nope: f32 }
struct Params {
  n: u32,
  scale: f32,   // trailing comment
  offset: vec2<u32>,
  color: vec3f,
  tail: i32,
}
@group(0) @binding(0) var<uniform> params: Params;
`;

describe('uniform layout from WGSL', () => {
  it('follows WGSL alignment rules', () => {
    const layout = uniformLayout(SHADER, 'Params');
    expect(layout.fields.map((f) => [f.name, f.offset])).toEqual([
      ['n', 0],
      ['scale', 4],
      ['offset', 8],
      ['color', 16],
      ['tail', 28],
    ]);
    expect(layout.byteLength).toBe(32);
  });

  it('packs values by name, little-endian', () => {
    const layout = uniformLayout(SHADER, 'Params');
    const bytes = packUniforms(layout, { n: 7, scale: 0.5, offset: [1, 2], color: [1, 2, 3], tail: -3 });
    const view = new DataView(bytes);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getFloat32(4, true)).toBe(0.5);
    expect(view.getUint32(12, true)).toBe(2);
    expect(view.getFloat32(24, true)).toBe(3);
    expect(view.getInt32(28, true)).toBe(-3);
  });

  it('rejects missing, unknown and out-of-range fields', () => {
    const layout = uniformLayout(SHADER, 'Params');
    const ok = { n: 1, scale: 1, offset: [0, 0], color: [0, 0, 0], tail: 0 };
    expect(() => packUniforms(layout, { ...ok, extra: 1 })).toThrow(/no field 'extra'/);
    const { n: _n, ...missing } = ok;
    expect(() => packUniforms(layout, missing)).toThrow(/missing value for 'n'/);
    expect(() => packUniforms(layout, { ...ok, n: -1 })).toThrow(/not a u32/);
    expect(() => packUniforms(layout, { ...ok, offset: [1] })).toThrow(/expected 2 components/);
  });

  it('rejects an absent struct or an unsupported type', () => {
    expect(() => uniformLayout(SHADER, 'Missing')).toThrow(/not found/);
    expect(() => uniformLayout('struct P { m: mat4x4<f32> }', 'P')).toThrow(/unsupported/);
  });
});
