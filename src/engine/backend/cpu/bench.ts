/**
 * Micro-benchmark of the CPU matmul kernels, single-threaded (not a test):
 *
 *   npx tsx src/engine/backend/cpu/bench.ts [--n 4096] [--prefill 32] [--relaxed]
 *
 * Decode is memory-bound: a matvec reads every weight byte once, so its rate in weight GB/s beside
 * this thread's plain memory-read rate (the same bytes streamed with SIMD loads and no math) says
 * how far each type's kernel is from that floor. Prefill (`--prefill T` tokens) is compute-bound:
 * reported as GFLOP/s (2 * n * n * T flops). On a shared machine, absolute numbers are noise;
 * the ratios are what to compare.
 */
import { setFlagsFromString } from 'node:v8';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { randomBlocks } from '../../../test-support/random-weights.ts';
import { CPU_WEIGHT_TYPES, CpuKernels, MATMUL_SCRATCH_FLOATS, Q8A_WEIGHT_TYPES, Q8K_WEIGHT_TYPES } from './kernels.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/**
 * Seconds per call of `fn`: the fastest of repeats over about `budget` seconds. On a shared machine
 * the minimum is the best estimate of the uncontended speed (the median moves with the load).
 */
function time(fn: () => void, budget = 0.6): number {
  fn(); // warm up (and JIT tier-up of the wasm)
  let best = Infinity;
  let runs = 0;
  const start = performance.now();
  while (runs < 5 || (performance.now() - start < budget * 1000 && runs < 200)) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
    runs++;
  }
  return best;
}

async function main(): Promise<void> {
  const n = arg('n', 4096);
  const prefill = arg('prefill', 32);
  const wantRelaxed = process.argv.includes('--relaxed');
  if (wantRelaxed) setFlagsFromString('--experimental-wasm-relaxed-simd');
  const cpu = await CpuKernels.create({ relaxed: wantRelaxed ? 'auto' : false, initialBytes: 256 << 20 });
  console.log(`CPU kernels: ${cpu.relaxed ? 'relaxed SIMD' : 'SIMD128'}, ${n}x${n}, single thread, Node ${process.version}`);

  // Memory-read baseline over 128 MiB (well past the caches), measured again beside every type:
  // on a shared machine the load changes between types, and the ratio is what means something.
  const readBytes = 128 << 20;
  const buf = cpu.alloc(readBytes);
  cpu.u8(buf, readBytes).fill(1);
  const readRate = (): number => readBytes / time(() => cpu.readBandwidth(buf, readBytes), 0.4) / 1e9;
  console.log(`memory read (SIMD loads, no math): ${readRate().toFixed(2)} GB/s`);
  const x = cpu.allocF32(n * prefill);
  const xv = cpu.f32(x, n * prefill);
  for (let i = 0; i < xv.length; i++) xv[i] = Math.sin(i * 0.37);
  const y = cpu.allocF32(n * prefill);
  const scratch = cpu.allocF32(MATMUL_SCRATCH_FLOATS);
  const xq = cpu.alloc(cpu.q8aBytes(n, prefill));
  const xk = cpu.alloc(cpu.q8kBytes(n, prefill));

  const rows: string[][] = [['type', 'bytes/w', 'read GB/s', 'f32 GB/s', 'f32 %read', 'q8a GB/s', 'q8a %read', 'q8k GB/s', 'q8k %read', `f32 GFLOP/s T=${prefill}`, `q8a GFLOP/s T=${prefill}`, `q8k GFLOP/s T=${prefill}`]];
  for (const type of CPU_WEIGHT_TYPES) {
    const mark = cpu.mark();
    const bytes = randomBlocks(type, n, n, 1);
    const readGBs = readRate();
    const w = cpu.upload(bytes);
    const args = { type, w, k: n, x: { ptr: x, stride: n }, y: { ptr: y, stride: n }, rowStart: 0, rowEnd: n, scratch };
    const f32Sec = time(() => cpu.matmul({ ...args, tokens: 1 }));
    const f32Pre = time(() => cpu.matmul({ ...args, tokens: prefill }), 1);
    let q8Sec = NaN;
    let q8Pre = NaN;
    if (Q8A_WEIGHT_TYPES.includes(type)) {
      // Quantizing the activations is part of the cost (llama.cpp does the same once per matmul).
      q8Sec = time(() => {
        cpu.quantizeQ8A({ ptr: x, stride: n }, xq, n, 0, 1);
        cpu.matmulQ8A({ type, w, k: n, xq, y: { ptr: y, stride: n }, tokens: 1, rowStart: 0, rowEnd: n });
      });
      q8Pre = time(() => {
        cpu.quantizeQ8A({ ptr: x, stride: n }, xq, n, 0, prefill);
        cpu.matmulQ8A({ type, w, k: n, xq, y: { ptr: y, stride: n }, tokens: prefill, rowStart: 0, rowEnd: n });
      }, 1);
    }
    let q8kSec = NaN;
    let q8kPre = NaN;
    if (Q8K_WEIGHT_TYPES.includes(type)) {
      q8kSec = time(() => {
        cpu.quantizeQ8K({ ptr: x, stride: n }, xk, n, 0, 1);
        cpu.matmulQ8K({ type, w, k: n, xq: xk, y: { ptr: y, stride: n }, tokens: 1, rowStart: 0, rowEnd: n });
      });
      q8kPre = time(() => {
        cpu.quantizeQ8K({ ptr: x, stride: n }, xk, n, 0, prefill);
        cpu.matmulQ8K({ type, w, k: n, xq: xk, y: { ptr: y, stride: n }, tokens: prefill, rowStart: 0, rowEnd: n });
      }, 1);
    }
    const gbs = (s: number): number => bytes.length / s / 1e9;
    const gflops = (s: number): number => (2 * n * n * prefill) / s / 1e9;
    const fmt = (v: number, d = 2): string => (Number.isNaN(v) ? '-' : v.toFixed(d));
    rows.push([
      GgmlType[type]!,
      (bytes.length / (n * n)).toFixed(3),
      fmt(readGBs),
      fmt(gbs(f32Sec)),
      fmt((100 * gbs(f32Sec)) / readGBs, 0),
      fmt(gbs(q8Sec)),
      fmt((100 * gbs(q8Sec)) / readGBs, 0),
      fmt(gbs(q8kSec)),
      fmt((100 * gbs(q8kSec)) / readGBs, 0),
      fmt(gflops(f32Pre), 1),
      fmt(gflops(q8Pre), 1),
      fmt(gflops(q8kPre), 1),
    ]);
    cpu.release(mark);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((v, c) => v.padStart(widths[c]!)).join('  '));
}

await main();
