/**
 * `hearth serve MODEL.gguf [--port N] [--host H] [--backend auto|webgpu|cpu] [--api-key K] ...`:
 * loads the model into the engine (the tab's own, under Node) and serves it over the OpenAI HTTP API
 * (src/server/server.ts) until interrupted. Binds to 127.0.0.1 unless --host says otherwise; the
 * API key may come from HEARTH_API_KEY instead of the command line, where other users' `ps` shows it.
 * One part of a split model (m-00001-of-00003.gguf) loads them all.
 */
import { openAsBlob } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { BackendChoice } from '../../engine/api.ts';
import { Engine } from '../../engine/engine.ts';
import { splitFileNames } from '../../engine/gguf/split.ts';
import { createHearthServer } from '../../server/server.ts';
import { UsageError, backendArg, parseFlags, type CliCommand } from '../command.ts';

const BACKENDS: readonly BackendChoice[] = ['auto', 'webgpu', 'cpu'];

function integerFlag(values: Map<string, string>, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = values.get(name);
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got '${raw}'`);
  return v;
}

/** The files of the model: every part of a split model, from any one part's path. */
function modelPaths(path: string): string[] {
  const parts = splitFileNames(basename(path));
  return parts ? parts.map((name) => join(dirname(path), name)) : [path];
}

/** What clients call the model: the file name without `.gguf` (and without a split part's suffix). */
function defaultModelId(path: string): string {
  return basename(path).replace(/-\d{5}-of-\d{5}\.gguf$/, '').replace(/\.gguf$/i, '');
}

/** Ends `serve` at the first SIGINT or SIGTERM. */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export interface ServeHooks {
  /** Resolves when the server should stop (default: SIGINT or SIGTERM). */
  stop?: Promise<void>;
  /** Called with the base URL once the server listens. */
  onListening?: (url: string) => void;
  /** Where the progress lines go (default stderr). */
  print?: (line: string) => void;
}

/** `hearth serve` with its stop and progress hooks, for tests to run it in-process. */
export async function serve(args: string[], hooks: ServeHooks = {}): Promise<number> {
  const print = hooks.print ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const { positional, values } = parseFlags(args, {
    values: ['--port', '--host', '--backend', '--threads', '--ctx', '--api-key', '--model-id', '--max-queue', '--cors-origin', '--allowed-host'],
  });
  if (positional.length !== 1) throw new UsageError('serve takes one model file');
  const port = integerFlag(values, '--port', 0, 65535) ?? 8080;
  const host = values.get('--host') ?? '127.0.0.1';
  const backend = (values.get('--backend') ?? 'auto') as BackendChoice;
  if (!BACKENDS.includes(backend)) throw new UsageError(`unknown backend '${backend}' (${BACKENDS.join(', ')})`);
  const threads = integerFlag(values, '--threads', 1, 256);
  if (threads !== undefined && backend === 'webgpu') throw new UsageError('--threads applies to the CPU backend only');
  const contextLength = integerFlag(values, '--ctx', 1);
  const maxWaiting = integerFlag(values, '--max-queue', 0, 100_000);
  const apiKey = values.get('--api-key') ?? (process.env.HEARTH_API_KEY || undefined);
  if (apiKey !== undefined && apiKey.length === 0) throw new UsageError('--api-key must not be empty');
  const corsOrigins = values.get('--cors-origin')?.split(',').map((o) => o.trim()).filter(Boolean);
  const allowedHosts = values.get('--allowed-host')?.split(',').map((h) => h.trim()).filter(Boolean);
  const path = positional[0]!;
  const modelId = values.get('--model-id') ?? defaultModelId(path);

  const files = await Promise.all(
    modelPaths(path).map(async (file) => {
      try {
        return { file: await openAsBlob(file), name: basename(file) };
      } catch (error) {
        throw new UsageError(`cannot open ${file} (${(error as Error).message})`);
      }
    }),
  );
  let platform: ConstructorParameters<typeof Engine>[0] = { gpu: undefined, runtime: `node ${process.version}` };
  if (backend !== 'cpu') {
    const { nodeGpu, nodeProbeOptions } = await import('../../node/webgpu.ts');
    platform = { ...platform, gpu: nodeGpu(), probeOptions: nodeProbeOptions() };
  }
  const engine = new Engine(platform);
  print(`loading ${path} ...`);
  const info = await engine.loadModel({ kind: 'file', files }, {
    backend,
    ...(threads !== undefined ? { threads } : {}),
    ...(contextLength !== undefined ? { contextLength } : {}),
  });
  print(`${info.name}: ${info.architecture}, ${info.quantization}, context ${info.contextLength}, on ${info.backend}${info.backendNotice ? ` (${info.backendNotice})` : ''}`);
  if (info.templateFallback) print(info.templateFallback);

  const server = createHearthServer({
    engine,
    modelId,
    apiKey,
    ...(maxWaiting !== undefined ? { maxWaiting } : {}),
    ...(corsOrigins ? { corsOrigins } : {}),
    ...(allowedHosts ? { allowedHosts } : {}),
    log: print,
  });
  let url: string;
  try {
    url = await server.listen(port, host);
  } catch (error) {
    await engine.unloadModel();
    throw error;
  }
  print(`serving '${modelId}' at ${url}/v1 (OpenAI API${apiKey ? ', API key required' : ''}); Ctrl-C stops`);
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1' && !apiKey) {
    print(`note: listening on ${host} without --api-key: anyone who can reach this address can use the model`);
  }
  hooks.onListening?.(url);
  await (hooks.stop ?? interrupted());
  print('stopping: ending requests in flight');
  await server.close();
  await engine.unloadModel();
  return 0;
}

export const serveCommand: CliCommand = {
  usage:
    'serve MODEL.gguf [--port N] [--host 127.0.0.1] [--backend auto|webgpu|cpu] [--threads N] [--ctx N] [--api-key K] [--model-id NAME] [--max-queue N] [--cors-origin ORIGIN,...] [--allowed-host NAME[:PORT],...]   serve the model over the OpenAI API',
  needsGpu: (args) => backendArg(args) !== 'cpu',
  run: (args) => serve(args),
};
