/**
 * `hearth eval MODEL.gguf [--reference ORIG.gguf] --text FILE [--ctx N]`: perplexity on a text as
 * llama-perplexity computes it (src/engine/compress/perplexity.ts), KL divergence and top-1
 * agreement of each window's distributions against the reference model's, and prefill and decode
 * speed on the chosen backend (measured, printed, never asserted).
 */
import { readFile, stat } from 'node:fs/promises';
import { EvalTotals, perplexityWindows } from '../../engine/compress/perplexity.ts';
import { readGguf } from '../../engine/gguf/reader.ts';
import { Model } from '../../engine/model/model.ts';
import { Tokenizer } from '../../engine/tokenizer/tokenizer.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { UsageError, backendArg, parseFlags, type CliCommand } from '../command.ts';
import { backendFlags, cliModelBackend } from './backend.ts';
import { formatBytes } from './inspect.ts';

const HELP = `eval MODEL.gguf --text FILE [--reference ORIG.gguf] [--ctx N] [--backend webgpu|cpu] [--threads N] [--json]
  perplexity (llama-perplexity's windows of --ctx tokens, default 512, second half scored),
  with --reference: mean KL(reference || model) and top-1 agreement; prefill and decode tokens/s`;

async function loadModel(path: string, values: Map<string, string>, nCtx: number) {
  const source = await nodeFileSource(path);
  const sizing = { contextLength: Math.ceil((nCtx + 64) / 256) * 256 };
  const made = await cliModelBackend(values, source, sizing).catch(async (error: unknown) => {
    await source.close();
    throw error;
  });
  const model = await Model.load(made.backend, made.planned ?? source, sizing);
  return { model, close: async () => (model.destroy(), made.close(), await source.close()) };
}

export const evalCommand: CliCommand = {
  usage: 'eval MODEL --text F   perplexity, KL and top-1 against --reference, prefill/decode speed (eval --help)',
  needsGpu: (args) => backendArg(args) !== 'cpu',
  async run(args) {
    if (args.includes('--help')) {
      process.stdout.write(`hearth ${HELP}\n`);
      return 0;
    }
    const { positional, values, switches } = parseFlags(args, {
      values: ['--text', '--reference', '--ctx', '--backend', '--threads'],
      switches: ['--json'],
    });
    if (positional.length !== 1) throw new UsageError(`usage: hearth ${HELP.split('\n')[0]}`);
    const textPath = values.get('--text');
    if (!textPath) throw new UsageError('eval needs --text FILE');
    const nCtx = values.has('--ctx') ? Number(values.get('--ctx')) : 512;
    if (!Number.isInteger(nCtx) || nCtx < 4) throw new UsageError('--ctx needs an integer of at least 4');
    backendFlags(values);
    const modelPath = positional[0]!;
    const refPath = values.get('--reference');

    const header = await nodeFileSource(modelPath);
    const tokenizer = Tokenizer.fromGgufMetadata((await readGguf(header).finally(() => header.close())).metadata);
    const tokens = tokenizer.encode(new Uint8Array(await readFile(textPath)), { addSpecial: true });
    const bos = tokenizer.vocab.flags.addBos ? (tokenizer.vocab.special.bos ?? undefined) : undefined;
    const windows = perplexityWindows(tokens, nCtx, bos);

    // The reference's rows first (one model in memory at a time), kept for the scored half only.
    let refRows: Float32Array[] | undefined;
    if (refPath) {
      const ref = await loadModel(refPath, values, nCtx);
      try {
        refRows = [];
        for (const w of windows) {
          ref.model.reset();
          refRows.push(EvalTotals.scoredRows(await ref.model.eval(w.tokens, { logits: 'all' }), nCtx, ref.model.config.nVocab));
        }
      } finally {
        await ref.close();
      }
    }

    const m = await loadModel(modelPath, values, nCtx);
    const totals = new EvalTotals();
    let prefillMs = 0;
    let decodeMs = 0;
    const decodeTokens = Math.min(32, nCtx);
    try {
      const nVocab = m.model.config.nVocab;
      for (let i = 0; i < windows.length; i++) {
        const w = windows[i]!;
        m.model.reset();
        const t0 = performance.now();
        const logits = await m.model.eval(w.tokens, { logits: 'all' });
        prefillMs += performance.now() - t0;
        totals.addWindow(w, logits, nVocab, refRows?.[i]);
      }
      // Decode: one token at a time after a short prompt, as generation runs.
      m.model.reset();
      await m.model.eval(windows[0]!.tokens.slice(0, 8));
      const t0 = performance.now();
      for (let k = 0; k < decodeTokens; k++) await m.model.eval([windows[0]!.tokens[8 + (k % (nCtx - 8))]!]);
      decodeMs = performance.now() - t0;
    } finally {
      await m.close();
    }

    const size = (await stat(modelPath)).size;
    const refSize = refPath ? (await stat(refPath)).size : undefined;
    const result = {
      model: modelPath,
      bytes: size,
      ...(refSize !== undefined ? { reference: refPath, compression: refSize / size } : {}),
      tokens: tokens.length,
      nCtx,
      chunks: windows.length,
      perplexity: totals.perplexity,
      ...(refRows ? { meanKl: totals.meanKl, top1Agreement: totals.top1Agreement } : {}),
      prefillTokensPerSecond: (windows.length * nCtx) / (prefillMs / 1000),
      decodeTokensPerSecond: decodeTokens / (decodeMs / 1000),
    };
    if (switches.has('--json')) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    } else {
      const lines = [
        `${modelPath}: ${formatBytes(size)}${result.compression ? ` (${result.compression.toFixed(2)}x smaller than the reference)` : ''}`,
        `perplexity ${result.perplexity.toFixed(4)} over ${totals.count} positions (${windows.length} windows of ${nCtx})`,
        ...(refRows ? [`KL(reference || model) ${totals.meanKl.toExponential(3)} nats, top-1 agreement ${(100 * totals.top1Agreement).toFixed(2)}%`] : []),
        `prefill ${result.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${result.decodeTokensPerSecond.toFixed(1)} tok/s`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  },
};
