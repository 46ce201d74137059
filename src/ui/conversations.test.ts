import { describe, expect, it } from 'vitest';
import { exportConversations, ImportFormatError, ImportTooLargeError, MAX_IMPORT_BYTES, mergeListed, newConversation, parseExport, readImportFile, titleFrom } from './conversations.ts';

describe('conversation export and import', () => {
  it('round-trips', () => {
    const c = newConversation('Be brief.');
    c.title = 'Greetings';
    c.messages.push({ id: 'a', role: 'user', content: 'Hello' }, { id: 'b', role: 'assistant', content: 'Hi!', stats: {
      promptTokens: 5, completionTokens: 2, cachedPromptTokens: 0, timeToFirstTokenMs: 12, decodeTokensPerSecond: 30, prefillTokensPerSecond: 100, finishReason: 'stop', model: 'm',
    } });
    const [back] = parseExport(exportConversations([c]));
    expect(back!.id).toBe(c.id);
    expect(back!.title).toBe('Greetings');
    expect(back!.systemPrompt).toBe('Be brief.');
    expect(back!.messages.map((m) => [m.role, m.content])).toEqual([['user', 'Hello'], ['assistant', 'Hi!']]);
    expect(back!.messages[1]!.stats?.decodeTokensPerSecond).toBe(30);
  });

  it("keeps what ended a reply at a limit (which limit, the turns left out), and only valid values", () => {
    const stats = { promptTokens: 200, completionTokens: 44, cachedPromptTokens: 0, timeToFirstTokenMs: 1, decodeTokensPerSecond: 1, prefillTokensPerSecond: 1, model: 'm' };
    const c = newConversation('');
    c.messages.push(
      { id: 'a', role: 'user', content: 'Hello' },
      { id: 'b', role: 'assistant', content: 'x', stats: { ...stats, finishReason: 'length', lengthLimit: 'context_window', droppedMessages: 2, contextLength: 256, maxTokens: 512 } },
      { id: 'c', role: 'assistant', content: 'y', stats: { ...stats, finishReason: 'stop', lengthLimit: 'max_tokens' } },
    );
    const [back] = parseExport(exportConversations([c]));
    expect(back!.messages[1]!.stats).toMatchObject({ lengthLimit: 'context_window', droppedMessages: 2, contextLength: 256, maxTokens: 512 });
    expect(back!.messages[2]!.stats?.lengthLimit).toBeUndefined();
  });

  it('gives a clashing id a fresh one', () => {
    const c = newConversation();
    const [back] = parseExport(exportConversations([c]), new Set([c.id]));
    expect(back!.id).not.toBe(c.id);
  });

  it('rejects what is not an export, with a reason', () => {
    expect(() => parseExport('not json')).toThrow(ImportFormatError);
    expect(() => parseExport('{"a":1}')).toThrow(/No conversations found/);
    expect(() => parseExport('{"conversations":[{"messages":[{"role":"system","content":"x"}]}]}')).toThrow(/role "system"/);
    expect(() => parseExport('{"conversations":[{"messages":[{"role":"user","content":5}]}]}')).toThrow(/should be text/);
  });

  it('drops unknown fields', () => {
    const [back] = parseExport('{"conversations":[{"title":"t","evil":"x","messages":[{"role":"user","content":"hi","onclick":"x"}]}]}');
    expect(Object.keys(back!)).not.toContain('evil');
    expect(Object.keys(back!.messages[0]!)).not.toContain('onclick');
  });

  it('titles from the first line, cut at a word', () => {
    expect(titleFrom('  Hello there\nmore')).toBe('Hello there');
    expect(titleFrom('')).toBe('New chat');
    const long = titleFrom('one two three four five six seven eight nine ten eleven twelve');
    expect(long.length).toBeLessThanOrEqual(49);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('import size limit', () => {
  it('refuses a file over the limit by its size, before reading it', async () => {
    const file = new Blob([new Uint8Array(MAX_IMPORT_BYTES + 1)]);
    let read = false;
    const spy = Object.assign(file, { text: () => ((read = true), Promise.resolve('')) });
    await expect(readImportFile(spy)).rejects.toThrow(ImportTooLargeError);
    await expect(readImportFile(spy)).rejects.toThrow(/at most 32\.0 MiB/);
    expect(read).toBe(false);
  });

  it('refuses text over the limit with a named error, and reads a file under it', async () => {
    const text = exportConversations([newConversation()]);
    expect(() => parseExport(text + ' '.repeat(MAX_IMPORT_BYTES))).toThrow(ImportTooLargeError);
    expect(parseExport(await readImportFile(new Blob([text])))).toHaveLength(1);
  });
});

describe('the saved list read when the chat opens', () => {
  it('keeps what the view already has (a new chat, a message being sent) and adds the saved ones, newest first', () => {
    const saved = newConversation('');
    saved.id = 'saved';
    saved.updatedAt = 100;
    saved.messages.push({ id: 'm1', role: 'user', content: 'old' });
    const stale = { ...newConversation(''), id: 'sending', updatedAt: 150, messages: [] };
    const opened = newConversation('');
    opened.id = 'sending';
    opened.updatedAt = 200;
    opened.messages.push({ id: 'm2', role: 'user', content: 'sent before the list came' });
    const merged = mergeListed([opened], [stale, saved]);
    expect(merged.map((c) => c.id)).toEqual(['sending', 'saved']);
    expect(merged[0]!.messages.map((m) => m.content)).toEqual(['sent before the list came']);
    expect(mergeListed([], [saved, stale]).map((c) => c.id)).toEqual(['sending', 'saved']);
  });
});
