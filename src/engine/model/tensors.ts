/**
 * The tensors a model of a given {@link ModelConfig} reads, by GGUF name with GGUF-order shapes
 * (ne0 first), as llama.cpp's loaders create them (src/models/<arch>.cpp `load_arch_tensors`,
 * names from src/llama-arch.cpp), and `checkTensors`, which holds a file to that list. A block's
 * tensors come from the one table of them, `LAYER_TENSORS` (layer-tensors.ts).
 */
import { ggmlTypeName } from '../gguf/ggml-types.ts';
import { QUANT_FORMATS, quantFormat } from '../gguf/quants/index.ts';
import type { GgufFile, GgufTensorInfo } from '../gguf/types.ts';
import type { ModelConfig } from './config.ts';
import { ModelConfigError, UnsupportedModelError } from './errors.ts';
import { layerTensorName, layerTensorsOf } from './layer-tensors.ts';

/**
 * A matrix: two or more dimensions above 1. Matrices stay in their file type (kernels read them);
 * everything else (norms, biases, rope factors) is a vector, widened to f32 at load.
 */
export function isMatrix(t: { shape: readonly number[] }): boolean {
  return t.shape.filter((d) => d > 1).length >= 2;
}

export interface TensorSpec {
  name: string;
  /** GGUF order: ne0 (row length) first. A projection from n_in to n_out is [n_in, n_out]. */
  shape: number[];
  /** May be absent (phi3's long/short rope factors are each optional). */
  optional?: boolean;
}

/** Every tensor the forward pass of `config` reads, in load order. */
export function modelTensors(config: ModelConfig): TensorSpec[] {
  const { nEmbd, nVocab, tensors: t } = config;
  const out: TensorSpec[] = [{ name: 'token_embd.weight', shape: [nEmbd, nVocab] }];
  const halfRot = config.rope.nRot / 2;
  if (config.rope.factors === 'freqs') out.push({ name: 'rope_freqs.weight', shape: [halfRot] });
  if (config.rope.factors === 'long-short') {
    out.push({ name: 'rope_factors_long.weight', shape: [halfRot], optional: true });
    out.push({ name: 'rope_factors_short.weight', shape: [halfRot], optional: true });
  }
  for (let il = 0; il < config.nLayer; il++) {
    const layer = config.layers[il]!;
    for (const [, entry] of layerTensorsOf(config, layer)) out.push({ name: layerTensorName(il, entry), shape: entry.shape(config, layer) });
  }
  out.push({ name: config.outputNorm, shape: [nEmbd] });
  if (!t.tiedEmbeddings) out.push({ name: 'output.weight', shape: [nEmbd, nVocab] });
  if (t.outputBias) out.push({ name: 'output.bias', shape: [nVocab] });
  return out;
}

/** Blocks the file has tensors for: one past the highest N of its `blk.N.` tensors. */
function blocksWithTensors(tensors: readonly { name: string }[]): number {
  let blocks = 0;
  for (const { name } of tensors) {
    const match = /^blk\.(\d+)\./.exec(name);
    if (match) blocks = Math.max(blocks, Number(match[1]) + 1);
  }
  return blocks;
}

/**
 * The sizes that decide how much the list of expected tensors (and later the load) allocates,
 * held to the tensors the file has before that list is built: the layer count to the `blk.N`
 * tensors, the vocabulary and embedding sizes to `token_embd`.
 */
function checkSizesAgainstTensors(config: ModelConfig, tensors: readonly Pick<GgufTensorInfo, 'name' | 'shape'>[]): void {
  const blocks = blocksWithTensors(tensors);
  if (blocks !== config.nLayer) {
    throw new ModelConfigError(
      `${config.architecture} model: block_count is ${config.nLayer} but the file has tensors for ${blocks} blocks` +
        (blocks > 0 ? ` (blk.0 to blk.${blocks - 1})` : ''),
      { key: `${config.architecture}.block_count`, nLayer: config.nLayer, blocks },
    );
  }
  const embd = tensors.find((t) => t.name === 'token_embd.weight');
  if (embd && (embd.shape[0] !== config.nEmbd || (embd.shape[1] ?? 1) !== config.nVocab)) {
    throw new ModelConfigError(
      `${config.architecture} model: token_embd.weight is [${embd.shape.join(', ')}] but the metadata gives ` +
        `${config.nEmbd} embedding dimensions and ${config.nVocab} tokens, so [${config.nEmbd}, ${config.nVocab}]`,
      { tensor: 'token_embd.weight', shape: embd.shape, nEmbd: config.nEmbd, nVocab: config.nVocab },
    );
  }
}

/** Drops trailing 1s (ggml_n_dims), so [64, 1] and [64] compare equal. */
function trimShape(shape: readonly number[]): number[] {
  const s = [...shape];
  while (s.length > 1 && s[s.length - 1] === 1) s.pop();
  return s;
}

const MAX_LISTED = 12;

function listed(items: string[]): string {
  return items.length <= MAX_LISTED ? items.join('; ') : `${items.slice(0, MAX_LISTED).join('; ')}; and ${items.length - MAX_LISTED} more`;
}

/**
 * Holds the file's tensors to {@link modelTensors}: each required one present, each present one of
 * the expected shape, nothing left over (llama.cpp also refuses a file with tensors it did not
 * load), and every type one we can decode. Throws {@link ModelConfigError} naming the missing,
 * misshapen and unexpected tensors, or {@link UnsupportedModelError} naming the tensor types we
 * cannot decode and the ones we can.
 */
export function checkTensors(config: ModelConfig, file: Pick<GgufFile, 'tensors'>): void {
  checkSizesAgainstTensors(config, file.tensors);
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const expected = modelTensors(config);
  const expectedNames = new Set(expected.map((s) => s.name));
  const missing: string[] = [];
  const misshapen: string[] = [];
  for (const spec of expected) {
    const t = byName.get(spec.name);
    if (!t) {
      if (!spec.optional) missing.push(spec.name);
      continue;
    }
    const got = trimShape(t.shape);
    const want = trimShape(spec.shape);
    if (got.length !== want.length || got.some((v, i) => v !== want[i])) {
      misshapen.push(`${spec.name} is [${t.shape.join(', ')}], expected [${spec.shape.join(', ')}]`);
    }
  }
  const unexpected = file.tensors.filter((t) => !expectedNames.has(t.name)).map((t) => t.name);
  if (missing.length || misshapen.length || unexpected.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing tensors: ${listed(missing)}`);
    if (misshapen.length) parts.push(`wrong shapes: ${listed(misshapen)}`);
    if (unexpected.length) parts.push(`tensors a ${config.architecture} model does not use: ${listed(unexpected)}`);
    throw new ModelConfigError(`${config.architecture} model: ${parts.join('. ')}`, {
      architecture: config.architecture,
      missing,
      misshapen,
      unexpected,
    });
  }
  const badTypes = expected
    .map((s) => byName.get(s.name))
    .filter((t): t is NonNullable<typeof t> => t !== undefined && quantFormat(t.type) === undefined)
    .map((t) => `${t.name} (${ggmlTypeName(t.type)})`);
  if (badTypes.length) {
    const supported = QUANT_FORMATS.map((f) => f.name);
    throw new UnsupportedModelError(`tensor types we cannot decode: ${listed(badTypes)}; supported types: ${supported.join(', ')}`, {
      tensors: badTypes,
      supported,
    });
  }
}
