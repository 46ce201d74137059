/**
 * The CLI's --lora / --lora-scaled flags (repeatable, as llama.cpp's), and `hearth logits --lora`
 * on the CPU backend against llama-ref's logits with the same adapters and scales.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../engine/gguf/reader.ts';
import { bytesSource } from '../engine/gguf/source.ts';
import { readModelConfig } from '../engine/model/config.ts';
import { writeLoraGguf } from '../engine/model/lora/adapter-data.ts';
import { klDivergence } from '../testing/compare.ts';
import { llamaRefLogits } from '../testing/llama-ref.ts';
import { makeRandomLora } from '../testing/make-lora.ts';
import { makeTestModel } from '../testing/make-model.ts';
import { UsageError } from './command.ts';
import { logitsCommand } from './commands/logits.ts';
import { parseLoraSpec, takeLoraFlags } from './lora-flags.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-lora-cli-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('--lora flags', () => {
  it('parses FILE, FILE:SCALE, --lora=, --lora-scaled, in order, leaving the rest', () => {
    expect(parseLoraSpec('a.gguf')).toEqual({ path: 'a.gguf', scale: 1 });
    expect(parseLoraSpec('a.gguf:0.25')).toEqual({ path: 'a.gguf', scale: 0.25 });
    expect(parseLoraSpec('C:/x/a.gguf:-1')).toEqual({ path: 'C:/x/a.gguf', scale: -1 });
    expect(parseLoraSpec('dir:name.gguf')).toEqual({ path: 'dir:name.gguf', scale: 1 });
    const { rest, loras } = takeLoraFlags(['m.gguf', '--lora', 'a.gguf:0.5', '--out', 'o', '--lora=b.gguf', '--lora-scaled', 'c.gguf', '2']);
    expect(rest).toEqual(['m.gguf', '--out', 'o']);
    expect(loras).toEqual([
      { path: 'a.gguf', scale: 0.5 },
      { path: 'b.gguf', scale: 1 },
      { path: 'c.gguf', scale: 2 },
    ]);
    expect(() => takeLoraFlags(['--lora'])).toThrow(UsageError);
    expect(() => takeLoraFlags(['--lora-scaled', 'c.gguf', 'x'])).toThrow(UsageError);
  });

  it('hearth logits --lora matches llama.cpp with the same adapters', { timeout: 60_000 }, async () => {
    const bytes = makeTestModel({ arch: 'qwen2', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, seed: 2 });
    const config = readModelConfig(await readGguf(bytesSource(bytes)));
    const model = join(dir, 'm.gguf');
    writeFileSync(model, bytes);
    const a = join(dir, 'a.gguf');
    const b = join(dir, 'b.gguf');
    writeFileSync(a, writeLoraGguf(makeRandomLora(config, { rank: 8, targets: ['attn_q', 'ffn_down', 'output'], seed: 1 })));
    writeFileSync(b, writeLoraGguf(makeRandomLora(config, { rank: 2, alpha: 0, targets: ['attn_v', 'token_embd'], seed: 2 })));
    const tokens = [1, 17, 40, 3, 99, 12, 5, 8];
    const ids = join(dir, 'ids.json');
    writeFileSync(ids, JSON.stringify(tokens));
    const out = join(dir, 'out.f32');
    const rc = await logitsCommand.run([model, '--tokens-file', ids, '--out', out, '--backend', 'cpu', '--lora', `${a}:0.7`, '--lora-scaled', b, '-0.4']);
    expect(rc).toBe(0);
    const buf = readFileSync(out);
    const ours = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const llama = llamaRefLogits(model, tokens, { kvType: 'f32', nCtx: 256, loras: [{ path: a, scale: 0.7 }, { path: b, scale: -0.4 }] }).logits;
    const base = llamaRefLogits(model, tokens, { kvType: 'f32', nCtx: 256 }).logits;
    expect(klDivergence(llama, ours, config.nVocab)).toBeLessThanOrEqual(1e-5);
    expect(klDivergence(base, ours, config.nVocab)).toBeGreaterThan(1e-2);
  });
});
