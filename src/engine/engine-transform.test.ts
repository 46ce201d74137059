/**
 * Encoder-decoder (t5) models through the engine API (Node, CPU backend, a generated Flan-T5-shaped
 * file): `transform` streams the output the CLI's token loop writes (T5Model + t5Transform, greedy),
 * whose tokens are the float64 reference's argmax at every step; stop strings, abort, seeded
 * sampling; requests of the wrong kind and bad parameters refused by name.
 */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from './backend/cpu/backend.ts';
import { Engine } from './engine.ts';
import { t5Transform } from './generate/t5-transform.ts';
import { readGguf } from './gguf/reader.ts';
import { bytesSource } from './gguf/source.ts';
import { T5Model } from './model/t5-forward.ts';
import { GREEDY } from './sampling/params.ts';
import { Tokenizer } from './tokenizer/index.ts';
import type { TransformChunk } from './api.ts';
import { argmax } from '../testing/compare.ts';
import { makeTestModel } from '../testing/make-model.ts';
import { T5ReferenceSession, loadT5Reference } from '../testing/reference-t5.ts';

const T5_BYTES = makeTestModel({ arch: 't5', embd: 64, layers: 2, heads: 4, ff: 128, seed: 12, name: 'Tiny T5' });
const blob = (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>]);
const OPTIONS = { backend: 'cpu' as const, threads: 1, contextLength: 48 };
const INPUT = 'translate English to German: the house is small';

/** The CLI's loop (`hearth generate` on a t5 file): greedy tokens and their text. */
async function cliGreedy(input: string, maxTokens: number): Promise<{ tokens: number[]; text: string; ids: number[] }> {
  const source = bytesSource(T5_BYTES);
  const file = await readGguf(source);
  const tokenizer = Tokenizer.fromGgufMetadata(file.metadata);
  const backend = await CpuBackend.create({ threads: 1 });
  const model = await T5Model.load(backend, source, { inputCapacity: 48, outputCapacity: 48 }, file);
  try {
    const ids = tokenizer.encode(input, { addSpecial: true, parseSpecial: false });
    const out = await t5Transform(model, ids, { maxTokens, sampling: GREEDY, isEnd: (id) => tokenizer.isEog(id) });
    return { tokens: out.tokens, text: tokenizer.decode(out.tokens, { removeSpecial: true }), ids };
  } finally {
    model.destroy();
  }
}

describe('Engine transform (encoder-decoder models)', () => {
  it('streams the greedy output of the CLI loop, which is the float64 reference argmax; usage and info say what ran', { timeout: 120_000 }, async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    const info = await engine.loadModel({ kind: 'file', file: blob(T5_BYTES), name: 't5.gguf' }, OPTIONS);
    expect(info.kind).toBe('encoder-decoder');
    expect(info.architecture).toBe('t5');
    expect(info.contextLength).toBe(48);
    expect(info.outputCapacity).toBe(48);
    expect(info.backend).toBe('cpu');
    expect(info.hasChatTemplate).toBe(false);

    const chunks: TransformChunk[] = [];
    const result = await engine.transform({ input: INPUT, max_tokens: 10 }, (c) => chunks.push(c));
    const cli = await cliGreedy(INPUT, 10);
    expect(result.output).toBe(cli.text);
    expect(result.output.length).toBeGreaterThan(0);
    expect(chunks.map((c) => c.delta).join('')).toBe(result.output);
    expect(chunks.slice(0, -1).every((c) => c.finish_reason === null)).toBe(true);
    expect(chunks.at(-1)!.finish_reason).toBe(result.finish_reason);
    expect(chunks.at(-1)!.usage).toEqual(result.usage);
    expect(result.usage.prompt_tokens).toBe(cli.ids.length);
    expect(result.usage.completion_tokens).toBe(cli.tokens.length);
    expect(result.finish_reason).toBe(cli.tokens.length === 10 ? 'length' : 'stop');
    if (result.finish_reason === 'length') expect(result.usage.length_limit).toBe('max_tokens');

    // The loop's tokens are the exact (float64) model's choices, teacher-forced.
    const reference = await loadT5Reference(bytesSource(T5_BYTES));
    const V = reference.config.nVocab;
    const logits = new T5ReferenceSession(reference, cli.ids).eval([reference.config.decoderStart ?? 0, ...cli.tokens.slice(0, -1)]);
    expect(cli.tokens.map((_, i) => argmax(logits, i * V, V))).toEqual(cli.tokens);

    // Without max_tokens the output capacity bounds it (the start token takes one position).
    const long = await engine.transform({ input: INPUT, stop: [] });
    expect(long.usage.completion_tokens).toBeLessThanOrEqual(47);
    expect(long.output.startsWith(result.output)).toBe(true);
    if (long.finish_reason === 'length') expect(long.usage.length_limit).toBe('output_capacity');

    // A stop string ends the output before it.
    const at = Math.max(1, Math.floor(long.output.length / 2));
    const stop = long.output.slice(at, at + 2);
    const cut = await engine.transform({ input: INPUT, stop });
    expect(cut.finish_reason).toBe('stop');
    expect(cut.output).toBe(long.output.slice(0, long.output.indexOf(stop)));

    // Sampling with a seed replays; the seed comes back.
    const a = await engine.transform({ input: INPUT, temperature: 1, top_k: 0, top_p: 1, min_p: 0, seed: 7, max_tokens: 12 });
    const b = await engine.transform({ input: INPUT, temperature: 1, top_k: 0, top_p: 1, min_p: 0, seed: 7, max_tokens: 12 });
    expect(b.output).toBe(a.output);
    expect(a.seed).toBe(7);
    await engine.unloadModel();
  });

  it('abort ends a transform within a token', { timeout: 120_000 }, async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    await engine.loadModel({ kind: 'file', file: blob(T5_BYTES), name: 't5.gguf' }, OPTIONS);
    let pieces = 0;
    const result = await engine.transform({ input: INPUT, request_id: 'cut', max_tokens: 40 }, (c) => {
      if (c.finish_reason === null && ++pieces === 2) void engine.abort('cut');
    });
    expect(result.finish_reason).toBe('abort');
    expect(result.usage.completion_tokens).toBeLessThan(40);
    // The engine answers the next request.
    expect((await engine.transform({ input: INPUT, max_tokens: 3 })).usage.completion_tokens).toBeGreaterThan(0);
    await engine.unloadModel();
  });

  it('refuses by name: chat on an encoder-decoder model, transform on a decoder-only one, bad parameters', { timeout: 120_000 }, async () => {
    const engine = new Engine({ gpu: undefined, runtime: 'test' });
    const error = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error & { detail?: Record<string, unknown> });
    expect((await error(engine.transform({ input: INPUT })))?.name).toBe('NoModelLoadedError');
    await engine.loadModel({ kind: 'file', file: blob(T5_BYTES), name: 't5.gguf' }, OPTIONS);
    const chat = await error(engine.chatCompletion({ messages: [{ role: 'user', content: 'hi' }] }));
    expect(chat?.name).toBe('ModelKindError');
    expect(chat?.message).toMatch(/encoder-decoder .*use transform/);
    expect((await error(engine.countTokens([{ role: 'user', content: 'hi' }])))?.name).toBe('ModelKindError');
    for (const [request, param] of [
      [{ input: INPUT, temperature: -1 }, 'temperature'],
      [{ input: INPUT, top_p: 2 }, 'top_p'],
      [{ input: INPUT, max_tokens: 0 }, 'max_tokens'],
      [{ input: INPUT, seed: 1.5 }, 'seed'],
      [{ input: INPUT, stop: [''] }, 'stop[0]'],
      [{ input: INPUT, messages: [] }, 'messages'],
      [{ input: '' }, 'input'],
      [{ input: 3 }, 'input'],
      [{}, 'input'],
    ] as const) {
      const e = await error(engine.transform(request as never));
      expect(e?.name, JSON.stringify(request)).toBe('InvalidRequestError');
      expect(e?.detail?.param).toBe(param);
    }
    const tooLong = await error(engine.transform({ input: 'word '.repeat(200) }));
    expect(tooLong?.name).toBe('T5InputTooLongError');

    const llama = makeTestModel({ arch: 'llama', embd: 64, layers: 1, heads: 4, ff: 96, ctx: 128, seed: 3, name: 'Chatty' });
    const info = await engine.loadModel({ kind: 'file', file: blob(llama), name: 'llama.gguf' }, { backend: 'cpu', threads: 1 });
    expect(info.kind).toBe('decoder-only');
    const wrong = await error(engine.transform({ input: INPUT }));
    expect(wrong?.name).toBe('ModelKindError');
    expect(wrong?.message).toMatch(/Chatty .*decoder-only.*use chatCompletion/);
    await engine.unloadModel();
  });
});
