/**
 * Structured pruning of a GGUF model, streamed like quantize.ts: whole layers dropped (the kept
 * blk.N tensors renumbered, `<arch>.block_count` and every per-layer metadata array cut to match)
 * and the FFN narrowed (channel j of a layer is row j of ffn_gate and ffn_up, element j of their
 * biases and column j of ffn_down: they are removed together, so the layer computes the same
 * function minus those channels' contributions).
 *
 * Removing rows of a matrix never touches its encoding (each row is whole blocks); removing columns
 * of ffn_down does: float types are cut element by element (exact), quantized rows are dequantized,
 * cut and quantized again to the same type, which needs the kept width to be a whole number of that
 * type's blocks ({@link channelGranularity}).
 *
 * The same FFN width for every layer: llama.cpp's builders for most architectures read one n_ff for
 * all layers (per-layer `feed_forward_length` arrays are honoured only by a few, e.g. openelm), so
 * a model with per-layer widths would load here and fail there.
 */
import { ggmlTypeInfo, ggmlTypeName, GgmlType } from '../gguf/ggml-types.ts';
import { quantFormat } from '../gguf/quants/index.ts';
import type { RangedSource } from '../gguf/source.ts';
import { GgufValueType, type GgufFile, type GgufTensorInfo, type GgufTypeInfo, type GgufValue } from '../gguf/types.ts';
import { ggufPieceChunks, layoutGguf, type GgufLayout } from '../gguf/writer.ts';
import { PruneError } from './errors.ts';
import { quantizeRows } from './rows.ts';

export interface PruneSpec {
  /** Source layer indices to remove. */
  dropLayers: readonly number[];
  /**
   * FFN channels to keep, by source layer index (ascending, the same count for every kept layer);
   * absent: the FFN is left whole.
   */
  keepChannels?: ReadonlyMap<number, readonly number[]>;
}

/** What happens to one source tensor. */
type TensorCut =
  | { kind: 'copy' }
  /** Keep these rows (ne1 indices), in order. */
  | { kind: 'rows'; rows: readonly number[] }
  /** Keep these elements (ne0 indices) of every row. */
  | { kind: 'columns'; columns: readonly number[] };

export interface PrunedTensor {
  source: GgufTensorInfo;
  name: string;
  shape: number[];
  cut: TensorCut;
}

export interface PrunePlan {
  tensors: PrunedTensor[];
  layout: GgufLayout;
  /** Source layer index of each output layer. */
  keptLayers: number[];
  /** The FFN width of the output (undefined: unchanged). */
  ffnWidth: number | undefined;
  sourceBytes: number;
  outputBytes: number;
  /** What the cut changes beyond the removed weights (e.g. which layers use sliding-window attention). */
  warnings: string[];
}

export interface PruneProgress {
  /** The output tensor being written, its index and the number of tensors. */
  tensor: string;
  index: number;
  count: number;
  /** Output bytes produced so far (header included) and the output's size. */
  bytesDone: number;
  bytesTotal: number;
}

export interface PruneOptions {
  signal?: AbortSignal;
  onProgress?: (progress: PruneProgress) => void;
  /** Source bytes per slab of rows; default 64 MiB. */
  slabBytes?: number;
}

const LAYER_TENSOR = /^blk\.(\d+)\.(.+)$/;

/**
 * Architectures where a layer's position decides whether it attends through a sliding window
 * (llama.cpp's swa pattern: every layer but each period's last), with the default period.
 */
const SWA_PERIOD: Record<string, number> = { gemma2: 2, gemma3: 6 };

/** A warning when dropping layers moves kept layers across the sliding-window pattern. */
function swaWarning(file: GgufFile, arch: string, kept: readonly number[]): string | undefined {
  const keyed = file.metadata.get(`${arch}.attention.sliding_window_pattern`);
  const period = typeof keyed === 'number' ? keyed : SWA_PERIOD[arch];
  if (!period) return undefined;
  const slides = (il: number) => il % period < period - 1;
  const moved = kept.filter((il, i) => slides(il) !== slides(i));
  if (moved.length === 0) return undefined;
  return `${arch} decides sliding-window attention by layer position (period ${period}): after the drop, source layer(s) ${moved.join(', ')} switch between sliding-window and full attention`;
}
const FLOAT_TYPES = new Set<GgmlType>([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

function archOf(file: GgufFile): string {
  const arch = file.metadata.get('general.architecture');
  if (typeof arch !== 'string') throw new PruneError('the model has no general.architecture', {});
  return arch;
}

function layerCount(file: GgufFile, arch: string): number {
  const n = file.metadata.get(`${arch}.block_count`);
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new PruneError(`the model has no valid ${arch}.block_count`, { arch });
  return n;
}

/**
 * The FFN widths a model can be cut to must be multiples of this: the block size of the model's
 * ffn_down types (1 for float types), whose columns are re-encoded.
 */
export function channelGranularity(file: GgufFile): number {
  let g = 1;
  for (const t of file.tensors) {
    if (!/^blk\.\d+\.ffn_down\.weight$/.test(t.name)) continue;
    g = Math.max(g, ggmlTypeInfo(t.type)?.blockSize ?? 1);
  }
  return g;
}

/** The FFN width of each layer, from `<arch>.feed_forward_length` (a number or a per-layer array). */
export function ffnWidths(file: GgufFile): number[] {
  const arch = archOf(file);
  const nLayer = layerCount(file, arch);
  const v = file.metadata.get(`${arch}.feed_forward_length`);
  if (typeof v === 'number') return new Array<number>(nLayer).fill(v);
  if (v && typeof v === 'object' && 'length' in v && (v as ArrayLike<unknown>).length === nLayer) {
    return Array.from(v as ArrayLike<number | bigint>, Number);
  }
  throw new PruneError(`the model has no usable ${arch}.feed_forward_length`, { arch });
}

function isMoe(file: GgufFile, arch: string): boolean {
  const experts = file.metadata.get(`${arch}.expert_count`);
  return (typeof experts === 'number' && experts > 0) || file.tensors.some((t) => t.name.includes('_exps.'));
}

/** The cut of a kept layer's tensor `base` (e.g. "ffn_up.weight") for the kept channels. */
function ffnCut(t: GgufTensorInfo, base: string, keep: readonly number[], nFf: number): TensorCut {
  const bad = () => new PruneError(`${t.name} has shape [${t.shape.join(', ')}], not one an FFN of width ${nFf} has`, { tensor: t.name });
  switch (base) {
    case 'ffn_gate.weight':
    case 'ffn_up.weight':
    case 'ffn_gate.bias':
    case 'ffn_up.bias': {
      // A matrix's channels are its rows (ne1), a bias's its elements (ne0).
      const isBias = base.endsWith('.bias');
      const n = t.shape[isBias ? 0 : 1];
      if (t.shape.length !== (isBias ? 1 : 2)) throw bad();
      let kept: readonly number[];
      if (n === nFf) kept = keep;
      // phi3's fused [gate; up]: channel j is row (element) j and nFf + j.
      else if (base.startsWith('ffn_up.') && n === 2 * nFf) kept = [...keep, ...keep.map((j) => nFf + j)];
      else throw bad();
      return isBias ? { kind: 'columns', columns: kept } : { kind: 'rows', rows: kept };
    }
    case 'ffn_down.weight':
      if (t.shape.length !== 2 || t.shape[0] !== nFf) throw bad();
      return { kind: 'columns', columns: keep };
    default:
      return { kind: 'copy' };
  }
}

function cutShape(t: GgufTensorInfo, cut: TensorCut): number[] {
  const shape = [...t.shape];
  if (cut.kind === 'rows') shape[1] = cut.rows.length;
  if (cut.kind === 'columns') shape[0] = cut.columns.length;
  return shape;
}

function checkChannels(layer: number, keep: readonly number[], nFf: number): void {
  for (let i = 0; i < keep.length; i++) {
    const j = keep[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= nFf || (i > 0 && j <= keep[i - 1]!)) {
      throw new PruneError(`layer ${layer}: kept channels must be ascending integers in 0..${nFf - 1}`, { layer, channel: j });
    }
  }
}

/** The output's metadata: block_count, FFN width and every per-layer array cut to the kept layers. */
function prunedMetadata(file: GgufFile, arch: string, nLayer: number, kept: readonly number[], ffnWidth: number | undefined) {
  const metadata = new Map<string, GgufValue>();
  const types = new Map<string, GgufTypeInfo>();
  for (const [key, value] of file.metadata) {
    const type = file.metadataTypes.get(key)!;
    const perLayer = key.startsWith(`${arch}.`) && type.type === GgufValueType.ARRAY && (value as ArrayLike<unknown>).length === nLayer;
    metadata.set(key, perLayer ? (kept.map((il) => (value as ArrayLike<unknown>)[il]) as unknown as GgufValue) : value);
    types.set(key, type);
  }
  metadata.set(`${arch}.block_count`, kept.length);
  types.set(`${arch}.block_count`, { type: GgufValueType.UINT32 });
  if (ffnWidth !== undefined) {
    metadata.set(`${arch}.feed_forward_length`, ffnWidth);
    types.set(`${arch}.feed_forward_length`, { type: GgufValueType.UINT32 });
  }
  return { metadata, types };
}

/** Decides every output tensor's name, shape and cut, and the output's layout; reads no tensor data. */
export function planPrune(file: GgufFile, spec: PruneSpec): PrunePlan {
  const arch = archOf(file);
  const nLayer = layerCount(file, arch);
  const drop = new Set(spec.dropLayers);
  for (const il of drop) {
    if (!Number.isInteger(il) || il < 0 || il >= nLayer) throw new PruneError(`layer ${il} is not one of the model's ${nLayer} layers (0..${nLayer - 1})`, { layer: il });
  }
  const keptLayers = Array.from({ length: nLayer }, (_, i) => i).filter((i) => !drop.has(i));
  if (keptLayers.length === 0) throw new PruneError(`dropping all ${nLayer} layers leaves no model`, { nLayer });
  const newIndex = new Map(keptLayers.map((il, i) => [il, i]));

  let ffnWidth: number | undefined;
  const widths = spec.keepChannels ? ffnWidths(file) : [];
  if (spec.keepChannels) {
    if (isMoe(file, arch)) throw new PruneError(`${arch}: shrinking the FFN of a mixture-of-experts model is not supported`, { arch });
    const g = channelGranularity(file);
    for (const il of keptLayers) {
      const keep = spec.keepChannels.get(il);
      if (!keep) throw new PruneError(`no kept channels given for layer ${il}`, { layer: il });
      checkChannels(il, keep, widths[il]!);
      ffnWidth ??= keep.length;
      if (keep.length !== ffnWidth) throw new PruneError(`every layer must keep the same number of FFN channels (${ffnWidth}, layer ${il}: ${keep.length})`, { layer: il });
    }
    if (ffnWidth === 0 || ffnWidth! % g !== 0) {
      throw new PruneError(`an FFN width of ${ffnWidth} is not a positive multiple of ${g}, the block size of the model's ffn_down`, { width: ffnWidth, granularity: g });
    }
  }

  const tensors: PrunedTensor[] = [];
  for (const t of file.tensors) {
    const m = LAYER_TENSOR.exec(t.name);
    if (!m) {
      tensors.push({ source: t, name: t.name, shape: [...t.shape], cut: { kind: 'copy' } });
      continue;
    }
    const il = Number(m[1]);
    const to = newIndex.get(il);
    if (to === undefined) continue;
    const keep = spec.keepChannels?.get(il);
    const cut = keep ? ffnCut(t, m[2]!, keep, widths[il]!) : ({ kind: 'copy' } as const);
    if (cut.kind === 'columns' && !FLOAT_TYPES.has(t.type) && !quantFormat(t.type)?.quantize) {
      throw new PruneError(`${t.name} is ${ggmlTypeName(t.type)}, whose columns we cannot re-encode`, { tensor: t.name });
    }
    tensors.push({ source: t, name: `blk.${to}.${m[2]}`, shape: cutShape(t, cut), cut });
  }

  const { metadata, types } = prunedMetadata(file, arch, nLayer, keptLayers, ffnWidth);
  const layout = layoutGguf({ metadata, metadataTypes: types, tensors: tensors.map((t) => ({ name: t.name, type: t.source.type, shape: t.shape })) });
  const sourceBytes = file.tensors.reduce((a, t) => a + t.byteSize, 0);
  const outputBytes = layout.tensors.reduce((a, t) => a + t.byteSize, 0);
  const warning = drop.size ? swaWarning(file, arch, keptLayers) : undefined;
  return { tensors, layout, keptLayers, ffnWidth, sourceBytes, outputBytes, warnings: warning ? [warning] : [] };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The pruning was cancelled.', 'AbortError');
}

/** Keeps `columns` of each of `rows` rows of `bytes` (type `type`, `nPerRow` elements a row). */
function cutColumns(type: GgmlType, bytes: Uint8Array, nPerRow: number, rows: number, columns: readonly number[]): Uint8Array {
  const k = columns.length;
  if (FLOAT_TYPES.has(type)) {
    // Element by element: exact, whatever the float type.
    const size = ggmlTypeInfo(type)!.typeSize;
    const out = new Uint8Array(rows * k * size);
    for (let r = 0; r < rows; r++) {
      const from = r * nPerRow * size;
      const to = r * k * size;
      for (let i = 0; i < k; i++) out.set(bytes.subarray(from + columns[i]! * size, from + (columns[i]! + 1) * size), to + i * size);
    }
    return out;
  }
  const fmt = quantFormat(type)!;
  const row = new Float32Array(nPerRow);
  const kept = new Float32Array(rows * k);
  const srcRow = bytes.length / rows;
  for (let r = 0; r < rows; r++) {
    fmt.dequantize(bytes.subarray(r * srcRow, (r + 1) * srcRow), row, nPerRow);
    for (let i = 0; i < k; i++) kept[r * k + i] = row[columns[i]!]!;
  }
  return quantizeRows(type, kept, k, rows);
}

/** The pruned file as chunks: header, then each kept tensor cut in slabs of rows, with padding. */
export async function* pruneChunks(source: RangedSource, file: GgufFile, plan: PrunePlan, options: PruneOptions = {}): AsyncGenerator<Uint8Array> {
  const { signal, onProgress } = options;
  let current = 0;
  let bytesDone = 0;
  const slabBytes = Math.max(1, options.slabBytes ?? 64 * 1024 * 1024);

  async function* tensorPieces(_out: GgufTensorInfo, index: number): AsyncGenerator<Uint8Array> {
    current = index;
    const { source: src, cut } = plan.tensors[index]!;
    const nPerRow = src.shape[0]!;
    const nRows = src.elementCount / nPerRow;
    const rowBytes = src.byteSize / nRows;
    const base = file.dataOffset + src.offset;
    if (cut.kind === 'rows') {
      // Runs of consecutive kept rows are read in one piece.
      const slabRows = Math.max(1, Math.floor(slabBytes / rowBytes));
      const rowsPerMatrix = src.shape[1]!;
      for (let m = 0; m < nRows / rowsPerMatrix; m++) {
        for (let i = 0; i < cut.rows.length; ) {
          if (signal?.aborted) throw abortReason(signal);
          let j = i + 1;
          while (j < cut.rows.length && j - i < slabRows && cut.rows[j] === cut.rows[j - 1]! + 1) j++;
          yield await source.read(base + (m * rowsPerMatrix + cut.rows[i]!) * rowBytes, (j - i) * rowBytes);
          i = j;
        }
      }
      return;
    }
    const slabRows = Math.max(1, Math.floor(slabBytes / (rowBytes + 8 * nPerRow)));
    for (let row = 0; row < nRows; ) {
      if (signal?.aborted) throw abortReason(signal);
      const rows = Math.min(slabRows, nRows - row);
      const bytes = await source.read(base + row * rowBytes, rows * rowBytes);
      yield cut.kind === 'copy' ? bytes : cutColumns(src.type, bytes, nPerRow, rows, cut.columns);
      row += rows;
    }
  }

  for await (const chunk of ggufPieceChunks(plan.layout, tensorPieces)) {
    bytesDone += chunk.length;
    yield chunk;
    const count = plan.tensors.length;
    onProgress?.({ tensor: plan.tensors[current]?.name ?? '', index: current, count, bytesDone, bytesTotal: plan.layout.fileSize });
  }
  if (signal?.aborted) throw abortReason(signal);
}
