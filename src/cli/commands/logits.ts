/**
 * `hearth logits FILE.gguf --tokens-file IDS.json --out OUT.f32 [--backend webgpu|cpu] [--batch N]`:
 * evaluates the ids as one sequence from position 0 and writes every position's logits as
 * little-endian f32, [n_tokens][n_vocab] (the layout llama-ref's `logits` writes, so the two files
 * compare directly). `--backend cpu` runs the WebAssembly CPU backend (`--threads N`, default 1)
 * and needs no GPU.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Model } from '../../engine/model/model.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { UsageError, backendArg, parseFlags, type CliCommand } from '../command.ts';
import { attachLoras, takeLoraFlags } from '../lora-flags.ts';
import { backendFlags, cliModelBackend, type CliBackend } from './backend.ts';
import type { PlannedLoad } from '../../engine/model/loader.ts';

export const logitsCommand: CliCommand = {
  usage: 'logits FILE.gguf --tokens-file IDS.json --out OUT.f32 [--backend webgpu|cpu] [--threads N] [--batch N] [--lora FILE[:SCALE]]...   write every position\'s logits (f32 LE)',
  needsGpu: (args) => backendArg(args) !== 'cpu',
  async run(allArgs) {
    const { rest: args, loras } = takeLoraFlags(allArgs);
    const { positional, values } = parseFlags(args, { values: ['--tokens-file', '--out', '--backend', '--threads', '--batch'] });
    if (positional.length !== 1) throw new UsageError('logits takes one model file');
    const tokensFile = values.get('--tokens-file');
    const out = values.get('--out');
    if (tokensFile === undefined) throw new UsageError('logits needs --tokens-file IDS.json (a JSON array of token ids)');
    if (out === undefined) throw new UsageError('logits needs --out OUT.f32');
    backendFlags(values);
    const batch = values.has('--batch') ? Number(values.get('--batch')) : undefined;
    if (batch !== undefined && (!Number.isInteger(batch) || batch < 1)) throw new UsageError('--batch must be a positive integer');

    const ids: unknown = JSON.parse(await readFile(tokensFile, 'utf8'));
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((t) => Number.isInteger(t) && t >= 0)) {
      throw new UsageError(`${tokensFile} must hold a non-empty JSON array of token ids`);
    }
    const tokens = ids as number[];

    const source = await nodeFileSource(positional[0]!);
    const sizing = { contextLength: Math.ceil(tokens.length / 256) * 256, ...(batch !== undefined ? { batch } : {}) };
    let made: CliBackend<PlannedLoad>;
    try {
      made = await cliModelBackend(values, source, sizing);
    } catch (error) {
      await source.close();
      throw error;
    }
    try {
      const model = await Model.load(made.backend, made.planned ?? source, sizing);
      await attachLoras(model, loras);
      const logits = await model.eval(tokens, { logits: 'all' });
      // Float32Array bytes are in the platform's order; every platform Node and WebGPU run on is little-endian.
      await writeFile(out, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
      model.destroy();
      process.stderr.write(`${tokens.length} positions x ${model.config.nVocab} logits -> ${out}\n`);
      return 0;
    } finally {
      await source.close();
      made.close();
    }
  },
};
