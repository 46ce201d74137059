/**
 * Pieces shared by the float64 references of the recurrent architectures the engine does not load
 * yet (reference-mamba2.ts, reference-lfm2.ts): reading every tensor of a GGUF dequantized, and the
 * plain-loop arithmetic both use. Everything in float64 over float32 weights.
 */
import { requireQuantFormat } from '../engine/gguf/quants/index.ts';
import { readGguf } from '../engine/gguf/reader.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import { getInteger, getNumber, getString } from '../engine/gguf/metadata.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import { nodeFileSource } from '../node/file-source.ts';

/** A file a recurrent reference cannot run: another architecture, sizes that do not add up, a missing tensor. */
export class RecurrentReferenceError extends Error {
  override name = 'RecurrentReferenceError';
}

/** A model for one of these references: its config and every tensor by GGUF name, dequantized (ne0 fastest). */
export interface RecurrentReferenceModel<C> {
  config: C;
  weights: Map<string, Float32Array>;
}

/** The keys every one of these architectures has, after checking general.architecture. */
export function readCommonConfig(file: GgufFile, arch: string): { key: (s: string) => string; nLayer: number; nEmbd: number; nVocab: number; rmsEps: number } {
  const found = getString(file, 'general.architecture');
  if (found !== arch) throw new RecurrentReferenceError(`expected a ${arch} model, got '${found}'`);
  const key = (s: string) => `${arch}.${s}`;
  const embd = file.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embd) throw new RecurrentReferenceError('no token_embd.weight');
  return {
    key,
    nLayer: getInteger(file, key('block_count')),
    nEmbd: getInteger(file, key('embedding_length')),
    nVocab: embd.shape[1]!,
    rmsEps: getNumber(file, key('attention.layer_norm_rms_epsilon')),
  };
}

/** attention.head_count_kv of a hybrid: one number per layer, 0 for the recurrent layers (or one number for all). */
export function perLayerKvHeads(file: GgufFile, key: string, nLayer: number): number[] {
  const kv = file.metadata.get(key);
  const out = typeof kv === 'number' ? new Array<number>(nLayer).fill(kv) : ArrayBuffer.isView(kv) ? Array.from(kv as Int32Array, Number) : undefined;
  if (!out || out.length !== nLayer) throw new RecurrentReferenceError(`${key} must be a number or ${nLayer} numbers`);
  return out;
}

/** Reads a GGUF (a path or a ranged source), lets `readConfig` check it, and dequantizes every tensor. */
export async function loadGgufWeights<C>(source: RangedSource | string, readConfig: (file: GgufFile) => C): Promise<{ config: C; weights: Map<string, Float32Array> }> {
  const src = typeof source === 'string' ? await nodeFileSource(source) : source;
  try {
    const file = await readGguf(src);
    const config = readConfig(file);
    const weights = new Map<string, Float32Array>();
    for (const info of file.tensors) {
      const bytes = await src.read(info.fileOffset, info.byteSize);
      const out = new Float32Array(info.elementCount);
      requireQuantFormat(info.type).dequantize(bytes, out, info.elementCount);
      weights.set(info.name, out);
    }
    return { config, weights };
  } finally {
    if (typeof source === 'string') await src.close?.();
  }
}

/** A tensor by name, or a named error. */
export function tensor(weights: Map<string, Float32Array>, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new RecurrentReferenceError(`missing tensor ${name}`);
  return t;
}

/** out[o] = sum_i W[o * nIn + i] * v[vOff + i] for o < nOut (a GGUF [nIn, nOut] weight times a vector). */
export function matVec(w: Float32Array, nIn: number, nOut: number, v: Float64Array, vOff = 0): Float64Array {
  if (w.length !== nIn * nOut) throw new RecurrentReferenceError(`weight of ${w.length} values is not ${nIn} x ${nOut}`);
  const out = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let sum = 0;
    const row = o * nIn;
    for (let i = 0; i < nIn; i++) sum += w[row + i]! * v[vOff + i]!;
    out[o] = sum;
  }
  return out;
}

/** x / sqrt(mean(x²) + eps) * w over `n` values of `x` from `off` (w from `wOff`), in place. */
export function rmsNormInPlace(x: Float64Array, off: number, n: number, eps: number, w: Float32Array, wOff = 0): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i]! * x[off + i]!;
  const scale = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) x[off + i] = x[off + i]! * scale * w[wOff + i]!;
}

export const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * One step of a causal depthwise convolution (ggml_ssm_conv) over `channels` channels: tap k of
 * channel ch is w[ch * width + k]; taps 0..width-2 read `state` ([width - 1][channels], oldest
 * first), the last tap reads `column` (this token's input from `colOff`). Then `column` is shifted
 * into the state. Returns the convolution, without bias.
 */
export function causalConvStep(state: Float64Array, w: Float32Array, width: number, channels: number, column: Float64Array, colOff = 0): Float64Array {
  const out = new Float64Array(channels);
  for (let ch = 0; ch < channels; ch++) {
    let sum = 0;
    for (let k = 0; k < width - 1; k++) sum += state[k * channels + ch]! * w[ch * width + k]!;
    out[ch] = sum + column[colOff + ch]! * w[ch * width + width - 1]!;
  }
  if (width > 1) {
    state.copyWithin(0, channels);
    for (let ch = 0; ch < channels; ch++) state[(width - 2) * channels + ch] = column[colOff + ch]!;
  }
  return out;
}

/** The SwiGLU FFN of layer `il`: ffn_down · (silu(ffn_gate · n) ⊙ ffn_up · n), `n` normalized [nEmbd]. */
export function swigluFfn(weights: Map<string, Float32Array>, il: number, n: Float64Array, nEmbd: number, nFf: number): Float64Array {
  const b = `blk.${il}.`;
  const gate = matVec(tensor(weights, `${b}ffn_gate.weight`), nEmbd, nFf, n);
  const up = matVec(tensor(weights, `${b}ffn_up.weight`), nEmbd, nFf, n);
  for (let i = 0; i < nFf; i++) gate[i] = silu(gate[i]!) * up[i]!;
  return matVec(tensor(weights, `${b}ffn_down.weight`), nFf, nEmbd, gate);
}

/**
 * The token loop of a hybrid's session: for each token its embedding (times `embeddingScale`),
 * `layer` for every block in place, the final norm `outputNorm`, the output projection (token_embd
 * when there is no output.weight) divided by `logitScale`; `next` after each token. Returns the
 * logits, [tokens][nVocab].
 */
export function evalTokens(
  weights: Map<string, Float32Array>,
  c: { nEmbd: number; nVocab: number; nLayer: number; rmsEps: number },
  tokens: readonly number[],
  opts: { outputNorm: string; embeddingScale?: number; logitScale?: number },
  layer: (il: number, x: Float64Array) => void,
  next: () => void,
): Float64Array {
  const E = c.nEmbd;
  const embd = tensor(weights, 'token_embd.weight');
  const output = weights.get('output.weight') ?? embd;
  const outNorm = tensor(weights, opts.outputNorm);
  const embeddingScale = opts.embeddingScale ?? 1;
  const logitScale = opts.logitScale ?? 1;
  const logits = new Float64Array(tokens.length * c.nVocab);
  tokens.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= c.nVocab) throw new RecurrentReferenceError(`token id ${id} out of range [0, ${c.nVocab})`);
    const x = Float64Array.from(embd.subarray(id * E, (id + 1) * E), (v) => v * embeddingScale);
    for (let il = 0; il < c.nLayer; il++) layer(il, x);
    rmsNormInPlace(x, 0, E, c.rmsEps, outNorm);
    const row = matVec(output, E, c.nVocab, x);
    if (logitScale !== 1) for (let v = 0; v < c.nVocab; v++) row[v] = row[v]! / logitScale;
    logits.set(row, t * c.nVocab);
    next();
  });
  return logits;
}
