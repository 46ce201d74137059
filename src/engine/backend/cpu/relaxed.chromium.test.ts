/**
 * The relaxed-SIMD build, run where relaxed SIMD is right: Node 20's flag-gated implementation
 * computes wrong integer dots (see kernels.ts `agreesWith`), so kernels.test.ts can only check that
 * it is refused there. Here the system's Chromium (Debian's /usr/bin/chromium, as the e2e layer
 * uses; HEARTH_CHROMIUM overrides) runs the relaxed kernels on fresh random data and Node checks
 * them against float64, with the same bounds as kernels.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../gguf/ggml-types.ts';
import { normalizedMse } from '../../../testing/compare.ts';
import { exactWeights, randomBlocks } from '../../../testing/random-weights.ts';
import { matmulReference } from '../webgpu/kernels/matmul.ts';
import { RELAXED_WASM_BASE64 } from './generated/kernels-wasm.ts';
import { CPU_WEIGHT_TYPES, Q8A_BLOCK_BYTES, Q8A_WEIGHT_TYPES, Q8K_BLOCK_BYTES, Q8K_WEIGHT_TYPES } from './kernels.ts';

const executablePath = process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';

interface PageCase {
  type: number;
  k: number;
  rows: number;
  tokens: number;
  w: number[];
  x: number[];
  /** Per row, added by every path (the packed tiles add it per four rows). */
  bias: number[];
}

interface PageResult {
  relaxedValid: boolean;
  selfTest: number;
  isRelaxed: number;
  /** detectUnsignedDot: 1 where relaxed SIMD's i32 dot is exact on unsigned bytes (AVX-VNNI). */
  unsignedDot: number;
  /** yqPlanes / ykPlanes: the same packed calls with the unsigned-byte dot turned off. */
  results: Array<{ y: number[]; yq: number[]; yqPlanes: number[]; yqUnpacked: number[]; xq: number[]; yk: number[]; ykPlanes: number[]; ykUnpacked: number[]; xk: number[] }>;
}

/** Runs in the page: the matmul paths of the relaxed build on each case. Self-contained. */
function runInPage(args: { wasm: string; cases: PageCase[] }): PageResult {
  const bin = Uint8Array.from(atob(args.wasm), (c) => c.charCodeAt(0));
  const relaxedValid = WebAssembly.validate(bin);
  const memory = new WebAssembly.Memory({ initial: 256 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bin), { env: { memory, abort: () => { throw new Error('abort'); } } });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const k = inst.exports as any;
  let top = Math.ceil(k.heapBase() / 64) * 64;
  const alloc = (n: number): number => {
    const p = top;
    top = Math.ceil((top + n) / 64) * 64;
    return p;
  };
  const selfTest = k.relaxedSelfTest(alloc(64));
  const unsignedDot = k.detectUnsignedDot();
  const results = args.cases.map((c) => {
    const base = top;
    const rb = k.rowBytes(c.type, c.k);
    const w = alloc(rb * c.rows);
    new Uint8Array(memory.buffer, w, c.w.length).set(c.w);
    const x = alloc(4 * c.k * c.tokens);
    new Float32Array(memory.buffer, x, c.x.length).set(c.x);
    const y = alloc(4 * c.rows * c.tokens);
    new Float32Array(memory.buffer, y, c.rows * c.tokens).fill(NaN);
    const scratch = alloc(4 * 1024);
    const bias = alloc(4 * c.rows);
    new Float32Array(memory.buffer, bias, c.rows).set(c.bias);
    k.matmul(c.type, w, c.k, x, c.k, y, c.rows, c.tokens, bias, 0, c.rows, scratch);
    let yq: number[] = [];
    let yqUnpacked: number[] = [];
    let yqPlanes: number[] = [];
    let xqOut: number[] = [];
    if (c.k % 32 === 0 && k.q8aSupports(c.type)) {
      const qb = (c.k / 32) * 40 * c.tokens;
      const xq = alloc(qb);
      k.quantizeQ8A(x, c.k, xq, c.k, 0, c.tokens);
      const y2 = alloc(4 * c.rows * c.tokens);
      new Float32Array(memory.buffer, y2, c.rows * c.tokens).fill(NaN);
      // Packed prefill (Q8_0 / Q4_0 / Q5_0: its scratch) and unpacked (no scratch) must agree bitwise.
      const pack = alloc(Math.max(64, k.q8aPackBytes(c.type, c.k)));
      k.matmulQ8A(c.type, w, c.k, xq, y2, c.rows, c.tokens, bias, 0, c.rows, pack);
      yq = Array.from(new Float32Array(memory.buffer, y2, c.rows * c.tokens));
      k.setUnsignedDot(0);
      k.matmulQ8A(c.type, w, c.k, xq, y2, c.rows, c.tokens, bias, 0, c.rows, pack);
      k.setUnsignedDot(-1);
      yqPlanes = Array.from(new Float32Array(memory.buffer, y2, c.rows * c.tokens));
      new Float32Array(memory.buffer, y2, c.rows * c.tokens).fill(NaN);
      k.matmulQ8A(c.type, w, c.k, xq, y2, c.rows, c.tokens, bias, 0, c.rows, 0);
      yqUnpacked = Array.from(new Float32Array(memory.buffer, y2, c.rows * c.tokens));
      xqOut = Array.from(new Uint8Array(memory.buffer, xq, qb));
    }
    let yk: number[] = [];
    let ykUnpacked: number[] = [];
    let ykPlanes: number[] = [];
    let xkOut: number[] = [];
    if (c.k % 256 === 0 && k.q8kSupports(c.type)) {
      const kb = (c.k / 256) * 292 * c.tokens;
      const xk = alloc(kb);
      k.quantizeQ8K(x, c.k, xk, c.k, 0, c.tokens);
      const y3 = alloc(4 * c.rows * c.tokens);
      new Float32Array(memory.buffer, y3, c.rows * c.tokens).fill(NaN);
      const pack = alloc(k.q8kPackBytes(c.k));
      k.matmulQ8K(c.type, w, c.k, xk, y3, c.rows, c.tokens, bias, 0, c.rows, pack);
      yk = Array.from(new Float32Array(memory.buffer, y3, c.rows * c.tokens));
      k.setUnsignedDot(0);
      k.matmulQ8K(c.type, w, c.k, xk, y3, c.rows, c.tokens, bias, 0, c.rows, pack);
      k.setUnsignedDot(-1);
      ykPlanes = Array.from(new Float32Array(memory.buffer, y3, c.rows * c.tokens));
      new Float32Array(memory.buffer, y3, c.rows * c.tokens).fill(NaN);
      k.matmulQ8K(c.type, w, c.k, xk, y3, c.rows, c.tokens, bias, 0, c.rows, 0);
      ykUnpacked = Array.from(new Float32Array(memory.buffer, y3, c.rows * c.tokens));
      xkOut = Array.from(new Uint8Array(memory.buffer, xk, kb));
    }
    const out = { y: Array.from(new Float32Array(memory.buffer, y, c.rows * c.tokens)), yq, yqPlanes, yqUnpacked, xq: xqOut, yk, ykPlanes, ykUnpacked, xk: xkOut };
    top = base;
    return out;
  });
  return { relaxedValid, selfTest, isRelaxed: k.isRelaxed(), unsignedDot, results };
}

function dequantQ8K(bytes: Uint8Array, k: number, tokens: number): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(k * tokens);
  for (let b = 0; b < (k * tokens) / 256; b++) {
    const d = view.getFloat32(b * Q8K_BLOCK_BYTES, true);
    for (let i = 0; i < 256; i++) out[b * 256 + i] = d * view.getInt8(b * Q8K_BLOCK_BYTES + 36 + i);
  }
  return out;
}

/** Linux x64 CPU flags: whether the CPU has AVX-VNNI (false where /proc/cpuinfo is absent). */
function cpuHasAvxVnni(): boolean {
  return existsSync('/proc/cpuinfo') && /\bavx_vnni\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

function dequantQ8A(bytes: Uint8Array, k: number, tokens: number): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(k * tokens);
  for (let b = 0; b < (k * tokens) / 32; b++) {
    const d = view.getFloat32(b * Q8A_BLOCK_BYTES, true);
    for (let i = 0; i < 32; i++) out[b * 32 + i] = d * view.getInt8(b * Q8A_BLOCK_BYTES + 8 + i);
  }
  return out;
}

describe('relaxed-SIMD build in Chromium', () => {
  let browser: Browser;

  beforeAll(async () => {
    expect(existsSync(executablePath), `no Chromium at ${executablePath} (set HEARTH_CHROMIUM)`).toBe(true);
    browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-gpu'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('matmul, matmulQ8A and matmulQ8K of every type agree with float64', async () => {
    const seed = process.env.HEARTH_TEST_SEED ? Number(process.env.HEARTH_TEST_SEED) : Math.floor(Math.random() * 2 ** 31);
    console.log(`[seed] relaxed chromium: HEARTH_TEST_SEED=${seed}`);
    let s = seed;
    const next = (): number => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296;
    };
    const cases = CPU_WEIGHT_TYPES.map((type) => {
      const blockwise = type !== GgmlType.F32 && type !== GgmlType.F16 && type !== GgmlType.BF16;
      // The 32-block types: 37 blocks, so four-block loops (IQ4_NL's decode) have a tail.
      const k = blockwise ? (type === GgmlType.Q8_0 || type === GgmlType.Q4_0 || type === GgmlType.IQ4_NL ? 32 * 37 : 256 * 5) : 1030;
      const rows = 37;
      // Two groups of four for the tiled prefill kernels, and a remainder of one.
      const tokens = 9;
      const bytes = randomBlocks(type, rows, k, Math.floor(next() * 2 ** 31));
      const x = Array.from({ length: k * tokens }, () => next() * 2 - 1);
      const bias = Array.from({ length: rows }, () => next() * 2 - 1);
      return { type, k, rows, tokens, w: Array.from(bytes), x, bias, bytes };
    });
    const page = await browser.newPage();
    const out = await page.evaluate(runInPage, { wasm: RELAXED_WASM_BASE64, cases: cases.map(({ bytes: _b, ...c }) => c) });
    await page.close();
    expect(out.relaxedValid).toBe(true);
    expect(out.isRelaxed).toBe(1);
    expect(out.selfTest).toBe(1);
    // V8 emits vpdpbusd, exact on unsigned bytes, where the CPU has AVX-VNNI; elsewhere the check
    // must say no (a saturating pmaddubsw or a signed sdot would give wrong sums).
    expect(out.unsignedDot, 'unsigned-byte dot detected exactly where the CPU has AVX-VNNI').toBe(cpuHasAvxVnni() ? 1 : 0);
    for (const [i, c] of cases.entries()) {
      const w = exactWeights(c.type, c.bytes, c.rows * c.k);
      const x = Float32Array.from(c.x);
      const r = out.results[i]!;
      const err = normalizedMse(r.y, matmulReference(w, c.k, c.rows, x, c.tokens, c.bias));
      expect(err, `${GgmlType[c.type]} matmul`).toBeLessThanOrEqual(1e-6);
      if (Q8A_WEIGHT_TYPES.includes(c.type)) {
        const xq = dequantQ8A(Uint8Array.from(r.xq), c.k, c.tokens);
        const errQ = normalizedMse(r.yq, matmulReference(w, c.k, c.rows, xq, c.tokens, c.bias));
        console.log(`[relaxed] ${GgmlType[c.type]}: matmul ${err.toExponential(2)}, matmulQ8A on its activations ${errQ.toExponential(2)}`);
        expect(errQ, `${GgmlType[c.type]} matmulQ8A`).toBeLessThanOrEqual(1e-6);
        // One plane of bytes (the unsigned-byte dot) or two of nibbles: the same integers, so
        // bitwise, except IQ4_NL's decode tokens (four blocks' totals at a time with it, rounded
        // in another order): to rounding there, and not bitwise somewhere where it ran.
        const tiledOutputs = (c.tokens & ~3) * c.rows;
        const exactQ = c.type === GgmlType.IQ4_NL ? tiledOutputs : r.yq.length;
        expect(r.yq.slice(0, exactQ), `${GgmlType[c.type]} matmulQ8A with and without the unsigned-byte dot`).toEqual(r.yqPlanes.slice(0, exactQ));
        if (exactQ < r.yq.length) {
          const largest = Math.max(...r.yq.map(Math.abs));
          for (let i = exactQ; i < r.yq.length; i++) expect(Math.abs(r.yq[i]! - r.yqPlanes[i]!), `${GgmlType[c.type]} decode with and without the unsigned-byte dot, output ${i}`).toBeLessThanOrEqual(1e-5 * largest);
          if (out.unsignedDot) expect(r.yq.slice(exactQ).some((v, i) => v !== r.yqPlanes[exactQ + i]), `${GgmlType[c.type]}: the unsigned-byte decode really ran`).toBe(true);
        }
        // Q8_0's tokens past the last group of four (decode) take the split relaxed dot with the
        // scratch and dotQ8_0 without it: the same block integers, summed in other lanes, so
        // equal up to float rounding; the tiled tokens bitwise. IQ4_NL has packed tiles and a
        // one-token dot only (the same integers, rounded in another order): all to rounding.
        const iq4 = c.type === GgmlType.IQ4_NL;
        const bitwise = iq4 ? 0 : c.type === GgmlType.Q8_0 ? (c.tokens & ~3) * c.rows : r.yq.length;
        expect(r.yq.slice(0, bitwise), `${GgmlType[c.type]} matmulQ8A packed vs unpacked`).toEqual(r.yqUnpacked.slice(0, bitwise));
        const largest = Math.max(...r.yq.map(Math.abs));
        for (let i = bitwise; i < r.yq.length; i++) expect(Math.abs(r.yq[i]! - r.yqUnpacked[i]!), `${GgmlType[c.type]} packed / decode token vs unpacked, output ${i}`).toBeLessThanOrEqual(1e-5 * largest);
        // The packed tiles really ran: some output differs in its last bits.
        if (iq4) expect(r.yq.some((v, i) => v !== r.yqUnpacked[i]), `${GgmlType[c.type]}: packed outputs differing from the one-token dots`).toBe(true);
      }
      if (Q8K_WEIGHT_TYPES.includes(c.type)) {
        const xk = dequantQ8K(Uint8Array.from(r.xk), c.k, c.tokens);
        const errK = normalizedMse(r.yk, matmulReference(w, c.k, c.rows, xk, c.tokens, c.bias));
        console.log(`[relaxed] ${GgmlType[c.type]}: matmulQ8K on its activations ${errK.toExponential(2)}`);
        expect(errK, `${GgmlType[c.type]} matmulQ8K`).toBeLessThanOrEqual(1e-6);
        expect(r.yk, `${GgmlType[c.type]} matmulQ8K with and without the unsigned-byte dot`).toEqual(r.ykPlanes);
        // IQ4_XS with the scratch splits each token (dotIQ4_XSSplit) and packs the tiled tokens,
        // Q3_K / Q2_K run packed tiles against one-token dots: the same integers, scaled per block
        // there and per lane partial sum here, so equal up to float rounding; every other type bitwise.
        if (c.type === GgmlType.IQ4_XS || c.type === GgmlType.Q3_K || c.type === GgmlType.Q2_K) {
          const largestK = Math.max(...r.yk.map(Math.abs));
          let differ = 0;
          for (let i = 0; i < r.yk.length; i++) {
            expect(Math.abs(r.yk[i]! - r.ykUnpacked[i]!), `${GgmlType[c.type]} packed / split vs one-token dots, output ${i}`).toBeLessThanOrEqual(1e-5 * largestK);
            if (r.yk[i] !== r.ykUnpacked[i]) differ++;
          }
          // Not bitwise somewhere: the other path really ran.
          expect(differ, `${GgmlType[c.type]}: outputs differing from the one-token dots`).toBeGreaterThan(0);
        } else {
          expect(r.yk, `${GgmlType[c.type]} matmulQ8K packed vs unpacked`).toEqual(r.ykUnpacked);
        }
      }
    }
  }, 60_000);

  it.each([
    { name: 'Q4_0x4', type: GgmlType.Q4_0, layout: 1002, pack: 'packQ4_0x4', scratchPerBlock: 152 },
    { name: 'Q5_0x4', type: GgmlType.Q5_0, layout: 1006, pack: 'packQ5_0x4', scratchPerBlock: 152 },
    { name: 'Q8_0x4', type: GgmlType.Q8_0, layout: 1008, pack: 'packQ8_0x4', scratchPerBlock: 272 },
    // IQ4_NL blocks have Q4_0's bytes: the same packing, the levels looked up (unsigned-byte dot only).
    { name: 'IQ4_NLx4', type: GgmlType.IQ4_NL, layout: 1020, pack: 'packQ4_0x4', scratchPerBlock: 152 },
    // Q4_K and Q6_K on Q8K activations: the scratch holds the K tile's packed group (1440 bytes a super-block).
    { name: 'Q4_Kx4', type: GgmlType.Q4_K, layout: 1012, pack: 'packQ4_Kx4', scratchPerBlock: 1440 / 8 },
    { name: 'Q6_Kx4', type: GgmlType.Q6_K, layout: 1014, pack: 'packQ6_Kx4', scratchPerBlock: 1440 / 8 },
  ])('$name (rows interleaved in place for decode): every token bitwise the packed prefill tile, embed rows exact', async ({ name, type, layout, pack, scratchPerBlock }) => {
    const seed = process.env.HEARTH_TEST_SEED ? Number(process.env.HEARTH_TEST_SEED) : Math.floor(Math.random() * 2 ** 31);
    console.log(`[seed] relaxed chromium ${name}: HEARTH_TEST_SEED=${seed}`);
    const rows = 12;
    const q8k = type === GgmlType.Q4_K || type === GgmlType.Q6_K;
    const k = q8k ? 256 * 3 : 32 * 7;
    const tokens = 6; // one group of four in a tile, two tokens one at a time
    const bytes = randomBlocks(type, rows, k, seed);
    let s = seed;
    const x = Array.from({ length: k * tokens }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s / 4294967296) * 2 - 1;
    });
    const page = await browser.newPage();
    const out = await page.evaluate(runInterleavedInPage, { wasm: RELAXED_WASM_BASE64, w: Array.from(bytes), x, rows, k, tokens, type, layout, pack, scratchBytes: scratchPerBlock * (k / 32) });
    await page.close();
    const w = exactWeights(type, bytes, rows * k);
    if (type === GgmlType.IQ4_NL) {
      // Its decode exists only with the unsigned-byte dot: without it (or turned off) a named trap.
      expect(out.trappedOff, 'IQ4_NLx4 without the unsigned-byte dot traps').toBe(true);
      expect(out.unsignedDot).toBe(cpuHasAvxVnni() ? 1 : 0);
      if (!out.unsignedDot) return;
    }
    // Embedding rows come back exactly the quantized values.
    expect(out.embedded).toEqual(Array.from(w));
    // Tokens 0..3 ran in the tile; 4 and 5 one at a time: each must equal that token in a tile (the
    // packed prefill of the raw matrix with the token repeated four times).
    expect(out.packed.slice(0, 4 * rows)).toEqual(out.raw.slice(0, 4 * rows));
    for (const t of [4, 5]) expect(out.packed.slice(t * rows, (t + 1) * rows), `token ${t}`).toEqual(out.single[t - 4]);
    expect(out.packed, 'with and without the unsigned-byte dot').toEqual(out.planes);
    if (type !== GgmlType.IQ4_NL) expect(out.trappedOff, 'the portable form ran').toBe(false);
    // And against float64 on the quantized activations.
    const xq = q8k ? dequantQ8K(Uint8Array.from(out.xq), k, tokens) : dequantQ8A(Uint8Array.from(out.xq), k, tokens);
    expect(normalizedMse(out.packed, matmulReference(w, k, rows, xq, tokens))).toBeLessThanOrEqual(1e-6);
  }, 60_000);
});

/**
 * Runs in the page: packs a Q4_0 / Q5_0 / Q8_0 / IQ4_NL / Q4_K / Q6_K matrix interleaved (`pack`) and
 * runs matmulInterleaved, embed (`layout`), and the raw packed prefill (the K-quants on Q8K activations).
 */
function runInterleavedInPage(a: {
  wasm: string; w: number[]; x: number[]; rows: number; k: number; tokens: number; type: number; layout: number; pack: string; scratchBytes: number;
}): { packed: number[]; planes: number[]; raw: number[]; single: number[][]; embedded: number[]; xq: number[]; unsignedDot: number; trappedOff: boolean } {
  const bin = Uint8Array.from(atob(a.wasm), (c) => c.charCodeAt(0));
  const memory = new WebAssembly.Memory({ initial: 256 });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const k = new WebAssembly.Instance(new WebAssembly.Module(bin), { env: { memory, abort: () => { throw new Error('abort'); } } }).exports as any;
  let top = Math.ceil(k.heapBase() / 64) * 64;
  const alloc = (n: number): number => {
    const p = top;
    top = Math.ceil((top + n) / 64) * 64;
    return p;
  };
  const f32 = (p: number, n: number): number[] => Array.from(new Float32Array(memory.buffer, p, n));
  const { rows, tokens } = a;
  const raw = alloc(a.w.length);
  new Uint8Array(memory.buffer, raw, a.w.length).set(a.w);
  const w = alloc(a.w.length);
  new Uint8Array(memory.buffer, w, a.w.length).set(a.w);
  const scratch = alloc(a.scratchBytes);
  k[a.pack](w, rows, a.k, scratch);
  const x = alloc(4 * a.k * tokens);
  new Float32Array(memory.buffer, x, a.k * tokens).set(a.x);
  const q8k = a.type === 12 || a.type === 14;
  const qb = q8k ? (a.k / 256) * 292 : (a.k / 32) * 40;
  const xq = alloc(qb * tokens);
  if (q8k) k.quantizeQ8K(x, a.k, xq, a.k, 0, tokens);
  else k.quantizeQ8A(x, a.k, xq, a.k, 0, tokens);
  const matmulRaw = q8k ? k.matmulQ8K : k.matmulQ8A;
  const y = alloc(4 * rows * tokens);
  const unsignedDot: number = k.detectUnsignedDot();
  const iq4 = a.type === 20;
  let trappedOff = false;
  if (iq4 && !unsignedDot) {
    try {
      k.matmulInterleaved(a.type, w, a.k, xq, y, rows, tokens, 0, 0, rows, scratch);
    } catch {
      trappedOff = true;
    }
    return { packed: [], planes: [], raw: [], single: [], embedded: [], xq: [], unsignedDot, trappedOff };
  }
  k.matmulInterleaved(a.type, w, a.k, xq, y, rows, tokens, 0, 0, rows, scratch);
  const packed = f32(y, rows * tokens);
  // Q8_0x4 where the unsigned-byte dot is exact: the same tokens with it off (split tokens, two
  // planes); IQ4_NLx4 must trap instead.
  k.setUnsignedDot(0);
  try {
    k.matmulInterleaved(a.type, w, a.k, xq, y, rows, tokens, 0, 0, rows, scratch);
  } catch {
    trappedOff = true;
  }
  k.setUnsignedDot(-1);
  const planes = iq4 ? packed : f32(y, rows * tokens);
  matmulRaw(a.type, raw, a.k, xq, y, rows, tokens, 0, 0, rows, scratch);
  const rawOut = f32(y, rows * tokens);
  // Tokens 4 and 5, each repeated four times through the raw matrix's packed prefill tile.
  const single = [4, 5].map((t) => {
    const rep = alloc(qb * 4);
    for (let i = 0; i < 4; i++) new Uint8Array(memory.buffer, rep + i * qb, qb).set(new Uint8Array(memory.buffer, xq + t * qb, qb));
    const y4 = alloc(4 * rows * 4);
    matmulRaw(a.type, raw, a.k, rep, y4, rows, 4, 0, 0, rows, scratch);
    return f32(y4, rows);
  });
  const ids = alloc(4 * rows);
  new Uint32Array(memory.buffer, ids, rows).set(Array.from({ length: rows }, (_, i) => i));
  const e = alloc(4 * a.k * rows);
  k.embed(a.layout, w, a.k, rows, ids, e, a.k, 1, 0, rows);
  return { packed, planes, raw: rawOut, single, embedded: f32(e, a.k * rows), xq: Array.from(new Uint8Array(memory.buffer, xq, qb * tokens)), unsignedDot, trappedOff };
}
