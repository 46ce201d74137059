/**
 * Rotary position embedding in place (rope.wgsl), with ggml's semantics: rope type 0 ("normal",
 * adjacent pairs) and 2 (NeoX, halves), partial rotary dims, positions from a u32 buffer, and
 * frequency scaling: linear (freqScale), YaRN (extFactor, attnFactor, betaFast/betaSlow, origCtx,
 * replicating ggml's rope_yarn including its mscale), and per-dimension frequency factors from a
 * buffer (llama3's `rope_freqs`, Phi-3's long/short factors). llama.cpp applies llama3 scaling as
 * such factors; `llama3FreqFactors` computes them as the GGUF converter does, for files without
 * the tensor. Float64 reference: `ropeReference`.
 */
import { yarnCorrDims } from '../../rope-scaling.ts';
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { foldedGrid, shaderKernel } from './common.ts';

const WORKGROUP_SIZE = 256;

export type RopeMode = 'normal' | 'neox';

/** ggml_rope_ext's scaling arguments; defaults are "no scaling". */
export interface RopeScaling {
  /** 1 / linear scaling factor; default 1. */
  freqScale?: number;
  /** YaRN extrapolation mix; 0 (default) disables YaRN. */
  extFactor?: number;
  /** Magnitude scale; default 1. */
  attnFactor?: number;
  /** YaRN; defaults 32 and 1 as in llama.cpp. */
  betaFast?: number;
  betaSlow?: number;
  /** The training context (`rope.scaling.original_context_length`), for YaRN's correction dims. */
  origCtx?: number;
}

export interface RopeParams {
  mode: RopeMode;
  /** Rotated dims per head (even, <= headDim); the rest are left alone. */
  nRot: number;
  freqBase: number;
  scaling?: RopeScaling;
}

export interface RopeArgs extends RopeParams {
  /** q or k, rotated in place: element (t, h, d) at offset + t * tokenStride + h * headStride + d. */
  x: GPUBuffer;
  tokenStride: number;
  /** Default headDim. */
  headStride?: number;
  offset?: number;
  tokens: number;
  heads: number;
  headDim: number;
  /** u32 per token. */
  positions: GPUBuffer;
  /** f32[nRot / 2]: theta for pair p is divided by factor p. */
  freqFactors?: GPUBuffer;
  /** Any storage buffer, bound where freqFactors is absent. */
  dummy: GPUBuffer;
}

/** The uniforms rope_common.wgsl reads (besides n_rot), shared by rope.wgsl and rope_kv_write.wgsl. */
export function ropeUniforms(p: RopeParams, hasFreqFactors: boolean) {
  const s = resolvedScaling(p);
  return {
    neox: p.mode === 'neox' ? 1 : 0,
    has_freq_factors: hasFreqFactors ? 1 : 0,
    freq_base: p.freqBase,
    freq_scale: s.freqScale,
    ext_factor: s.extFactor,
    attn_factor: s.attnFactor,
    corr_low: s.corr[0],
    corr_high: s.corr[1],
  };
}

function resolvedScaling(p: RopeParams) {
  const s = p.scaling ?? {};
  const freqScale = s.freqScale ?? 1;
  const extFactor = s.extFactor ?? 0;
  const attnFactor = s.attnFactor ?? 1;
  let corr: [number, number] = [0, 0];
  if (extFactor !== 0) {
    if (!s.origCtx) throw new Error('rope: YaRN needs origCtx');
    corr = yarnCorrDims(p.nRot, s.origCtx, p.freqBase, s.betaFast ?? 32, s.betaSlow ?? 1);
  }
  return { freqScale, extFactor, attnFactor, corr };
}

const ROPE = kernelFamily();

export function encodeRope(recorder: StepRecorder, kernels: KernelCache, args: RopeArgs): void {
  const { nRot, headDim } = args;
  if (nRot % 2 !== 0 || nRot < 2 || nRot > headDim) throw new RangeError(`rope: n_rot ${nRot} must be even and <= head_dim ${headDim}`);
  if (args.tokens < 1 || args.heads < 1) return;
  const [gx, gy] = foldedGrid(Math.ceil((args.tokens * args.heads * (nRot / 2)) / WORKGROUP_SIZE));
  const kernel = kernels.variant(ROPE, 0) ?? kernels.remember(ROPE, 0, shaderKernel(kernels, 'rope.wgsl', { constants: { WORKGROUP_SIZE } }));
  recorder.dispatch(kernel, {
    params: {
      n_tokens: args.tokens,
      n_heads: args.heads,
      n_rot: nRot,
      token_stride: args.tokenStride,
      head_stride: args.headStride ?? headDim,
      offset: args.offset ?? 0,
      ...ropeUniforms(args, args.freqFactors !== undefined),
      groups_x: gx,
    },
    bind: { positions: args.positions, freq_factors: args.freqFactors ?? args.dummy, x: args.x },
    workgroups: [gx, gy],
    label: `rope ${args.mode}`,
  });
}

/**
 * llama3 rope scaling as per-pair frequency factors, computed as llama.cpp's converter writes
 * the `rope_freqs` tensor (`dim` is the head size).
 */
export function llama3FreqFactors(dim: number, freqBase: number, factor: number, lowFreqFactor: number, highFreqFactor: number, origCtx: number): Float32Array<ArrayBuffer> {
  const lowFreqWavelen = origCtx / lowFreqFactor;
  const highFreqWavelen = origCtx / highFreqFactor;
  const out = new Float32Array(dim / 2);
  for (let p = 0; p < dim / 2; p++) {
    const freq = 1 / freqBase ** ((2 * p) / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highFreqWavelen) out[p] = 1;
    else if (wavelen > lowFreqWavelen) out[p] = factor;
    else {
      const smooth = (origCtx / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out[p] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/**
 * Float64 reference on contiguous [tokens][heads][headDim] data (returns a rotated copy),
 * following ggml's rope_yarn and rotate_pairs.
 */
export function ropeReference(
  x: ArrayLike<number>,
  tokens: number,
  heads: number,
  headDim: number,
  positions: ArrayLike<number>,
  params: RopeParams,
  freqFactors?: ArrayLike<number>,
): Float64Array {
  const { nRot } = params;
  const s = resolvedScaling(params);
  const out = Float64Array.from(x);
  const half = nRot / 2;
  for (let t = 0; t < tokens; t++) {
    for (let p = 0; p < half; p++) {
      const thetaExtrap = (positions[t]! * params.freqBase ** (-(2 * p) / nRot)) / (freqFactors ? freqFactors[p]! : 1);
      const thetaInterp = s.freqScale * thetaExtrap;
      let theta = thetaInterp;
      let mscale = s.attnFactor;
      if (s.extFactor !== 0) {
        const y = (p - s.corr[0]) / Math.max(0.001, s.corr[1] - s.corr[0]);
        const rampMix = (1 - Math.min(1, Math.max(0, y))) * s.extFactor;
        theta = thetaInterp * (1 - rampMix) + thetaExtrap * rampMix;
        mscale *= 1 + 0.1 * Math.log(1 / s.freqScale);
      }
      const c = Math.cos(theta) * mscale;
      const sn = Math.sin(theta) * mscale;
      for (let h = 0; h < heads; h++) {
        const base = (t * heads + h) * headDim;
        const i0 = params.mode === 'neox' ? base + p : base + 2 * p;
        const i1 = params.mode === 'neox' ? i0 + half : i0 + 1;
        const x0 = x[i0]!;
        const x1 = x[i1]!;
        out[i0] = x0 * c - x1 * sn;
        out[i1] = x0 * sn + x1 * c;
      }
    }
  }
  return out;
}
