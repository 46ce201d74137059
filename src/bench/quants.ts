/**
 * CPU throughput of the reference dequantizers (and quantizers), one format at a time:
 *   npx tsx src/bench/quants.ts [elements-in-millions=4] [format ...]
 * Dequantize reports MB/s of quantized input and M elements/s of output; quantize M elements/s.
 * Single-threaded, so numbers on a shared machine are noisy: compare formats within one run.
 */
import { QUANT_FORMATS } from '../engine/gguf/quants/index.ts';
import { mixedRows } from '../testing/quant-test-data.ts';

const millions = Number(process.argv[2] ?? 4);
const only = new Set(process.argv.slice(3).map((s) => s.toUpperCase()));
const n = Math.round((millions * 1e6) / 256) * 256;
const TILE = 1 << 16;

function timeIt(fn: () => void, minMs = 400): number {
  for (let i = 0; i < 2; i++) fn();
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    fn();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return elapsed / runs / 1000;
}

const rows: string[][] = [['format', 'bytes/elem', 'dequant MB/s', 'dequant M elem/s', 'quant M elem/s']];
const tile = mixedRows(1, 1, TILE);
for (const fmt of QUANT_FORMATS) {
  if (only.size && !only.has(fmt.name)) continue;
  // Quantize one tile and repeat it: dequantize speed does not depend on the values.
  const tileBytes = fmt.quantize!(tile);
  const bytes = new Uint8Array((n / fmt.blockSize) * fmt.typeSize);
  for (let o = 0; o < bytes.length; o += tileBytes.length) bytes.set(tileBytes.subarray(0, Math.min(tileBytes.length, bytes.length - o)), o);
  const out = new Float32Array(n);
  const dq = timeIt(() => fmt.dequantize(bytes, out, n));
  const q = timeIt(() => fmt.quantize!(tile), 200);
  rows.push([
    fmt.name,
    (fmt.typeSize / fmt.blockSize).toFixed(4),
    (bytes.length / dq / 1e6).toFixed(0),
    (n / dq / 1e6).toFixed(0),
    (TILE / q / 1e6).toFixed(2),
  ]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`${n} elements, Node ${process.version}`);
for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
