/**
 * Token sampling on the GPU, so a decode step reads back one u32 per row instead of the logits.
 * Two passes: sample_candidates.wgsl (each workgroup's k best of 8192 logits) and
 * sample_finish.wgsl (the row's k best of those, sorted, then llama.cpp's default chain: top-k ->
 * top-p -> min-p -> temperature -> draw with a uniform number u from the host). Both select with a
 * radix select (topk_select.wgsl): a fixed number of histogram passes, whatever k, instead of k
 * rounds of argmax. Greedy (argmax) is the same with k = 1. Ties rank the lower token id first.
 * The rule is src/engine/sampling/chain.ts's (`sampleRow`), checked against it given the same u;
 * top-k is at most SAMPLE_K_MAX.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import { effectiveTopK, GREEDY, SAMPLE_K_MAX, type SamplingParams } from '../../../sampling/params.ts';
import { shaderKernel, type RowView } from './common.ts';

const WORKGROUP_SIZE = 256;
/** Logits per pass-1 workgroup; pass 2 merges ceil(vocab / ITEMS_PER_GROUP) * k candidates. */
const ITEMS_PER_GROUP = 8192;

/** Scratch for `encodeSample`, in elements (f32 values and u32 ids), enough for any k. */
export function sampleScratchElements(vocab: number, rows: number): number {
  return rows * Math.ceil(vocab / ITEMS_PER_GROUP) * SAMPLE_K_MAX;
}

export interface SampleArgs {
  /** `rows` rows of `vocab` logits. */
  logits: RowView;
  vocab: number;
  rows: number;
  params: SamplingParams;
  /** f32 per row: a uniform number in [0, 1) drawn on the host (any buffer when greedy). */
  random: GPUBuffer | BufferRange;
  /** u32 per row: the sampled token ids. */
  tokens: GPUBuffer | BufferRange;
  /** Two buffers of `sampleScratchElements` elements (4 bytes each). */
  scratch: { values: GPUBuffer; ids: GPUBuffer };
}

const SAMPLE = kernelFamily();

export function encodeSample(recorder: StepRecorder, kernels: KernelCache, args: SampleArgs): void {
  const { vocab, rows } = args;
  if (rows < 1) return;
  if (vocab < 1) throw new RangeError('sample: empty vocabulary');
  const k = effectiveTopK(args.params);
  const groups = Math.ceil(vocab / ITEMS_PER_GROUP);
  if (rows > 65535 || groups > 65535) throw new RangeError('sample: too many rows or too large a vocabulary');
  const candidates = kernels.variant(SAMPLE, 0) ?? kernels.remember(SAMPLE, 0, shaderKernel(kernels, 'sample_candidates.wgsl', { constants: { WORKGROUP_SIZE, ITEMS_PER_GROUP } }));
  const finish = kernels.variant(SAMPLE, 1) ?? kernels.remember(SAMPLE, 1, shaderKernel(kernels, 'sample_finish.wgsl', { constants: { WORKGROUP_SIZE } }));
  recorder.dispatch(candidates, {
    params: { vocab, logits_stride: args.logits.stride ?? vocab, logits_offset: args.logits.offset ?? 0, k, n_groups: groups },
    bind: { logits: args.logits.buffer, cand_val: args.scratch.values, cand_idx: args.scratch.ids },
    workgroups: [groups, rows],
    label: 'sample candidates',
  });
  recorder.dispatch(finish, {
    params: { n_cand: groups * k, k, temperature: args.params.temperature, top_p: args.params.topP, min_p: args.params.minP },
    bind: { cand_val: args.scratch.values, cand_idx: args.scratch.ids, random: args.random, tokens: args.tokens },
    workgroups: [rows],
    label: 'sample finish',
  });
}

/** Greedy decoding: the index of the largest logit per row (lowest index among equals). */
export function encodeArgmax(recorder: StepRecorder, kernels: KernelCache, args: Omit<SampleArgs, 'params'>): void {
  encodeSample(recorder, kernels, { ...args, params: GREEDY });
}
