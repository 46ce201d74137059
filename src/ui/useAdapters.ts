/**
 * The LoRA adapters attached to the model in use: loaded into the engine from a file or from the
 * model store, each on or off with its scale; the requests carry the ones on (`request`).
 * Adapters belong to the model they were loaded for: the list empties when another model is
 * loaded. When the same model comes back (after a lost GPU device, or the engine moving to
 * another tab, both of which reload it and drop its adapters), each adapter is attached again
 * from where it came from, under the same id, so the requests' ids keep working; one that cannot
 * be is kept in the list as dropped, with the reason, to re-attach or detach.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { AdapterInfo, AdapterSource, ModelInfo } from '../engine/api.ts';
import { engineClient } from './engine-client.ts';
import { errorText } from './errors.ts';
import { loadedModel, type ModelState } from './useEngine.ts';

export interface AttachedAdapter {
  info: AdapterInfo;
  /** Where it was loaded from: a picked file, or the store's id (then `storeId`). */
  source: AdapterSource;
  active: boolean;
  scale: number;
  /** Set when the engine lost it (model reloaded) and attaching it again failed: why. */
  dropped?: string;
}

export interface AdaptersHandle {
  list: AttachedAdapter[];
  /** The `adapters` field of a request: the ones on (and not dropped), at their scales. */
  request: Array<{ id: string; scale: number }>;
  attach(file: File): Promise<void>;
  /** Attaches an adapter kept in the model store, by its store id. */
  attachStored(storeId: string): Promise<void>;
  /** Attaches a dropped adapter again from its source. */
  reattach(id: string): Promise<void>;
  setScale(id: string, scale: number): void;
  setActive(id: string, active: boolean): void;
  /** Off, out of the list, and unloaded from the engine (its memory freed where the backend can). */
  detach(id: string): void;
  busy: boolean;
  error: string | undefined;
  dismissError(): void;
}

/** The same model again (reloaded after a device loss or a move), as opposed to another one. */
function sameModel(a: ModelInfo, b: ModelInfo): boolean {
  return a.name === b.name && a.architecture === b.architecture && a.fileSize === b.fileSize && a.parameterCount === b.parameterCount;
}

/**
 * Loads each adapter of `list` again from its source under its id, after the engine reloaded the
 * model: the ones that load come back as they were (on or off, scale); the others are marked
 * dropped with the reason. One the engine still has ("already loaded") is kept as it is.
 */
export async function reattachAll(list: readonly AttachedAdapter[], load: (source: AdapterSource, id: string) => Promise<AdapterInfo>): Promise<AttachedAdapter[]> {
  const again: AttachedAdapter[] = [];
  for (const a of list) {
    try {
      const { dropped: _, ...rest } = a;
      again.push({ ...rest, info: await load(a.source, a.info.id) });
    } catch (e) {
      if ((e as Error).name === 'InvalidRequestError' && /already loaded/.test((e as Error).message)) again.push(a);
      else again.push({ ...a, dropped: errorText(e) });
    }
  }
  return again;
}

export function useAdapters(model: ModelState): AdaptersHandle {
  const [list, setList] = useState<AttachedAdapter[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const info = loadedModel(model)?.info;
  const listRef = useRef(list);
  listRef.current = list;
  const lastInfo = useRef<ModelInfo | undefined>(undefined);

  const load = useCallback((source: AdapterSource, id?: string) => engineClient().engine.loadAdapter(source, id !== undefined ? { id } : {}), []);

  // A new ModelInfo means the engine loaded a model, and the adapters it had are gone with the old one.
  useEffect(() => {
    // No model for a while (a reload after a device loss passes through that): keep the list for when it is back.
    if (!info) return;
    const previous = lastInfo.current;
    lastInfo.current = info;
    if (previous === info) return;
    if (!previous || !sameModel(previous, info) || listRef.current.length === 0) {
      setList([]);
      return;
    }
    let cancelled = false;
    void reattachAll(listRef.current, load).then((again) => {
      if (!cancelled) setList(again);
    });
    return () => {
      cancelled = true;
    };
  }, [info, load]);

  const attachFrom = useCallback(
    async (source: AdapterSource) => {
      setBusy(true);
      setError(undefined);
      try {
        const loaded = await load(source);
        setList((old) => [...old, { info: loaded, source, active: true, scale: 1 }]);
      } catch (e) {
        setError(errorText(e));
      } finally {
        setBusy(false);
      }
    },
    [load],
  );
  const attach = useCallback((file: File) => attachFrom({ kind: 'file', file, name: file.name }), [attachFrom]);
  const attachStored = useCallback((storeId: string) => attachFrom({ kind: 'cached', id: storeId }), [attachFrom]);
  const reattach = useCallback(
    async (id: string) => {
      const a = listRef.current.find((x) => x.info.id === id);
      if (!a) return;
      setBusy(true);
      try {
        const loaded = await load(a.source, id);
        setList((old) => old.map((x) => (x.info.id === id ? { ...x, info: loaded, dropped: undefined } : x)));
      } catch (e) {
        setList((old) => old.map((x) => (x.info.id === id ? { ...x, dropped: errorText(e) } : x)));
      } finally {
        setBusy(false);
      }
    },
    [load],
  );
  const detach = useCallback((id: string) => {
    const dropped = listRef.current.find((a) => a.info.id === id)?.dropped !== undefined;
    setList((old) => old.filter((a) => a.info.id !== id));
    // A dropped one is not in the engine any more; the others are unloaded to free their memory.
    if (!dropped) void engineClient().engine.unloadAdapter(id).catch((e: unknown) => setError(errorText(e)));
  }, []);
  const update = (id: string, patch: Partial<AttachedAdapter>) => setList((old) => old.map((a) => (a.info.id === id ? { ...a, ...patch } : a)));
  const request = useMemo(() => list.filter((a) => a.active && !a.dropped && Number.isFinite(a.scale)).map((a) => ({ id: a.info.id, scale: a.scale })), [list]);
  return {
    list,
    request,
    attach,
    attachStored,
    reattach,
    setScale: (id, scale) => update(id, { scale }),
    setActive: (id, active) => update(id, { active }),
    detach,
    busy,
    error,
    dismissError: () => setError(undefined),
  };
}
