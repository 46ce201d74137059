/**
 * The owner's record of its engine's model: every load and unload through `engine` updates it and
 * `announce`s it, so the other tabs show the model in use, and the tab that takes over when the
 * owner closes knows what to load again.
 */
import type { EngineApi, LoadModelOptions, ModelSource } from '../../api.ts';
import { serializeError } from '../../errors.ts';
import { engineFrom } from './movable-engine.ts';
import type { SharedModel } from './protocol.ts';

export interface ModelAnnouncer {
  /** The engine, with its loads and unloads recorded. */
  readonly engine: EngineApi;
  current(): SharedModel;
}

export function announceModel(engine: EngineApi, announce: (model: SharedModel) => void): ModelAnnouncer {
  let current: SharedModel = { state: 'none' };
  /** The newest load; an older one that ends later says nothing (the engine keeps the newest). */
  let latest = 0;
  const set = (model: SharedModel) => {
    current = model;
    announce(model);
  };

  async function loadModel(source: ModelSource, options?: LoadModelOptions, onProgress?: Parameters<EngineApi['loadModel']>[2]) {
    const seq = ++latest;
    const before = current;
    set({ state: 'loading', source, options });
    try {
      const info = await engine.loadModel(source, options, onProgress);
      if (seq === latest) set({ state: 'ready', source, options, info });
      return info;
    } catch (error) {
      // A failed load leaves the model before it loaded (the engine's promise); with none, say why.
      if (seq === latest) set(before.state === 'ready' ? before : { state: 'failed', source, options, error: serializeError(error) });
      throw error;
    }
  }

  async function unloadModel() {
    await engine.unloadModel();
    latest++;
    set({ state: 'none' });
  }

  const recorded = engineFrom((method, args) => {
    if (method === 'loadModel') return loadModel(...(args as Parameters<EngineApi['loadModel']>));
    if (method === 'unloadModel') return unloadModel();
    return Reflect.apply(engine[method], engine, args) as Promise<unknown>;
  });
  return { engine: recorded, current: () => current };
}
