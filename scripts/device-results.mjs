// Turns a device check's results (the device-check/ folder the run writes under $OUT, or its
// device-check.json) into docs/device-check.json (committed) and the table in README.md's
// "Real-GPU check" section, between the device-check markers.
//   node scripts/device-results.mjs [RESULTS_DIR_OR_JSON] [--json docs/device-check.json] [--readme README.md]
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : fallback;
};
const jsonOut = resolve(root, opt('--json', 'docs/device-check.json'));
const readme = resolve(root, opt('--readme', 'README.md'));
let input = resolve(args[0] ?? join(root, '.device/results/device-check'));
if (existsSync(input) && statSync(input).isDirectory()) input = join(input, 'device-check.json');
if (!existsSync(input)) {
  console.error(`device-results: no ${input}; run bash scripts/device-check.sh first`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(input, 'utf8'));
mkdirSync(dirname(jsonOut), { recursive: true });
writeFileSync(jsonOut, JSON.stringify(r, null, 2) + '\n');

const n = (x, digits = 1) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–');
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(a / b).toPrecision(2)}x` : '–');
const sig = (x) => (typeof x === 'number' && Number.isFinite(x) ? x.toPrecision(3) : '–');
const mib = (b) => (typeof b === 'number' ? `${(b / 2 ** 20).toFixed(0)} MiB` : '–');
const names = { 'llama-3.2-1b': 'Llama-3.2-1B', 'llama-3.1-8b': 'Llama-3.1-8B', 'lfm2-1.2b': 'LFM2-1.2B (hybrid)' };

const lines = [];
const a = r.adapter;
lines.push(
  `${r.mode === 'rehearsal' ? 'Rehearsal on the software adapter (small stand-in shapes, fewer tokens: the figures test the script, not the engine)' : 'Real GPU'}, ${r.date.slice(0, 10)}, ${n(r.seconds, 0)} s in all.`,
);
lines.push('');
lines.push(`- Adapter: ${a ? `${a.vendor} ${a.architecture} ${a.device} (${a.description})${a.isFallbackAdapter ? ', fallback adapter' : ''}` : 'none (probe failed)'}`);
if (r.driver) lines.push(`- Driver (nvidia-smi): ${r.driver.split('\n').slice(1).join('; ')}`);
if (r.peerDevices) {
  const dev = r.peerDevices.split('\n').filter((l) => /^\s*\S+: /.test(l) && !/load_backend|Available|^ggml_/.test(l));
  lines.push(`- llama.cpp's Vulkan devices: ${dev.length ? dev.map((l) => l.trim()).join('; ') : 'none (it runs on the CPU)'}`);
}
const g = r.gpuTests;
lines.push(`- GPU tests (kernels against float64 references): ${g ? `${g.passed} passed, ${g.failed} failed, ${g.skipped} skipped in ${n(g.ms / 1000, 0)} s` : 'no result'}`);
lines.push(`- Parts: ${r.parts.map((p) => `${p.name} ${p.status} ${p.seconds} s`).join(', ')}`);
lines.push('');
lines.push('| Model (Q4_K_M, random weights) | file | prefill tok/s ours / llama.cpp | decode tok/s ours / llama.cpp | ratio prefill; decode |');
lines.push('|---|---|---|---|---|');
for (const m of r.models) {
  const o = m.ours ?? {};
  const p = m.peer ?? { decodeTps: {} };
  const ctxs = [...new Set([...Object.keys(o.decodeTps ?? {}), ...Object.keys(p.decodeTps ?? {})])].sort((x, y) => x - y);
  const decode = ctxs.map((c) => `@${c}: ${n(o.decodeTps?.[c])} / ${n(p.decodeTps?.[c])}`).join(', ') || '–';
  const ratios = [ratio(o.prefillTps, p.prefillTps), ...ctxs.map((c) => ratio(o.decodeTps?.[c], p.decodeTps?.[c]))].join('; ');
  const label = `${names[m.model] ?? m.model}${m.shape && m.shape !== m.model ? ` (as ${m.shape})` : ''}${o.error ? ` — ours failed: ${o.error}` : ''}`;
  lines.push(`| ${label} | ${mib(m.fileBytes)} | ${n(o.prefillTps)} / ${n(p.prefillTps)} | ${decode} | ${ratios} |`);
}
const k = r.kernels;
if (k?.entries?.length) {
  lines.push('');
  lines.push(`Kernels (\`hearth bench kernels\`, ${k.timing}, matvec ${k.matvec}; copy bandwidth ${n(k.copyGbPerS)} GB/s):`);
  lines.push('');
  lines.push('| type | op | rows x k | tokens | ms | GB/s | of copy bandwidth | GFLOP/s |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const e of k.entries) {
    lines.push(`| ${e.type} | ${e.op} | ${e.rows}x${e.k} | ${e.tokens} | ${sig(e.ms)} | ${sig(e.gbPerS)} | ${k.copyGbPerS ? `${((100 * e.gbPerS) / k.copyGbPerS).toPrecision(2)}%` : '–'} | ${sig(e.gflopPerS)} |`);
  }
} else {
  lines.push('', 'Kernels: no result.');
}

const start = '<!-- device-check:start -->';
const end = '<!-- device-check:end -->';
const text = readFileSync(readme, 'utf8');
const i = text.indexOf(start);
const j = text.indexOf(end);
if (i < 0 || j < i) {
  console.error(`device-results: ${readme} has no ${start} ... ${end} block; wrote ${jsonOut} only`);
  process.exit(1);
}
writeFileSync(readme, text.slice(0, i + start.length) + '\n' + lines.join('\n') + '\n' + text.slice(j));
console.log(`wrote ${jsonOut} and the table in ${readme}`);
