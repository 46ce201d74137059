/**
 * `hearth prune MODEL.gguf OUT.gguf --text CALIB.txt [--drop-layers N | --layers 3,5] [--ffn-keep R]`:
 * structured pruning (src/engine/compress/prune.ts) chosen by importances measured on a
 * calibration text (src/engine/compress/prune-importance.ts) with the engine's forward pass.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logSoftmaxAt } from '../../engine/compress/perplexity.ts';
import { readGguf } from '../../engine/gguf/reader.ts';
import type { RangedSource } from '../../engine/gguf/source.ts';
import type { GgufFile } from '../../engine/gguf/types.ts';
import { channelGranularity, ffnWidths, planPrune, pruneChunks, type PruneSpec } from '../../engine/compress/prune.ts';
import { ffnDownColumnNorms, keptWidth, leastImportantLayers, mostImportantChannels, PruneImportance } from '../../engine/compress/prune-importance.ts';
import { Model } from '../../engine/model/model.ts';
import { Tokenizer } from '../../engine/tokenizer/tokenizer.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { writeChunksFile } from '../../node/gguf-file.ts';
import { UsageError, backendArg, parseFlags, type CliCommand } from '../command.ts';
import { backendFlags, cliModelBackend } from './backend.ts';
import { formatBytes } from './inspect.ts';

const HELP = `prune MODEL.gguf OUT.gguf [--text CALIB.txt] [--drop-layers N [--metric influence|loss] | --layers 3,5] [--ffn-keep R] [--ctx N] [--tokens N] [--backend webgpu|cpu] [--threads N]
  --drop-layers N  drop the N least important layers on the text, by --metric:
                   influence (default): ShortGPT's block influence, mean 1 - cos(block input, output)
                   loss: the change of the mean next-token loss when the layer alone is dropped (one run per layer)
  --layers 3,5     drop exactly these layers (0-based)
  --ffn-keep R     keep the fraction R of every layer's FFN channels, those of most mean |act(gate)*up| x |ffn_down column|
  --ctx N          calibration window in tokens (default 256); --tokens N: at most N calibration tokens (default 2048)`;

/** Runs the calibration text through the model in windows of `nCtx`, feeding the taps to `importance`. */
async function measure(model: Model, tokens: readonly number[], nCtx: number, importance: PruneImportance): Promise<void> {
  for (let at = 0; at < tokens.length; at += nCtx) {
    model.reset();
    await model.eval(tokens.slice(at, at + nCtx), { logits: 'none', tap: importance.tap });
  }
}

/** Mean next-token negative log-likelihood over the calibration windows (every position but each window's last). */
async function meanNll(model: Model, tokens: readonly number[], nCtx: number): Promise<number> {
  const V = model.config.nVocab;
  let nll = 0;
  let count = 0;
  for (let at = 0; at + 1 < tokens.length; at += nCtx) {
    const window = tokens.slice(at, at + nCtx);
    if (window.length < 2) break;
    model.reset();
    const logits = await model.eval(window, { logits: 'all' });
    for (let t = 0; t + 1 < window.length; t++) nll -= logSoftmaxAt(logits, t, V, window[t + 1]!);
    count += window.length - 1;
  }
  return nll / count;
}

/**
 * Each layer's loss change when it alone is dropped: the model with that layer removed is written
 * to a temporary file (prune.ts, streamed) and evaluated on the text, one layer at a time.
 */
async function layerLossChanges(
  source: RangedSource,
  file: GgufFile,
  load: (s: RangedSource) => Promise<Model>,
  tokens: readonly number[],
  nCtx: number,
): Promise<{ base: number; changes: number[] }> {
  const measureOn = async (s: RangedSource) => {
    const model = await load(s);
    try {
      return await meanNll(model, tokens, nCtx);
    } finally {
      model.destroy();
    }
  };
  const base = await measureOn(source);
  const dir = await mkdtemp(join(tmpdir(), 'hearth-prune-'));
  try {
    const changes: number[] = [];
    for (let il = 0; il < ffnWidths(file).length; il++) {
      const path = join(dir, `without-${il}.gguf`);
      const plan = planPrune(file, { dropLayers: [il] });
      await writeChunksFile(path, pruneChunks(source, file, plan));
      const without = await nodeFileSource(path);
      try {
        changes.push((await measureOn(without)) - base);
      } finally {
        await without.close();
        await rm(path, { force: true });
      }
    }
    return { base, changes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseLayerList(text: string): number[] {
  const layers = text.split(',').map((s) => Number(s.trim()));
  if (layers.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError(`--layers needs comma-separated layer indices, got '${text}'`);
  return layers;
}

/** The kept channels of every kept layer for a keep ratio, from measured importances. */
async function chooseChannels(source: RangedSource, file: GgufFile, importance: PruneImportance, kept: readonly number[], ratio: number) {
  const widths = ffnWidths(file);
  const width = keptWidth(Math.min(...kept.map((il) => widths[il]!)), ratio, channelGranularity(file));
  const keep = new Map<number, number[]>();
  const lines: string[] = [];
  for (const il of kept) {
    const scores = importance.channelScores(il, await ffnDownColumnNorms(source, file, il));
    const chosen = mostImportantChannels(scores, width);
    keep.set(il, chosen);
    const total = scores.reduce((a, b) => a + b, 0);
    const keptShare = chosen.reduce((a, j) => a + scores[j]!, 0) / total;
    lines.push(`  layer ${il}: ${widths[il]} -> ${width} channels, keeping ${(100 * keptShare).toFixed(1)}% of the importance`);
  }
  return { keep, width, lines };
}

export const pruneCommand: CliCommand = {
  usage: 'prune IN OUT --text F  drop layers / shrink FFN width by importance on a text (prune --help)',
  // Only measuring importances runs the model; cutting given layers reads and writes the file.
  needsGpu: (args) => backendArg(args) !== 'cpu' && !args.includes('--help') && (args.includes('--drop-layers') || args.includes('--ffn-keep')),
  async run(args) {
    if (args.includes('--help')) {
      process.stdout.write(`hearth ${HELP}\n`);
      return 0;
    }
    const { positional, values } = parseFlags(args, {
      values: ['--text', '--drop-layers', '--layers', '--ffn-keep', '--metric', '--ctx', '--tokens', '--backend', '--threads'],
    });
    if (positional.length !== 2) throw new UsageError(`usage: hearth ${HELP.split('\n')[0]}`);
    const [input, output] = positional as [string, string];
    if (values.has('--drop-layers') && values.has('--layers')) throw new UsageError('give --drop-layers N or --layers LIST, not both');
    const dropCount = values.has('--drop-layers') ? Number(values.get('--drop-layers')) : undefined;
    if (dropCount !== undefined && (!Number.isInteger(dropCount) || dropCount < 1)) throw new UsageError('--drop-layers needs a positive integer');
    const metric = values.get('--metric') ?? 'influence';
    if (metric !== 'influence' && metric !== 'loss') throw new UsageError(`unknown --metric '${metric}' (influence, loss)`);
    if (values.has('--metric') && dropCount === undefined) throw new UsageError('--metric applies to --drop-layers N');
    const explicit = values.has('--layers') ? parseLayerList(values.get('--layers')!) : undefined;
    const ratio = values.has('--ffn-keep') ? Number(values.get('--ffn-keep')) : undefined;
    if (ratio !== undefined && !(ratio > 0 && ratio <= 1)) throw new UsageError('--ffn-keep needs a fraction in (0, 1]');
    if (dropCount === undefined && !explicit && ratio === undefined) throw new UsageError('nothing to prune: give --drop-layers, --layers or --ffn-keep');
    const nCtx = values.has('--ctx') ? Number(values.get('--ctx')) : 256;
    const maxTokens = values.has('--tokens') ? Number(values.get('--tokens')) : 2048;
    if (!Number.isInteger(nCtx) || nCtx < 2) throw new UsageError('--ctx needs an integer of at least 2');
    if (!Number.isInteger(maxTokens) || maxTokens < 2) throw new UsageError('--tokens needs an integer of at least 2');
    const textPath = values.get('--text');
    const needsText = dropCount !== undefined || ratio !== undefined;
    if (needsText && !textPath) throw new UsageError('choosing by importance needs --text CALIB.txt');
    if (needsText) backendFlags(values);

    const source = await nodeFileSource(input);
    try {
      const file = await readGguf(source);
      let importance: PruneImportance | undefined;
      let losses: { base: number; changes: number[] } | undefined;
      if (needsText) {
        const tokenizer = Tokenizer.fromGgufMetadata(file.metadata);
        const tokens = tokenizer.encode(new Uint8Array(await readFile(textPath!)), { addSpecial: true }).slice(0, maxTokens);
        if (tokens.length < 2) throw new UsageError(`${textPath}: too short to calibrate on`);
        importance = new PruneImportance(ffnWidths(file));
        const contextLength = Math.ceil(Math.min(nCtx, tokens.length) / 256) * 256;
        // Sized for the whole model: the variants with a layer dropped (layerLossChanges) are smaller.
        const made = await cliModelBackend(values, source, { contextLength });
        const load = (s: RangedSource) => Model.load(made.backend, s, { contextLength });
        try {
          const model = await Model.load(made.backend, made.planned ?? source, { contextLength });
          try {
            await measure(model, tokens, nCtx, importance);
          } finally {
            model.destroy();
          }
          if (dropCount !== undefined && metric === 'loss') losses = await layerLossChanges(source, file, load, tokens, nCtx);
        } finally {
          made.close();
        }
        process.stdout.write(`calibrated on ${tokens.length} tokens of ${textPath}\n`);
      }

      let drop = explicit ?? [];
      if (dropCount !== undefined) {
        const scores = losses ? losses.changes : importance!.layerScores();
        drop = leastImportantLayers(scores, dropCount);
        process.stdout.write(
          losses
            ? `mean loss ${losses.base.toFixed(4)} nats; its change with each layer dropped alone, lowest dropped:\n`
            : 'block influence (1 - cos(input, output)), lowest dropped:\n',
        );
        scores.forEach((s, il) => process.stdout.write(`  layer ${il}: ${losses ? (s >= 0 ? '+' : '') + s.toFixed(4) : s.toExponential(3)}${drop.includes(il) ? '  dropped' : ''}\n`));
      } else if (importance) {
        const scores = importance.layerScores();
        process.stdout.write(`block influence: ${scores.map((s) => s.toExponential(2)).join(' ')}\n`);
      }
      const spec: PruneSpec = { dropLayers: drop };
      if (ratio !== undefined) {
        const kept = Array.from({ length: importance!.nLayer }, (_, i) => i).filter((i) => !drop.includes(i));
        const chosen = await chooseChannels(source, file, importance!, kept, ratio);
        spec.keepChannels = chosen.keep;
        process.stdout.write(`FFN channels (mean |act| x |ffn_down column|), ${chosen.width} kept per layer:\n${chosen.lines.join('\n')}\n`);
      }
      const plan = planPrune(file, spec);
      for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
      await writeChunksFile(output, pruneChunks(source, file, plan));
      process.stdout.write(
        `${output}: ${plan.keptLayers.length} layers (dropped ${drop.length ? drop.join(', ') : 'none'})` +
          `${plan.ffnWidth !== undefined ? `, FFN width ${plan.ffnWidth}` : ''}, ` +
          `${formatBytes(source.size)} -> ${formatBytes(plan.layout.fileSize)} (${(source.size / plan.layout.fileSize).toFixed(2)}x)\n`,
      );
    } finally {
      await source.close();
    }
    return 0;
  },
};
