/**
 * Micro-benchmark of the CPU backend's state-space ops (not a test): ms per call of ssmScan and
 * ssmConv for one token (decode) and a prefill batch, at the SSM sizes of real hybrids:
 *
 *   npx tsx src/bench/cpu/ssm.ts [--threads 1,2] [--prefill 256] [--shape big|small|all]
 *
 * Shapes, from the ssm.* metadata of published Granite 4.0 GGUFs: `big` as the 2048-wide ones
 * carry (d_inner 4096, 128 heads of 32, d_state 256, 1 group, conv 4; Granite 4.0 1B's file, the
 * size class of H-Micro; 36 SSM layers assumed, as 40 layers at IBM's 9:1 ratio), `small` as
 * granite4:350m-h (granitehybrid: d_inner 1536, 48 heads of 32, d_state 128; 28 SSM layers assumed).
 * A decode step runs the scan once per SSM layer: "hot" repeats one layer's call (its 2-4 MiB
 * state stays in cache), "all layers" runs one call per layer on separate states, as a real
 * decode step does (the states do not stay in cache): ms per token for the whole model's scans
 * and convolutions. Fastest of repeats: on a shared machine the minimum is the best estimate.
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
  { name: 'big', inner: 4096, heads: 128, state: 256, groups: 1, kernel: 4, layers: 36 },
  { name: 'small', inner: 1536, heads: 48, state: 128, groups: 1, kernel: 4, layers: 28 },
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

/**
 * Milliseconds per call: the fastest of repeats over about `budget` seconds, by the wall clock and
 * by this process's CPU time. On a loaded machine a call longer than a scheduler slice (a few ms) is
 * always preempted, so its wall time says little; its CPU time (on one thread) still does.
 */
function time(fn: () => void, budget = 1): { wall: number; cpu: number } {
  fn();
  let wall = Infinity;
  let cpu = Infinity;
  let runs = 0;
  const start = performance.now();
  while (runs < 3 || (performance.now() - start < budget * 1000 && runs < 100)) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wall = Math.min(wall, performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
    runs++;
  }
  return { wall, cpu };
}

const threadCounts = arg('threads', '1').split(',').map(Number);
const prefill = Number(arg('prefill', '256'));
const only = arg('shape', 'all');

console.log('ms per call, the fastest by the wall clock / by CPU time (all threads together)');
console.log('shape, threads, scan (1 token, hot), scan (T tokens), scan per prefill token, conv (1), conv (T), conv + scan of every layer per decode token');
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
    const stateFloats = (s.kernel - 1) * convDim + s.heads * P * s.state;
    // One state per SSM layer, one after another as a model holds them.
    const state = be.activation('state', s.layers * stateFloats);
    const conv: ConvOp = {
      channels: convDim, kernel: s.kernel, weight: be.vector('w', rand(convDim * s.kernel, -0.5, 0.5)), bias: be.vector('b', rand(convDim, -0.1, 0.1)),
      silu: true, state: { t: state, offset: 0, floats: (s.kernel - 1) * convDim },
    };
    const scan: SsmScanOp = {
      heads: s.heads, headDim: P, stateSize: s.state, groups: s.groups, A: be.vector('A', rand(s.heads, -8, -1)), D: be.vector('D', rand(s.heads, 0, 1)),
      dtBias: be.vector('dtb', rand(s.heads, -4, -2)), state: { t: state, offset: (s.kernel - 1) * convDim, floats: s.heads * P * s.state },
    };
    const inLayer = (r: { t: typeof state; offset: number; floats: number }, layer: number) => ({ ...r, offset: r.offset + layer * stateFloats });
    const runConv = (n: number, layer = 0) => be.ssmConv!({ t: proj, stride: width, offset: s.inner }, { t: xbc, stride: convDim }, n, { ...conv, state: inLayer(conv.state, layer) });
    runConv(T);
    const runScan = (n: number, layer = 0) =>
      be.ssmScan!({ t: xbc, stride: convDim }, { t: proj, stride: width, offset: s.inner + convDim }, { t: xbc, stride: convDim, offset: s.inner },
        { t: xbc, stride: convDim, offset: s.inner + s.groups * s.state }, { t: y, stride: s.inner }, n, { ...scan, state: inLayer(scan.state, layer) });
    const scan1 = time(() => runScan(1));
    const scanT = time(() => runScan(T), 2);
    const conv1 = time(() => runConv(1));
    const convT = time(() => runConv(T));
    const token = time(() => {
      for (let layer = 0; layer < s.layers; layer++) {
        runConv(1, layer);
        runScan(1, layer);
      }
    }, 2);
    const f = (v: { wall: number; cpu: number }, n = 1) => `${(v.wall / n).toFixed(3)} / ${(v.cpu / n).toFixed(3)}`;
    console.log(`${s.name} (inner ${s.inner}, ${s.heads} heads, state ${s.state}), ${be.threads}, ${f(scan1)}, ${f(scanT)} (T ${T}), ${f(scanT, T)}, ${f(conv1)}, ${f(convT)}, ${f(token)} (${s.layers} layers, ${((s.layers * stateFloats * 4) / 2 ** 20).toFixed(0)} MiB of state)`);
  }
  be.destroy();
}
