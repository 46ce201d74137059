/**
 * Models split across several GGUF files by llama.cpp's gguf-split: `<prefix>-00001-of-00003.gguf`
 * ... Each part is a complete GGUF file with `split.no` (0-based), `split.count` and, in the first
 * part, `split.tensors.count`. The first part carries the model metadata; the tensors are spread
 * over all parts. {@link openGgufModel} presents them as one model.
 */
import { GgufFormatError } from './errors.ts';
import { readGguf, type ReadGgufOptions } from './reader.ts';
import type { RangedSource } from './source.ts';
import type { GgufFile, GgufTensorInfo, GgufTypeInfo, GgufValue } from './types.ts';

export const SPLIT_NO = 'split.no';
export const SPLIT_COUNT = 'split.count';
export const SPLIT_TENSORS_COUNT = 'split.tensors.count';

const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** The file name of part `index` (0-based) of `count`, as llama.cpp's llama_split_path. */
export function splitPartName(prefix: string, index: number, count: number): string {
  return `${prefix}-${String(index + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`;
}

/**
 * All part names from any part's name ("m-00001-of-00003.gguf" gives the three names, in order),
 * or undefined when the name does not follow the split pattern. Works on paths and URLs alike.
 */
export function splitFileNames(name: string): string[] | undefined {
  const match = SPLIT_NAME.exec(name);
  if (!match) return undefined;
  const index = Number(match[2]);
  const count = Number(match[3]);
  if (count < 1 || index < 1 || index > count) return undefined;
  return Array.from({ length: count }, (_, i) => splitPartName(match[1]!, i, count));
}

/**
 * The URLs of a model: a single URL naming one part of a split model stands for all its parts, as
 * in llama.cpp's --model-url (`.../m-00002-of-00003.gguf?download=true` gives the three parts'
 * URLs, each with the same query); any other list is returned as it is.
 */
export function expandSplitUrls(urls: readonly string[]): string[] {
  if (urls.length === 1) {
    const url = urls[0]!;
    // The query or fragment is not part of the file name; every part's URL keeps it.
    const at = url.search(/[?#]/);
    const [path, query] = at < 0 ? [url, ''] : [url.slice(0, at), url.slice(at)];
    const names = splitFileNames(path);
    if (names && names.length > 1) return names.map((n) => n + query);
  }
  return [...urls];
}

/** A tensor of a (possibly split) model, knowing where its bytes are. */
export interface GgufModelTensor extends GgufTensorInfo {
  /** Index of the part (0-based `split.no`) holding the data. */
  part: number;
  /** The source to read the data from, at `fileOffset`. */
  source: RangedSource;
}

export interface GgufModel {
  version: 2 | 3;
  /** The first part's metadata: the model's hyperparameters and tokenizer. */
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufTypeInfo>;
  /** Every tensor of every part, in part order. */
  tensors: GgufModelTensor[];
  tensorsByName: Map<string, GgufModelTensor>;
  /** The parsed parts, in `split.no` order (one for an unsplit file). */
  parts: GgufFile[];
  sources: RangedSource[];
  /** Total size of all parts in bytes. */
  fileSize: number;
}

function splitInt(file: GgufFile, key: string, source: RangedSource): number | undefined {
  const value = file.metadata.get(key);
  if (value === undefined) return undefined;
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new GgufFormatError(`GGUF: ${key} in ${source.name ?? 'a split part'} is ${String(value)}, expected a non-negative integer`, {
      offset: 0,
      expected: `${key}: a non-negative integer`,
      actual: String(value),
      key,
      ...(source.name !== undefined ? { source: source.name } : {}),
    });
  }
  return n;
}

function splitError(message: string, expected: string, source?: RangedSource): never {
  throw new GgufFormatError(`GGUF: ${message}`, {
    offset: 0,
    expected,
    ...(source?.name !== undefined ? { source: source.name } : {}),
  });
}

/**
 * Opens a model from one GGUF file or from all parts of a split model (in any order: parts are
 * put in `split.no` order, so a caller that lists them out of order still gets the right model).
 * Validates that the parts belong together: every part has `split.no` and the same `split.count`,
 * each index appears exactly once and none is missing, tensor names are unique across parts, and
 * the tensor total matches `split.tensors.count`.
 */
export async function openGgufModel(sources: RangedSource[], options?: ReadGgufOptions): Promise<GgufModel> {
  if (sources.length === 0) throw new TypeError('openGgufModel needs at least one source');
  const files = await Promise.all(sources.map((source) => readGguf(source, options)));
  return assembleGgufModel(files.map((file, i) => ({ file, source: sources[i]! })));
}

/**
 * {@link openGgufModel} for headers already parsed (each with the source it was read from): the
 * same validation, no second read.
 */
export function assembleGgufModel(given: ReadonlyArray<{ file: GgufFile; source: RangedSource }>): GgufModel {
  if (given.length === 0) throw new TypeError('assembleGgufModel needs at least one part');
  const ordered: Array<{ file: GgufFile; source: RangedSource }> = new Array(given.length);

  const count0 = splitInt(given[0]!.file, SPLIT_COUNT, given[0]!.source);
  if (given.length === 1 && (count0 === undefined || count0 <= 1)) {
    ordered[0] = given[0]!;
  } else {
    for (let i = 0; i < given.length; i++) {
      const { file, source } = given[i]!;
      const count = splitInt(file, SPLIT_COUNT, source);
      const no = splitInt(file, SPLIT_NO, source);
      if (count === undefined || no === undefined) {
        splitError(`${source.name ?? `source ${i}`} is not part of a split model (no ${SPLIT_COUNT}/${SPLIT_NO})`, 'split.count and split.no', source);
      }
      if (count !== given.length) {
        splitError(
          `${source.name ?? `source ${i}`} says the model has ${count} parts, but ${given.length} were given` +
            (count > given.length ? missingParts(given, count) : ''),
          `${given.length} parts`,
          source,
        );
      }
      if (no >= count) splitError(`${source.name ?? `source ${i}`} has split.no ${no} of ${count}`, `split.no below ${count}`, source);
      if (ordered[no]) {
        splitError(`part ${no} given twice (${ordered[no].source.name ?? '?'} and ${source.name ?? '?'})`, 'each part once', source);
      }
      ordered[no] = { file, source };
    }
  }

  const first = ordered[0]!;
  const tensors: GgufModelTensor[] = [];
  const tensorsByName = new Map<string, GgufModelTensor>();
  ordered.forEach(({ file, source }, part) => {
    for (const t of file.tensors) {
      if (tensorsByName.has(t.name)) {
        splitError(`tensor '${t.name}' appears in more than one part (again in part ${part})`, 'unique tensor names across parts', source);
      }
      const tensor: GgufModelTensor = { ...t, part, source };
      tensors.push(tensor);
      tensorsByName.set(t.name, tensor);
    }
  });
  if (ordered.length > 1) {
    const expected = splitInt(first.file, SPLIT_TENSORS_COUNT, first.source);
    if (expected === undefined) splitError(`the first part has no ${SPLIT_TENSORS_COUNT}`, SPLIT_TENSORS_COUNT, first.source);
    if (expected !== tensors.length) {
      splitError(`the parts hold ${tensors.length} tensors but ${SPLIT_TENSORS_COUNT} is ${expected} (a part is missing or wrong)`, `${expected} tensors`, first.source);
    }
  }
  return {
    version: first.file.version,
    metadata: first.file.metadata,
    metadataTypes: first.file.metadataTypes,
    tensors,
    tensorsByName,
    parts: ordered.map((p) => p.file),
    sources: ordered.map((p) => p.source),
    fileSize: ordered.reduce((sum, p) => sum + p.file.fileSize, 0),
  };
}

/** " (missing: parts 2, 3 of 3)": the 1-based part numbers, as in the file names, no split.no says it holds. */
function missingParts(given: ReadonlyArray<{ file: GgufFile; source: RangedSource }>, count: number): string {
  const present = new Set(given.map(({ file }) => file.metadata.get(SPLIT_NO)).map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  const missing: number[] = [];
  for (let no = 0; no < count && missing.length < 8; no++) if (!present.has(no)) missing.push(no + 1);
  if (missing.length === 0) return '';
  return ` (missing: part${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${count})`;
}
