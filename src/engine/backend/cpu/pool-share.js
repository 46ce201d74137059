// Plain JavaScript (types in pool-share.d.ts): the worker entry (pool-worker.js) imports it as is in
// Node's worker_threads and in a Vite-bundled Web Worker, and the calling thread imports the same
// code, so every thread splits an op by the one rule (no second copy to drift).
/**
 * The pool's control block: Int32 words at a 64-byte aligned pointer in the shared wasm memory,
 * then the current op's kernel arguments as float64 (pointers, sizes and f32 parameters are all
 * exact in a double). The counters the threads hammer sit on their own cache lines.
 *
 * Protocol. The calling thread writes an op's fields while CLAIM is exhausted (no chunk can be
 * taken), then stores CLAIM = chunks << 16 (chunk 0 of `chunks` free) and bumps GEN to wake
 * sleepers. Any thread takes chunk i by a compare-exchange of CLAIM from (i, chunks) to (i + 1,
 * chunks), and reads the op's fields only after that: they cannot change until FINISHED counts
 * its chunk, so a thread that wakes late claims a chunk of whatever op is current (or none) and
 * never mixes two ops. The op is over when FINISHED reaches `chunks`. No thread waits for another
 * to wake up: a worker the OS has not scheduled (a busy machine, more threads than cores) just
 * gets no chunks, and the others, the calling thread included, do them.
 */
export const GEN = 0; // bumped after each publication, to wake sleeping workers
export const FINISHED = 16; // chunks of the current op done
export const CLAIM = 32; // (chunks << 16) | next free chunk
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
export const WORKER_CHUNKS = 59; // chunks run by workers so far (tests check they take part)
export const LOST = 60; // workers that died (an uncaught error, terminated): the caller stops waiting
export const LOST_TID = 61; // the id of the last worker that died
export const CONTROL_INTS = 64;
export const ARGS_OFFSET = 256; // bytes from the control pointer to the float64 arguments
export const MAX_ARGS = 32;
export const CONTROL_BYTES = ARGS_OFFSET + 8 * MAX_ARGS;
export const MAX_CHUNKS = 0xffff;

/**
 * Claims and runs chunks of the current op until none is free. Each output row is written by
 * exactly one call of the same kernel with the same arguments, whatever the split, so results are
 * bitwise identical to one thread. A kernel that throws marks ERROR (the calling thread reports it
 * when the op is over) and its chunk still counts as finished.
 */
export function claimChunks(fns, ctrl, args, tid) {
  for (;;) {
    const v = Atomics.load(ctrl, CLAIM);
    const chunks = v >>> 16;
    const i = v & 0xffff;
    if (i >= chunks) return;
    if (Atomics.compareExchange(ctrl, CLAIM, v, v + 1) !== v) continue;
    try {
      runChunk(fns, ctrl, args, tid, i);
    } catch {
      Atomics.store(ctrl, ERROR, tid + 1);
    }
    if (tid !== 0) Atomics.add(ctrl, WORKER_CHUNKS, 1);
    if (Atomics.add(ctrl, FINISHED, 1) === chunks - 1) Atomics.notify(ctrl, FINISHED);
  }
}

function runChunk(fns, ctrl, args, tid, i) {
  const argc = ctrl[ARGC];
  const ri = ctrl[RANGE];
  const si = ctrl[SCRATCH];
  const a = new Array(argc);
  for (let k = 0; k < argc; k++) a[k] = args[k];
  if (si >= 0) a[si] = args[si] + tid * ctrl[SCRATCH_STRIDE];
  const s = ctrl[START] + i * ctrl[CHUNK];
  a[ri] = s;
  a[ri + 1] = Math.min(ctrl[START] + ctrl[UNITS], s + ctrl[CHUNK]);
  fns[ctrl[KERNEL]].apply(null, a);
}

/**
 * A worker's life after instantiation: take chunks while there are any, then wait for the next
 * publication (poll GEN `SPIN` times, then sleep in Atomics.wait, which workers may always do).
 * GEN is read before claiming, so an op published meanwhile is never slept through.
 */
/**
 * Records that worker `tid` is gone and wakes the calling thread, which may be waiting for a chunk
 * that worker held: run() sees LOST and throws instead of waiting for ever. Called by the worker
 * itself when it fails outside a kernel, and by the pool's watchdog when a worker's port closes
 * (terminated, crashed). Ignored once the pool is quitting (destroy() terminates the workers).
 */
export function markLost(ctrl, tid) {
  if (Atomics.load(ctrl, QUIT) !== 0) return;
  Atomics.store(ctrl, LOST_TID, tid);
  Atomics.add(ctrl, LOST, 1);
  Atomics.notify(ctrl, FINISHED);
  Atomics.notify(ctrl, GEN);
}

export function workerLoop(fns, ctrl, args, tid) {
  for (;;) {
    const seen = Atomics.load(ctrl, GEN);
    if (Atomics.load(ctrl, QUIT) !== 0) return;
    claimChunks(fns, ctrl, args, tid);
    let spins = ctrl[SPIN];
    while (Atomics.load(ctrl, GEN) === seen) {
      if (--spins <= 0) {
        Atomics.wait(ctrl, GEN, seen);
        spins = ctrl[SPIN];
      }
    }
  }
}
