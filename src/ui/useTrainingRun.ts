/**
 * The training run of this page load, outside React: it lives on while the user visits other pages
 * (the engine keeps training; this keeps the progress, the loss history and the checkpoints going
 * into IndexedDB), and the Personalize page shows it again when it comes back. One run at a time,
 * as the engine allows.
 */
import { useSyncExternalStore } from 'react';
import type { TrainingOutcome, TrainingProgress, TrainingRequest, TrainingResult } from '../engine/api.ts';
import { engineClient } from './engine-client.ts';
import { errorText } from './errors.ts';
import { addLossPoint, clearSavedRun, loadSavedRun, saveRun, type LossPoint, type SavedRun } from './personalize.ts';

export type TrainingPhase = 'setup' | 'running' | 'paused' | 'done';

export interface TrainingRunState {
  phase: TrainingPhase;
  progress?: TrainingProgress | undefined;
  history: LossPoint[];
  /** The run as saved for a resume (while running, paused, or found after a reload). */
  saved?: SavedRun | undefined;
  result?: TrainingResult | undefined;
  error?: string | undefined;
  stopping?: 'pause' | 'cancel' | undefined;
}

let state: TrainingRunState = { phase: 'setup', history: [] };
const listeners = new Set<() => void>();
let restored = false;

function update(patch: Partial<TrainingRunState>): void {
  state = { ...state, ...patch };
  for (const l of listeners) l();
}

/** Once per page load: a run saved by an earlier page (paused, or cut off by a reload) is offered for resuming. */
function restore(): void {
  if (restored) return;
  restored = true;
  void loadSavedRun().then((run) => {
    if (!run || state.phase !== 'setup') return;
    update({ saved: run, history: run.history.filter((p) => p.step <= run.step), phase: 'paused' });
  });
}

/** Runs (or resumes) `request`; `record` is what is saved for a resume, updated at each checkpoint. */
async function train(request: TrainingRequest, record: SavedRun): Promise<void> {
  update({ phase: 'running', error: undefined, result: undefined, stopping: undefined, saved: record, history: record.history, progress: undefined });
  let current = record;
  await saveRun(current);
  let outcome: TrainingOutcome;
  try {
    outcome = await engineClient().engine.trainAdapter(request, (p) => {
      const patch: Partial<TrainingRunState> = { progress: p };
      if (p.loss !== undefined || p.heldOutLoss !== undefined) patch.history = addLossPoint(state.history, { step: p.step, loss: p.loss, heldOutLoss: p.heldOutLoss });
      if (p.checkpoint) {
        current = { ...current, checkpoint: p.checkpoint, step: p.step, history: patch.history ?? state.history, savedAt: Date.now() };
        patch.saved = current;
        void saveRun(current);
      }
      update(patch);
    });
  } catch (e) {
    update({ error: errorText(e), phase: current.checkpoint ? 'paused' : 'setup', stopping: undefined });
    return;
  }
  if (outcome.state === 'paused') {
    const step = outcome.step;
    current = { ...current, checkpoint: outcome.checkpoint, step, history: state.history.filter((p) => p.step <= step), paused: true, savedAt: Date.now() };
    await saveRun(current);
    update({ saved: current, phase: 'paused', stopping: undefined, history: current.history });
  } else {
    await clearSavedRun();
    if (outcome.state === 'cancelled') update({ saved: undefined, history: [], progress: undefined, phase: 'setup', stopping: undefined });
    else update({ saved: undefined, result: outcome.result, phase: 'done', stopping: undefined });
  }
}

export const trainingRun = {
  start(request: TrainingRequest, record: SavedRun): void {
    void train(request, record);
  },
  /** Goes on from the saved checkpoint (or from the start when the run stopped before its first). */
  resume(): void {
    const saved = state.saved;
    if (!saved) return;
    const kept = saved.checkpoint ? saved.history.filter((p) => p.step <= saved.step) : [];
    const request: TrainingRequest = { data: saved.data, options: saved.options, samples: saved.samples, ...(saved.checkpoint ? { resume: saved.checkpoint } : {}) };
    void train(request, { ...saved, history: kept, paused: false });
  },
  pause(): void {
    update({ stopping: 'pause' });
    void engineClient().engine.pauseTraining().catch((e: unknown) => update({ error: errorText(e), stopping: undefined }));
  },
  cancel(): void {
    update({ stopping: 'cancel' });
    void engineClient().engine.cancelTraining();
  },
  /** Forgets a paused run (and its checkpoint). */
  async discard(): Promise<void> {
    await clearSavedRun();
    update({ saved: undefined, history: [], progress: undefined, phase: 'setup', error: undefined });
  },
  /** Back to setting up a new run after a finished one. */
  reset(): void {
    update({ result: undefined, history: [], progress: undefined, phase: 'setup', error: undefined });
  },
  setError(error: string | undefined): void {
    update({ error });
  },
};

export function useTrainingRun(): TrainingRunState {
  restore();
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => state,
  );
}
