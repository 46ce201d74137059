/**
 * Applies repetition/frequency/presence penalties to a row of logits on the GPU (logit_penalty.wgsl),
 * so sampling with penalties still reads back only a token id. Reference: `applyPenalties` in
 * src/engine/sampling/penalties.ts; the WebGPU backend's `sample` runs it before the sampler.
 */
import type { PenaltyParams } from '../../../sampling/params.ts';
import type { KernelCache } from '../kernel.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import { shaderKernel } from './common.ts';

export interface PenaltyArgs {
  logits: GPUBuffer;
  /** Float offset of the row inside `logits`. */
  logitsOffset?: number;
  vocab: number;
  /** (token id, count) pairs as u32 pairs. */
  seen: GPUBuffer | BufferRange;
  count: number;
  params: PenaltyParams;
}

export function encodePenalties(recorder: StepRecorder, kernels: KernelCache, args: PenaltyArgs): void {
  if (args.count < 1) return;
  recorder.dispatch(shaderKernel(kernels, 'logit_penalty.wgsl'), {
    params: {
      n: args.count,
      logits_offset: args.logitsOffset ?? 0,
      vocab: args.vocab,
      repeat: args.params.repetition,
      frequency: args.params.frequency,
      presence: args.params.presence,
    },
    bind: { seen: args.seen, logits: args.logits },
    workgroups: [Math.ceil(args.count / 64)],
    label: 'logit penalties',
  });
}
