/** Types of pool-share.js (plain JS so that Node's worker_threads can load the worker as is). */
export declare const GEN: number;
export declare const FINISHED: number;
export declare const CLAIM: number;
export declare const MAX_CHUNKS: number;
export declare const KERNEL: number;
export declare const ARGC: number;
export declare const RANGE: number;
export declare const SCRATCH: number;
export declare const SCRATCH_STRIDE: number;
export declare const START: number;
export declare const UNITS: number;
export declare const CHUNK: number;
export declare const QUIT: number;
export declare const ERROR: number;
export declare const SPIN: number;
export declare const WORKER_CHUNKS: number;
export declare const LOST: number;
export declare const LOST_TID: number;
export declare const CONTROL_INTS: number;
export declare const ARGS_OFFSET: number;
export declare const MAX_ARGS: number;
export declare const CONTROL_BYTES: number;

/** A kernel export: numbers in, nothing out. */
export type KernelFn = (...args: number[]) => void;

export declare function claimChunks(fns: readonly KernelFn[], ctrl: Int32Array, args: Float64Array, tid: number): void;
export declare function workerLoop(fns: readonly KernelFn[], ctrl: Int32Array, args: Float64Array, tid: number): void;
export declare function markLost(ctrl: Int32Array, tid: number): void;
