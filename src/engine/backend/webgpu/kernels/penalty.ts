/**
 * Applies repetition/frequency/presence penalties to a row of logits on the GPU (logit_penalty.wgsl),
 * so sampling with penalties still reads back only a token id. Reference: `applyPenalties` in
 * src/engine/sampling/penalties.ts; the WebGPU backend's `sample` runs it before the sampler.
 */
import type { PenaltyParams } from '../../../sampling/params.ts';
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import { foldedGrid, shaderKernel } from './common.ts';

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

const PENALTY = kernelFamily();

export function encodePenalties(recorder: StepRecorder, kernels: KernelCache, args: PenaltyArgs): void {
  if (args.count < 1) return;
  const kernel = kernels.variant(PENALTY, 0) ?? kernels.remember(PENALTY, 0, shaderKernel(kernels, 'logit_penalty.wgsl'));
  recorder.dispatch(kernel, {
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

export interface HistoryPenaltyArgs {
  logits: GPUBuffer;
  /** Float offset of the row inside `logits`. */
  logitsOffset?: number;
  vocab: number;
  /** u32[params.lastN]: the token at position p at p % lastN; 0xffffffff for none. Appended to here. */
  history: GPUBuffer;
  /** The step's input ids and positions; the one at `last` is appended to the history first. */
  tokens: GPUBuffer;
  positions: GPUBuffer;
  last: number;
  params: PenaltyParams;
}

const HISTORY_PENALTY = kernelFamily();

/**
 * The penalties over a history ring kept on the GPU (logit_penalty_history.wgsl): nothing the
 * host writes per token, so a decode loop can record steps before it knows their tokens.
 */
export function encodeHistoryPenalties(recorder: StepRecorder, kernels: KernelCache, args: HistoryPenaltyArgs): void {
  const n = args.params.lastN;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`penalties over the last ${n} tokens`);
  const kernel = kernels.variant(HISTORY_PENALTY, 0) ?? kernels.remember(HISTORY_PENALTY, 0, shaderKernel(kernels, 'logit_penalty_history.wgsl'));
  recorder.dispatch(kernel, {
    params: {
      n,
      last: args.last,
      logits_offset: args.logitsOffset ?? 0,
      vocab: args.vocab,
      repeat: args.params.repetition,
      frequency: args.params.frequency,
      presence: args.params.presence,
    },
    bind: { tokens: args.tokens, positions: args.positions, history: args.history, logits: args.logits },
    workgroups: [1],
    label: 'logit penalties (history)',
  });
}


export interface MaskArgs {
  logits: GPUBuffer;
  /** Float offset of the row inside `logits`. */
  logitsOffset: number;
  vocab: number;
  /** u32[ceil(vocab / 32)]: the allowed-token bitset. */
  allowed: GPUBuffer;
}

const MASK = kernelFamily();

/** A grammar's token mask on one row of logits (logit_mask.wgsl); reference: applyTokenMask. */
export function encodeTokenMask(recorder: StepRecorder, kernels: KernelCache, args: MaskArgs): void {
  const kernel = kernels.variant(MASK, 0) ?? kernels.remember(MASK, 0, shaderKernel(kernels, 'logit_mask.wgsl'));
  const [gx, gy] = foldedGrid(Math.ceil(args.vocab / 256));
  recorder.dispatch(kernel, {
    params: { vocab: args.vocab, logits_offset: args.logitsOffset, groups_x: gx },
    bind: { allowed: args.allowed, logits: args.logits },
    workgroups: [gx, gy],
    label: 'logit mask',
  });
}
