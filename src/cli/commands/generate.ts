/**
 * `hearth generate FILE.gguf --prompt TEXT [--chat] [-n N] [--temperature T] [--seed S] ...`:
 * tokenizes the prompt (with --chat, formatted by the model's chat template first), evaluates it,
 * then samples on the GPU (or with `--backend cpu [--threads N]`, on the CPU) one token per step and streams the text to stdout as it is generated.
 * Prefill and decode speeds go to stderr at the end. Generation stops after N tokens or at an
 * end-of-generation token (with --chat, also the template's end-of-turn token).
 */
import { chatTemplateMetadata, chooseChatFormat, endOfGenerationTokens, formatChat, stopVocab } from '../../engine/chat/index.ts';
import { readGguf } from '../../engine/gguf/reader.ts';
import { Model } from '../../engine/model/model.ts';
import { Tokenizer } from '../../engine/tokenizer/index.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { UsageError, backendArg, parseFlags, type CliCommand } from '../command.ts';
import { backendFlags, cliBackend } from './backend.ts';

/** mulberry32: a small seeded generator for the sampler's uniforms, so a seed replays a run. */
function uniforms(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function numberFlag(values: Map<string, string>, name: string, fallback: number, check: (v: number) => boolean, what: string): number {
  const raw = values.get(name);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || !check(v)) throw new UsageError(`${name} must be ${what}, got '${raw}'`);
  return v;
}

export const generateCommand: CliCommand = {
  usage:
    'generate FILE.gguf --prompt TEXT [--chat] [-n N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--ctx N] [--backend webgpu|cpu] [--threads N]   stream generated text',
  needsGpu: (args) => backendArg(args) !== 'cpu',
  async run(args) {
    const { positional, values, switches } = parseFlags(args, {
      values: ['--prompt', '-n', '--temperature', '--top-k', '--top-p', '--min-p', '--seed', '--ctx', '--batch', '--backend', '--threads'],
      switches: ['--chat'],
    });
    if (positional.length !== 1) throw new UsageError('generate takes one model file');
    const prompt = values.get('--prompt');
    if (prompt === undefined) throw new UsageError('generate needs --prompt TEXT');
    const nPredict = numberFlag(values, '-n', 128, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    // llama.cpp's defaults for its sampler chain.
    const sampling = {
      temperature: numberFlag(values, '--temperature', 0.8, (v) => v >= 0, 'a number >= 0'),
      topK: numberFlag(values, '--top-k', 40, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
      topP: numberFlag(values, '--top-p', 0.95, (v) => v > 0 && v <= 1, 'in (0, 1]'),
      minP: numberFlag(values, '--min-p', 0.05, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    };
    const seed = numberFlag(values, '--seed', Math.floor(Math.random() * 2 ** 31), (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    const ctx = values.has('--ctx') ? numberFlag(values, '--ctx', 0, (v) => Number.isInteger(v) && v > 0, 'a positive integer') : undefined;
    const batch = values.has('--batch') ? numberFlag(values, '--batch', 0, (v) => Number.isInteger(v) && v > 0, 'a positive integer') : undefined;

    backendFlags(values);
    const source = await nodeFileSource(positional[0]!);
    let made: Awaited<ReturnType<typeof cliBackend>>;
    try {
      made = await cliBackend(values);
    } catch (error) {
      await source.close();
      throw error;
    }
    try {
      const { metadata } = await readGguf(source);
      const tokenizer = Tokenizer.fromGgufMetadata(metadata);
      const vocab = stopVocab(metadata);
      let ids: number[];
      let stop: Set<number>;
      if (switches.has('--chat')) {
        const choice = chooseChatFormat(chatTemplateMetadata(metadata));
        if (choice.notice) process.stderr.write(`${choice.notice}\n`);
        const text = (id: number | null) => (id === null ? '' : tokenizer.tokenText(id));
        const formatted = formatChat(choice.format, [{ role: 'user', content: prompt }], {
          addGenerationPrompt: true,
          bosToken: text(tokenizer.special.bos),
          eosToken: text(tokenizer.special.eos),
          tokenizerAddsBos: tokenizer.flags.addBos,
          tokenizerAddsEos: tokenizer.flags.addEos,
        });
        ids = tokenizer.encode(formatted, { addSpecial: true, parseSpecial: true });
        stop = new Set(vocab ? endOfGenerationTokens(vocab, choice.format).ids : []);
      } else {
        ids = tokenizer.encode(prompt, { addSpecial: true, parseSpecial: false });
        stop = new Set(vocab ? endOfGenerationTokens(vocab).ids : []);
      }
      if (ids.length === 0) throw new UsageError('the prompt encodes to no tokens');

      const model = await Model.load(made.backend, source, {
        ...(ctx !== undefined ? { contextLength: ctx } : {}),
        ...(batch !== undefined ? { batch } : {}),
      });
      if (ids.length + nPredict > model.contextLength) {
        throw new UsageError(`${ids.length} prompt tokens + ${nPredict} to generate exceed the context of ${model.contextLength}; pass --ctx or a smaller -n`);
      }
      const random = uniforms(seed);
      const decoder = tokenizer.createStreamDecoder();
      let generated = 0;
      let decodeSteps = 0;
      const t0 = performance.now();
      let next = nPredict > 0 ? await model.next(ids, sampling, random()) : -1;
      const t1 = performance.now();
      while (generated < nPredict && !stop.has(next)) {
        process.stdout.write(decoder.push(next));
        generated++;
        if (generated < nPredict) {
          next = await model.next([next], sampling, random());
          decodeSteps++;
        }
      }
      process.stdout.write(decoder.flush() + '\n');
      const t2 = performance.now();
      process.stderr.write(
        `prefill: ${ids.length} tokens in ${(t1 - t0).toFixed(0)} ms (${((ids.length * 1000) / (t1 - t0)).toFixed(1)} tokens/s); ` +
          `decode: ${decodeSteps} tokens in ${(t2 - t1).toFixed(0)} ms (${decodeSteps > 0 ? ((decodeSteps * 1000) / (t2 - t1)).toFixed(1) : '-'} tokens/s); seed ${seed}\n`,
      );
      model.destroy();
      return 0;
    } finally {
      made.close();
      await source.close();
    }
  },
};
