// A CPU backend pool thread (threads.ts starts it): a Web Worker in browsers, a worker_threads
// Worker in Node. Plain JavaScript so Node runs it without a TypeScript loader; Vite bundles it for
// the browser from the `new Worker(new URL('./pool-worker.js', import.meta.url))` in threads.ts.
//
// One message arrives: { module, memory, control, tid, kernels }. The thread instantiates
// the same compiled module over the same shared memory (re-applying the module's constant data
// segments writes the bytes they already hold), answers { ready: true } or { error }, and then
// never returns to its event loop: it serves ops from the control block until QUIT.
import { ARGS_OFFSET, CONTROL_INTS, MAX_ARGS, workerLoop } from './pool-share.js';

const NODE_WORKER_THREADS = 'node:worker_threads';

async function connect() {
  if (typeof WorkerGlobalScope !== 'undefined') {
    return { post: (m) => self.postMessage(m), once: (f) => (self.onmessage = (e) => f(e.data)) };
  }
  const { parentPort } = await import(/* @vite-ignore */ NODE_WORKER_THREADS);
  return { post: (m) => parentPort.postMessage(m), once: (f) => parentPort.once('message', f) };
}

const port = await connect();
port.once((init) => {
  let fns;
  let ctrl;
  let args;
  try {
    const instance = new WebAssembly.Instance(init.module, {
      env: {
        memory: init.memory,
        abort: () => {
          throw new Error('CPU kernel abort');
        },
      },
    });
    fns = init.kernels.map((name) => instance.exports[name]);
    ctrl = new Int32Array(init.memory.buffer, init.control, CONTROL_INTS);
    args = new Float64Array(init.memory.buffer, init.control + ARGS_OFFSET, MAX_ARGS);
  } catch (e) {
    port.post({ error: String(e && e.stack ? e.stack : e) });
    return;
  }
  port.post({ ready: true });
  workerLoop(fns, ctrl, args, init.tid);
});
