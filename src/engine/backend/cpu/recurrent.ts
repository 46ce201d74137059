/**
 * The state-space ops of the CPU backend (`ssmConv`, `ssmScan`, `copy`, `zero` of ../ops.ts) on
 * the host, straight on the backend's memory as one Float32Array (float indices), the way moe.ts
 * reaches it through a small host interface. Sums and products in float64, stored as f32.
 */
import type { ConvOp, Region, Rows, SsmScanOp } from '../ops.ts';

/** What these ops need of the CPU backend: its memory in floats and where handles start. */
export interface RecurrentHost {
  /** The whole memory as floats (valid until the next allocation). */
  floats(): Float32Array;
  /** Float index of float 0 of an activation or vector handle. */
  base(t: object): number;
}

/** Float index of row 0 of a view. */
const rowsAt = (host: RecurrentHost, r: Rows): number => host.base(r.t) + (r.offset ?? 0);

function checkRegion(name: string, r: Region, floats: number): void {
  if (r.floats < floats || r.offset < 0 || r.offset + r.floats > r.t.floats) {
    throw new RangeError(`${name}: region of ${r.floats} floats at ${r.offset} of ${r.t.name} (${r.t.floats} floats) must hold ${floats}`);
  }
}

/** ggml's softplus: the identity above 20. */
const softplus = (v: number): number => (v > 20 ? v : Math.log1p(Math.exp(v)));

/** The causal depthwise convolution of ../ops.ts's ConvOp, `tokens` rows of x into out. */
export function ssmConvOnHost(host: RecurrentHost, x: Rows, out: Rows, tokens: number, op: ConvOp): void {
  const { channels: N, kernel: K } = op;
  if (x.t === out.t) throw new RangeError('ssmConv: out must be another activation than x');
  if (op.weight.length !== N * K) throw new RangeError(`ssmConv: weight of ${op.weight.length} floats is not ${N} x ${K}`);
  if (op.bias && op.bias.length !== N) throw new RangeError(`ssmConv: bias of ${op.bias.length} floats is not ${N}`);
  checkRegion('ssmConv state', op.state, (K - 1) * N);
  const m = host.floats();
  const w = host.base(op.weight);
  const b = op.bias ? host.base(op.bias) : -1;
  const st = host.base(op.state.t) + op.state.offset;
  const x0 = rowsAt(host, x);
  const o0 = rowsAt(host, out);
  // Column c of the extended sequence [state columns; x rows]: c < K - 1 is in the state.
  const col = (c: number): number => (c < K - 1 ? st + c * N : x0 + (c - (K - 1)) * x.stride);
  for (let t = 0; t < tokens; t++) {
    const o = o0 + t * out.stride;
    for (let ch = 0; ch < N; ch++) {
      let sum = b >= 0 ? m[b + ch]! : 0;
      for (let j = 0; j < K; j++) sum += m[w + ch * K + j]! * m[col(t + j) + ch]!;
      m[o + ch] = op.silu ? sum / (1 + Math.exp(-sum)) : sum;
    }
  }
  // The last K - 1 columns seen, oldest first (in order: a new column may come from the old state).
  for (let j = 0; j < K - 1; j++) {
    const from = col(tokens + j);
    m.copyWithin(st + j * N, from, from + N);
  }
}

/** Mamba2's selective scan with the D skip (../ops.ts's SsmScanOp), head by head, token by token. */
export function ssmScanOnHost(host: RecurrentHost, x: Rows, dt: Rows, B: Rows, C: Rows, y: Rows, tokens: number, op: SsmScanOp): void {
  const { heads: H, headDim: P, stateSize: S, groups: G } = op;
  if (G < 1 || H % G !== 0) throw new RangeError(`ssmScan: heads ${H} is not a multiple of groups ${G}`);
  if ([x, dt, B, C].some((r) => r.t === y.t)) throw new RangeError('ssmScan: y must be another activation than its inputs');
  for (const [name, v] of [['A', op.A], ['D', op.D], ['dtBias', op.dtBias]] as const) {
    if (v.length !== H) throw new RangeError(`ssmScan: ${name} of ${v.length} floats is not ${H}`);
  }
  checkRegion('ssmScan state', op.state, H * P * S);
  const m = host.floats();
  const [x0, dt0, b0, c0, y0] = [x, dt, B, C, y].map((r) => rowsAt(host, r)) as [number, number, number, number, number];
  const [A, D, dtBias] = [op.A, op.D, op.dtBias].map((v) => host.base(v)) as [number, number, number];
  const st = host.base(op.state.t) + op.state.offset;
  const perGroup = H / G;
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / perGroup);
    const a = m[A + h]!;
    const d = m[D + h]!;
    const bias = m[dtBias + h]!;
    for (let t = 0; t < tokens; t++) {
      const delta = softplus(m[dt0 + t * dt.stride + h]! + bias);
      const decay = Math.exp(delta * a);
      const bt = b0 + t * B.stride + g * S;
      const ct = c0 + t * C.stride + g * S;
      for (let p = 0; p < P; p++) {
        const xv = m[x0 + t * x.stride + h * P + p]!;
        const xDelta = xv * delta;
        const s = st + (h * P + p) * S;
        let sum = 0;
        for (let k = 0; k < S; k++) {
          const v = Math.fround(m[s + k]! * decay + m[bt + k]! * xDelta);
          m[s + k] = v;
          sum += v * m[ct + k]!;
        }
        m[y0 + t * y.stride + h * P + p] = sum + d * xv;
      }
    }
  }
}

/** to = from, `from.floats` values (a state snapshot); the regions must not overlap. */
export function copyOnHost(host: RecurrentHost, from: Region, to: Region): void {
  checkRegion('copy source', from, from.floats);
  checkRegion('copy target', to, from.floats);
  const f = host.base(from.t) + from.offset;
  const t = host.base(to.t) + to.offset;
  if (f < t + from.floats && t < f + from.floats && f !== t) throw new RangeError('copy: the regions overlap');
  host.floats().copyWithin(t, f, f + from.floats);
}

/** The region's values set to 0. */
export function zeroOnHost(host: RecurrentHost, region: Region): void {
  checkRegion('zero', region, region.floats);
  const at = host.base(region.t) + region.offset;
  host.floats().fill(0, at, at + region.floats);
}
