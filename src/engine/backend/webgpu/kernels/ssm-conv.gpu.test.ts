import { describe, expect, it } from 'vitest';
import { freshSeed, randomFloats } from '../../../../testing/gpu.ts';
import { normalizedMse } from '../../../../testing/compare.ts';
import { causalConvStep, silu } from '../../../../testing/reference-recurrent.ts';
import { gatherRows, spreadRows, useOpHarness } from '../../../../testing/op-harness.ts';
import { encodeSsmConv } from './ssm-conv.ts';

const h = useOpHarness();

interface Case {
  channels: number;
  kernel: number;
  /** Tokens per call; the state carries across calls. */
  calls: number[];
  bias: boolean;
  silu: boolean;
  /** Extra floats per row of x and out (a column slice of a wider row), and their first column. */
  pad: number;
  offset: number;
  /** Floats before the state region in its buffer. */
  stateOffset: number;
}

const cases: Case[] = [
  { channels: 1, kernel: 1, calls: [1, 3], bias: false, silu: false, pad: 0, offset: 0, stateOffset: 0 },
  { channels: 37, kernel: 4, calls: [1, 1, 2, 1], bias: true, silu: true, pad: 5, offset: 3, stateOffset: 11 },
  { channels: 300, kernel: 3, calls: [9, 1, 2, 17], bias: false, silu: false, pad: 0, offset: 0, stateOffset: 0 },
  { channels: 513, kernel: 4, calls: [2, 40, 1], bias: true, silu: true, pad: 77, offset: 64, stateOffset: 5 },
  { channels: 64, kernel: 6, calls: [3, 5, 4], bias: true, silu: false, pad: 1, offset: 1, stateOffset: 0 },
];

describe('ssm_conv.wgsl: causal depthwise convolution with a rolling state', () => {
  it.each(cases)('channels=$channels kernel=$kernel calls=$calls bias=$bias silu=$silu pad=$pad', async (c) => {
    const seed = freshSeed(`ssm_conv ${JSON.stringify(c)}`);
    const C = c.channels;
    const K = c.kernel;
    const weight = randomFloats(C * K, seed);
    const bias = randomFloats(C, seed + 1);
    const initial = randomFloats((K - 1) * C, seed + 2);
    const refState = Float64Array.from(initial);
    const stateBuffer = h.upload(spreadRows(initial, Math.max(1, (K - 1) * C), 1, Math.max(1, (K - 1) * C) + 3, c.stateOffset));
    const weightBuffer = h.upload(weight);
    const biasBuffer = h.upload(bias);
    const stride = C + c.pad;
    let call = 0;
    for (const tokens of c.calls) {
      const x = randomFloats(tokens * C, seed + 10 + call++).map((v) => v * 3);
      const out = h.poisoned(c.offset + tokens * stride);
      encodeSsmConv(h.recorder, h.kernels, {
        x: { buffer: h.upload(spreadRows(x, C, tokens, stride, c.offset)), stride, offset: c.offset },
        out: { buffer: out, stride, offset: c.offset },
        tokens,
        channels: C,
        kernel: K,
        weight: weightBuffer,
        ...(c.bias ? { bias: biasBuffer } : {}),
        silu: c.silu,
        state: stateBuffer,
        stateOffset: c.stateOffset,
        dummy: h.dummy,
      });
      await h.submit();
      const expected = new Float64Array(tokens * C);
      for (let t = 0; t < tokens; t++) {
        const step = causalConvStep(refState, weight, K, C, Float64Array.from(x), t * C);
        for (let ch = 0; ch < C; ch++) {
          const v = step[ch]! + (c.bias ? bias[ch]! : 0);
          expected[t * C + ch] = c.silu ? silu(v) : v;
        }
      }
      const actual = gatherRows(await h.readF32(out, c.offset + tokens * stride), C, tokens, stride, c.offset);
      expect(actual.every(Number.isFinite)).toBe(true);
      expect(normalizedMse(actual, expected)).toBeLessThanOrEqual(1e-10);
    }
    if (K > 1) {
      const state = await h.readF32(stateBuffer, (K - 1) * C, c.stateOffset);
      // The state is a copy of inputs: exact.
      expect(Array.from(state)).toEqual(Array.from(refState, Math.fround));
      const around = await h.readF32(stateBuffer, c.stateOffset + (K - 1) * C + 3);
      expect(around.subarray(0, c.stateOffset).every(Number.isNaN)).toBe(true);
      expect(around.subarray(c.stateOffset + (K - 1) * C).every(Number.isNaN)).toBe(true);
    }
  });

  it('refuses the state in the buffer it reads or writes', () => {
    const buffer = h.poisoned(64);
    const args = { tokens: 1, channels: 4, kernel: 3, weight: h.dummy, silu: false, stateOffset: 0, dummy: h.dummy };
    expect(() => encodeSsmConv(h.recorder, h.kernels, { ...args, x: { buffer }, out: { buffer: h.poisoned(4) }, state: buffer })).toThrow(/different buffers/);
  });
});
