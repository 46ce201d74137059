/**
 * `hearth generate FILE.gguf --prompt TEXT [--chat] [-n N] [--temperature T] [--seed S] ...`:
 * tokenizes the prompt (with --chat, formatted by the model's chat template first) and runs the
 * engine's own token loop on it (ChatSession: sampling on the GPU, or with `--backend cpu
 * [--threads N]` on the CPU), streaming the text to stdout as it is generated. Sampling flags not
 * given take ChatSession's defaults, as a chat completion does (temperature 0.7). Prefill and
 * decode speeds go to stderr at the end. Generation stops after N tokens or at an
 * end-of-generation token or stop string of the model.
 *
 * Structured output, as a chat completion's: `--json-object` (any JSON object), `--json-schema FILE`
 * (JSON valid against the schema in FILE), `--grammar FILE` (a llama.cpp GBNF grammar); the reply
 * then ends when the constraint is complete. `--json` prints the completion object (content,
 * finish_reason, usage) as JSON at the end instead of streaming the text.
 *
 * An encoder-decoder file (t5: T5, Flan-T5) runs as text to text: the prompt is the encoder's
 * input, the decoder generates from its start token (greedy unless --temperature is given; the
 * CPU backend only for now); --ctx bounds the input and the output; --json prints
 * { text, tokens, input_tokens, finish_reason, seed }. Chat, constraints, --batch and LoRA do not apply.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { ChatCompletionRequest } from '../../engine/api.ts';
import { ChatSession } from '../../engine/generate/chat-session.ts';
import { validateChatRequest } from '../../engine/generate/validate-request.ts';
import { readGguf } from '../../engine/gguf/reader.ts';
import { Model } from '../../engine/model/model.ts';
import { T5Model } from '../../engine/model/t5-forward.ts';
import { t5Transform } from '../../engine/generate/t5-transform.ts';
import type { Backend } from '../../engine/backend/ops.ts';
import type { RangedSource } from '../../engine/gguf/source.ts';
import type { GgufFile } from '../../engine/gguf/types.ts';
import { Tokenizer } from '../../engine/tokenizer/index.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { UsageError, backendArg, parseFlags, type CliCommand } from '../command.ts';
import { attachLoras, takeLoraFlags } from '../lora-flags.ts';
import { backendFlags, cliBackend, cliModelBackend, type CliBackend } from './backend.ts';
import type { PlannedLoad } from '../../engine/model/loader.ts';

/** The constraint flags as request fields, checked as a request's are (named errors before loading the model). */
function constraintFlags(values: Map<string, string>, switches: Set<string>): Pick<ChatCompletionRequest, 'response_format' | 'grammar'> {
  const read = (flag: string) => {
    const file = values.get(flag)!;
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`${flag}: cannot read ${file} (${(error as Error).message})`);
    }
  };
  const given = ['--json-schema', '--grammar'].filter((f) => values.has(f)).concat(switches.has('--json-object') ? ['--json-object'] : []);
  if (given.length > 1) throw new UsageError(`give one of ${given.join(', ')}`);
  const fields: Pick<ChatCompletionRequest, 'response_format' | 'grammar'> = {};
  if (values.has('--grammar')) fields.grammar = read('--grammar');
  if (switches.has('--json-object')) fields.response_format = { type: 'json_object' };
  if (values.has('--json-schema')) {
    let schema: unknown;
    try {
      schema = JSON.parse(read('--json-schema'));
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`--json-schema: ${values.get('--json-schema')} is not JSON (${(error as Error).message})`);
    }
    fields.response_format = { type: 'json_schema', json_schema: { name: 'schema', schema: schema as Record<string, unknown> } };
  }
  // Throws GrammarError / UnsupportedSchemaError naming the problem.
  validateChatRequest({ messages: [{ role: 'user', content: '' }], ...fields });
  return fields;
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
    'generate FILE.gguf --prompt TEXT [--chat] [-n N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--ctx N] [--backend webgpu|cpu] [--threads N] [--lora FILE[:SCALE]]... [--json-object | --json-schema FILE | --grammar FILE] [--json]   stream generated text (a t5 file: the prompt is the encoder input)',
  needsGpu: (args) => backendArg(args) !== 'cpu',
  async run(allArgs) {
    const { rest: args, loras } = takeLoraFlags(allArgs);
    const { positional, values, switches } = parseFlags(args, {
      values: ['--prompt', '-n', '--temperature', '--top-k', '--top-p', '--min-p', '--seed', '--ctx', '--batch', '--backend', '--threads', '--json-schema', '--grammar'],
      switches: ['--chat', '--json', '--json-object'],
    });
    if (positional.length !== 1) throw new UsageError('generate takes one model file');
    const prompt = values.get('--prompt');
    if (prompt === undefined) throw new UsageError('generate needs --prompt TEXT');
    const nPredict = numberFlag(values, '-n', 128, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    // Only the sampling flags given: ChatSession's defaults apply to the others.
    const sampling: Partial<ChatCompletionRequest> = {};
    if (values.has('--temperature')) sampling.temperature = numberFlag(values, '--temperature', 0, (v) => v >= 0, 'a number >= 0');
    if (values.has('--top-k')) sampling.top_k = numberFlag(values, '--top-k', 0, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    if (values.has('--top-p')) sampling.top_p = numberFlag(values, '--top-p', 0, (v) => v > 0 && v <= 1, 'in (0, 1]');
    if (values.has('--min-p')) sampling.min_p = numberFlag(values, '--min-p', 0, (v) => v >= 0 && v < 1, 'in [0, 1)');
    const seed = numberFlag(values, '--seed', Math.floor(Math.random() * 2 ** 31), (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    const ctx = values.has('--ctx') ? numberFlag(values, '--ctx', 0, (v) => Number.isInteger(v) && v > 0, 'a positive integer') : undefined;
    const batch = values.has('--batch') ? numberFlag(values, '--batch', 0, (v) => Number.isInteger(v) && v > 0, 'a positive integer') : undefined;

    const constraint = constraintFlags(values, switches);
    const printJson = switches.has('--json');

    backendFlags(values);
    const source = await nodeFileSource(positional[0]!);
    const sizing = { ...(ctx !== undefined ? { contextLength: ctx } : {}), ...(batch !== undefined ? { batch } : {}) };
    let made: CliBackend<PlannedLoad>;
    let file: GgufFile;
    try {
      file = await readGguf(source);
      // A decoder-only model on the CPU: planned first, so its weights may take several memories.
      const t5 = file.metadata.get('general.architecture') === 't5';
      made = t5 ? await cliBackend(values) : await cliModelBackend(values, source, sizing);
    } catch (error) {
      await source.close();
      throw error;
    }
    try {
      const { metadata } = file;
      const tokenizer = Tokenizer.fromGgufMetadata(metadata);
      if (metadata.get('general.architecture') === 't5') {
        for (const flag of ['--chat', '--json-object']) if (switches.has(flag)) throw new UsageError(`${flag} does not apply to an encoder-decoder (t5) model`);
        for (const flag of ['--json-schema', '--grammar', '--batch']) if (values.has(flag)) throw new UsageError(`${flag} does not apply to an encoder-decoder (t5) model`);
        if (loras.length) throw new UsageError('--lora does not apply to an encoder-decoder (t5) model');
        return await runT5(made.backend, source, file, tokenizer, { prompt, nPredict, sampling, seed, ctx, printJson });
      }
      const model = await Model.load(made.backend, made.planned ?? source, sizing);
      await attachLoras(model, loras);
      const session = new ChatSession(model, tokenizer, metadata as ReadonlyMap<string, unknown>, { modelName: basename(positional[0]!) });
      let ids: number[];
      if (switches.has('--chat')) {
        if (session.format.notice) process.stderr.write(`${session.format.notice}\n`);
        ids = session.promptTokens([{ role: 'user', content: prompt }]);
      } else {
        ids = tokenizer.encode(prompt, { addSpecial: true, parseSpecial: false });
      }
      if (ids.length === 0) throw new UsageError('the prompt encodes to no tokens');
      if (ids.length + nPredict > model.contextLength) {
        throw new UsageError(`${ids.length} prompt tokens + ${nPredict} to generate exceed the context of ${model.contextLength}; pass --ctx or a smaller -n`);
      }

      const t0 = performance.now();
      // The request's messages are not read: the prompt is `ids`.
      const request: ChatCompletionRequest = { messages: [], ...sampling, ...constraint, max_tokens: nPredict, seed };
      const completion = await session.completePrompt(ids, request, printJson ? undefined : (chunk) => process.stdout.write(chunk.choices[0].delta.content ?? ''), () => false);
      const { usage } = completion;
      process.stdout.write(printJson ? `${JSON.stringify(completion, null, 2)}\n` : '\n');
      const prefillMs = usage.time_to_first_token_ms;
      const decodeMs = performance.now() - t0 - prefillMs;
      // The first token comes from the prefill, each later one from a decode step.
      const decodeSteps = Math.max(0, usage.completion_tokens - 1);
      process.stderr.write(
        `prefill: ${ids.length} tokens in ${prefillMs.toFixed(0)} ms (${((ids.length * 1000) / prefillMs).toFixed(1)} tokens/s); ` +
          `decode: ${decodeSteps} tokens in ${decodeMs.toFixed(0)} ms (${decodeSteps > 0 ? ((decodeSteps * 1000) / decodeMs).toFixed(1) : '-'} tokens/s); seed ${seed}\n`,
      );
      model.destroy();
      return 0;
    } finally {
      made.close();
      await source.close();
    }
  },
};

/**
 * An encoder-decoder (t5) file: the prompt is the encoder's input, the decoder generates the output
 * (`--ctx` bounds both; default the training context, at most 512).
 */
async function runT5(
  backend: Backend,
  source: RangedSource,
  file: GgufFile,
  tokenizer: Tokenizer,
  o: { prompt: string; nPredict: number; sampling: Partial<ChatCompletionRequest>; seed: number; ctx: number | undefined; printJson: boolean },
): Promise<number> {
  const model = await T5Model.load(backend, source, o.ctx !== undefined ? { inputCapacity: o.ctx, outputCapacity: o.ctx } : {}, file);
  const input = tokenizer.encode(o.prompt, { addSpecial: true, parseSpecial: false });
  if (input.length === 0) throw new UsageError('the prompt encodes to no tokens');
  const sampling = {
    temperature: o.sampling.temperature ?? 0,
    topK: o.sampling.top_k ?? 40,
    topP: o.sampling.top_p ?? 0.95,
    minP: o.sampling.min_p ?? 0.05,
  };
  const stream = tokenizer.createStreamDecoder({ removeSpecial: true });
  const t0 = performance.now();
  const result = await t5Transform(model, input, {
    maxTokens: o.nPredict,
    sampling,
    seed: o.seed,
    isEnd: (id) => tokenizer.isEog(id),
    onToken: o.printJson ? undefined : (id) => void process.stdout.write(stream.push(id)),
  });
  const ms = performance.now() - t0;
  const text = tokenizer.decode(result.tokens, { removeSpecial: true });
  if (o.printJson) process.stdout.write(`${JSON.stringify({ text, tokens: result.tokens, input_tokens: input.length, finish_reason: result.finishReason, seed: result.seed }, null, 2)}\n`);
  else process.stdout.write(`${stream.flush()}\n`);
  process.stderr.write(`t5: ${input.length} input tokens, ${result.tokens.length} output tokens in ${ms.toFixed(0)} ms (${((result.tokens.length * 1000) / ms).toFixed(1)} tokens/s); seed ${result.seed}\n`);
  return 0;
}
