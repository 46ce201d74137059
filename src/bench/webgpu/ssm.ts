/**
 * State-space kernel benchmark (not a test): the Mamba2 scan in its two forms, sequential in time
 * (ssm_scan.wgsl, decode and short calls) and chunked (ssm_scan_chunked.wgsl, prefill), and the
 * causal convolution, per token count, so the point where the backend switches from one scan to
 * the other (CHUNKED_SCAN_MIN_TOKENS in webgpu/backend.ts) can be set from numbers. Timing as
 * `hearth bench kernels` (timestamp queries where the device has them).
 *
 *   npx hearth bench ssm [--shapes 24x64x128x1,48x64x128x1] [--tokens 1,16,64,512] [--seconds 1] [--wall] [--json FILE]
 */
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { adapterName } from '../../engine/backend/webgpu/probe.ts';
import { StepTimer, timeIt } from './matmul.ts';

/** heads x headDim x stateSize x groups of a Mamba2 layer. */
export interface SsmShape {
  heads: number;
  headDim: number;
  stateSize: number;
  groups: number;
}

export interface SsmBenchOptions {
  /** Default: 24 x 64 x 128 x 1 (mamba2-130m's layers) and 48 x 64 x 128 x 1. */
  shapes?: readonly SsmShape[];
  /** Default 1, 16, 64, 512. */
  tokens?: readonly number[];
  seconds?: number;
  wallTime?: boolean;
  log?: (line: string) => void;
}

export interface SsmBenchEntry {
  kernel: 'scan-sequential' | 'scan-chunked' | 'conv';
  shape: SsmShape;
  tokens: number;
  ms: number;
  /** Tokens per second through one layer's kernel. */
  tokensPerS: number;
  runs: number;
}

export interface SsmBenchReport {
  adapter: string;
  timing: 'timestamp-query' | 'wall';
  entries: SsmBenchEntry[];
}

const CONV_KERNEL = 4;

export async function benchSsm(context: GpuContext, options: SsmBenchOptions = {}): Promise<SsmBenchReport> {
  const [{ KernelCache }, { StepRecorder }, scan, { encodeSsmConv }] = await Promise.all([
    import('../../engine/backend/webgpu/kernel.ts'),
    import('../../engine/backend/webgpu/recorder.ts'),
    import('../../engine/backend/webgpu/kernels/ssm-scan.ts'),
    import('../../engine/backend/webgpu/kernels/ssm-conv.ts'),
  ]);
  const { device } = context;
  const log = options.log ?? (() => {});
  const seconds = options.seconds ?? 1;
  const shapes = options.shapes ?? [
    { heads: 24, headDim: 64, stateSize: 128, groups: 1 },
    { heads: 48, headDim: 64, stateSize: 128, groups: 1 },
  ];
  const tokenCounts = options.tokens ?? [1, 16, 64, 512];
  const kernels = new KernelCache(device);
  const recorder = new StepRecorder(device);
  const timer = new StepTimer(device, options.wallTime ?? false);
  const adapter = adapterName(context.adapter, true);
  log(`adapter: ${adapter}; timing: ${timer.usesTimestamps ? 'timestamp-query' : 'wall'}`);
  const made: GPUBuffer[] = [];
  const buffer = (floats: number, fill = 0.25) => {
    const b = device.createBuffer({ size: Math.max(16, floats * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, new Float32Array(floats).fill(fill));
    made.push(b);
    return b;
  };
  const entries: SsmBenchEntry[] = [];
  const report = (kernel: SsmBenchEntry['kernel'], shape: SsmShape, tokens: number, t: { s: number; runs: number }) => {
    const entry: SsmBenchEntry = { kernel, shape, tokens, ms: t.s * 1e3, tokensPerS: tokens / t.s, runs: t.runs };
    entries.push(entry);
    const { heads, headDim, stateSize, groups } = shape;
    log(`${kernel.padEnd(15)} ${heads}x${headDim}x${stateSize}x${groups} tokens=${tokens}: ${entry.ms.toPrecision(4)} ms, ${entry.tokensPerS.toPrecision(4)} tokens/s (${t.runs} runs)`);
  };
  try {
    for (const shape of shapes) {
      const { heads, headDim, stateSize, groups } = shape;
      const inner = heads * headDim;
      const channels = inner + 2 * groups * stateSize;
      const maxTokens = Math.max(...tokenCounts);
      const xbc = buffer(maxTokens * channels);
      const proj = buffer(maxTokens * channels);
      const dt = buffer(maxTokens * heads);
      const y = buffer(maxTokens * inner);
      const state = buffer(inner * stateSize, 0);
      const convState = buffer((CONV_KERNEL - 1) * channels, 0);
      const perHead = buffer(heads, -0.5);
      const weight = buffer(channels * CONV_KERNEL, 0.1);
      const scratch = buffer(scan.chunkedScanScratchFloats(heads, headDim, stateSize, groups, maxTokens));
      for (const tokens of tokenCounts) {
        const args = {
          heads,
          headDim,
          stateSize,
          groups,
          tokens,
          x: { buffer: xbc, stride: channels },
          dt: { buffer: dt },
          B: { buffer: xbc, stride: channels, offset: inner },
          C: { buffer: xbc, stride: channels, offset: inner + groups * stateSize },
          y: { buffer: y },
          A: perHead,
          D: perHead,
          dtBias: perHead,
          state,
          stateOffset: 0,
        };
        const step = (record: () => void) => ({ encoder: () => recorder.commandEncoder(), record, submit: () => recorder.submit() });
        report('conv', shape, tokens, await timeIt(timer, seconds, step(() => encodeSsmConv(recorder, kernels, { x: { buffer: proj, stride: channels }, out: { buffer: xbc, stride: channels }, tokens, channels, kernel: CONV_KERNEL, weight, silu: true, state: convState, stateOffset: 0, dummy: weight }))));
        report('scan-sequential', shape, tokens, await timeIt(timer, seconds, step(() => scan.encodeSsmScan(recorder, kernels, args))));
        if (tokens > 1) report('scan-chunked', shape, tokens, await timeIt(timer, seconds, step(() => scan.encodeSsmScanChunked(recorder, kernels, { ...args, scratch }))));
      }
    }
  } finally {
    for (const b of made) b.destroy();
    timer.destroy();
    recorder.destroy();
  }
  return { adapter, timing: timer.usesTimestamps ? 'timestamp-query' : 'wall', entries };
}
