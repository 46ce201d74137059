/**
 * LoRA adapter files as llama.cpp reads them (src/llama-adapter.cpp, written by
 * convert_lora_to_gguf.py): `general.type = adapter`, `general.architecture` the base's,
 * `adapter.type = lora`, `adapter.lora.alpha`, and for each adapted base tensor `W` a pair
 * `W.lora_a` / `W.lora_b`. For a projection W of GGUF shape [nIn, nOut], lora_a is [nIn, r] and
 * lora_b is [r, nOut], so y = W x + s * B (A x). Token embeddings are the exception (A and B
 * flipped): lora_a is [r, nVocab], a table whose row per token is looked up, and lora_b is
 * [r, nEmbd]. The scale is s = scale * alpha / r, or just scale when alpha is 0 (llama.cpp's
 * `get_scale`). `*_norm.weight` tensors are skipped, as llama.cpp does.
 *
 * The file is untrusted input: every rule is checked before a byte of tensor data is read, and a
 * broken rule is a named error (errors.ts) that says which key or tensor.
 */
import { findNumber, findString } from '../../gguf/metadata.ts';
import { ggmlTypeName } from '../../gguf/ggml-types.ts';
import { quantFormat } from '../../gguf/quants/index.ts';
import type { GgufFile, GgufTensorInfo } from '../../gguf/types.ts';
import type { ModelConfig } from '../config.ts';
import { modelTensors } from '../tensors.ts';
import { AdapterFormatError, AdapterMismatchError, UnsupportedAdapterError } from './errors.ts';

export const LORA_KEYS = {
  type: 'general.type',
  architecture: 'general.architecture',
  adapterType: 'adapter.type',
  alpha: 'adapter.lora.alpha',
} as const;

/** The base tensors an adapter may target here: every matmul llama.cpp routes through `build_lora_mm`, and the embeddings. */
const TARGET_PATTERN = /^(?:blk\.\d+\.(?:attn_q|attn_k|attn_v|attn_qkv|attn_output|ffn_gate|ffn_up|ffn_down)\.weight|output\.weight|token_embd\.weight)$/;

/** The short names `make-lora --targets` takes (a block tensor, in every block) and the whole-model ones. */
export const LORA_TARGET_NAMES = ['attn_q', 'attn_k', 'attn_v', 'attn_qkv', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output', 'token_embd'] as const;
export type LoraTargetName = (typeof LORA_TARGET_NAMES)[number];

export function isLoraTarget(baseTensor: string): boolean {
  return TARGET_PATTERN.test(baseTensor);
}

/** One adapted base tensor: its pair's tensor infos in the adapter file. */
export interface LoraTargetInfo {
  /** The base tensor, as `blk.3.attn_q.weight`. */
  base: string;
  rank: number;
  /** The base matmul's input and output widths (token embeddings: nVocab and nEmbd). */
  nIn: number;
  nOut: number;
  /** Token embeddings: A is a [nVocab][rank] table, B [nEmbd][rank]. */
  embedding: boolean;
  a: GgufTensorInfo;
  b: GgufTensorInfo;
}

export interface LoraFileInfo {
  architecture: string;
  /** 0: the scale is used as is (llama.cpp's rule). */
  alpha: number;
  name: string | undefined;
  targets: LoraTargetInfo[];
}

/** The largest rank accepted: far above any published adapter, small enough to bound the scratch. */
export const MAX_LORA_RANK = 4096;

/** llama.cpp's get_scale: scale * alpha / rank, or scale when alpha is 0. */
export function loraScale(alpha: number, rank: number, scale: number): number {
  return alpha ? (scale * alpha) / rank : scale;
}

function trim(shape: readonly number[]): number[] {
  const s = [...shape];
  while (s.length > 2 && s[s.length - 1] === 1) s.pop();
  return s;
}

/**
 * Reads and validates an adapter's header against the base model it is for (its config: the
 * tensor names and shapes the base has). Throws {@link AdapterFormatError},
 * {@link AdapterMismatchError} or {@link UnsupportedAdapterError}; reads no tensor data.
 */
export function readLoraFile(file: Pick<GgufFile, 'metadata' | 'metadataTypes' | 'tensors'>, base: ModelConfig): LoraFileInfo {
  const str = (key: string) => {
    try {
      return findString(file, key);
    } catch (error) {
      throw new AdapterFormatError(`adapter: ${(error as Error).message}`, { key });
    }
  };
  const type = str(LORA_KEYS.type);
  if (type !== 'adapter') {
    throw new AdapterFormatError(`not an adapter: general.type is ${type === undefined ? 'missing' : `'${type}'`}, expected 'adapter'`, { key: LORA_KEYS.type, value: type ?? null });
  }
  const adapterType = str(LORA_KEYS.adapterType);
  if (adapterType !== 'lora') {
    throw new AdapterFormatError(`adapter.type is ${adapterType === undefined ? 'missing' : `'${adapterType}'`}; only 'lora' adapters are supported`, {
      key: LORA_KEYS.adapterType,
      value: adapterType ?? null,
    });
  }
  const architecture = str(LORA_KEYS.architecture);
  if (architecture !== base.architecture) {
    throw new AdapterMismatchError(`This adapter is for ${architecture === undefined ? 'an unnamed architecture' : `'${architecture}' models`}; the model in use is '${base.architecture}'.`, {
      key: LORA_KEYS.architecture,
      adapter: architecture ?? null,
      model: base.architecture,
    });
  }
  let alpha: number | undefined;
  try {
    alpha = findNumber(file, LORA_KEYS.alpha);
  } catch (error) {
    throw new AdapterFormatError(`adapter: ${(error as Error).message}`, { key: LORA_KEYS.alpha });
  }
  alpha ??= 0;
  if (!Number.isFinite(alpha) || alpha < 0) {
    throw new AdapterFormatError(`adapter.lora.alpha is ${alpha}; it must be a finite number >= 0`, { key: LORA_KEYS.alpha, value: String(alpha) });
  }

  // Pair .lora_a and .lora_b by base name.
  const pairs = new Map<string, { a?: GgufTensorInfo; b?: GgufTensorInfo }>();
  for (const t of file.tensors) {
    const m = /^(.*)\.lora_([ab])$/.exec(t.name);
    if (!m) {
      if (t.name.endsWith('_norm.weight')) continue;
      throw new AdapterFormatError(`adapter tensor '${t.name}' is neither a .lora_a nor a .lora_b`, { tensor: t.name });
    }
    const pair = pairs.get(m[1]!) ?? {};
    pair[m[2] as 'a' | 'b'] = t;
    pairs.set(m[1]!, pair);
  }
  if (pairs.size === 0) throw new AdapterFormatError('the adapter has no .lora_a / .lora_b tensors', {});

  const baseShapes = new Map(modelTensors(base).map((s) => [s.name, s.shape]));
  const targets: LoraTargetInfo[] = [];
  for (const [name, { a, b }] of pairs) {
    if (!a || !b) throw new AdapterFormatError(`the pair for '${name}' has no .lora_${a ? 'b' : 'a'}`, { tensor: name });
    const baseShape = baseShapes.get(name);
    if (!baseShape) throw new AdapterMismatchError(`the adapter targets '${name}', which the ${base.architecture} model does not have (an adapter for another base model?)`, { tensor: name });
    if (!isLoraTarget(name)) throw new UnsupportedAdapterError(`the adapter targets '${name}'; adapters on it are not supported`, { tensor: name });
    const embedding = name === 'token_embd.weight';
    if (embedding && base.tensors.tiedEmbeddings) {
      throw new UnsupportedAdapterError('the adapter targets token_embd.weight of a model whose output reuses it (tied embeddings); not supported', { tensor: name });
    }
    for (const t of [a, b]) {
      if (quantFormat(t.type) === undefined) throw new AdapterFormatError(`${t.name}: tensor type ${ggmlTypeName(t.type)} has no decoder`, { tensor: t.name });
      if (trim(t.shape).length !== 2) throw new AdapterFormatError(`${t.name} is [${t.shape.join(', ')}]; a LoRA tensor is 2-D`, { tensor: t.name });
    }
    const [nIn, nOut] = embedding ? [baseShape[1]!, baseShape[0]!] : [baseShape[0]!, baseShape[1]!];
    // Embeddings: lora_a [r, nVocab], lora_b [r, nEmbd]; projections: lora_a [nIn, r], lora_b [r, nOut].
    const rank = embedding ? a.shape[0]! : a.shape[1]!;
    const wantA = embedding ? [rank, nIn] : [nIn, rank];
    const wantB = [rank, nOut];
    const shapeOk = (t: GgufTensorInfo, want: number[]) => t.shape[0] === want[0] && t.shape[1] === want[1];
    if (!shapeOk(a, wantA) || !shapeOk(b, wantB)) {
      throw new AdapterMismatchError(
        `${name} is [${baseShape.join(', ')}] in the model; its adapter pair is lora_a [${a.shape.join(', ')}], lora_b [${b.shape.join(', ')}], ` +
          `expected [${wantA.join(', ')}] and [${wantB.join(', ')}] for rank ${rank}`,
        { tensor: name, base: baseShape, a: a.shape, b: b.shape },
      );
    }
    if (!Number.isInteger(rank) || rank < 1 || rank > Math.min(nIn, nOut, MAX_LORA_RANK)) {
      throw new AdapterFormatError(`${name}: rank ${rank} must be 1..${Math.min(nIn, nOut, MAX_LORA_RANK)} (at most the smaller side of the matrix)`, { tensor: name, rank });
    }
    targets.push({ base: name, rank, nIn, nOut, embedding, a, b });
  }
  // Model order: the order the forward pass meets them (stable listings and uploads).
  const order = [...baseShapes.keys()];
  targets.sort((x, y) => order.indexOf(x.base) - order.indexOf(y.base));
  return { architecture: base.architecture, alpha, name: str('general.name'), targets };
}
