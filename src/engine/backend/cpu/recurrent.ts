/**
 * The state-space ops of the CPU backend (`ssmConv`, `ssmScan`, `copy`, `zero` of ../ops.ts): the
 * checks of their operands, then the SIMD kernels (assembly/kernels.ts `ssmConv`, `ssmScan`, split
 * by channels / heads across the pool) or, for copy and zero, plain moves of the backend's memory.
 */
import type { ConvOp, Region, Rows, SsmScanOp } from '../ops.ts';
import type { CpuKernels, F32Rows } from './kernels.ts';

/** What these ops need of the CPU backend: its kernels and where handles start. */
export interface RecurrentHost {
  kernels: CpuKernels;
  /** Byte pointer of float 0 of an activation or vector handle. */
  ptr(t: object): number;
}

const view = (host: RecurrentHost, r: Rows): F32Rows => ({ ptr: host.ptr(r.t), stride: r.stride, offset: r.offset ?? 0 });

function checkRegion(name: string, r: Region, floats: number): void {
  if (r.floats < floats || r.offset < 0 || r.offset + r.floats > r.t.floats) {
    throw new RangeError(`${name}: region of ${r.floats} floats at ${r.offset} of ${r.t.name} (${r.t.floats} floats) must hold ${floats}`);
  }
}

/** The causal depthwise convolution of ../ops.ts's ConvOp, `tokens` rows of x into out. */
export function ssmConvOnHost(host: RecurrentHost, x: Rows, out: Rows, tokens: number, op: ConvOp): void {
  const { channels, kernel } = op;
  if (x.t === out.t) throw new RangeError('ssmConv: out must be another activation than x');
  if (!(kernel >= 1)) throw new RangeError(`ssmConv: kernel ${kernel} must be at least 1`);
  if (op.weight.length !== channels * kernel) throw new RangeError(`ssmConv: weight of ${op.weight.length} floats is not ${channels} x ${kernel}`);
  if (op.bias && op.bias.length !== channels) throw new RangeError(`ssmConv: bias of ${op.bias.length} floats is not ${channels}`);
  checkRegion('ssmConv state', op.state, (kernel - 1) * channels);
  host.kernels.ssmConv({
    x: view(host, x), out: view(host, out), tokens, kernel, channels, weight: host.ptr(op.weight), bias: op.bias ? host.ptr(op.bias) : 0,
    silu: op.silu, state: host.ptr(op.state.t) + 4 * op.state.offset, chStart: 0, chEnd: channels,
  });
}

/** Mamba2's selective scan with the D skip (../ops.ts's SsmScanOp). */
export function ssmScanOnHost(host: RecurrentHost, x: Rows, dt: Rows, B: Rows, C: Rows, y: Rows, tokens: number, op: SsmScanOp): void {
  const { heads, headDim, stateSize, groups } = op;
  if (!(groups >= 1) || heads % groups !== 0) throw new RangeError(`ssmScan: heads ${heads} is not a multiple of groups ${groups}`);
  if ([x, dt, B, C].some((r) => r.t === y.t)) throw new RangeError('ssmScan: y must be another activation than its inputs');
  for (const [name, v] of [['A', op.A], ['D', op.D], ['dtBias', op.dtBias]] as const) {
    if (v.length !== heads) throw new RangeError(`ssmScan: ${name} of ${v.length} floats is not ${heads}`);
  }
  checkRegion('ssmScan state', op.state, heads * headDim * stateSize);
  host.kernels.ssmScan({
    x: view(host, x), dt: view(host, dt), B: view(host, B), C: view(host, C), y: view(host, y), tokens, headDim, stateSize,
    headsPerGroup: heads / groups, A: host.ptr(op.A), D: host.ptr(op.D), dtBias: host.ptr(op.dtBias),
    state: host.ptr(op.state.t) + 4 * op.state.offset, hStart: 0, hEnd: heads,
  });
}

/** to = from, `from.floats` values (a state snapshot); the regions must not overlap. */
export function copyOnHost(host: RecurrentHost, from: Region, to: Region): void {
  checkRegion('copy source', from, from.floats);
  checkRegion('copy target', to, from.floats);
  const f = host.ptr(from.t) + 4 * from.offset;
  const t = host.ptr(to.t) + 4 * to.offset;
  const bytes = 4 * from.floats;
  if (f !== t && f < t + bytes && t < f + bytes) throw new RangeError('copy: the regions overlap');
  host.kernels.u8(0, host.kernels.memory.buffer.byteLength).copyWithin(t, f, f + bytes);
}

/** The region's values set to 0. */
export function zeroOnHost(host: RecurrentHost, region: Region): void {
  checkRegion('zero', region, region.floats);
  host.kernels.f32(host.ptr(region.t) + 4 * region.offset, region.floats).fill(0);
}
