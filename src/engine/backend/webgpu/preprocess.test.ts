import { describe, expect, it } from 'vitest';
import { preprocessWgsl } from './preprocess.ts';

const SOURCES = {
  'main.wgsl': 'fn main() {}\n//#include weights\n  //#include "common.wgsl"\n',
  'common.wgsl': 'const C = 1;',
  'weights_a.wgsl': 'fn w() -> f32 { return 1.0; }',
  'loop_a.wgsl': '//#include "loop_b.wgsl"',
  'loop_b.wgsl': '//#include "loop_a.wgsl"',
};

describe('WGSL preprocessor', () => {
  it('resolves files and per-variant slots', () => {
    const out = preprocessWgsl('main.wgsl', SOURCES, { weights: 'weights_a.wgsl' });
    expect(out).toContain('fn w() -> f32 { return 1.0; }');
    expect(out).toContain('const C = 1;');
    expect(out).not.toContain('#include');
  });

  it('fails on an unfilled slot, an unknown file and a cycle', () => {
    expect(() => preprocessWgsl('main.wgsl', SOURCES)).toThrow(/slot 'weights'/);
    expect(() => preprocessWgsl('nope.wgsl', SOURCES)).toThrow(/not registered/);
    expect(() => preprocessWgsl('loop_a.wgsl', SOURCES)).toThrow(/cycle/);
  });
});
