/**
 * `hearth make-lora BASE.gguf --rank R --alpha A --targets attn_q,attn_v,... --out A.gguf`: a
 * random-weight LoRA adapter for any base model (src/testing/make-lora.ts), in llama.cpp's
 * adapter format (llama.cpp loads it with --lora).
 */
import { writeFileSync } from 'node:fs';
import { readGguf } from '../../engine/gguf/reader.ts';
import { readModelConfig } from '../../engine/model/config.ts';
import { LORA_TARGET_NAMES, type LoraTargetName } from '../../engine/model/lora/adapter-file.ts';
import { writeLoraGguf } from '../../engine/model/lora/adapter-data.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { makeRandomLora } from '../../testing/make-lora.ts';
import { UsageError, numberFlag, parseFlags, type CliCommand } from '../command.ts';
import { formatBytes, formatCount } from './inspect.ts';

const HELP = `make-lora BASE.gguf --out FILE [options]
  --rank R       (default 8)
  --alpha A      (default: the rank, so the scale applies as given; 0: scale without alpha / rank)
  --targets LIST comma-separated, of ${LORA_TARGET_NAMES.join(' ')}
                 (default attn_q,attn_v; a block name adapts it in every block)
  --seed N       (default 1)   --gain X  size of B (A x) next to x (default 0.5)   --name TEXT`;

export const makeLoraCommand: CliCommand = {
  usage: 'make-lora BASE --out F    write a random-weight LoRA adapter for a model (make-lora --help for options)',
  needsGpu: false,
  async run(args) {
    if (args.includes('--help')) {
      process.stdout.write(`hearth ${HELP}\n`);
      return 0;
    }
    const { positional, values } = parseFlags(args, { values: ['--out', '--rank', '--alpha', '--targets', '--seed', '--gain', '--name'] });
    if (positional.length !== 1) throw new UsageError('make-lora takes one base model file');
    const out = values.get('--out');
    if (!out) throw new UsageError('--out FILE is required');
    const num = (flag: string, fallback: number, ok: (n: number) => boolean, what: string) => numberFlag(values, flag, fallback, ok, what);
    const rank = num('--rank', 8, (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
    const alpha = num('--alpha', rank, (n) => Number.isFinite(n) && n >= 0, 'a number >= 0');
    const seed = num('--seed', 1, (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer');
    const gain = num('--gain', 0.5, (n) => Number.isFinite(n) && n > 0, 'a positive number');
    const targets = (values.get('--targets') ?? 'attn_q,attn_v').split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of targets) {
      if (!LORA_TARGET_NAMES.includes(t as LoraTargetName)) throw new UsageError(`unknown target '${t}'; known: ${LORA_TARGET_NAMES.join(', ')}`);
    }
    const source = await nodeFileSource(positional[0]!);
    const config = await readGguf(source)
      .then(readModelConfig)
      .finally(() => source.close());
    let data;
    try {
      data = makeRandomLora(config, { rank, alpha, targets: targets as LoraTargetName[], seed, gain, ...(values.has('--name') ? { name: values.get('--name')! } : {}) });
    } catch (error) {
      if (error instanceof RangeError) throw new UsageError(error.message);
      throw error;
    }
    const bytes = writeLoraGguf(data);
    writeFileSync(out, bytes);
    const params = data.targets.reduce((n, t) => n + t.a.length + t.b.length, 0);
    process.stdout.write(`${out}: LoRA for ${config.architecture}, rank ${rank}, alpha ${alpha}, ${data.targets.length} tensors adapted, ${formatCount(params)} parameters, ${formatBytes(bytes.length)}\n`);
    return 0;
  },
};
