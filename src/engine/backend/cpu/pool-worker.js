// A CPU backend pool thread (threads.ts starts it): a Web Worker in browsers, a worker_threads
// Worker in Node. Plain JavaScript so Node runs it without a TypeScript loader; Vite bundles it for
// the browser from the `new Worker(new URL('./pool-worker.js', import.meta.url))` in threads.ts.
//
// One message arrives: { module, memory, shardMemories, control, tid, kernels, port }. The thread
// instantiates the same compiled module over the same shared memory, and over each shard's memory
// (kernel index s * kernels.length + i is kernel i on shard s; re-applying the module's constant
// data segments writes the bytes they already hold), answers { ready: true } or { error }, and then
// never returns to its event loop: it serves ops from the control block until QUIT. `port` is
// only held: when this thread dies its other end, in the watchdog, closes.
//
// Or { watch: true, memory, control, ports }: the pool's watchdog, a thread that stays in its event
// loop (the calling thread cannot: it blocks inside ops) and marks a worker lost when its port
// closes, i.e. the worker was terminated or crashed, so that the calling thread stops waiting for the
// chunk that worker held.
import { ARGS_OFFSET, CONTROL_INTS, MAX_ARGS, markLost, workerLoop } from './pool-share.js';

const NODE_WORKER_THREADS = 'node:worker_threads';

async function connect() {
  if (typeof WorkerGlobalScope !== 'undefined') {
    return { post: (m) => self.postMessage(m), once: (f) => (self.onmessage = (e) => f(e.data)) };
  }
  const { parentPort } = await import(/* @vite-ignore */ NODE_WORKER_THREADS);
  return { post: (m) => parentPort.postMessage(m), once: (f) => parentPort.once('message', f) };
}

function watch(init) {
  const ctrl = new Int32Array(init.memory.buffer, init.control, CONTROL_INTS);
  for (const { tid, port } of init.ports) {
    const lost = () => markLost(ctrl, tid);
    // Node's MessagePort is an EventEmitter; a browser's fires `close` where it implements it
    // (elsewhere a terminated worker goes unnoticed, but only the pool itself terminates workers).
    // A port only reports its close once it is receiving, hence the empty message listener.
    if (typeof port.on === 'function') {
      port.on('close', lost);
      port.on('message', () => {});
    } else {
      port.addEventListener('close', lost);
      port.addEventListener('message', () => {});
      port.start();
    }
  }
}

const port = await connect();
port.once((init) => {
  if (init.watch) {
    watch(init);
    port.post({ ready: true });
    return;
  }
  let fns;
  let ctrl;
  let args;
  try {
    fns = [init.memory, ...(init.shardMemories ?? [])].flatMap((memory) => {
      const instance = new WebAssembly.Instance(init.module, {
        env: {
          memory,
          abort: () => {
            throw new Error('CPU kernel abort');
          },
        },
      });
      return init.kernels.map((name) => instance.exports[name]);
    });
    ctrl = new Int32Array(init.memory.buffer, init.control, CONTROL_INTS);
    args = new Float64Array(init.memory.buffer, init.control + ARGS_OFFSET, MAX_ARGS);
  } catch (e) {
    port.post({ error: String(e && e.stack ? e.stack : e) });
    return;
  }
  port.post({ ready: true });
  try {
    workerLoop(fns, ctrl, args, init.tid);
  } catch (e) {
    // Failed outside a kernel (kernel errors are caught per chunk): this thread is gone, and the
    // chunk it held will never finish.
    markLost(ctrl, init.tid);
    throw e;
  }
  init.port?.close();
});
