/**
 * Micro-benchmark of the CPU backend's state-space ops (not a test): ms per call of ssmScan and
 * ssmConv for one token (decode) and a prefill batch, at the SSM sizes of real hybrids:
 *
 *   npx tsx src/bench/cpu/ssm.ts [--threads 1,2] [--prefill 256] [--shape micro|tiny|all]
 *
 * Shapes (from the GGUF metadata of the published files): Granite-4.0-H-Micro's SSM layers
 * (d_inner 4096, 128 heads of 32, d_state 256, 1 group, conv 4) and the Granite-4.0-H-Tiny/-350M
 * ones (d_inner 1536, 48 heads of 32, d_state 128). A decode step of such a model runs the scan
 * once per SSM layer (36 of 40 layers in H-Micro), so ms per call x layers is the scan's share of
 * a token. Fastest of repeats: on a shared machine the minimum is the best estimate.
 */
import { CpuBackend } from '../../engine/backend/cpu/backend.ts';
import type { ConvOp, SsmScanOp } from '../../engine/backend/ops.ts';

interface Shape {
  name: string;
  inner: number;
  heads: number;
  state: number;
  groups: number;
  kernel: number;
  layers: number;
}

const SHAPES: Shape[] = [
  { name: 'micro', inner: 4096, heads: 128, state: 256, groups: 1, kernel: 4, layers: 36 },
  { name: 'tiny', inner: 1536, heads: 48, state: 128, groups: 1, kernel: 4, layers: 28 },
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

/** Milliseconds per call: the fastest of repeats over about `budget` seconds. */
function time(fn: () => void, budget = 1): number {
  fn();
  let best = Infinity;
  let runs = 0;
  const start = performance.now();
  while (runs < 3 || (performance.now() - start < budget * 1000 && runs < 100)) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
    runs++;
  }
  return best;
}

const threadCounts = arg('threads', '1').split(',').map(Number);
const prefill = Number(arg('prefill', '256'));
const only = arg('shape', 'all');

console.log('shape, threads, scan ms (1 token), scan ms (T tokens), ms per prefill token, conv ms (1), conv ms (T), scan share of a decode token (ms, all layers)');
for (const threads of threadCounts) {
  const be = await CpuBackend.create({ threads, relaxed: false });
  for (const s of SHAPES.filter((x) => only === 'all' || x.name === only)) {
    const P = s.inner / s.heads;
    const convDim = s.inner + 2 * s.groups * s.state;
    const width = s.inner + convDim + s.heads;
    const T = prefill;
    const rand = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * Math.random());
    const proj = be.activation('proj', T * width);
    be.view(proj).set(rand(T * width, -1, 1));
    const xbc = be.activation('xbc', T * convDim);
    const y = be.activation('y', T * s.inner);
    const state = be.activation('state', (s.kernel - 1) * convDim + s.heads * P * s.state);
    const conv: ConvOp = {
      channels: convDim, kernel: s.kernel, weight: be.vector('w', rand(convDim * s.kernel, -0.5, 0.5)), bias: be.vector('b', rand(convDim, -0.1, 0.1)),
      silu: true, state: { t: state, offset: 0, floats: (s.kernel - 1) * convDim },
    };
    const scan: SsmScanOp = {
      heads: s.heads, headDim: P, stateSize: s.state, groups: s.groups, A: be.vector('A', rand(s.heads, -8, -1)), D: be.vector('D', rand(s.heads, 0, 1)),
      dtBias: be.vector('dtb', rand(s.heads, -4, -2)), state: { t: state, offset: (s.kernel - 1) * convDim, floats: s.heads * P * s.state },
    };
    const runConv = (n: number) => be.ssmConv!({ t: proj, stride: width, offset: s.inner }, { t: xbc, stride: convDim }, n, conv);
    runConv(T);
    const runScan = (n: number) =>
      be.ssmScan!({ t: xbc, stride: convDim }, { t: proj, stride: width, offset: s.inner + convDim }, { t: xbc, stride: convDim, offset: s.inner },
        { t: xbc, stride: convDim, offset: s.inner + s.groups * s.state }, { t: y, stride: s.inner }, n, scan);
    const scan1 = time(() => runScan(1));
    const scanT = time(() => runScan(T), 2);
    const conv1 = time(() => runConv(1));
    const convT = time(() => runConv(T));
    const f = (v: number) => v.toFixed(3);
    console.log(`${s.name} (inner ${s.inner}, ${s.heads} heads, state ${s.state}), ${be.threads}, ${f(scan1)}, ${f(scanT)} (T ${T}), ${f(scanT / T)}, ${f(conv1)}, ${f(convT)}, ${f((scan1 + conv1) * s.layers)} (${s.layers} layers)`);
  }
  be.destroy();
}
