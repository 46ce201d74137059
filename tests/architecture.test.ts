/**
 * The engine's import rules, checked on the source text (plain reads and a regex, no compiler):
 * - the engine ships to the browser and runs in Node, so nothing under src/engine outside its tests
 *   imports test support, benchmarks, the CLI, the UI or Node glue;
 * - its layers import downwards only: gguf, tokenizer and chat at the bottom, then the backends,
 *   the model, generation and the store, and the engine's entry files (engine.ts, api.ts, the
 *   worker, the client) on top.
 * A known violation waits in KNOWN_VIOLATIONS until it is fixed; an entry whose import is gone
 * fails the test, so the list only shrinks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENGINE = 'src/engine';

interface Import {
  /** The importing file, relative to the repository root. */
  from: string;
  /** The specifier as written. */
  specifier: string;
  /** For relative specifiers: the imported file, relative to the repository root. */
  target?: string;
}

/** `import ... from 'x'`, `export ... from 'x'`, `import 'x'` and `import('x')`. */
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx|js|mjs)$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => {
    const specifier = (m[1] ?? m[2] ?? m[3])!;
    if (!specifier.startsWith('.')) return { from: file, specifier };
    const target = relative(ROOT, resolve(ROOT, dirname(file), specifier.replace(/\?raw$/, ''))).split('\\').join('/');
    return { from: file, specifier, target };
  });
}

const engineImports = sourceFiles(ENGINE).flatMap(importsOf);

/** What engine code never imports: code that only tests, benchmarks, the CLI, the UI or Node run. */
const FORBIDDEN_TARGETS: Array<[RegExp, string]> = [
  [/^src\/testing\//, 'test support (src/testing)'],
  [/^src\/bench\//, 'benchmarks (src/bench)'],
  [/^src\/cli\//, 'the CLI (src/cli)'],
  [/^src\/ui\//, 'the UI (src/ui)'],
  [/^src\/node\//, 'Node glue (src/node)'],
  [/\.test\.tsx?$/, 'a test file'],
  [/(^|\/)[^/]*bench[^/]*$/, 'a benchmark file'],
];
const FORBIDDEN_PACKAGES = ['vitest', '@playwright/test', 'playwright-core'];

/**
 * The engine's layers, bottom first. Files directly in src/engine are its entry points (engine.ts,
 * api.ts, worker.ts, client.ts, ...), except the leaf modules of BASE, which everything may use.
 */
type Layer = 'base' | 'gguf' | 'tokenizer' | 'chat' | 'sampling' | 'grammar' | 'compress' | 'backend' | 'model' | 'generate' | 'train' | 'store' | 'entry' | 'rpc';

/** Files directly in src/engine that import nothing of the engine's, for every layer to use. */
const BASE = new Set(['errors.ts', 'version.ts', 'format-bytes.ts']);

function layerOf(path: string): Layer | undefined {
  if (!path.startsWith(`${ENGINE}/`)) return undefined;
  const rest = path.slice(ENGINE.length + 1);
  if (!rest.includes('/')) return BASE.has(rest) ? 'base' : 'entry';
  return rest.slice(0, rest.indexOf('/')) as Layer;
}

/** For each layer, the layers above it: what it must not import. */
const ABOVE: Record<Layer, readonly Layer[]> = {
  base: ['gguf', 'tokenizer', 'chat', 'sampling', 'grammar', 'compress', 'backend', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  gguf: ['sampling', 'grammar', 'compress', 'backend', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  tokenizer: ['sampling', 'grammar', 'compress', 'backend', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  chat: ['sampling', 'grammar', 'compress', 'backend', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  // The sampling rule and its parameters: what both backends and the token loop share.
  sampling: ['gguf', 'tokenizer', 'chat', 'grammar', 'compress', 'backend', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  // Constrained decoding (GBNF, JSON schema, token masks): works on token byte strings, so it needs
  // no tokenizer; the token loop builds a constraint from it, the backends only see a mask.
  grammar: ['gguf', 'tokenizer', 'chat', 'sampling', 'compress', 'backend', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  // Compression (quantize, imatrix): reads and writes GGUF, runs no model itself.
  compress: ['tokenizer', 'chat', 'sampling', 'grammar', 'backend', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  backend: ['tokenizer', 'compress', 'chat', 'grammar', 'model', 'generate', 'train', 'store', 'entry', 'rpc'],
  model: ['grammar', 'generate', 'train', 'store', 'entry', 'rpc'],
  generate: ['train', 'store', 'entry', 'rpc'],
  // The store names what it holds as the loaded model does (model/quantization.ts), nothing more.
  store: ['backend', 'grammar', 'generate', 'train', 'entry', 'rpc'],
  // LoRA training: over the model's config, tensors and adapter files, and the backend op interface.
  train: ['generate', 'store', 'entry', 'rpc'],
  entry: ['rpc'],
  // The worker boundary (src/engine/rpc): the outermost wing, serving the entry files.
  rpc: [],
};

/** api.ts is the boundary's vocabulary (request, chunk and result types): generation speaks it. */
const ALLOWED_UPWARD = new Set(['src/engine/generate -> src/engine/api.ts']);

/**
 * Above the backends, only the entry files (which construct a backend) see past `backend/ops.ts`
 * and `backend/train-ops.ts`, the op interfaces (inference, training) the backends implement.
 */
const BACKEND_INTERFACES = new Set([`${ENGINE}/backend/ops.ts`, `${ENGINE}/backend/train-ops.ts`]);
function reachesIntoBackend(from: Layer, target: string): boolean {
  return from !== 'backend' && from !== 'entry' && target.startsWith(`${ENGINE}/backend/`) && !BACKEND_INTERFACES.has(target);
}

/** Imports that break a rule today, each with the change that removes it. */
const KNOWN_VIOLATIONS = new Map<string, string>([]);

function layerViolations(): string[] {
  const found: string[] = [];
  for (const { from, target } of engineImports) {
    if (!target) continue;
    const fromLayer = layerOf(from)!;
    const toLayer = layerOf(target);
    if (!toLayer || toLayer === fromLayer) continue;
    const edge = `${from} -> ${target}`;
    const upward = ABOVE[fromLayer].includes(toLayer) && !ALLOWED_UPWARD.has(`${ENGINE}/${fromLayer} -> ${target}`);
    if (upward || reachesIntoBackend(fromLayer, target)) found.push(edge);
  }
  return found;
}

describe('engine import rules', () => {
  it('reads the engine sources', () => {
    // A guard against a broken scan passing vacuously.
    expect(new Set(engineImports.map((i) => i.from)).size).toBeGreaterThan(50);
    expect(engineImports.some((i) => i.target === `${ENGINE}/backend/ops.ts`)).toBe(true);
  });

  it('never imports test, benchmark, CLI, UI or Node code', () => {
    const bad = engineImports.flatMap(({ from, specifier, target }) => {
      if (!target) return FORBIDDEN_PACKAGES.includes(specifier) ? [`${from} imports ${specifier}`] : [];
      const rule = FORBIDDEN_TARGETS.find(([pattern]) => pattern.test(target));
      return rule ? [`${from} imports ${rule[1]}: ${target}`] : [];
    });
    expect(bad).toEqual([]);
  });

  it('imports downwards only: no lower layer imports a higher one', () => {
    const unknown = layerViolations().filter((edge) => !KNOWN_VIOLATIONS.has(edge));
    expect(unknown).toEqual([]);
  });

  it('lists only known violations that still exist', () => {
    const present = new Set(layerViolations());
    const stale = [...KNOWN_VIOLATIONS.keys()].filter((edge) => !present.has(edge));
    expect(stale, 'fixed: remove these from KNOWN_VIOLATIONS').toEqual([]);
  });
});
