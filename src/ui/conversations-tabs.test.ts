/**
 * Two tabs of the app share one IndexedDB of conversations (in Node, fake-indexeddb): each
 * conversation is its own record, so a tab's save or delete touches only its own and never
 * rewrites a list another tab read earlier.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { deleteConversation, listConversations, newConversation, saveConversation } from './conversations.ts';

describe('conversations across tabs', () => {
  it("one tab's save or delete never loses another tab's conversations", async () => {
    // Both tabs read the (empty) list, then each starts a chat of its own.
    const [seenByA, seenByB] = await Promise.all([listConversations(), listConversations()]);
    expect([seenByA, seenByB]).toEqual([[], []]);
    const fromA = { ...newConversation(), title: 'from A' };
    const fromB = { ...newConversation(), title: 'from B' };
    await Promise.all([saveConversation(fromA), saveConversation(fromB)]);
    expect((await listConversations()).map((c) => c.title).sort()).toEqual(['from A', 'from B']);

    // A keeps writing to its chat, from its own (stale) view: B's chat stays.
    await saveConversation({ ...fromA, messages: [{ id: 'm', role: 'user', content: 'hi' }], updatedAt: fromA.updatedAt + 1 });
    await deleteConversation('not-a-conversation-of-either');
    const after = await listConversations();
    expect(after.map((c) => c.title).sort()).toEqual(['from A', 'from B']);
    expect(after.find((c) => c.id === fromA.id)!.messages).toHaveLength(1);

    await deleteConversation(fromA.id);
    expect((await listConversations()).map((c) => c.title)).toEqual(['from B']);
  });
});
