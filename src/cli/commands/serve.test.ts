/**
 * The `hearth serve` command in-process (its stop hook instead of a signal): a model file loads and
 * is served under its file name; one part of a split model loads every part and answers as the
 * whole file does; bad flags are usage errors before anything loads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel } from '../../testing/make-model.ts';
import { splitGguf } from '../../testing/split-gguf.ts';
import { UsageError } from '../command.ts';
import { serve } from './serve.ts';

let dir: string;
const model = makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, ff: 96, ctx: 256, seed: 9, name: 'Served model' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-serve-'));
  writeFileSync(join(dir, 'whole.gguf'), model);
  for (const part of await splitGguf(model, 3, 'parts')) writeFileSync(join(dir, part.name), part.bytes);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `hearth serve ARGS` until `use` is done with its base URL; returns what it printed. */
async function serving(args: string[], use: (url: string) => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  let stop!: () => void;
  let failure: unknown;
  const done = serve([...args, '--backend', 'cpu', '--threads', '1', '--port', '0'], {
    stop: new Promise((resolve) => (stop = resolve)),
    print: (line) => printed.push(line),
    onListening: (url) => {
      use(url).catch((error: unknown) => (failure = error)).finally(stop);
    },
  });
  expect(await done).toBe(0);
  if (failure) throw failure;
  return printed;
}

async function reply(url: string): Promise<{ model: string; content: string }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 6, temperature: 0 }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { model: string; choices: Array<{ message: { content: string } }> };
  return { model: body.model, content: body.choices[0]!.message.content };
}

describe('hearth serve', () => {
  it('serves a file under its name, and a split model from one part as the whole file', async () => {
    let whole: { model: string; content: string } | undefined;
    const printed = await serving([join(dir, 'whole.gguf')], async (url) => {
      whole = await reply(url);
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((m) => m.id)).toEqual(['whole']);
    });
    expect(whole?.model).toBe('whole');
    expect(printed.some((line) => /^serving 'whole' at http:\/\/127\.0\.0\.1:\d+\/v1/.test(line))).toBe(true);

    let split: { model: string; content: string } | undefined;
    await serving([join(dir, 'parts-00002-of-00003.gguf'), '--model-id', 'my-model', '--api-key', 'k'], async (url) => {
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { Authorization: 'Bearer k' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 6, temperature: 0 }),
      });
      const body = (await response.json()) as { model: string; choices: Array<{ message: { content: string } }> };
      split = { model: body.model, content: body.choices[0]!.message.content };
    });
    expect(split).toEqual({ model: 'my-model', content: whole!.content });
  });

  it('refuses bad flags as usage errors', async () => {
    const file = join(dir, 'whole.gguf');
    for (const args of [[], [file, '--port', '70000'], [file, '--backend', 'metal'], [file, '--threads', '2', '--backend', 'webgpu'], [file, '--api-key', ''], [file, '--bogus'], [join(dir, 'missing.gguf')]]) {
      await expect(serve(args, { stop: Promise.resolve(), print: () => undefined }), args.join(' ')).rejects.toBeInstanceOf(UsageError);
    }
  });
});
