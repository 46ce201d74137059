/** What one benchmark run measures, shared by the runners (Node, the page) and the report. */

/** The work of one run, the same for every runtime. */
export interface Workload {
  /** Prompt length for time to first token and prefill speed. */
  promptTokens: number;
  /** Decode speed is measured with this many tokens already in the cache, for each value. */
  contexts: number[];
  /** Tokens generated per decode measurement. */
  decodeTokens: number;
  /** CPU threads (CPU backend, llama.cpp, wllama). */
  threads: number;
  /** The CPU backend's most bytes per WebAssembly memory, in MiB (default 4096): small to spread a small model over several. */
  cpuMemoryMiB?: number;
}

/** One run of one runtime on one model: everything in milliseconds, bytes and tokens per second. */
export interface RunSample {
  /** File to ready: header read, weights uploaded, run state allocated. */
  loadMs: number;
  /** First use after load (shader compilation and pipeline creation on WebGPU); not in the other figures. */
  warmupMs?: number;
  /** Prompt in, first sampled token out. */
  ttftMs: number;
  /** promptTokens / (time of the prompt's evaluation). */
  prefillTps: number;
  /** Decode tokens/s keyed by context length. */
  decodeTps: Record<string, number>;
  /** Largest sum of live GPU buffer sizes the backend created (WebGPU), or the wasm memory (CPU backend). */
  peakDeviceBytes?: number;
  /** Largest JS heap seen at the phase boundaries. */
  peakHeapBytes?: number;
  /** What the measured decode tokens cost the host (WebGPU runtimes), over every context. */
  decodeHost?: DecodeHostCosts;
}

/**
 * Host-side cost of decode on WebGPU, per token, over the measured tokens (after warm-up): the
 * JavaScript time spent recording and submitting steps, and what the device was asked to do.
 * These hold on any adapter; on a software one (SwiftShader) the GPU time means nothing but the
 * host time is real.
 */
export interface DecodeHostCosts {
  /** Tokens measured. */
  tokens: number;
  /** Milliseconds from a step's start until its submit returned, per token. */
  hostMsPerToken: number;
  /** The part of hostMsPerToken inside submit (the WebGPU implementation and driver). */
  submitMsPerToken: number;
  dispatchesPerToken: number;
  submitsPerToken: number;
  /** GPU objects created (buffers, bind groups, pipelines, ...; not command encoders) per token. */
  objectsPerToken: number;
}

/** Cumulative counts of a WebGPU device and backend, read at the ends of a measured window. */
export interface StepCounts {
  dispatches: number;
  submits: number;
  objects: number;
}

/** Memory bandwidth of the device a runtime uses, measured beside the runs. */
export interface Bandwidth {
  /** Bytes per second. */
  bytesPerS: number;
  /** How it was measured, e.g. "copyBufferToBuffer 256 MiB (read + write)". */
  method: string;
}
