/**
 * phi3 on the GPU against the float64 reference and llama.cpp (see forward-harness.ts): fused qkv
 * and gate-up, partial rotary, long/short rope factors. llama.cpp's phi3 loader needs phi3's special
 * tokens, so these models carry llama.cpp's phi-3 vocabulary (32064 tokens), and the 32064-row
 * output projection makes every step seconds on SwiftShader: decode and greedy generation run on
 * the other architectures (forward.gpu.test.ts), and here mixed steps, which include single-token
 * decode steps through the same fused-qkv paths, run on F32.
 */
import { expect } from 'vitest';
import { DIMS, forwardSuite, type ArchCase } from './forward-harness.ts';

const PHI3: ArchCase = {
  label: 'phi3',
  options: { arch: 'phi3', ...DIMS },
  check: (m) => expect([m.config.tensors.fusedQkv, m.config.fusedGateUp]).toEqual([true, true]),
};

const VARIANTS: ArchCase[] = [
  { label: 'phi3 longrope (long factors, n_ctx 8192)', options: { arch: 'phi3', ...DIMS, longRope: true }, nCtx: 8192, check: (m) => expect(m.config.rope.factors).toBe('long-short') },
  { label: 'phi3 longrope (short factors, n_ctx 256)', options: { arch: 'phi3', ...DIMS, longRope: true }, nCtx: 256 },
];

forwardSuite('GPU forward vs the float64 reference and llama.cpp: phi3', [{ arch: PHI3, mixed: ['F32'], decode: [] }], VARIANTS);
