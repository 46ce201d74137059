/**
 * What the Personalize page keeps and computes outside React: the run it saved in IndexedDB (its
 * data, options, loss history and latest checkpoint, so a reload can resume it), conversations from
 * the chat history as training data, the loss plot's two series, and durations as people read them.
 */
import { createStore, del, get, set, type UseStore } from 'idb-keyval';
import type { TrainingData, TrainingOptions, TrainingSamples } from '../engine/api.ts';
import type { Conversation } from './conversations.ts';

/** One point of the loss history: a step's train loss, and the held-out loss where it was measured. */
export interface LossPoint {
  step: number;
  loss?: number | undefined;
  heldOutLoss?: number | undefined;
}

/** A run as saved between page loads: enough to resume it with the same data on the same model. */
export interface SavedRun {
  /** The model it trains, as the app names it (store id to load it again, and its name and size to recognize it). */
  model: { id?: string | undefined; label: string; name: string; fileSize: number };
  data: TrainingData;
  options: TrainingOptions;
  samples: TrainingSamples;
  /** Latest checkpoint (a pause, or the last held-out evaluation); undefined before the first. */
  checkpoint?: Uint8Array | undefined;
  /** The step the checkpoint is at, and the run's length. */
  step: number;
  steps: number;
  history: LossPoint[];
  paused: boolean;
  savedAt: number;
}

let store: UseStore | undefined;
function db(): UseStore {
  store ??= createStore('hearth-personalize', 'runs');
  return store;
}

const KEY = 'current';

export function loadSavedRun(): Promise<SavedRun | undefined> {
  return get<SavedRun>(KEY, db());
}

export function saveRun(run: SavedRun): Promise<void> {
  return set(KEY, run, db());
}

export function clearSavedRun(): Promise<void> {
  return del(KEY, db());
}

/**
 * A stored conversation as training messages: the system prompt (when set) and each message's
 * shown text; replies that ended in an error, and empty ones, are left out with the turn that asked.
 */
export function trainingConversation(c: Conversation): Array<{ role: string; content: string }> {
  const out: Array<{ role: string; content: string }> = [];
  if (c.systemPrompt.trim()) out.push({ role: 'system', content: c.systemPrompt });
  for (let i = 0; i < c.messages.length; i++) {
    const m = c.messages[i]!;
    if (m.role === 'user') {
      const reply = c.messages[i + 1];
      if (reply?.role === 'assistant' && !reply.error && reply.content.trim() !== '') {
        out.push({ role: 'user', content: m.content }, { role: 'assistant', content: reply.content });
        i++;
      }
    }
  }
  return out;
}

/** Whether a conversation has an assistant reply to train on. */
export function hasTrainableReply(c: Conversation): boolean {
  return trainingConversation(c).some((m) => m.role === 'assistant');
}

/** The history with the new point merged in (a step reported twice, first without its held-out loss, keeps both). */
export function addLossPoint(history: readonly LossPoint[], point: LossPoint): LossPoint[] {
  const at = history.findIndex((p) => p.step === point.step);
  if (at < 0) return [...history, point].sort((a, b) => a.step - b.step);
  const merged = { ...history[at]!, ...Object.fromEntries(Object.entries(point).filter(([, v]) => v !== undefined)) };
  return history.map((p, i) => (i === at ? merged : p));
}

/** The plot's two series: train loss per step, held-out loss where measured (step 0: the base model). */
export function lossSeries(history: readonly LossPoint[]): { train: Array<{ x: number; y: number }>; heldOut: Array<{ x: number; y: number }> } {
  const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
  return {
    train: history.filter((p) => finite(p.loss)).map((p) => ({ x: p.step, y: p.loss! })),
    heldOut: history.filter((p) => finite(p.heldOutLoss)).map((p) => ({ x: p.step, y: p.heldOutLoss! })),
  };
}

/** Seconds as "45 s", "3 min 20 s", "1 h 5 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Up to `count` sample prompts from the data when the user gave none: each text's first words, each conversation's first question. */
export function defaultPrompts(data: TrainingData, count = 2, words = 6): string[] {
  const out: string[] = [];
  for (const c of data.conversations ?? []) {
    const q = c.find((m) => m.role === 'user')?.content.trim();
    if (q) out.push(q);
  }
  for (const t of data.texts ?? []) {
    const first = t.trim().split(/\s+/).slice(0, words).join(' ');
    if (first) out.push(first);
  }
  return [...new Set(out)].slice(0, count);
}
