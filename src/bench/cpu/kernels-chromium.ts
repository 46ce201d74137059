/**
 * The matvec micro-benchmark of kernels.ts in the system's Chromium (not a test), both builds side
 * by side: relaxed SIMD only runs correctly in a browser here (see src/engine/backend/cpu/README.md),
 * and the browser is where the CPU backend runs.
 *
 *   npx tsx src/bench/cpu/kernels-chromium.ts [--n 4096] [--prefill T] [--types Q8_0,Q4_K]
 *
 * Weight GB/s of one single-threaded matvec per type and path (fastest of 12 runs after 300 ms of warm-up; on a shared
 * machine the minimum is the best estimate), beside the rate of streaming 128 MiB with SIMD loads.
 * `--prefill T`: the same paths on T tokens at once, in GFLOP/s (2 * n * n * T flops).
 */
import { GgmlType } from '../../engine/gguf/ggml-types.ts';
import { RELAXED_WASM_BASE64, SIMD_WASM_BASE64 } from '../../engine/backend/cpu/generated/kernels-wasm.ts';
import { withBlankPage } from './blank-page.ts';

const i = process.argv.indexOf('--n');
const n = i >= 0 ? Number(process.argv[i + 1]) : 4096;
const pi = process.argv.indexOf('--prefill');
const tokens = pi >= 0 ? Number(process.argv[pi + 1]) : 1;
const ti = process.argv.indexOf('--types');
const types = ti >= 0
  ? process.argv[ti + 1]!.split(',').map((name) => GgmlType[name as keyof typeof GgmlType])
  : [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.F16, GgmlType.BF16, GgmlType.F32];

/** Runs in the page (self-contained): returns [build, type, path, GB/s] rows. */
function runInPage(a: { mods: Record<string, string>; types: number[]; n: number; tokens: number }): Array<[string, number, string, number]> {
  // Block size and f16 field offsets, so random weights get finite scales.
  const layout: Record<number, [number, number[]]> = { 8: [34, [0]], 2: [18, [0]], 3: [20, [0, 2]], 6: [22, [0]], 7: [24, [0, 2]], 12: [144, [0, 2]], 13: [176, [0, 2]], 14: [210, [208]], 10: [84, [80, 82]], 11: [110, [108]], 20: [18, [0]], 23: [136, [0]], 1: [2, [0]], 30: [2, []], 0: [4, []] };
  const rows: Array<[string, number, string, number]> = [];
  for (const [build, b64] of Object.entries(a.mods)) {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const memory = new WebAssembly.Memory({ initial: 4096 }); // 256 MiB
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const k = new WebAssembly.Instance(new WebAssembly.Module(bin), { env: { memory, abort() {} } }).exports as any;
    const n = a.n;
    const tk = a.tokens;
    const x = Math.ceil(k.heapBase() / 64) * 64;
    const y = x + 4 * n * tk;
    const xq = y + 4 * n * tk;
    const scratch = xq + 2 * n * tk;
    const pack = scratch + 8192; // the relaxed build's packed prefill: 4 rows (272 bytes per 32 for Q8_0, 1440 per 256 for the K-quants)
    const w = pack + Math.ceil(Math.max((n / 32) * 272, (n / 256) * 1440) / 64) * 64;
    const xf = new Float32Array(memory.buffer, x, n * tk);
    for (let j = 0; j < n * tk; j++) xf[j] = Math.sin(j);
    const best = (f: () => void): number => {
      // Warm up first: V8 runs a function on its baseline compiler (Liftoff) until it has tiered
      // up, and a dozen short calls can all land before that (a Q4_K matvec read 5.9 GB/s cold,
      // 13 warm).
      for (const t0 = performance.now(); performance.now() - t0 < 300;) f();
      let b = Infinity;
      for (let r = 0; r < (a.tokens > 1 ? 40 : 12); r++) {
        const t0 = performance.now();
        f();
        b = Math.min(b, performance.now() - t0);
      }
      return b / 1000;
    };
    const readBytes = 128 << 20;
    // Touch the pages first: untouched pages of a fresh memory all map the one zero page (cached).
    new Uint8Array(memory.buffer, w, readBytes).fill(1);
    rows.push([build, -1, 'read', readBytes / best(() => k.readBandwidth(w, readBytes)) / 1e9]);
    for (const t of a.types) {
      const [size, halves] = layout[t]!;
      const len = k.rowBytes(t, n) * n;
      const wv = new Uint8Array(memory.buffer, w, len);
      for (let j = 0; j < len; j++) wv[j] = (Math.random() * 256) | 0;
      for (let b = 0; b < len; b += size) for (const o of halves) wv[b + o + 1] = 0x20 | (wv[b + o + 1]! & 3);
      if (t === 0) new Float32Array(memory.buffer, w, n * n).fill(0.5);
      if (t === 30) new Uint16Array(memory.buffer, w, n * n).fill(0x3f00);
      const paths: Record<string, () => void> = { f32: () => k.matmul(t, w, n, x, n, y, n, tk, 0, 0, n, scratch) };
      if (k.q8aSupports(t)) paths.q8a = () => { k.quantizeQ8A(x, n, xq, n, 0, tk); k.matmulQ8A(t, w, n, xq, y, n, tk, 0, 0, n, pack); };
      if (k.q8kSupports(t)) paths.q8k = () => { k.quantizeQ8K(x, n, xq, n, 0, tk); k.matmulQ8K(t, w, n, xq, y, n, tk, 0, 0, n, pack); };
      // Matvec: weight GB/s; prefill: GFLOP/s.
      for (const [path, f] of Object.entries(paths)) rows.push([build, t, path, (tk > 1 ? 2 * n * n * tk : len) / best(f) / 1e9]);
    }
  }
  return rows;
}

await withBlankPage(async (page, version) => {
  const rows = await page.evaluate(runInPage, { mods: { simd: SIMD_WASM_BASE64, relaxed: RELAXED_WASM_BASE64 }, types, n, tokens });
  console.log(tokens > 1
    ? `Chromium ${version}, ${n}x${n} weights x ${tokens} tokens, single thread, GFLOP/s (fastest of 40)`
    : `Chromium ${version}, ${n}x${n} matvec, single thread, weight GB/s (fastest of 12)`);
  const cell = (build: string, t: number, path: string): string => {
    const r = rows.find((x) => x[0] === build && x[1] === t && x[2] === path);
    return r ? r[3].toFixed(2) : '-';
  };
  console.log(`memory read: simd ${cell('simd', -1, 'read')} GB/s, relaxed build ${cell('relaxed', -1, 'read')} GB/s`);
  const table = [['type', 'f32', 'q8a', 'q8k', 'f32 relaxed', 'q8a relaxed', 'q8k relaxed']];
  for (const t of types) table.push([GgmlType[t]!, ...['simd', 'relaxed'].flatMap((b) => ['f32', 'q8a', 'q8k'].map((p) => cell(b, t, p)))]);
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) console.log(r.map((v, c) => v.padStart(widths[c]!)).join('  '));
});
