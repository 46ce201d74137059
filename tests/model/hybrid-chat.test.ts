/**
 * A chat with a hybrid (lfm2: short convolutions and attention) through ChatSession on the CPU
 * backend: the second turn reuses the first one's prefix through the recurrent state (the live
 * state or a prefill snapshot: recurrent-state.ts) and replies exactly as a session that evaluates
 * the whole second prompt from scratch; a third request that shares only the system prompt rewinds
 * to the empty state (no snapshot that early) and still replies as a fresh session does.
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/engine/backend/cpu/backend.ts';
import type { ChatMessage } from '../../src/engine/api.ts';
import { ChatSession } from '../../src/engine/generate/chat-session.ts';
import { validateChatRequest } from '../../src/engine/generate/validate-request.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import { Model } from '../../src/engine/model/model.ts';
import { Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { makeTestModel } from '../../src/testing/make-model.ts';

let dir: string;
let path: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-hybrid-chat-'));
  path = join(dir, 'lfm2.gguf');
  writeFileSync(path, makeTestModel({ arch: 'lfm2', embd: 64, layers: 4, heads: 4, kvHeads: 2, ff: 96, seed: 5 }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function openSession(): Promise<{ session: ChatSession; model: Model }> {
  const bytes = new Uint8Array(readFileSync(path));
  const file = await readGguf(bytesSource(bytes));
  const model = await Model.load(await CpuBackend.create({ relaxed: false, quantizedActivations: false }), bytesSource(bytes), { contextLength: 256, batch: 16 });
  const metadata = file.metadata as ReadonlyMap<string, unknown>;
  return { session: new ChatSession(model, Tokenizer.fromGgufMetadata(metadata), metadata, { modelName: 'hybrid' }), model };
}

async function reply(session: ChatSession, messages: ChatMessage[]) {
  const request = validateChatRequest({ messages, temperature: 0, max_tokens: 6 });
  return session.complete(request, undefined, () => false);
}

describe('a chat with a hybrid reuses its earlier turns through the recurrent state', () => {
  it('second turn: prefix reused, reply equal to a fresh session; a diverging request rewinds to the start', { timeout: 120_000 }, async () => {
    const { session, model } = await openSession();
    const fresh = await openSession();
    try {
      const system: ChatMessage = { role: 'system', content: 'You are terse.' };
      const first: ChatMessage[] = [system, { role: 'user', content: 'Name three rivers of Europe, please.' }];
      const one = await reply(session, first);
      expect(one.usage.cached_prompt_tokens).toBe(0);
      const second: ChatMessage[] = [...first, { role: 'assistant', content: one.choices[0]!.message.content ?? '' }, { role: 'user', content: 'And three mountains?' }];
      const two = await reply(session, second);
      const twoFresh = await reply(fresh.session, second);
      console.log(`[hybrid chat] second turn: ${two.usage.prompt_tokens} prompt tokens, ${two.usage.cached_prompt_tokens} reused`);
      expect(two.usage.cached_prompt_tokens).toBeGreaterThanOrEqual(one.usage.prompt_tokens - 16);
      expect(two.choices[0]!.message.content).toBe(twoFresh.choices[0]!.message.content);

      // Shares only the system prompt's first tokens: no snapshot that early, so the state starts over.
      const other: ChatMessage[] = [system, { role: 'user', content: 'Something else entirely.' }];
      const three = await reply(session, other);
      fresh.session.invalidateCache();
      const threeFresh = await reply(fresh.session, other);
      expect(three.usage.cached_prompt_tokens).toBeLessThan(one.usage.prompt_tokens);
      expect(three.choices[0]!.message.content).toBe(threeFresh.choices[0]!.message.content);
      expect(model.position).toBeGreaterThan(0);
    } finally {
      model.destroy();
      fresh.model.destroy();
    }
  });
});
