/**
 * The causal depthwise convolution with a rolling state of state-space blocks (ssm_conv.wgsl;
 * ggml_ssm_conv: Mamba2's conv1d, LFM2's short convolution): `tokens` rows of x, with the state's
 * kernel - 1 past columns before them, into out; the state then holds the last kernel - 1 columns.
 * Float64 reference: `causalConvStep` (src/testing/reference-recurrent.ts), one token at a time.
 *
 * Up to FUSED_MAX_TOKENS tokens (decode) one dispatch does it all, an invocation per channel;
 * prefill spends two: the outputs over (token, channel), then the state shift per channel, which
 * must not run before every output has read the old state.
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { StepRecorder } from '../recorder.ts';
import { assertPositiveInt, bufferOf, foldedGrid, type RowView, shaderKernel } from './common.ts';

const WORKGROUP_SIZE = 256;
/** Up to this many tokens one invocation per channel walks them all (few invocations, one dispatch). */
const FUSED_MAX_TOKENS = 4;

export interface SsmConvArgs {
  x: RowView;
  /** Another buffer than x and the state. */
  out: RowView;
  tokens: number;
  channels: number;
  kernel: number;
  /** f32 [channels][kernel]. */
  weight: GPUBuffer;
  /** f32 [channels], or absent. */
  bias?: GPUBuffer;
  silu: boolean;
  /** [kernel - 1][channels] floats at `stateOffset` of this buffer, oldest column first; read and written. */
  state: GPUBuffer;
  stateOffset: number;
  /** Any storage buffer, bound where the bias is absent. */
  dummy: GPUBuffer;
}

const SSM_CONV = kernelFamily();

export function encodeSsmConv(recorder: StepRecorder, kernels: KernelCache, args: SsmConvArgs): void {
  assertPositiveInt(args.channels, 'ssmConv channels');
  assertPositiveInt(args.kernel, 'ssmConv kernel');
  if (args.tokens < 1) return;
  const state = bufferOf(args.state);
  if (bufferOf(args.x.buffer) === state || bufferOf(args.out.buffer) === state || bufferOf(args.x.buffer) === bufferOf(args.out.buffer)) {
    throw new RangeError('ssmConv: x, out and the state must be three different buffers');
  }
  const fused = args.tokens <= FUSED_MAX_TOKENS;
  const variant = (entry: 'main' | 'shift_state', fusedState: boolean) => {
    const key = (args.silu ? 1 : 0) + (fusedState ? 2 : 0) + (entry === 'shift_state' ? 4 : 0);
    return (
      kernels.variant(SSM_CONV, key) ??
      kernels.remember(
        SSM_CONV,
        key,
        shaderKernel(kernels, 'ssm_conv.wgsl', { entryPoint: entry, constants: { WORKGROUP_SIZE, SILU: args.silu ? 1 : 0, FUSED_STATE: fusedState ? 1 : 0 } }),
      )
    );
  };
  const bind = { x: args.x.buffer, weight: args.weight, bias: args.bias ?? args.dummy, state: args.state, out: args.out.buffer };
  const params = (groupsX: number) => ({
    channels: args.channels,
    tokens: args.tokens,
    kernel: args.kernel,
    x_stride: args.x.stride ?? args.channels,
    x_offset: args.x.offset ?? 0,
    out_stride: args.out.stride ?? args.channels,
    out_offset: args.out.offset ?? 0,
    state_offset: args.stateOffset,
    has_bias: args.bias ? 1 : 0,
    groups_x: groupsX,
  });
  const perChannel = foldedGrid(Math.ceil(args.channels / WORKGROUP_SIZE));
  if (fused) {
    recorder.dispatch(variant('main', true), { params: params(perChannel[0]), bind, workgroups: perChannel, label: 'ssm_conv' });
    return;
  }
  const perOutput = foldedGrid(Math.ceil((args.channels * args.tokens) / WORKGROUP_SIZE));
  recorder.dispatch(variant('main', false), { params: params(perOutput[0]), bind, workgroups: perOutput, label: 'ssm_conv' });
  if (args.kernel > 1) recorder.dispatch(variant('shift_state', false), { params: params(perChannel[0]), bind, workgroups: perChannel, label: 'ssm_conv_state' });
}
