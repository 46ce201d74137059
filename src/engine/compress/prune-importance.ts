/**
 * What pruning removes, measured on a calibration text. The forward pass feeds {@link
 * PruneImportance.tap} its intermediates (model/forward.ts's tap names), so this module runs no
 * model itself:
 * - Layer importance is ShortGPT's block influence: the mean over tokens of 1 - cos(h_in, h_out),
 *   the cosine between a block's input and output residual streams ("inp_embd" or the previous
 *   "l_out", and its "l_out"). A block that barely turns the residual stream changes little when
 *   skipped.
 * - FFN channel importance is the mean |act(gate) * up| of the channel over the tokens ("ffn_act"),
 *   times the norm of its ffn_down column (what the channel's activation is multiplied by on its
 *   way back into the residual stream), as Wanda-style pruning scores weights.
 */
import type { RangedSource } from '../gguf/source.ts';
import type { GgufFile } from '../gguf/types.ts';
import { quantFormat } from '../gguf/quants/index.ts';
import { PruneError } from './errors.ts';

export class PruneImportance {
  private readonly influence: Float64Array;
  private readonly influenceCount: Float64Array;
  private readonly act: Float64Array[];
  private readonly actCount: Float64Array;
  private previous: Float32Array | undefined;

  constructor(readonly ffnWidths: readonly number[]) {
    const n = ffnWidths.length;
    this.influence = new Float64Array(n);
    this.influenceCount = new Float64Array(n);
    this.act = ffnWidths.map((w) => new Float64Array(w));
    this.actCount = new Float64Array(n);
  }

  get nLayer(): number {
    return this.ffnWidths.length;
  }

  /** Give this as the forward pass's tap for every calibration window. */
  readonly tap = (name: string, layer: number, data: Float32Array, width: number): void => {
    if (name === 'inp_embd') this.previous = data;
    else if (name === 'l_out') {
      if (!this.previous || layer < 0 || layer >= this.nLayer) throw new PruneError(`layer output ${layer} seen out of order`, { layer });
      this.addInfluence(layer, this.previous, data, width);
      this.previous = data;
    } else if (name === 'ffn_act') {
      const sums = this.act[layer];
      if (!sums || sums.length !== width) throw new PruneError(`layer ${layer}: an FFN activation of width ${width}, expected ${sums?.length}`, { layer, width });
      for (let t = 0; t < data.length / width; t++) {
        for (let j = 0; j < width; j++) sums[j] = sums[j]! + Math.abs(data[t * width + j]!);
      }
      this.actCount[layer] = this.actCount[layer]! + data.length / width;
    }
  };

  private addInfluence(layer: number, a: Float32Array, b: Float32Array, width: number): void {
    for (let t = 0; t < a.length / width; t++) {
      let ab = 0;
      let aa = 0;
      let bb = 0;
      for (let i = t * width; i < (t + 1) * width; i++) {
        ab += a[i]! * b[i]!;
        aa += a[i]! * a[i]!;
        bb += b[i]! * b[i]!;
      }
      const denom = Math.sqrt(aa * bb);
      this.influence[layer] = this.influence[layer]! + (denom > 0 ? 1 - ab / denom : 0);
      this.influenceCount[layer] = this.influenceCount[layer]! + 1;
    }
  }

  /** Block influence of each layer (0: the block leaves the stream's direction unchanged). */
  layerScores(): number[] {
    return Array.from(this.influence, (s, il) => {
      const n = this.influenceCount[il]!;
      if (n === 0) throw new PruneError(`layer ${il} saw no tokens: no importance measured`, { layer: il });
      return s / n;
    });
  }

  /** Mean |activation| of each channel of layer `il`; times `downNorms` (per channel) when given. */
  channelScores(il: number, downNorms?: Float64Array): Float64Array {
    const n = this.actCount[il]!;
    if (n === 0) throw new PruneError(`layer ${il}: no FFN activations seen (a mixture-of-experts layer?)`, { layer: il });
    const sums = this.act[il]!;
    return Float64Array.from(sums, (s, j) => (s / n) * (downNorms ? downNorms[j]! : 1));
  }
}

/** The Euclidean norm of each column of layer `il`'s ffn_down (one value per FFN channel). */
export async function ffnDownColumnNorms(source: RangedSource, file: GgufFile, il: number): Promise<Float64Array> {
  const name = `blk.${il}.ffn_down.weight`;
  const t = file.tensors.find((x) => x.name === name);
  if (!t || t.shape.length !== 2) throw new PruneError(`the model has no 2-D ${name}`, { tensor: name });
  const fmt = quantFormat(t.type);
  if (!fmt) throw new PruneError(`${name}: a type we cannot read`, { tensor: name });
  const [nFf, nEmbd] = t.shape as [number, number];
  const rowBytes = t.byteSize / nEmbd;
  const sq = new Float64Array(nFf);
  const row = new Float32Array(nFf);
  const slab = Math.max(1, Math.floor((16 << 20) / rowBytes));
  for (let r = 0; r < nEmbd; r += slab) {
    const rows = Math.min(slab, nEmbd - r);
    const bytes = await source.read(file.dataOffset + t.offset + r * rowBytes, rows * rowBytes);
    for (let k = 0; k < rows; k++) {
      fmt.dequantize(bytes.subarray(k * rowBytes, (k + 1) * rowBytes), row, nFf);
      for (let j = 0; j < nFf; j++) sq[j] = sq[j]! + row[j]! * row[j]!;
    }
  }
  return sq.map(Math.sqrt);
}

/** The `count` layers with the lowest scores, ascending by index; ties go to the later layer. */
export function leastImportantLayers(scores: readonly number[], count: number): number[] {
  if (!Number.isInteger(count) || count < 1 || count >= scores.length) {
    throw new PruneError(`can drop 1..${scores.length - 1} of ${scores.length} layers, not ${count}`, { count, nLayer: scores.length });
  }
  const order = scores.map((s, il) => ({ s, il })).sort((a, b) => a.s - b.s || b.il - a.il);
  return order.slice(0, count).map((o) => o.il).sort((a, b) => a - b);
}

/**
 * The FFN width for keeping `ratio` of `width` channels: the nearest multiple of `granularity`,
 * at least one block, at most the width.
 */
export function keptWidth(width: number, ratio: number, granularity: number): number {
  if (!(ratio > 0 && ratio <= 1)) throw new PruneError(`the FFN keep ratio must be in (0, 1], got ${ratio}`, { ratio });
  const k = Math.round((width * ratio) / granularity) * granularity;
  return Math.min(Math.floor(width / granularity) * granularity, Math.max(granularity, k));
}

/** The `count` highest-scoring channels, ascending by index; ties go to the lower index. */
export function mostImportantChannels(scores: ArrayLike<number>, count: number): number[] {
  const order = Array.from(scores, (s, j) => ({ s, j })).sort((a, b) => b.s - a.s || a.j - b.j);
  return order.slice(0, count).map((o) => o.j).sort((a, b) => a - b);
}
