/**
 * The engine's dedicated Web Worker: all model work happens here, off the UI thread.
 * The UI talks to it only through `Comlink.wrap<EngineApi>` (src/ui/engine-client.ts).
 */
import * as Comlink from 'comlink';
import { Engine } from '../engine.ts';
import { ModelStore } from '../store/index.ts';
import { releasingCallbacks } from './callbacks.ts';
import { installErrorTransfer } from './errors.ts';

const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
const engine = new Engine({ gpu, runtime: 'web-worker', store: new ModelStore() });

installErrorTransfer();
// Callback proxies (progress, streamed chunks) are released when their call settles.
Comlink.expose(releasingCallbacks(engine));
