/**
 * Matmul kernel benchmark (not a test): GB/s and GFLOP/s of matvec (decode) per weight format at
 * the shapes of a 7-8B model's projections, and of the tiled matmul at a prefill chunk, beside the
 * adapter's measured buffer-copy bandwidth, which is the practical ceiling for matvec.
 *
 * Times come from timestamp queries when the device has `timestamp-query` (GPU time between an
 * empty pass before and after the work), else from wall time over many submits ended by a mapAsync.
 *
 *   npx hearth bench kernels [--types Q4_K,Q8_0] [--shapes 4096x4096,14336x4096] [--prefill 512]
 *     [--seconds 1] [--matvec workgroup|subgroup|invocation] [--wall] [--json FILE]
 */
import type { GgmlType } from '../../engine/gguf/ggml-types.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { adapterName, type MatvecStrategy } from '../../engine/backend/webgpu/probe.ts';
import type { GpuWeight } from '../../engine/backend/webgpu/weights.ts';

/** Weight bytes cycled through per entry: more than the largest GPU caches. */
const CACHE_FLUSH_BYTES = 256 << 20;
const MAX_WEIGHT_COPIES = 8;

export interface MatmulBenchOptions {
  /** Weight formats; default every format the matmul kernels support. */
  types?: readonly GgmlType[];
  /** [rows, k] of each weight; default 4096 x 4096 and 14336 x 4096. */
  shapes?: ReadonlyArray<readonly [rows: number, k: number]>;
  /** Tokens of the matmul (prefill) runs; default 512; 0 skips them. */
  prefillTokens?: number;
  /** Rough time spent measuring each entry; default 1 s. */
  seconds?: number;
  /** How matvec spreads rows over invocations; default: the device's `kernelPaths.matvec`. */
  matvec?: MatvecStrategy;
  /** Use wall time even where timestamp queries exist. */
  wallTime?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface MatmulBenchEntry {
  type: string;
  op: 'matvec' | 'matmul';
  rows: number;
  k: number;
  tokens: number;
  /** Time of one product in milliseconds. */
  ms: number;
  /** Weight bytes read per second (each weight is read once per product). */
  gbPerS: number;
  gflopPerS: number;
  runs: number;
}

export interface MatmulBenchReport {
  adapter: string;
  timing: 'timestamp-query' | 'wall';
  matvec: MatvecStrategy;
  /** copyBufferToBuffer: bytes read plus bytes written per second. */
  copyGbPerS: number;
  copyBytes: number;
  entries: MatmulBenchEntry[];
}

/** Times `record()` (one step of GPU work per call): GPU time with timestamps, else wall time. */
export class StepTimer {
  private readonly querySet: GPUQuerySet | undefined;
  private readonly resolve: GPUBuffer | undefined;
  private readonly readback: GPUBuffer | undefined;

  constructor(
    private readonly device: GPUDevice,
    wallTime: boolean,
  ) {
    if (device.features.has('timestamp-query') && !wallTime) {
      this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
      this.resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    }
  }

  get usesTimestamps(): boolean {
    return this.querySet !== undefined;
  }

  /**
   * Runs `record()` `runs` times, each step submitted on its own, and returns the mean seconds per
   * run. `encoder()` gives the encoder the work goes into; `submit()` submits it.
   */
  async measure(runs: number, step: { encoder(): GPUCommandEncoder; record(): void; submit(): void }): Promise<number> {
    const { querySet } = this;
    if (!querySet) {
      const start = performance.now();
      for (let i = 0; i < runs; i++) {
        step.record();
        step.submit();
      }
      await this.drain();
      return (performance.now() - start) / 1000 / runs;
    }
    let total = 0;
    for (let i = 0; i < runs; i++) {
      step.encoder().beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0 } }).end();
      step.record();
      const encoder = step.encoder();
      encoder.beginComputePass({ timestampWrites: { querySet, endOfPassWriteIndex: 1 } }).end();
      encoder.resolveQuerySet(querySet, 0, 2, this.resolve!, 0);
      encoder.copyBufferToBuffer(this.resolve!, 0, this.readback!, 0, 16);
      step.submit();
      await this.readback!.mapAsync(GPUMapMode.READ);
      const [t0, t1] = new BigUint64Array(this.readback!.getMappedRange().slice(0));
      this.readback!.unmap();
      total += Number(t1! - t0!) / 1e9;
    }
    return total / runs;
  }

  /** Waits for all submitted work, through a mapAsync as a real readback would. */
  async drain(): Promise<void> {
    const probe = this.device.createBuffer({ size: 4, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const encoder = this.device.createCommandEncoder();
    encoder.clearBuffer(probe);
    this.device.queue.submit([encoder.finish()]);
    await probe.mapAsync(GPUMapMode.READ);
    probe.destroy();
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolve?.destroy();
    this.readback?.destroy();
  }
}

/** Measures for about `seconds`: one run to estimate, then enough runs to fill the time. */
export async function timeIt(timer: StepTimer, seconds: number, step: Parameters<StepTimer['measure']>[1]): Promise<{ s: number; runs: number }> {
  await timer.measure(1, step); // warm-up: pipeline creation, first-touch of buffers
  const estimate = await timer.measure(1, step);
  const runs = Math.max(2, Math.min(200, Math.round(seconds / Math.max(estimate, 1e-6))));
  return { s: await timer.measure(runs, step), runs };
}

export async function benchMatmul(context: GpuContext, options: MatmulBenchOptions = {}): Promise<MatmulBenchReport> {
  const [{ KernelCache }, { StepRecorder }, { uploadWeight, destroyWeight }, matmul, { randomBlocks }, types] = await Promise.all([
    import('../../engine/backend/webgpu/kernel.ts'),
    import('../../engine/backend/webgpu/recorder.ts'),
    import('../../engine/backend/webgpu/weights.ts'),
    import('../../engine/backend/webgpu/kernels/matmul.ts'),
    import('../../testing/random-weights.ts'),
    import('../../engine/gguf/ggml-types.ts'),
  ]);
  const { device } = context;
  const log = options.log ?? (() => {});
  const seconds = options.seconds ?? 1;
  const matvec = options.matvec ?? context.kernelPaths.matvec;
  if (matvec === 'subgroup' && !device.features.has('subgroups')) throw new Error('the subgroup matvec needs a device with the subgroups feature');
  const shapes = options.shapes ?? [
    [4096, 4096],
    [14336, 4096],
  ];
  const prefill = options.prefillTokens ?? 512;
  const kernels = new KernelCache(device);
  const recorder = new StepRecorder(device);
  const timer = new StepTimer(device, options.wallTime ?? false);
  const adapter = adapterName(context.adapter, true);
  log(`adapter: ${adapter}; timing: ${timer.usesTimestamps ? 'timestamp-query' : 'wall'}; matvec: ${matvec}`);

  // Copy bandwidth: the ceiling a weight-streaming kernel can approach.
  const copyBytes = Math.min(256 << 20, Math.floor(device.limits.maxBufferSize / 4 / 2) * 4);
  const src = device.createBuffer({ size: copyBytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ size: copyBytes, usage: GPUBufferUsage.COPY_DST });
  const copy = await timeIt(timer, seconds, {
    encoder: () => recorder.commandEncoder(),
    record: () => recorder.commandEncoder().copyBufferToBuffer(src, 0, dst, 0, copyBytes),
    submit: () => recorder.submit(),
  });
  src.destroy();
  dst.destroy();
  const copyGbPerS = (2 * copyBytes) / copy.s / 1e9;
  log(`copyBufferToBuffer ${(copyBytes / 2 ** 20).toFixed(0)} MiB: ${copyGbPerS.toFixed(1)} GB/s (read + write)`);

  const entries: MatmulBenchEntry[] = [];
  const dummy = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  for (const type of options.types ?? matmul.MATMUL_TYPES) {
    const name = types.ggmlTypeName(type);
    for (const [rows, k] of shapes) {
      const bytes = randomBlocks(type, rows, k, rows * 31 + k);
      // Several copies of the weight, used in turn, so a product does not find its weights still
      // in a large last-level cache (50 MiB on an H100), as in a real step through many layers.
      const copies = Math.min(MAX_WEIGHT_COPIES, Math.ceil(CACHE_FLUSH_BYTES / bytes.byteLength));
      const weights: GpuWeight[] = [];
      for (let i = 0; i < copies; i++) {
        weights.push(await uploadWeight(device, { name: `${name} ${rows}x${k}`, type, shape: [k, rows] }, async (o, n) => bytes.subarray(o, o + n)));
      }
      let turn = 0;
      const maxTokens = Math.max(1, prefill);
      const x = device.createBuffer({ size: maxTokens * k * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(x, 0, new Float32Array(maxTokens * k).fill(0.5));
      const out = device.createBuffer({ size: maxTokens * rows * 4, usage: GPUBufferUsage.STORAGE });
      for (const tokens of prefill > 0 ? [1, prefill] : [1]) {
        const op = tokens <= 4 ? 'matvec' : 'matmul';
        const t = await timeIt(timer, seconds, {
          encoder: () => recorder.commandEncoder(),
          record: () =>
            matmul.encodeMatmul(recorder, kernels, device.limits.maxComputeWorkgroupsPerDimension, {
              weight: weights[turn++ % copies]!,
              x: { buffer: x },
              out: { buffer: out },
              tokens,
              dummy,
              matvec,
            }),
          submit: () => recorder.submit(),
        });
        const entry: MatmulBenchEntry = {
          type: name,
          op,
          rows,
          k,
          tokens,
          ms: t.s * 1e3,
          gbPerS: bytes.byteLength / t.s / 1e9,
          gflopPerS: (2 * rows * k * tokens) / t.s / 1e9,
          runs: t.runs,
        };
        entries.push(entry);
        log(
          `${name.padEnd(6)} ${op} ${rows}x${k} tokens=${tokens}: ${entry.ms.toPrecision(4)} ms, ${entry.gbPerS.toPrecision(3)} GB/s ` +
            `(${((100 * entry.gbPerS) / copyGbPerS).toPrecision(2)}% of copy), ${entry.gflopPerS.toPrecision(3)} GFLOP/s (${t.runs} runs)`,
        );
      }
      weights.forEach(destroyWeight);
      x.destroy();
      out.destroy();
    }
  }
  dummy.destroy();
  timer.destroy();
  recorder.destroy();
  return { adapter, timing: timer.usesTimestamps ? 'timestamp-query' : 'wall', matvec, copyGbPerS, copyBytes, entries };
}
