/**
 * `hearth logits --backend cpu` and `hearth generate --backend cpu` as a user runs them (a
 * separate process, no GPU): the logits of a generated model match llama.cpp's CPU logits on the
 * same file within the bars of quantized files (KL <= 1e-2, top-1 >= 93%).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../src/engine/gguf/reader.ts';
import { bytesSource } from '../src/engine/gguf/source.ts';
import { Tokenizer } from '../src/engine/tokenizer/index.ts';
import { argmax, klDivergence, topOneAgreement } from '../src/testing/compare.ts';
import { T5ReferenceSession, loadT5Reference } from '../src/testing/reference-t5.ts';
import { llamaRefLogits } from '../src/testing/llama-ref.ts';
import { makeTestModel, q4kmRecipe } from '../src/testing/make-model.ts';

const HEARTH = 'bin/hearth.js';
const VOCAB_PROBE = 300;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-cli-cpu-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function hearth(args: string[]) {
  return spawnSync(process.execPath, [HEARTH, ...args], { encoding: 'utf8', timeout: 240_000 });
}

describe('hearth logits --backend cpu', () => {
  for (const [name, quant] of [
    ['Q8_0', 'q8_0'],
    ['Q4_K_M', q4kmRecipe],
  ] as const) {
    it(`${name}: matches llama.cpp's logits`, { timeout: 300_000 }, () => {
      const modelPath = join(dir, `qwen2-${name}.gguf`);
      writeFileSync(modelPath, makeTestModel({ arch: 'qwen2', embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, seed: 7, quant }));
      const ids = Array.from({ length: 48 }, (_, i) => (i * 29 + 1) % VOCAB_PROBE);
      const tokensFile = join(dir, 'ids.json');
      const out = join(dir, `${name}.f32`);
      writeFileSync(tokensFile, JSON.stringify(ids));
      const r = hearth(['logits', modelPath, '--tokens-file', tokensFile, '--out', out, '--backend', 'cpu', '--threads', '2']);
      expect(r.stderr).toContain('48 positions');
      expect(r.status).toBe(0);
      const b = readFileSync(out);
      const ours = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      const llama = llamaRefLogits(modelPath, ids, { kvType: 'f32', threads: 2, nCtx: 256 }).logits;
      expect(ours.length).toBe(llama.length);
      const vocab = ours.length / ids.length;
      const kl = klDivergence(llama, ours, vocab);
      const top1 = topOneAgreement(llama, ours, vocab);
      console.log(`[cli cpu] ${name}: KL ${kl.toExponential(2)}, top-1 ${(top1 * 100).toFixed(1)}%`);
      expect(kl).toBeLessThanOrEqual(1e-2);
      expect(top1).toBeGreaterThanOrEqual(0.93);
    });
  }

  it('rejects an unknown backend and --threads on webgpu', { timeout: 60_000 }, () => {
    const a = hearth(['logits', 'x.gguf', '--tokens-file', 'x.json', '--out', 'x.f32', '--backend', 'tpu']);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/unknown backend 'tpu'/);
    const b = hearth(['logits', 'x.gguf', '--tokens-file', 'x.json', '--out', 'x.f32', '--threads', '2']);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/--threads applies to --backend cpu only/);
  });
});

describe('hearth generate --backend cpu', () => {
  it('streams text and reports speeds', { timeout: 300_000 }, () => {
    const modelPath = join(dir, 'llama-gen.gguf');
    writeFileSync(modelPath, makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11, quant: 'q8_0' }));
    const r = hearth(['generate', modelPath, '--prompt', 'Once upon a time', '-n', '12', '--temperature', '0', '--backend', 'cpu', '--threads', '2']);
    expect(r.stderr).toMatch(/decode: \d+ tokens in \d+ ms/);
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
  });

  it('--grammar FILE constrains the text; --json prints the completion object; a bad schema is a named error', { timeout: 300_000 }, () => {
    const modelPath = join(dir, 'llama-gen.gguf');
    writeFileSync(modelPath, makeTestModel({ arch: 'llama', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 128, ctx: 512, seed: 11, quant: 'q8_0' }));
    const grammar = join(dir, 'answer.gbnf');
    writeFileSync(grammar, 'root ::= ("yes" | "no") ", " [0-9] [0-9]\n');
    const r = hearth(['generate', modelPath, '--prompt', 'Once upon a time', '-n', '20', '--temperature', '1', '--seed', '3', '--grammar', grammar, '--json', '--backend', 'cpu', '--threads', '2']);
    expect(r.status, r.stderr).toBe(0);
    const completion = JSON.parse(r.stdout) as { object: string; choices: Array<{ message: { content: string }; finish_reason: string }> };
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]!.message.content).toMatch(/^(yes|no), [0-9]{2}$/);
    expect(completion.choices[0]!.finish_reason).toBe('stop');

    const schema = join(dir, 'bad.json');
    writeFileSync(schema, JSON.stringify({ type: 'string', format: 'email' }));
    const bad = hearth(['generate', modelPath, '--prompt', 'x', '--json-schema', schema, '--backend', 'cpu']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/UnsupportedSchemaError: .*format/);
  });

  it('a t5 file: the prompt is the encoder input, the decoder generates (greedy = the float64 reference\'s argmax); --chat refused', { timeout: 300_000 }, async () => {
    const modelPath = join(dir, 't5-gen.gguf');
    writeFileSync(modelPath, makeTestModel({ arch: 't5', embd: 64, layers: 2, heads: 4, ff: 128, seed: 12 }));
    const prompt = 'translate English to German: the house is small';
    const r = hearth(['generate', modelPath, '--prompt', prompt, '-n', '8', '--temperature', '0', '--json', '--backend', 'cpu', '--threads', '2']);
    expect(r.stderr).toMatch(/t5: \d+ input tokens, 8 output tokens/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { text: string; tokens: number[]; input_tokens: number; finish_reason: string };
    expect(out.tokens).toHaveLength(8);
    const file = await readGguf(bytesSource(readFileSync(modelPath)));
    const input = Tokenizer.fromGgufMetadata(file.metadata).encode(prompt, { addSpecial: true, parseSpecial: false });
    expect(out.input_tokens).toBe(input.length);
    const reference = await loadT5Reference(modelPath);
    const V = reference.config.nVocab;
    const logits = new T5ReferenceSession(reference, input).eval([reference.config.decoderStart ?? 0, ...out.tokens.slice(0, -1)]);
    expect(out.tokens.map((_, i) => argmax(logits, i * V, V))).toEqual(out.tokens);
    const chat = hearth(['generate', modelPath, '--prompt', prompt, '--chat', '--backend', 'cpu']);
    expect(chat.status).toBe(2);
    expect(chat.stderr).toMatch(/--chat does not apply to an encoder-decoder/);
  });
});
