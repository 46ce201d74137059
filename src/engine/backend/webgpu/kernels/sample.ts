/**
 * Token sampling on the GPU, so a decode step reads back one u32 per row instead of the logits.
 * Two passes: sample_candidates.wgsl (each workgroup's k best of 8192 logits) and
 * sample_finish.wgsl (the row's k best of those, sorted, then llama.cpp's default chain: top-k ->
 * top-p -> min-p -> temperature -> draw with a uniform number u from the host). Both select with a
 * radix select (topk_select.wgsl): a fixed number of histogram passes, whatever k, instead of k
 * rounds of argmax. Greedy (argmax) is the same with k = 1. Ties rank the lower token id first.
 * The float64 reference is `sampleReference`: the same rule given the same u.
 *
 * top-k is at most SAMPLE_K_MAX (128); `topK: 0` (llama.cpp's "off") also means 128: the tokens
 * past the 128 most likely carry negligible mass for chat models, and that bound is what keeps the
 * selection a few small passes over the vocabulary.
 */
import type { KernelCache } from '../kernel.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import { shaderKernel, type RowView } from './common.ts';

export const SAMPLE_K_MAX = 128;
const WORKGROUP_SIZE = 256;
/** Logits per pass-1 workgroup; pass 2 merges ceil(vocab / ITEMS_PER_GROUP) * k candidates. */
const ITEMS_PER_GROUP = 8192;

export interface SamplingParams {
  /** <= 0: greedy. */
  temperature: number;
  /** 0 or > SAMPLE_K_MAX: SAMPLE_K_MAX. */
  topK: number;
  /** 1: off. */
  topP: number;
  /** 0: off. */
  minP: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 1, topP: 1, minP: 0 };

export function effectiveTopK(params: SamplingParams): number {
  if (params.temperature <= 0) return 1;
  return params.topK <= 0 || params.topK > SAMPLE_K_MAX ? SAMPLE_K_MAX : Math.floor(params.topK);
}

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

export function encodeSample(recorder: StepRecorder, kernels: KernelCache, args: SampleArgs): void {
  const { vocab, rows } = args;
  if (rows < 1) return;
  if (vocab < 1) throw new RangeError('sample: empty vocabulary');
  const k = effectiveTopK(args.params);
  const groups = Math.ceil(vocab / ITEMS_PER_GROUP);
  if (rows > 65535 || groups > 65535) throw new RangeError('sample: too many rows or too large a vocabulary');
  recorder.dispatch(shaderKernel(kernels, 'sample_candidates.wgsl', { constants: { WORKGROUP_SIZE, ITEMS_PER_GROUP } }), {
    params: { vocab, logits_stride: args.logits.stride ?? vocab, logits_offset: args.logits.offset ?? 0, k, n_groups: groups },
    bind: { logits: args.logits.buffer, cand_val: args.scratch.values, cand_idx: args.scratch.ids },
    workgroups: [groups, rows],
    label: 'sample candidates',
  });
  recorder.dispatch(shaderKernel(kernels, 'sample_finish.wgsl', { constants: { WORKGROUP_SIZE } }), {
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

/**
 * Float64 reference for one row: the same candidates (k best, ties to the lower id), the same
 * top-p / min-p / temperature rule and the same draw with `u`. Also returns the kept candidates
 * and their final probabilities, for distribution tests.
 */
export function sampleReference(logits: ArrayLike<number>, params: SamplingParams, u: number): { token: number; kept: number[]; probs: number[] } {
  const k = effectiveTopK(params);
  const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const top = order.slice(0, k);
  if (params.temperature <= 0 || top.length === 1) return { token: top[0]!, kept: [top[0]!], probs: [1] };
  const m = logits[top[0]!]!;
  let keep = top.length;
  if (params.topP < 1) {
    const w = top.map((i) => Math.exp(logits[i]! - m));
    const total = w.reduce((a, b) => a + b, 0);
    let cum = 0;
    for (let i = 0; i < top.length; i++) {
      cum += w[i]! / total;
      if (cum >= params.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params.minP > 0) {
    const minLogit = m + Math.log(params.minP);
    for (let i = 1; i < keep; i++) {
      if (logits[top[i]!]! < minLogit) {
        keep = i;
        break;
      }
    }
  }
  const kept = top.slice(0, keep);
  const w = kept.map((i) => Math.exp((logits[i]! - m) / params.temperature));
  const sum = w.reduce((a, b) => a + b, 0);
  const probs = w.map((x) => x / sum);
  let acc = 0;
  let token = kept[kept.length - 1]!;
  for (let i = 0; i < kept.length; i++) {
    acc += probs[i]!;
    if (acc > u) {
      token = kept[i]!;
      break;
    }
  }
  return { token, kept, probs };
}
