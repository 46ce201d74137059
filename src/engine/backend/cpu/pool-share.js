// Plain JavaScript (types in pool-share.d.ts): the worker entry (pool-worker.js) imports it as is in
// Node's worker_threads and in a Vite-bundled Web Worker, and the calling thread imports the same
// code, so every thread splits an op by the one rule (no second copy to drift).
/**
 * The pool's control block: Int32 words at a 64-byte aligned pointer in the shared wasm memory,
 * then the current op's kernel arguments as float64 (pointers, sizes and f32 parameters are all
 * exact in a double). The counters the threads hammer sit on their own cache lines.
 */
export const GEN = 0; // bumped by the calling thread to publish an op
export const DONE = 16; // workers that finished the current op
export const NEXT = 32; // next chunk of the current op (dynamic scheduling)
export const KERNEL = 48; // index into the kernel name list
export const ARGC = 49;
export const RANGE = 50; // argument index of the range start (the end follows it)
export const SCRATCH = 51; // argument index of the per-thread scratch pointer, -1 none
export const SCRATCH_STRIDE = 52; // bytes between threads' scratch
export const START = 53; // first unit of the op's range
export const UNITS = 54; // units (rows, tokens, (token, head) pairs) in the range
export const CHUNK = 55; // units per chunk
export const QUIT = 56;
export const ERROR = 57; // 1 + the id of a thread whose kernel threw
export const SPIN = 58; // polls of GEN before a worker sleeps in Atomics.wait
export const CONTROL_INTS = 64;
export const ARGS_OFFSET = 256; // bytes from the control pointer to the float64 arguments
export const MAX_ARGS = 32;
export const CONTROL_BYTES = ARGS_OFFSET + 8 * MAX_ARGS;

/**
 * Runs chunks of the published op until none are left: chunks are claimed with one atomic add
 * each, so a thread the OS preempts (a shared machine, more threads than cores) delays the op by at
 * most one chunk instead of a whole static share. Each output row is written by exactly one call of
 * the same kernel with the same arguments, whatever the split, so results are bitwise identical to
 * one thread.
 */
export function runShare(fns, ctrl, args, tid) {
  const fn = fns[ctrl[KERNEL]];
  const argc = ctrl[ARGC];
  const ri = ctrl[RANGE];
  const si = ctrl[SCRATCH];
  const a = new Array(argc);
  for (let i = 0; i < argc; i++) a[i] = args[i];
  if (si >= 0) a[si] = args[si] + tid * ctrl[SCRATCH_STRIDE];
  const start = ctrl[START];
  const end = start + ctrl[UNITS];
  const chunk = ctrl[CHUNK];
  for (;;) {
    const s = start + Atomics.add(ctrl, NEXT, 1) * chunk;
    if (s >= end) return;
    a[ri] = s;
    a[ri + 1] = Math.min(end, s + chunk);
    fn.apply(null, a);
  }
}

/**
 * A worker's life after instantiation: wait for a new generation (poll `SPIN` times, then sleep in
 * Atomics.wait, which workers may always do), run its share, count itself done; the last one wakes
 * the calling thread. The next op cannot be published before every worker has counted itself done
 * for this one, so no worker misses an op.
 */
export function workerLoop(fns, ctrl, args, tid, workers) {
  // Not the current value: the calling thread may publish the first op between this worker's
  // `ready` and this line. The pool zeroes GEN before starting the workers.
  let seen = 0;
  for (;;) {
    let spins = ctrl[SPIN];
    while (Atomics.load(ctrl, GEN) === seen) {
      if (--spins <= 0) {
        Atomics.wait(ctrl, GEN, seen);
        spins = ctrl[SPIN];
      }
    }
    seen = Atomics.load(ctrl, GEN);
    if (Atomics.load(ctrl, QUIT) !== 0) return;
    try {
      runShare(fns, ctrl, args, tid);
    } catch {
      Atomics.store(ctrl, ERROR, tid + 1);
    }
    if (Atomics.add(ctrl, DONE, 1) === workers - 1) Atomics.notify(ctrl, DONE);
  }
}
