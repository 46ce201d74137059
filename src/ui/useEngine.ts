/**
 * The engine as React state: start-up (info, GPU probe), the loaded model, loads in progress,
 * the model store (cached models, downloads with progress, storage use). Everything reaches the
 * worker through `engineClient().engine`, whose progress callbacks are all called before their
 * call settles.
 *
 * Loads are numbered: a newer load (the user picking a model) makes an older one (the automatic
 * demo load at start) stale, and a stale load never replaces the model the user chose.
 *
 * A load that fails leaves the model in use loaded (the engine frees it only once the new one is
 * ready), so the state keeps it as `current` while loading and after an error, and says where the
 * load was asked for (`origin`) so the error shows there.
 *
 * The engine is shared by the app's tabs (engineTabs()): a tab that opens while another has a
 * model loaded (or loading) shows that one instead of loading its own, and a load, or the reload
 * after the engine moved to another tab, shows in every tab.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { SharedModel, TabShareState } from '../engine/rpc/client.ts';
import type { BackendChoice, CachedModel, CpuReport, DownloadProgress, EngineInfo, GpuReport, LoadProgress, ModelInfo, ModelSource, StoreUsage } from '../engine/api.ts';
import { loadCatalog, toStoreEntry, type CatalogModel } from './catalog.ts';
import { engineClient, engineTabs } from './engine-client.ts';
import { describeError, type FriendlyError } from './errors.ts';

export type EngineBoot =
  | { status: 'starting' }
  | { status: 'ready'; info: EngineInfo; gpu: GpuReport; cpu: CpuReport }
  | { status: 'failed'; error: string };

/** A model that is loaded and answers; `id` is its store id (a catalog id for catalog models). */
export interface LoadedModel {
  info: ModelInfo;
  label: string;
  id?: string | undefined;
}

/** Where a load was asked for: a file picked or dropped, a catalog or store entry, or start-up. */
export type LoadOrigin = { kind: 'file' } | { kind: 'entry'; id: string } | { kind: 'auto' };

export type ModelState =
  /** Before start-up has decided what to load (the model used last, else the built-in demo). */
  | { state: 'starting' }
  | { state: 'none'; notice?: string | undefined }
  | { state: 'loading'; label: string; origin: LoadOrigin; progress?: LoadProgress | undefined; download?: DownloadProgress | undefined; current?: LoadedModel | undefined; cancel?: (() => void) | undefined }
  | ({ state: 'ready' } & LoadedModel)
  | { state: 'error'; label: string; origin: LoadOrigin; error: FriendlyError; current?: LoadedModel | undefined };

/** The model that answers now: the ready one, or the one kept while another loads or after it failed. */
export function loadedModel(model: ModelState): LoadedModel | undefined {
  if (model.state === 'ready') return { info: model.info, label: model.label, id: model.id };
  if (model.state === 'loading' || model.state === 'error') return model.current;
  return undefined;
}

const LAST_MODEL_KEY = 'hearth.lastModel';
const AUTO: LoadOrigin = { kind: 'auto' };
const BACKEND_KEY = 'hearth.backend';

const THREADS_KEY = 'hearth.threads';

/** The CPU thread count chosen in this browser; undefined: the engine's default (min(cores, 8)). */
function savedThreads(): number | undefined {
  const n = Number(localStorage.getItem(THREADS_KEY));
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

function savedBackend(): BackendChoice {
  const saved = localStorage.getItem(BACKEND_KEY);
  return saved === 'webgpu' || saved === 'cpu' ? saved : 'auto';
}

export interface EngineHandle {
  boot: EngineBoot;
  model: ModelState;
  catalog: CatalogModel[];
  catalogError: string | undefined;
  cached: CachedModel[];
  usage: StoreUsage | undefined;
  downloads: Record<string, DownloadProgress>;
  downloadErrors: Record<string, FriendlyError>;
  /** The backend loads ask for (Auto: WebGPU, else the CPU); remembered in this browser. */
  backend: BackendChoice;
  /** Which tab runs the engine ('follower': another one) and how often it moved. */
  tab: TabShareState;
  /** Changes the backend choice and reloads the loaded model on it. */
  setBackend(choice: BackendChoice): void;
  /** CPU threads loads ask for; undefined: the engine's default. Remembered in this browser. */
  threads: number | undefined;
  /** Changes the CPU thread count and reloads a model loaded on the CPU. */
  setThreads(threads: number | undefined): void;
  refreshStore(): Promise<void>;
  loadCached(id: string, label: string): Promise<void>;
  /** One GGUF file, or every part of a split model (llama.cpp's gguf-split, any order). */
  loadFile(files: File[], copy: boolean): Promise<void>;
  download(model: CatalogModel): Promise<void>;
  cancelDownload(id: string): Promise<void>;
  remove(id: string): Promise<void>;
}

export function useEngine(): EngineHandle {
  const [boot, setBoot] = useState<EngineBoot>({ status: 'starting' });
  const [model, setModel] = useState<ModelState>({ state: 'starting' });
  const [catalog, setCatalog] = useState<CatalogModel[]>([]);
  const [catalogError, setCatalogError] = useState<string>();
  const [cached, setCached] = useState<CachedModel[]>([]);
  const [usage, setUsage] = useState<StoreUsage>();
  const [downloads, setDownloads] = useState<Record<string, DownloadProgress>>({});
  const [downloadErrors, setDownloadErrors] = useState<Record<string, FriendlyError>>({});
  const loadSeq = useRef(0);
  const [backend, setBackendState] = useState<BackendChoice>(savedBackend);
  const backendRef = useRef(backend);
  const [threads, setThreadsState] = useState<number | undefined>(savedThreads);
  const threadsRef = useRef(threads);
  /** What was loaded last, to load again on another backend. */
  const lastSource = useRef<{ source: ModelSource; label: string; remember: string | undefined; origin: LoadOrigin } | undefined>(undefined);
  const [tab, setTab] = useState<TabShareState>(() => engineTabs().state());
  /** Loads this tab asked for and that have not ended: while one runs, it says what the model is. */
  const loadsHere = useRef(0);
  /** Set once start-up has decided what to load: from then on, the shared engine's model shows here. */
  const followShared = useRef(false);
  const cachedRef = useRef<CachedModel[]>([]);
  cachedRef.current = cached;

  /**
   * A load begins or fails: the model in use stays in use. Every stage can be cancelled: a
   * download or a copy by its id (known from its first progress event), a load into the backend
   * by `cancelLoad`.
   */
  const loading = useCallback((label: string, origin: LoadOrigin, extra: { progress?: LoadProgress; download?: DownloadProgress } = {}) => {
    const engine = engineClient().engine;
    const id = extra.download?.id;
    const cancel = () => void (id !== undefined ? engine.cancelDownload(id) : engine.cancelLoad());
    setModel((prev) => ({ state: 'loading', label, origin, ...extra, current: loadedModel(prev), cancel }));
  }, []);
  /** A failed load shows its error; a cancelled one goes back to the model in use, silently. */
  const failed = useCallback((label: string, origin: LoadOrigin, error: unknown) => {
    if ((error as Error)?.name === 'AbortError') {
      setModel((prev) => {
        const current = loadedModel(prev);
        return current ? { state: 'ready', ...current } : { state: 'none', notice: `Loading ${label} was cancelled. No model is loaded.` };
      });
      return;
    }
    setModel((prev) => ({ state: 'error', label, origin, error: describeError(error), current: loadedModel(prev) }));
  }, []);

  /** The model another tab loaded (or the engine reloads after it moved), as this tab shows it. */
  const showShared = useCallback(
    (shared: SharedModel) => {
      if (shared.state === 'none') return setModel({ state: 'none' });
      const id = shared.source.kind === 'cached' ? shared.source.id : undefined;
      const last = JSON.parse(localStorage.getItem(LAST_MODEL_KEY) ?? 'null') as { id: string; label: string } | null;
      const label = (id && last?.id === id ? last.label : cachedRef.current.find((m) => m.id === id)?.name) ?? (shared.state === 'ready' ? shared.info.name : (id ?? 'model'));
      if (shared.state === 'ready') {
        lastSource.current = { source: shared.source, label, remember: id, origin: AUTO };
        setModel({ state: 'ready', info: shared.info, label, id });
      } else if (shared.state === 'loading') loading(label, AUTO);
      else failed(label, AUTO, shared.error);
    },
    [loading, failed],
  );

  /** The shared model last seen, so that only a change of it shows here. */
  const sharedSeen = useRef<SharedModel>(tab.model);
  useEffect(
    () =>
      engineTabs().subscribe((state) => {
        setTab(state);
        if (state.model === sharedSeen.current) return;
        sharedSeen.current = state.model;
        if (followShared.current && loadsHere.current === 0) showShared(state.model);
      }),
    [showShared],
  );

  const refreshStore = useCallback(async () => {
    const engine = engineClient().engine;
    try {
      const [list, use] = await Promise.all([engine.listModels(), engine.storageUsage()]);
      setCached(list);
      setUsage(use);
    } catch {
      // The store is optional (private windows may refuse IndexedDB); the rest keeps working.
    }
  }, []);

  /** Loads a source unless a newer load started meanwhile. */
  const load = useCallback(async (source: ModelSource, label: string, origin: LoadOrigin, seq = ++loadSeq.current, remember?: string) => {
    const engine = engineClient().engine;
    loading(label, origin);
    loadsHere.current++;
    try {
      const info = await engine.loadModel(source, { backend: backendRef.current, ...(threadsRef.current !== undefined ? { threads: threadsRef.current } : {}) }, (progress: LoadProgress) => {
        if (seq === loadSeq.current) loading(label, origin, { progress });
      });
      if (seq !== loadSeq.current) return;
      lastSource.current = { source, label, remember, origin };
      setModel({ state: 'ready', info, label, id: source.kind === 'cached' ? source.id : undefined });
      if (remember) localStorage.setItem(LAST_MODEL_KEY, JSON.stringify({ id: remember, label }));
      else localStorage.removeItem(LAST_MODEL_KEY);
    } catch (error) {
      if (seq === loadSeq.current) failed(label, origin, error);
    } finally {
      loadsHere.current--;
    }
  }, [loading, failed]);

  const loadCached = useCallback((id: string, label: string) => load({ kind: 'cached', id }, label, { kind: 'entry', id }, undefined, id), [load]);

  const loadFile = useCallback(
    async (files: File[], copy: boolean) => {
      const seq = ++loadSeq.current;
      // Parts named <prefix>-0000i-of-0000n.gguf sort into order; the engine checks split.no anyway.
      const parts = [...files].sort((a, b) => a.name.localeCompare(b.name));
      const label = parts[0]?.name ?? 'model';
      const origin: LoadOrigin = { kind: 'file' };
      loading(label, origin);
      try {
        const entry = await engineClient().engine.importModelFile(parts, { copy, name: label }, (download: DownloadProgress) => {
          if (seq === loadSeq.current) loading(label, origin, { download });
        });
        await refreshStore();
        if (seq !== loadSeq.current) return;
        await load({ kind: 'cached', id: entry.id }, label, origin, seq, copy ? entry.id : undefined);
      } catch (error) {
        if (seq === loadSeq.current) failed(label, origin, error);
        // A cancelled or failed copy leaves an incomplete entry: list it, with what to do.
        await refreshStore();
      }
    },
    [load, loading, failed, refreshStore],
  );

  const download = useCallback(
    async (entry: CatalogModel) => {
      setDownloadErrors(({ [entry.id]: _, ...rest }) => rest);
      try {
        await engineClient().engine.downloadModel(toStoreEntry(entry, document.baseURI), (progress: DownloadProgress) =>
          setDownloads((d) => ({ ...d, [entry.id]: progress })),
        );
      } catch (error) {
        if ((error as Error)?.name !== 'AbortError') setDownloadErrors((d) => ({ ...d, [entry.id]: describeError(error) }));
      } finally {
        setDownloads(({ [entry.id]: _, ...rest }) => rest);
        await refreshStore();
      }
    },
    [refreshStore],
  );

  const cancelDownload = useCallback(async (id: string) => {
    await engineClient().engine.cancelDownload(id);
  }, []);

  const remove = useCallback(
    async (id: string) => {
      await engineClient().engine.deleteModel(id);
      const last = JSON.parse(localStorage.getItem(LAST_MODEL_KEY) ?? 'null') as { id: string } | null;
      if (last?.id === id) localStorage.removeItem(LAST_MODEL_KEY);
      await refreshStore();
    },
    [refreshStore],
  );

  useEffect(() => {
    let cancelled = false;
    const engine = engineClient().engine;
    (async () => {
      try {
        const [info, caps] = await Promise.all([engine.info(), engine.capabilities()]);
        if (cancelled) return;
        setBoot({ status: 'ready', info, gpu: caps.gpu, cpu: caps.cpu });
      } catch (error) {
        if (!cancelled) {
          setBoot({ status: 'failed', error: String((error as Error)?.message ?? error) });
          setModel({ state: 'none' });
        }
        return;
      }
      let entries: CatalogModel[] = [];
      try {
        entries = await loadCatalog();
        if (!cancelled) setCatalog(entries);
      } catch (error) {
        if (!cancelled) setCatalogError((error as Error).message);
      }
      await refreshStore();
      // Without WebGPU the engine runs the model on the CPU (backend 'auto'), so load either way.
      if (cancelled) return;
      await autoLoad(entries);
    })();

    /** Start-up: the model used last, else the built-in demo (fetched from this app's origin once). */
    async function autoLoad(entries: CatalogModel[]) {
      const seq = ++loadSeq.current;
      followShared.current = true;
      // Another tab runs the engine and has a model: use it, not a second load.
      const shared = engineTabs().state().model;
      if (shared.state !== 'none') return showShared(shared);
      const list = await engine.listModels().catch(() => [] as CachedModel[]);
      const last = JSON.parse(localStorage.getItem(LAST_MODEL_KEY) ?? 'null') as { id: string; label: string } | null;
      const lastModel = last && list.find((m) => m.id === last.id && m.state === 'complete');
      if (lastModel) return load({ kind: 'cached', id: lastModel.id }, last.label, AUTO, seq, lastModel.id);
      const demo = entries.find((m) => m.builtin);
      if (!demo) {
        if (seq === loadSeq.current) setModel({ state: 'none' });
        return;
      }
      if (!list.some((m) => m.id === demo.id && m.state === 'complete')) {
        const url = new URL(demo.urls[0]!, document.baseURI).href;
        // A missing file would come back as the app's index.html: check before storing anything.
        const head = await fetch(url, { method: 'HEAD' }).catch(() => undefined);
        if (!head?.ok || (head.headers.get('content-type') ?? '').includes('text/html')) {
          if (seq === loadSeq.current) setModel({ state: 'none', notice: 'The built-in demo model is not part of this build. Load a model file or download one in Models.' });
          return;
        }
        if (seq !== loadSeq.current) return;
        loading(demo.name, AUTO);
        try {
          await engine.downloadModel(toStoreEntry(demo, document.baseURI), (download: DownloadProgress) => {
            if (seq === loadSeq.current) loading(demo.name, AUTO, { download });
          });
        } catch (error) {
          if (seq === loadSeq.current) failed(demo.name, AUTO, error);
          return;
        }
        await refreshStore();
      }
      if (seq === loadSeq.current) await load({ kind: 'cached', id: demo.id }, demo.name, AUTO, seq, demo.id);
    }
    return () => {
      cancelled = true;
    };
  }, [load, loading, failed, refreshStore, showShared]);

  const setBackend = useCallback(
    (choice: BackendChoice) => {
      backendRef.current = choice;
      setBackendState(choice);
      if (choice === 'auto') localStorage.removeItem(BACKEND_KEY);
      else localStorage.setItem(BACKEND_KEY, choice);
      const last = lastSource.current;
      if (last && model.state !== 'loading') void load(last.source, last.label, last.origin, undefined, last.remember);
    },
    [load, model.state],
  );

  const setThreads = useCallback(
    (n: number | undefined) => {
      threadsRef.current = n;
      setThreadsState(n);
      if (n === undefined) localStorage.removeItem(THREADS_KEY);
      else localStorage.setItem(THREADS_KEY, String(n));
      const last = lastSource.current;
      const onCpu = model.state === 'ready' && model.info.backend === 'cpu';
      if (last && onCpu) void load(last.source, last.label, last.origin, undefined, last.remember);
    },
    [load, model],
  );

  return { boot, model, tab, backend, setBackend, threads, setThreads, catalog, catalogError, cached, usage, downloads, downloadErrors, refreshStore, loadCached, loadFile, download, cancelDownload, remove };
}
