import { describe, expect, it } from 'vitest';
import { CONTROL_BYTES, CpuKernelError, CpuWorkerLostError, ThreadPool, threadingSupport } from './threads.ts';
import { CLAIM } from './pool-share.js';

/**
 * A two-function module over a shared memory, built with binaryen from:
 *   (module (import "env" "memory" (memory 1 65536 shared))
 *     (func (export "hold") (param $flag i32) (param i32 i32)   ;; spins until memory[flag] != 0
 *       (loop $l (br_if $l (i32.eqz (i32.atomic.load (local.get $flag))))))
 *     (func (export "trap") (param i32 i32 i32) unreachable))
 */
const MODULE_BASE64 = 'AGFzbQEAAAABBwFgA39/fwACEgEDZW52Bm1lbW9yeQIDAYCABAMDAgAABw8CBGhvbGQAAAR0cmFwAAEKFAIOAANAIAD+EAIARQ0ACwsDAAAL';

const FLAG = 0;
const CONTROL = 64;

/** Waits (without a deadline) until `done()` holds, letting the event loop run. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

interface Fixture {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  flag: Int32Array;
  start(exports: Record<string, unknown>, control?: number): Promise<ThreadPool>;
}

function fixture(): Fixture {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  const module = new WebAssembly.Module(Buffer.from(MODULE_BASE64, 'base64'));
  const own = new WebAssembly.Instance(module, { env: { memory } }).exports;
  return {
    memory,
    module,
    flag: new Int32Array(memory.buffer, FLAG, 1),
    start: (exports, control = CONTROL) => ThreadPool.start({ module, memory, exports: { ...own, ...exports }, control, threads: 2, kernels: ['hold', 'trap'] }),
  };
}

/** What `hold` over two chunks throws (undefined if nothing). */
function runError(pool: ThreadPool): CpuWorkerLostError | undefined {
  try {
    pool.run(0, [FLAG, 0, 0], 1, 0, 2, 1);
  } catch (e) {
    return e as CpuWorkerLostError;
  }
  return undefined;
}

/** The pool's worker threads (private): the test plays the OS killing one. */
const workerHandles = (pool: ThreadPool): { terminate(): void }[] => (pool as unknown as { handles: { terminate(): void }[] }).handles;

describe.runIf(threadingSupport().available)('CPU thread pool: a worker that dies', () => {
  it('mid-op: the caller gets CpuWorkerLostError instead of hanging, and a new pool works', async () => {
    const f = fixture();
    const ctrl = new Int32Array(f.memory.buffer, CONTROL, CONTROL_BYTES / 4);
    let pool: ThreadPool | undefined;
    // The calling thread's share of the op: once the worker holds the other chunk (spinning in
    // `hold` until the flag is set, which it never will be), terminate that worker.
    const killer = () => {
      while ((Atomics.load(ctrl, CLAIM) & 0xffff) < 2);
      workerHandles(pool!)[0]!.terminate();
    };
    pool = await f.start({ hold: killer });
    const error = runError(pool);
    expect(error).toBeInstanceOf(CpuWorkerLostError);
    expect(error!.name).toBe('CpuWorkerLostError');
    expect(error!.thread).toBe(1);
    expect(error!.duringOp).toBe(true);
    expect(() => pool!.run(0, [FLAG, 0, 0], 1, 0, 2, 1)).toThrow(/destroyed/);

    // A new pool on a fresh control block runs the same op to the end, workers taking part.
    Atomics.store(f.flag, 0, 1);
    const ctrl2 = new Int32Array(f.memory.buffer, CONTROL + 1024, CONTROL_BYTES / 4);
    // The calling thread keeps its chunk until the worker has claimed the other one.
    const again = await f.start({ hold: () => { while ((Atomics.load(ctrl2, CLAIM) & 0xffff) < 2); } }, CONTROL + 1024);
    again.run(0, [FLAG, 0, 0], 1, 0, 2, 1);
    expect(again.lost).toBe(false);
    expect(again.workerChunks).toBeGreaterThan(0);
    again.destroy();
  });

  it('between ops: the pool reports itself lost and the next run says the op never started', async () => {
    const f = fixture();
    Atomics.store(f.flag, 0, 1);
    const pool = await f.start({});
    workerHandles(pool)[0]!.terminate();
    await until(() => pool.lost);
    const error = runError(pool);
    expect(error).toBeInstanceOf(CpuWorkerLostError);
    expect(error!.duringOp).toBe(false);
  });

  it('a kernel that traps is a CpuKernelError and leaves the pool working', async () => {
    const f = fixture();
    Atomics.store(f.flag, 0, 1);
    const pool = await f.start({});
    expect(() => pool.run(1, [FLAG, 0, 0], 1, 0, 8, 1)).toThrow(CpuKernelError);
    expect(() => pool.run(0, [FLAG, 0, 0], 1, 0, 8, 1)).not.toThrow();
    expect(pool.lost).toBe(false);
    pool.destroy();
  });
});
