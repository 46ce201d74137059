/**
 * A/B of two builds of the CPU kernels in the system's Chromium (not a test): for each weight type,
 * the GFLOP/s of `matmulQ8A` / `matmulQ8K` on each build, interleaved in one page (the fastest of
 * 30 calls each, so a busy machine disturbs both alike), and the largest difference between their
 * outputs (0 when a rewrite keeps the results bitwise).
 *
 *   npx tsx src/bench/cpu/kernels-ab-chromium.ts OLD.wasm NEW.wasm [--n 2048] [--k N] [--tokens 64] [--types Q5_0,Q4_K] [--interleaved | --interleaved-new] [--portable]
 *
 * Build a .wasm from a version of assembly/kernels.ts with the flags of ../../engine/backend/cpu/build.mjs,
 * e.g. `node_modules/.bin/asc kernels.ts -O3 --runtime stub --noAssert --importMemory --enable simd
 * --use RELAXED=1 --enable relaxed-simd -o new.wasm`. Both builds are passed a packed-prefill
 * scratch (a build without the argument ignores it). One token (`--tokens 1`) times 20 calls per
 * sample: the browser's timer has 0.1 ms steps. The random blocks' f16 scales are all normal halves;
 * real files' are often subnormal (Q6_K's d), which once cost 2x (../../engine/backend/cpu/README.md):
 * time a real file's tensor too before trusting a kernel's figure.
 */
import { readFileSync } from 'node:fs';
import { GgmlType } from '../../engine/gguf/ggml-types.ts';
import { withBlankPage } from './blank-page.ts';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const files = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
if (files.length !== 2) throw new Error('usage: kernels-ab-chromium.ts OLD.wasm NEW.wasm [--n N] [--k K] [--tokens T] [--types Q5_0,Q4_K]');
const n = Number(flag('--n', '2048'));
const k = Number(flag('--k', String(n)));
const tokens = Number(flag('--tokens', '64'));
// The relaxed build's interleaved decode layouts (Q4_0x4, Q5_0x4, Q8_0x4, IQ4_NLx4, Q4_Kx4, Q6_Kx4) through matmulInterleaved.
const interleaved = argv.includes('--interleaved');
const interleavedNew = argv.includes('--interleaved-new');
const portable = argv.includes('--portable');
const types = flag('--types', 'Q8_0,Q4_0,Q5_0,Q4_K,Q5_K,Q6_K').split(',').map((name) => GgmlType[name as keyof typeof GgmlType]);

interface Kernels {
  rowBytes(type: number, k: number): number;
  q8kSupports(type: number): number;
  quantizeQ8A(x: number, xStride: number, dst: number, k: number, r0: number, r1: number): void;
  quantizeQ8K(x: number, xStride: number, dst: number, k: number, r0: number, r1: number): void;
  matmulQ8A(...args: number[]): void;
  matmulQ8K(...args: number[]): void;
  matmulInterleaved(...args: number[]): void;
  packQ4_0x4(w: number, rows: number, k: number, scratch: number): void;
  packQ5_0x4(w: number, rows: number, k: number, scratch: number): void;
  packQ8_0x4(w: number, rows: number, k: number, scratch: number): void;
  packQ4_Kx4?(w: number, rows: number, k: number, scratch: number): void;
  packQ6_Kx4?(w: number, rows: number, k: number, scratch: number): void;
  setUnsignedDot?(mode: number): void;
}

/** Runs in the page (self-contained): one line per type. */
function runInPage(a: { mods: string[]; types: number[]; n: number; k: number; tokens: number; interleaved: boolean; interleavedNew: boolean; portable: boolean }): string[] {
  // Block size and f16 field offsets, so random weights get finite scales.
  const layout: Record<number, [number, number[]]> = { 8: [34, [0]], 2: [18, [0]], 3: [20, [0, 2]], 6: [22, [0]], 7: [24, [0, 2]], 12: [144, [0, 2]], 13: [176, [0, 2]], 14: [210, [208]], 10: [84, [80, 82]], 11: [110, [108]], 20: [18, [0]], 23: [136, [0]] };
  // A memory per build: each build's static data (lookup tables, vector constants) sits at its own
  // addresses, which the other build's data segments would overwrite in a shared memory.
  const mems = a.mods.map(() => new WebAssembly.Memory({ initial: 8192 }));
  const memory = mems[0]!;
  const ks = a.mods.map((b64, i) => new WebAssembly.Instance(new WebAssembly.Module(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))), { env: { memory: mems[i]!, abort() {} } }).exports as unknown as Kernels);
  const copy = (at: number, bytes: number, from = 0, to = 1): void => new Uint8Array(mems[to]!.buffer, at, bytes).set(new Uint8Array(mems[from]!.buffer, at, bytes));
  // --portable: the forms every relaxed-SIMD machine runs (the unsigned-byte dot's off).
  if (a.portable) for (const kk of ks) kk.setUnsignedDot?.(0);
  const { n, k, tokens } = a;
  const x = 1 << 20;
  const y = [x + 4 * k * tokens, x + 4 * k * tokens + 4 * n * tokens];
  const xq = y[1]! + 4 * n * tokens;
  const scratch = xq + 2 * k * tokens;
  const w = scratch + Math.ceil(Math.max((k / 32) * 272, (k / 256) * 1440) / 64) * 64;
  const xf = new Float32Array(memory.buffer, x, k * tokens);
  for (let j = 0; j < k * tokens; j++) xf[j] = Math.sin(j * 1.3);
  copy(x, 4 * k * tokens);
  const out: string[] = [];
  for (const t of a.types) {
    const [size, halves] = layout[t]!;
    const len = ks[0]!.rowBytes(t, k) * n;
    const wv = new Uint8Array(memory.buffer, w, len);
    for (let j = 0; j < len; j++) wv[j] = (Math.random() * 256) | 0;
    for (let b = 0; b < len; b += size) for (const o of halves) wv[b + o + 1] = 0x20 | (wv[b + o + 1]! & 3);
    copy(w, len);
    const q8k = ks[0]!.q8kSupports(t) === 1;
    // Interleaved in place once (the layouts take the same bytes), with the second build's packer;
    // --interleaved-new: only the second build's copy, the first runs the GGUF rows (layout A/B).
    const x4 = (a.interleaved || a.interleavedNew) && (t === 2 || t === 6 || t === 8 || t === 20 || t === 14 || t === 12);
    const w4 = a.interleavedNew ? w + len : w;
    if (x4) {
      if (a.interleavedNew) new Uint8Array(mems[1]!.buffer, w4, len).set(wv);
      const pack = t === 2 || t === 20 ? ks[1]!.packQ4_0x4 : t === 6 ? ks[1]!.packQ5_0x4 : t === 14 ? ks[1]!.packQ6_Kx4! : t === 12 ? ks[1]!.packQ4_Kx4! : ks[1]!.packQ8_0x4;
      pack(w4, n, k, scratch);
      if (!a.interleavedNew) copy(w4, len, 1, 0);
    }
    const run = (m: number): void => {
      const kk = ks[m]!;
      if (x4 && (m === 1 || !a.interleavedNew)) {
        // Q4_Kx4 / Q6_Kx4 take Q8K activations, the others Q8A.
        if (q8k) kk.quantizeQ8K(x, k, xq, k, 0, tokens);
        else kk.quantizeQ8A(x, k, xq, k, 0, tokens);
        kk.matmulInterleaved(t, w4, k, xq, y[m]!, n, tokens, 0, 0, n, scratch);
      } else if (q8k) {
        kk.quantizeQ8K(x, k, xq, k, 0, tokens);
        kk.matmulQ8K(t, w, k, xq, y[m]!, n, tokens, 0, 0, n, scratch);
      } else {
        kk.quantizeQ8A(x, k, xq, k, 0, tokens);
        kk.matmulQ8A(t, w, k, xq, y[m]!, n, tokens, 0, 0, n, scratch);
      }
    };
    run(0);
    run(1);
    const A = new Float32Array(memory.buffer, y[0]!, n * tokens);
    const B = new Float32Array(mems[1]!.buffer, y[1]!, n * tokens);
    let diff = 0;
    let max = 0;
    for (let j = 0; j < n * tokens; j++) {
      diff = Math.max(diff, Math.abs(A[j]! - B[j]!));
      max = Math.max(max, Math.abs(A[j]!));
    }
    // Warm both up first: V8 runs a function on its baseline compiler (Liftoff) until the
    // optimized code is ready, which for these large functions can outlast a few short calls
    // (the same tile measured 66 and 101 GFLOP/s from one run to the next without this).
    for (const m of [0, 1]) for (const t0 = performance.now(); performance.now() - t0 < 1000;) run(m);
    const reps = tokens === 1 ? 20 : 1;
    const best = [Infinity, Infinity];
    for (let r = 0; r < 30; r++) {
      for (const m of [0, 1]) {
        const t0 = performance.now();
        for (let q = 0; q < reps; q++) run(m);
        best[m] = Math.min(best[m]!, (performance.now() - t0) / reps);
      }
    }
    const gf = best.map((b) => (2 * n * k * tokens) / (b / 1000) / 1e9);
    out.push(`type ${t}: old ${gf[0]!.toFixed(1)}, new ${gf[1]!.toFixed(1)} GFLOP/s (x${(gf[1]! / gf[0]!).toFixed(2)}); largest difference ${diff} (outputs up to ${max.toFixed(1)})`);
  }
  return out;
}

await withBlankPage(async (page, version) => {
  const mods = files.map((f) => readFileSync(f).toString('base64'));
  console.log(`Chromium ${version}: ${n} rows x ${k} x ${tokens} tokens, single thread`);
  const lines = await page.evaluate(runInPage, { mods, types, n, k, tokens, interleaved, interleavedNew, portable });
  for (const [i, line] of lines.entries()) console.log(line.replace(/^type \d+/, GgmlType[types[i]!]!));
});
