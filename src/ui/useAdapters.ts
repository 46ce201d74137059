/**
 * The LoRA adapters attached to the model in use: loaded into the engine from a file, each on or
 * off with its scale; the requests carry the ones on (`request`). Adapters belong to the model
 * they were loaded for, so the list empties when another model is loaded.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { AdapterInfo } from '../engine/api.ts';
import { engineClient } from './engine-client.ts';
import { errorText } from './errors.ts';
import { loadedModel, type ModelState } from './useEngine.ts';

export interface AttachedAdapter {
  info: AdapterInfo;
  active: boolean;
  scale: number;
}

export interface AdaptersHandle {
  list: AttachedAdapter[];
  /** The `adapters` field of a request: the ones on, at their scales. */
  request: Array<{ id: string; scale: number }>;
  attach(file: File): Promise<void>;
  setScale(id: string, scale: number): void;
  setActive(id: string, active: boolean): void;
  /** Off and out of the list (the engine keeps its bytes until the model is unloaded). */
  detach(id: string): void;
  busy: boolean;
  error: string | undefined;
  dismissError(): void;
}

export function useAdapters(model: ModelState): AdaptersHandle {
  const [list, setList] = useState<AttachedAdapter[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const info = loadedModel(model)?.info;

  // Another model (or none): its adapters went with the old one.
  useEffect(() => {
    setList([]);
  }, [info]);

  const attach = useCallback(async (file: File) => {
    setBusy(true);
    setError(undefined);
    try {
      const loaded = await engineClient().engine.loadAdapter({ kind: 'file', file, name: file.name });
      setList((old) => [...old, { info: loaded, active: true, scale: 1 }]);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }, []);
  const update = (id: string, patch: Partial<AttachedAdapter>) => setList((old) => old.map((a) => (a.info.id === id ? { ...a, ...patch } : a)));
  const request = useMemo(() => list.filter((a) => a.active && Number.isFinite(a.scale)).map((a) => ({ id: a.info.id, scale: a.scale })), [list]);
  return {
    list,
    request,
    attach,
    setScale: (id, scale) => update(id, { scale }),
    setActive: (id, active) => update(id, { active }),
    detach: (id) => setList((old) => old.filter((a) => a.info.id !== id)),
    busy,
    error,
    dismissError: () => setError(undefined),
  };
}
