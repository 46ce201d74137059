/**
 * The CPU backend's thread pool: n - 1 workers plus the calling thread, each with its own instance of
 * the same compiled kernel module over one shared WebAssembly memory, splitting every op's rows.
 *
 * Synchronization is a control block in that memory (layout and protocol in pool-share.js, shared
 * with the workers). The calling thread publishes an op (kernel, arguments, range, chunk count) and
 * bumps a generation counter; every thread, the calling one included, claims chunks with a
 * compare-exchange and runs the same kernel on them; the op is over when all chunks are finished.
 * Nobody waits for a worker to wake up: on a busy machine (other processes, more threads than
 * cores) a descheduled worker just takes no chunks, where a barrier on every worker would cost a
 * scheduler time slice per op.
 *
 * Waiting, and why it is synchronous. The op interface (../ops.ts) is synchronous: `matmul` returns
 * with its output written, and the forward pass issues ~15 ops per layer. So the calling thread must
 * wait inside the op:
 * - In a Worker (our app runs the engine in one) and in Node, it polls the done counter briefly and
 *   then sleeps in `Atomics.wait`: the fastest correct wait (a few microseconds when the threads
 *   finish together, no CPU burnt while one finishes a chunk after being preempted).
 * - On a browser main thread `Atomics.wait` throws; it polls until done. That blocks the page only
 *   for the op, which a single-threaded backend on the main thread does anyway (every op is
 *   synchronous compute), and for less time, since the other threads share the work. A
 *   Promise-based wait (`Atomics.waitAsync`) would need an asynchronous op interface and costs a
 *   task hop per op (hundreds per token), so it is not used.
 * Workers poll the generation counter ~65k times (~100 us) after their last chunk before sleeping in
 * `Atomics.wait`: ops of one step follow each other within microseconds, so a worker usually catches
 * the next one without a futex wake-up, while between tokens it sleeps (as ggml's thread pool does).
 *
 * A worker that dies (CpuWorkerLostError). The calling thread blocks inside ops, so it cannot
 * hear a worker's 'error' or 'exit' event while waiting for that worker's chunk. Two things write
 * LOST into the control block instead, and the wait checks it: the worker itself, when it fails
 * outside a kernel (pool-worker.js), and a watchdog thread that stays in its event loop and holds
 * one MessagePort per worker, whose other end the worker holds: the port closes when the worker is
 * terminated or crashes (Node always; browsers that fire MessagePort `close`). The calling thread
 * then takes the op's free chunks, waits for the live workers' chunks, stops the pool and throws;
 * kernels.ts runs on one thread and starts a new pool on a second control block.
 *
 * Platforms. Browser: `Worker` from a module URL (bundled by Vite) needs `SharedArrayBuffer`, which
 * needs a cross-origin isolated context (COOP `same-origin` + COEP `require-corp` or
 * `credentialless`); nested workers inherit it from the engine worker. Node: worker_threads, always
 * available. `threadingSupport()` says which, and why not.
 */
import type { Worker as NodeWorker } from 'node:worker_threads';
import { ARGC, ARGS_OFFSET, CHUNK, CLAIM, claimChunks, CONTROL_BYTES, CONTROL_INTS, ERROR, FINISHED, GEN, KERNEL, LOST, LOST_TID, MAX_ARGS, MAX_CHUNKS, QUIT, RANGE, SCRATCH, SCRATCH_STRIDE, SPIN, START, UNITS, WORKER_CHUNKS, type KernelFn } from './pool-share.js';

export { CONTROL_BYTES };

/**
 * A pool worker died during an op (an uncaught error outside a kernel, a failed allocation, the
 * thread terminated): the op's output is incomplete. The pool is stopped; the caller (kernels.ts)
 * runs on one thread and starts a new pool, so the next request works.
 */
export class CpuWorkerLostError extends Error {
  override readonly name = 'CpuWorkerLostError';
  /**
   * `duringOp` false: the worker died between ops, this op never started (kernels.ts then runs it
   * on the calling thread instead of failing it).
   */
  constructor(
    readonly thread: number,
    readonly duringOp = true,
  ) {
    super(`CPU pool thread ${thread} died ${duringOp ? 'during an op; the op was abandoned' : 'between ops'} and the thread pool is being restarted`);
  }
}

/** A kernel threw (a trap: out-of-bounds memory, unreachable) on some thread; the pool is intact. */
export class CpuKernelError extends Error {
  override readonly name = 'CpuKernelError';
  constructor(readonly thread: number) {
    super(`CPU kernel failed on pool thread ${thread}`);
  }
}

/** What `CpuBackend.threadingSupport()` reports: whether a pool can start here, and if not, why. */
export interface ThreadingSupport {
  available: boolean;
  /** Why not, in words a capability page can show. */
  reason?: string;
  /** Logical cores (navigator.hardwareConcurrency, Node's os.availableParallelism()); 1 if unknown. */
  hardwareConcurrency: number;
}

/** Polls of a counter before sleeping in Atomics.wait (~100 us). */
const SPIN_POLLS = 1 << 16;
/** Chunks per thread in one op: enough to even out a preempted thread, few enough to be cheap. */
const CHUNKS_PER_THREAD = 4;

const NODE_WORKER_THREADS = 'node:worker_threads';
const NODE_OS = 'node:os';
/** Through a variable, so Vite does not treat the Node branch's URL as a browser asset. */
const WORKER_FILE = './pool-worker.js';

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === 'undefined' && typeof (globalThis as { window?: unknown }).window === 'undefined';

// Node 20 has no `navigator`; its core count needs node:os, which a browser bundle must not import.
const nodeCores: number | undefined = isNode ? ((await import(/* @vite-ignore */ NODE_OS)) as typeof import('node:os')).availableParallelism() : undefined;

export function threadingSupport(): ThreadingSupport {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const hardwareConcurrency = nav?.hardwareConcurrency ?? nodeCores ?? 1;
  const no = (reason: string): ThreadingSupport => ({ available: false, reason, hardwareConcurrency });
  if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) {
    return no('the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp or credentialless), so SharedArrayBuffer is off');
  }
  if (typeof SharedArrayBuffer !== 'function') return no('this engine has no SharedArrayBuffer');
  if (typeof Atomics !== 'object') return no('this engine has no Atomics');
  if (!isNode && typeof Worker !== 'function') return no('Web Workers are not available in this context');
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (e) {
    return no(`this engine cannot make a shared WebAssembly memory (${String(e)})`);
  }
  return { available: true, hardwareConcurrency };
}

/** Whether this thread may block in Atomics.wait (not on a browser's main thread). */
function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** The platform shim: one started worker, Web Worker or worker_threads alike. */
interface Thread {
  post(message: unknown, transfer?: readonly MessagePort[]): void;
  /** Resolves with the worker's first message; rejects on its error event. */
  firstMessage: Promise<unknown>;
  terminate(): void;
}

async function startThread(): Promise<Thread> {
  if (isNode) {
    const { Worker } = (await import(/* @vite-ignore */ NODE_WORKER_THREADS)) as typeof import('node:worker_threads');
    const w: NodeWorker = new Worker(new URL(WORKER_FILE, import.meta.url));
    // A pool the caller forgets to destroy must not keep Node alive.
    w.unref();
    const firstMessage = new Promise<unknown>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    // A worker that dies later marks itself lost in the control block (or the watchdog does); an
    // 'error' event without a listener would otherwise take the whole process down.
    w.on('error', () => {});
    return { post: (m, transfer) => w.postMessage(m, transfer as never), firstMessage, terminate: () => void w.terminate() };
  }
  const w = new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module', name: 'hearth-cpu-thread' });
  const firstMessage = new Promise<unknown>((resolve, reject) => {
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => reject(new Error(e.message || 'CPU pool worker failed to start'));
  });
  return { post: (m, transfer) => w.postMessage(m, (transfer ?? []) as unknown as Transferable[]), firstMessage, terminate: () => w.terminate() };
}

/** A MessageChannel on either platform (Node 20 has a global one too; the Node one is typed apart). */
function channel(): { port1: MessagePort; port2: MessagePort } {
  return new MessageChannel();
}

export interface PoolOptions {
  module: WebAssembly.Module;
  /** Shared. */
  memory: WebAssembly.Memory;
  /** The calling thread's instance exports. */
  exports: Record<string, unknown>;
  /** CONTROL_BYTES at a 64-byte aligned pointer, reserved for the pool. */
  control: number;
  /** Total threads, the calling one included (>= 2). */
  threads: number;
  /** Kernel export names an op may name (by index). */
  kernels: readonly string[];
  /**
   * More memories (shards, each shared) with the calling thread's instance exports over each: every
   * worker instantiates the module over each of them too, and kernel index `s * kernels.length + i`
   * runs kernel i on shard s (s = 0: `memory`). The control block stays in `memory`.
   */
  shards?: ReadonlyArray<{ memory: WebAssembly.Memory; exports: Record<string, unknown> }>;
}

export class ThreadPool {
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly fns: KernelFn[];
  private readonly blocking = canBlock();
  private destroyed = false;

  private constructor(
    o: PoolOptions,
    private readonly handles: Thread[],
  ) {
    this.ctrl = new Int32Array(o.memory.buffer, o.control, CONTROL_INTS);
    this.args = new Float64Array(o.memory.buffer, o.control + ARGS_OFFSET, MAX_ARGS);
    this.fns = [o.exports, ...(o.shards ?? []).map((sh) => sh.exports)].flatMap((e) => o.kernels.map((name) => e[name] as KernelFn));
    this.threads = o.threads;
  }

  readonly threads: number;

  /**
   * Starts `threads - 1` workers and a watchdog (a thread that notices a worker's death while the
   * calling thread blocks in an op) and waits until each is ready.
   */
  static async start(o: PoolOptions): Promise<ThreadPool> {
    if (o.control % 64 !== 0) throw new RangeError('the control block must be 64-byte aligned');
    const ctrl = new Int32Array(o.memory.buffer, o.control, CONTROL_INTS);
    ctrl.fill(0);
    ctrl[SPIN] = SPIN_POLLS;
    const handles: Thread[] = [];
    try {
      for (let tid = 1; tid < o.threads; tid++) handles.push(await startThread());
      const watchdog = await startThread();
      handles.push(watchdog);
      const watched: { tid: number; port: MessagePort }[] = [];
      for (let tid = 1; tid < o.threads; tid++) {
        const { port1, port2 } = channel();
        handles[tid - 1]!.post({ module: o.module, memory: o.memory, shardMemories: (o.shards ?? []).map((sh) => sh.memory), control: o.control, tid, kernels: o.kernels, port: port1 }, [port1]);
        watched.push({ tid, port: port2 });
      }
      watchdog.post({ watch: true, memory: o.memory, control: o.control, ports: watched }, watched.map((w) => w.port));
      const replies = await Promise.all(handles.map((h) => h.firstMessage));
      for (const r of replies) {
        const error = (r as { error?: string }).error;
        if (error !== undefined) throw new Error(`CPU pool worker: ${error}`);
      }
    } catch (e) {
      Atomics.store(ctrl, QUIT, 1);
      for (const h of handles) h.terminate();
      throw e;
    }
    return new ThreadPool(o, handles);
  }

  /**
   * Runs kernel `kernel` with `args` over units [start, start + units): argument `range` and
   * `range + 1` get each chunk's bounds; chunks are multiples of `grain` units (16 output rows of a
   * matmul: a 64-byte line, so no two threads write one line). Argument `scratch` (>= 0) is a
   * pointer that thread i offsets by i * scratchStride bytes. Returns when every thread is done.
   */
  run(kernel: number, args: readonly number[], range: number, start: number, units: number, grain: number, scratch = -1, scratchStride = 0): void {
    if (this.destroyed) throw new Error('the CPU thread pool was destroyed');
    const c = this.ctrl;
    if (this.lost) this.abandon(0, false);
    // CLAIM is exhausted here (the last op's chunks are all finished): no thread reads what follows.
    const per = Math.ceil(units / (this.threads * CHUNKS_PER_THREAD));
    const chunk = Math.max(grain, Math.ceil(per / grain) * grain, Math.ceil(units / MAX_CHUNKS));
    const chunks = Math.ceil(units / chunk);
    c[KERNEL] = kernel;
    c[ARGC] = args.length;
    c[RANGE] = range;
    c[SCRATCH] = scratch;
    c[SCRATCH_STRIDE] = scratchStride;
    c[START] = start;
    c[UNITS] = units;
    c[CHUNK] = chunk;
    this.args.set(args);
    Atomics.store(c, FINISHED, 0);
    Atomics.store(c, CLAIM, chunks << 16); // publishes everything written above (sequentially consistent)
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    claimChunks(this.fns, c, this.args, 0);
    let spins = SPIN_POLLS;
    for (;;) {
      const done = Atomics.load(c, FINISHED);
      if (done === chunks) break;
      if (Atomics.load(c, LOST) !== 0) this.abandon(chunks);
      if (this.blocking && --spins <= 0) {
        Atomics.wait(c, FINISHED, done);
        spins = SPIN_POLLS;
      }
    }
    const bad = Atomics.exchange(c, ERROR, 0);
    if (bad !== 0) throw new CpuKernelError(bad - 1);
  }

  /** Whether a worker died (the pool must be replaced; the next run() throws CpuWorkerLostError). */
  get lost(): boolean {
    return Atomics.load(this.ctrl, LOST) !== 0;
  }

  /**
   * A worker died holding a chunk of the current op (or between ops): takes the op's free chunks
   * so no live worker starts another, waits for the live ones to finish theirs (each dead thread
   * holds at most one), stops the pool and throws. Nothing of this pool touches memory afterwards
   * except workers already told to QUIT, and a new pool uses a new control block.
   */
  private abandon(chunks: number, duringOp = true): never {
    const c = this.ctrl;
    let claimed: number;
    for (;;) {
      const v = Atomics.load(c, CLAIM);
      claimed = Math.min(v & 0xffff, chunks);
      if (Atomics.compareExchange(c, CLAIM, v, (chunks << 16) | chunks) === v) break;
    }
    for (;;) {
      const done = Atomics.load(c, FINISHED);
      if (done + Atomics.load(c, LOST) >= claimed) break;
      if (this.blocking) Atomics.wait(c, FINISHED, done, 1);
    }
    const tid = Atomics.load(c, LOST_TID);
    this.destroy();
    throw new CpuWorkerLostError(tid, duringOp);
  }

  /** Chunks the workers (not the calling thread) have run so far. */
  get workerChunks(): number {
    return Atomics.load(this.ctrl, WORKER_CHUNKS);
  }

  /** Stops the workers (they leave their loop, then are terminated). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    Atomics.store(this.ctrl, QUIT, 1);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const h of this.handles) h.terminate();
  }
}
