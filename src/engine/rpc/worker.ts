/**
 * The engine's dedicated Web Worker: all model work happens here, off the UI thread. It serves
 * the engine for plain calls and its reporting calls as pull streams (protocol.ts); the page
 * reaches both only through the client (client.ts, `connectSharedEngine`; in the tab that owns the
 * engine: tab-share/).
 */
import * as Comlink from 'comlink';
import { Engine } from '../engine.ts';
import { ModelStore } from '../store/index.ts';
import { installErrorTransfer } from './errors.ts';
import type { WorkerApi } from './protocol.ts';
import { StreamHost } from './stream-host.ts';

const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
const engine = new Engine({ gpu, runtime: 'web-worker', store: new ModelStore() });

installErrorTransfer();
const api: WorkerApi = { engine, streams: new StreamHost(engine) };
Comlink.expose(api);
