/**
 * The Personalize page's plain parts: conversations from the history as training messages (failed
 * and empty replies left out with their question), the loss history merging a step's two reports,
 * the plot's series, durations and default sample prompts; and the saved run kept in IndexedDB.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import type { Conversation } from './conversations.ts';
import { addLossPoint, clearSavedRun, defaultPrompts, formatDuration, hasTrainableReply, loadSavedRun, lossSeries, saveRun, trainingConversation, type SavedRun } from './personalize.ts';

const msg = (id: string, role: 'user' | 'assistant', content: string, error?: string) => ({ id, role, content, ...(error ? { error } : {}) });

describe('personalize helpers', () => {
  it('turns a stored conversation into training messages, leaving out failed and empty replies with their question', () => {
    const c: Conversation = {
      id: 'c',
      title: 't',
      systemPrompt: 'Be brief.',
      createdAt: 0,
      updatedAt: 0,
      messages: [msg('1', 'user', 'hi'), msg('2', 'assistant', 'hello'), msg('3', 'user', 'and?'), msg('4', 'assistant', '', 'DeviceLostError: lost'), msg('5', 'user', 'ok'), msg('6', 'assistant', 'fine')],
    };
    expect(trainingConversation(c)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'user', content: 'ok' },
      { role: 'assistant', content: 'fine' },
    ]);
    expect(hasTrainableReply(c)).toBe(true);
    expect(hasTrainableReply({ ...c, messages: [msg('1', 'user', 'hi')] })).toBe(false);
  });

  it('merges a step reported twice and splits the plot series', () => {
    let h = addLossPoint([], { step: 0, heldOutLoss: 3 });
    h = addLossPoint(h, { step: 2, loss: 2.5 });
    h = addLossPoint(h, { step: 1, loss: 2.8 });
    h = addLossPoint(h, { step: 2, loss: undefined, heldOutLoss: 2.7 });
    expect(h).toEqual([{ step: 0, heldOutLoss: 3 }, { step: 1, loss: 2.8 }, { step: 2, loss: 2.5, heldOutLoss: 2.7 }]);
    expect(lossSeries(h)).toEqual({ train: [{ x: 1, y: 2.8 }, { x: 2, y: 2.5 }], heldOut: [{ x: 0, y: 3 }, { x: 2, y: 2.7 }] });
  });

  it('formats durations and picks default prompts from the data', () => {
    expect(formatDuration(0.2)).toBe('1 s');
    expect(formatDuration(200)).toBe('3 min 20 s');
    expect(formatDuration(3900)).toBe('1 h 5 min');
    expect(formatDuration(Number.NaN)).toBe('–');
    expect(defaultPrompts({ texts: ['In the beginning God created the heaven and the earth.'], conversations: [[{ role: 'user', content: 'Who are you?' }, { role: 'assistant', content: 'me' }]] })).toEqual([
      'Who are you?',
      'In the beginning God created the',
    ]);
  });

  it('keeps one saved run in IndexedDB, checkpoint bytes included', async () => {
    const run: SavedRun = {
      model: { label: 'Tiny', name: 'Tiny', fileSize: 10 },
      data: { texts: ['abc'] },
      options: { steps: 4 },
      samples: { prompts: ['a'] },
      checkpoint: new Uint8Array([1, 2, 3]),
      step: 2,
      steps: 4,
      history: [{ step: 1, loss: 2 }],
      paused: true,
      savedAt: 5,
    };
    await saveRun(run);
    expect(await loadSavedRun()).toEqual(run);
    await clearSavedRun();
    expect(await loadSavedRun()).toBeUndefined();
  });
});
