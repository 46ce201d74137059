/**
 * `hearth finetune` end to end on a small generated model: text and a conversation file in, loss
 * lines and held-out figures out, and a LoRA adapter file that reads back with the trained targets.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readGguf } from '../../engine/gguf/reader.ts';
import { bytesSource } from '../../engine/gguf/source.ts';
import { readLoraFile } from '../../engine/model/lora/adapter-file.ts';
import { readModelConfig } from '../../engine/model/config.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { UsageError } from '../command.ts';
import { finetuneCommand } from './finetune.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-cli-finetune-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hearth finetune', { timeout: 60_000 }, () => {
  it('trains on text and conversations and writes an adapter that reads back', async () => {
    const model = join(dir, 'base.gguf');
    const modelBytes = makeTestModel({ arch: 'qwen2', embd: 64, layers: 2, heads: 4, kvHeads: 2, ff: 96, chatTemplate: "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}" });
    writeFileSync(model, modelBytes);
    const text = join(dir, 'notes.md');
    writeFileSync(text, 'the keeper rang the bell eleven times in the fog and wrote the ships in green ink. '.repeat(12));
    const chat = join(dir, 'chat.jsonl');
    writeFileSync(chat, JSON.stringify([{ role: 'user', content: 'who rang the bell' }, { role: 'assistant', content: 'the keeper rang it eleven times' }]) + '\n');
    const out = join(dir, 'adapter.gguf');
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await finetuneCommand.run([model, '--data', `${text},${chat}`, '--rank', '2', '--steps', '3', '--window', '24', '--targets', 'attn_q,ffn_down', '--out', out])).toBe(0);
      const lines = stdout.mock.calls.map((c) => String(c[0])).join('');
      expect(lines).toMatch(/step 3\/3: loss \d+\.\d+, grad norm [\d.]+, lr [\d.e+-]+, [\d.]+ tokens\/s, held-out loss \d/);
      expect(lines).toMatch(/held-out perplexity: [\d.]+ -> [\d.]+/);
      const bytes = new Uint8Array(readFileSync(out));
      const info = readLoraFile(await readGguf(bytesSource(bytes)), readModelConfig(await readGguf(bytesSource(modelBytes))));
      expect(info.targets.map((t) => t.base).sort()).toEqual(['blk.0.attn_q.weight', 'blk.0.ffn_down.weight', 'blk.1.attn_q.weight', 'blk.1.ffn_down.weight']);
      expect(info.alpha).toBe(4);
    } finally {
      stdout.mockRestore();
    }
  });

  it('rejects bad flags by name', async () => {
    await expect(finetuneCommand.run(['x.gguf', '--data', 'a.txt'])).rejects.toThrow(UsageError);
    await expect(finetuneCommand.run(['x.gguf', '--data', 'a.txt', '--out', 'o.gguf', '--rank', '0'])).rejects.toThrow(UsageError);
    await expect(finetuneCommand.run(['x.gguf', '--data', 'a.txt', '--out', 'o.gguf', '--targets', 'token_embd'])).rejects.toThrow(UsageError);
    await expect(finetuneCommand.run(['x.gguf', '--data', 'a.txt', '--out', 'o.gguf', '--threads', '0'])).rejects.toThrow(UsageError);
    await expect(finetuneCommand.run(['x.gguf', '--data', 'a.txt', '--out', 'o.gguf', '--backend', 'webgpu', '--threads', '2'])).rejects.toThrow(UsageError);
  });
});
