import { describe, expect, it } from 'vitest';
import { conversationMarkdown, exportFileName } from './conversation-markdown.ts';
import {
  addReplyVersion,
  autoTitle,
  exportConversations,
  findEmptyConversation,
  isWorthSaving,
  newConversation,
  parseExport,
  setShownReply,
  showReplyVersion,
  type Conversation,
  type ReplyStats,
  type StoredMessage,
} from './conversations.ts';

const stats = (tokens: number): ReplyStats => ({
  promptTokens: 3, completionTokens: tokens, cachedPromptTokens: 0, timeToFirstTokenMs: 1, decodeTokensPerSecond: 10, prefillTokensPerSecond: 10, finishReason: 'stop', model: 'm',
});

describe('reply versions', () => {
  const first: StoredMessage = { id: 'r', role: 'assistant', content: 'first', stats: stats(1) };

  it('Regenerate keeps the earlier reply and shows a new, empty one', () => {
    const regenerating = addReplyVersion(first);
    expect(regenerating.content).toBe('');
    expect(regenerating.stats).toBeUndefined();
    expect(regenerating.versions?.map((v) => v.content)).toEqual(['first', '']);
    expect(regenerating.version).toBe(1);
    const done = setShownReply(regenerating, { content: 'second', stats: stats(2) });
    expect(done.content).toBe('second');
    expect(done.versions?.map((v) => v.content)).toEqual(['first', 'second']);
    const third = setShownReply(addReplyVersion(done), { content: 'third', error: 'AbortError: stopped' });
    expect(third.versions?.map((v) => v.content)).toEqual(['first', 'second', 'third']);
    expect(third.version).toBe(2);
    expect(third.error).toBe('AbortError: stopped');
  });

  it('switching shows a version with its own statistics and error, and clamps', () => {
    const two = setShownReply(addReplyVersion(first), { content: 'second', error: 'E: x' });
    const back = showReplyVersion(two, 0);
    expect(back).toMatchObject({ content: 'first', version: 0 });
    expect(back.stats?.completionTokens).toBe(1);
    expect(back.error).toBeUndefined();
    expect(showReplyVersion(two, 9)).toMatchObject({ content: 'second', version: 1, error: 'E: x' });
    expect(showReplyVersion(two, -3).version).toBe(0);
    // A streamed update goes to the version shown, not another one.
    expect(setShownReply(back, { content: 'first, edited' }).versions?.map((v) => v.content)).toEqual(['first, edited', 'second']);
  });

  it('persist through export and import, with the version shown', () => {
    const c = newConversation();
    c.messages.push({ id: 'u', role: 'user', content: 'Hi' }, showReplyVersion(setShownReply(addReplyVersion(first), { content: 'second', stats: stats(2) }), 0));
    const [back] = parseExport(exportConversations([c]));
    const reply = back!.messages[1]!;
    expect(reply.versions?.map((v) => v.content)).toEqual(['first', 'second']);
    expect(reply.version).toBe(0);
    expect(reply.content).toBe('first');
    expect(reply.versions?.[1]?.stats?.completionTokens).toBe(2);
  });

  it('an import with bad versions is refused with the reason', () => {
    const file = (versions: unknown) => JSON.stringify({ conversations: [{ messages: [{ role: 'assistant', content: 'x', versions }] }] });
    expect(() => parseExport(file([{ content: 5 }]))).toThrow(/Version 1 of message 1 of conversation 1 should be text/);
    expect(() => parseExport(file(['x']))).toThrow(/is not an object/);
    expect(() => parseExport(file(Array.from({ length: 101 }, () => ({ content: 'x' }))))).toThrow(/101 versions/);
    // An out-of-range index shows the last version.
    const [c] = parseExport(JSON.stringify({ conversations: [{ messages: [{ role: 'assistant', content: 'x', versions: [{ content: 'a' }, { content: 'b' }], version: 7 }] }] }));
    expect(c!.messages[0]).toMatchObject({ content: 'b', version: 1 });
  });
});

describe('the title follows the first message', () => {
  const chat = (title: string, first?: string): Conversation => ({
    ...newConversation(),
    title,
    messages: first === undefined ? [] : [{ id: 'u', role: 'user', content: first }, { id: 'a', role: 'assistant', content: 'reply' }],
  });
  const edited = (c: Conversation, text: string): Conversation => ({ ...c, messages: c.messages.map((m) => (m.id === 'u' ? { ...m, content: text } : m)) });

  it('from the first message sent to a new chat', () => {
    expect(autoTitle(chat('New chat'), chat('New chat', 'Hello there'))).toBe('Hello there');
  });

  it('and again when that message is edited', () => {
    const c = chat('Hello there', 'Hello there');
    expect(autoTitle(c, edited(c, 'Good morning\nsecond line'))).toBe('Good morning');
  });

  it('not once the user has renamed the chat (or an import named it)', () => {
    const c = chat('My trip', 'Hello there');
    expect(autoTitle(c, edited(c, 'Good morning'))).toBe('My trip');
    expect(autoTitle(chat('Imported chat'), chat('Imported chat', 'Hi'))).toBe('Imported chat');
  });

  it('a chat with no user message keeps its title', () => {
    expect(autoTitle(chat('New chat'), chat('New chat'))).toBe('New chat');
  });
});

describe('an empty chat is not saved, and is reused', () => {
  it('is saved once it has a message', () => {
    const c = newConversation();
    expect(isWorthSaving(c)).toBe(false);
    expect(isWorthSaving({ ...c, messages: [{ id: 'u', role: 'user', content: 'x' }] })).toBe(true);
  });

  it('"New chat" finds the empty one there is', () => {
    const full = { ...newConversation(), messages: [{ id: 'u', role: 'user' as const, content: 'x' }] };
    const empty = newConversation();
    expect(findEmptyConversation([full, empty])).toBe(empty);
    expect(findEmptyConversation([full])).toBeUndefined();
  });
});

describe('Markdown export', () => {
  it('writes the title, the system prompt and each message as text', () => {
    const c: Conversation = {
      ...newConversation('Be brief.\nBe kind.'),
      title: 'Line one\nline two <script>',
      messages: [
        { id: 'u', role: 'user', content: 'What is **bold**? <img src=x onerror=alert(1)>' },
        setShownReply(addReplyVersion({ id: 'a', role: 'assistant', content: 'old' }), { content: 'It is `strong`.\n\n```js\nx()\n```\n', error: 'AbortError:\nstopped' }),
      ],
    };
    const md = conversationMarkdown(c, new Date('2026-01-02T03:04:05Z'));
    expect(md).toBe(
      [
        '# Line one line two <script>',
        '',
        'Exported from Hearth on 2026-01-02.',
        '',
        'System prompt:',
        '',
        '> Be brief.',
        '> Be kind.',
        '',
        '## You',
        '',
        'What is **bold**? <img src=x onerror=alert(1)>',
        '',
        '## Assistant (version 2 of 2)',
        '',
        'It is `strong`.',
        '',
        '```js',
        'x()',
        '```',
        '',
        '(The reply ended with an error: AbortError: stopped)',
        '',
      ].join('\n'),
    );
  });

  it('names the file after the title, with nothing that could escape a folder or disguise the type', () => {
    expect(exportFileName('Hello there', 'md')).toBe('Hello-there.md');
    expect(exportFileName('../../etc/passwd', 'md')).toBe('etc-passwd.md');
    expect(exportFileName('a\\b:c*d?"e<f>g|h', 'json')).toBe('a-b-c-d-e-f-g-h.json');
    expect(exportFileName('invoice\u202Etxt.exe', 'md')).toBe('invoice-txt.exe.md');
    expect(exportFileName('   ', 'md')).toBe('conversation.md');
    expect(exportFileName('...', 'md')).toBe('conversation.md');
    expect(exportFileName('CON', 'md')).toBe('CON-chat.md');
    expect(exportFileName('Über café 日本語', 'md')).toBe('Über-café-日本語.md');
    const long = exportFileName('word '.repeat(40), 'md');
    expect(long.length).toBeLessThanOrEqual(83);
    expect(long).toMatch(/^[\w-]+\.md$/);
  });
});
