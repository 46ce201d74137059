/**
 * Shared by the tokenizer tests: llama.cpp's vocab files and suites, loaded the way the engine
 * loads a model (GGUF reader over a Node file source, then Tokenizer.fromGgufMetadata).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { llamaCppSourceDir, llamaRefTokenizeMany } from '../../src/testing/llama-ref.ts';

export function vocabDir(): string {
  return join(llamaCppSourceDir(), 'models');
}

export function vocabPath(name: string): string {
  return join(vocabDir(), `ggml-vocab-${name}.gguf`);
}

/** Names (the part after ggml-vocab-) of every vocab file in llama.cpp's models/. */
export function vocabNames(): string[] {
  return readdirSync(vocabDir())
    .filter((f) => /^ggml-vocab-.*\.gguf$/.test(f))
    .map((f) => f.slice('ggml-vocab-'.length, -'.gguf'.length))
    .sort();
}

const metadataCache = new Map<string, Promise<Map<string, unknown>>>();

/** A GGUF file's metadata (cached per path for the test file's lifetime). */
export function readMetadata(path: string): Promise<Map<string, unknown>> {
  let md = metadataCache.get(path);
  if (!md) {
    md = (async () => {
      const source = await nodeFileSource(path);
      try {
        return (await readGguf(source)).metadata;
      } finally {
        await source.close();
      }
    })();
    metadataCache.set(path, md);
  }
  return md;
}

const cache = new Map<string, Promise<Tokenizer>>();

export function loadTokenizer(name: string): Promise<Tokenizer> {
  let t = cache.get(name);
  if (!t) {
    t = readMetadata(vocabPath(name)).then((md) => Tokenizer.fromGgufMetadata(md));
    cache.set(name, t);
  }
  return t;
}

export interface SuiteCase {
  /** The input exactly as bytes (the .inp files are UTF-8, but are read as bytes by llama.cpp). */
  input: Uint8Array;
  expected: number[];
}

/**
 * A vocab's .inp/.out suite read as test-tokenizer-0.cpp reads it: inputs split on
 * "\n__ggml_vocab_test__\n" (no empty case after a trailing separator), outputs one line each,
 * stripped and split on spaces; into a map keyed by input, so a repeated input keeps its last
 * expectation, as std::map's operator[] does. Undefined when the vocab has no suite.
 */
export function readSuite(name: string): SuiteCase[] | undefined {
  const base = vocabPath(name);
  if (!existsSync(`${base}.inp`) || !existsSync(`${base}.out`)) return undefined;
  const raw = readFileSync(`${base}.inp`).toString('latin1'); // one char per byte
  const outLines = readFileSync(`${base}.out`).toString('latin1').split('\n');
  if (outLines[outLines.length - 1] === '') outLines.pop(); // getline() yields no line after the last \n
  const sep = '\n__ggml_vocab_test__\n';
  const inputs: string[] = [];
  for (let pos = 0; pos < raw.length; ) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  if (inputs.length !== outLines.length) throw new Error(`${name}: ${inputs.length} inputs but ${outLines.length} outputs`);
  const cases = new Map<string, number[]>();
  inputs.forEach((input, i) => {
    const line = outLines[i]!.trim();
    cases.set(input, line === '' ? [] : line.split(' ').map((s) => Number.parseInt(s, 10)));
  });
  return [...cases].map(([input, expected]) => ({ input: Uint8Array.from(input, (c) => c.charCodeAt(0)), expected }));
}

/** A small deterministic PRNG (mulberry32), so a failing generated case can be regenerated. */
export { mulberry32 as rng } from '../../src/testing/random.ts';

function describeInput(input: string | Uint8Array): string {
  return typeof input === 'string' ? JSON.stringify(input) : `bytes[${[...input].map((b) => b.toString(16)).join(' ')}]`;
}

/**
 * Our ids against llama.cpp's (one llama-ref process per option set) for `corpus` with
 * add_special and parse_special both off and both on, and for `withSpecials` with one on and the
 * other off: the mismatches, described.
 */
export function tokenizationMismatches(
  tok: Tokenizer,
  modelPath: string,
  corpus: readonly (string | Uint8Array)[],
  withSpecials: readonly (string | Uint8Array)[],
): string[] {
  const failures: string[] = [];
  for (const [addSpecial, parseSpecial, inputs] of [
    [false, false, corpus],
    [true, true, corpus],
    [true, false, withSpecials],
    [false, true, withSpecials],
  ] as const) {
    const opts = { addSpecial, parseSpecial };
    const expected = llamaRefTokenizeMany(modelPath, inputs, opts);
    inputs.forEach((input, i) => {
      const got = tok.encode(input, opts);
      if (JSON.stringify(got) !== JSON.stringify(expected[i])) {
        failures.push(`${JSON.stringify(opts)} ${describeInput(input)}\n  llama.cpp ${expected[i]!.join(' ')}\n  ours      ${got.join(' ')}`);
      }
    });
  }
  return failures;
}
