/**
 * Mamba2's selective scan with the D skip (ssm_scan.wgsl; ggml_ssm_scan with a scalar A per head,
 * then y += D x): per token and head, delta = softplus(dt + dtBias), s = s exp(delta A) + delta x
 * (outer) B, y = s . C + D x. One dispatch for any number of tokens, sequential in time inside it and
 * parallel over the state's (head, headDim row, state lanes): the state stays in registers for
 * the whole step (read and written once). Float64 references: `ssmScanSequential` and
 * `ssmScanChunked` (src/testing/reference-mamba2.ts).
 */
import { kernelFamily, type KernelCache } from '../kernel.ts';
import type { BufferRange, StepRecorder } from '../recorder.ts';
import { assertPositiveInt, bufferOf, foldedGrid, type RowView, shaderKernel } from './common.ts';

const WORKGROUP_SIZE = 128;
/** State values one invocation keeps in registers at most (PER_LANE in the shader). */
const PER_LANE = 8;

export interface SsmScanArgs {
  heads: number;
  headDim: number;
  stateSize: number;
  groups: number;
  tokens: number;
  /** [heads][headDim] per row. */
  x: RowView;
  /** [heads] per row, before dtBias and softplus. */
  dt: RowView;
  /** [groups][stateSize] per row. */
  B: RowView;
  C: RowView;
  /** [heads][headDim] per row; a buffer none of the inputs or the state is in. */
  y: RowView;
  /** f32 [heads] each. */
  A: GPUBuffer;
  D: GPUBuffer;
  dtBias: GPUBuffer;
  /** [heads][headDim][stateSize] floats at `stateOffset`; read and written. */
  state: GPUBuffer;
  stateOffset: number;
}

const SSM_SCAN = kernelFamily();

/**
 * Whether x, B and C are bound once (slices of one buffer, as Mamba2's conv output); otherwise the
 * kernel binds 9 storage buffers, more than the 8 every WebGPU device has.
 */
export function scanInputsShared(args: Pick<SsmScanArgs, 'x' | 'B' | 'C'>): boolean {
  return args.x.buffer === args.B.buffer && args.x.buffer === args.C.buffer;
}

/** Invocations per state row: about 4 state values each, a power of two, at most the workgroup. */
export function scanLanes(stateSize: number): number {
  const lanes = Math.min(WORKGROUP_SIZE, 2 ** Math.ceil(Math.log2(Math.ceil(stateSize / 4))));
  if (stateSize > lanes * PER_LANE) throw new RangeError(`ssmScan: state size ${stateSize} > ${WORKGROUP_SIZE * PER_LANE}`);
  return lanes;
}

export function encodeSsmScan(recorder: StepRecorder, kernels: KernelCache, args: SsmScanArgs): void {
  for (const [v, what] of [
    [args.heads, 'heads'],
    [args.headDim, 'headDim'],
    [args.stateSize, 'stateSize'],
    [args.groups, 'groups'],
  ] as const) {
    assertPositiveInt(v, `ssmScan ${what}`);
  }
  if (args.heads % args.groups !== 0) throw new RangeError(`ssmScan: ${args.heads} heads do not split into ${args.groups} groups`);
  if (args.tokens < 1) return;
  const x = bufferOf(args.x.buffer);
  const b = bufferOf(args.B.buffer);
  const c = bufferOf(args.C.buffer);
  const written = [bufferOf(args.y.buffer), args.state];
  if (written[0] === written[1] || [x, b, c, bufferOf(args.dt.buffer)].some((r) => written.includes(r))) {
    throw new RangeError('ssmScan: y and the state must be two buffers apart from x, dt, B and C');
  }
  const shared = scanInputsShared(args);
  const lanes = scanLanes(args.stateSize);
  const key = Math.log2(lanes) * 2 + (shared ? 1 : 0);
  const kernel =
    kernels.variant(SSM_SCAN, key) ??
    kernels.remember(
      SSM_SCAN,
      key,
      shaderKernel(kernels, 'ssm_scan.wgsl', {
        name: `ssm_scan${shared ? '_shared' : ''}`,
        slots: { inputs: shared ? 'ssm_inputs_shared.wgsl' : 'ssm_inputs_separate.wgsl' },
        constants: { WORKGROUP_SIZE, LANES: lanes },
      }),
    );
  const rows = args.heads * args.headDim;
  const [gx, gy] = foldedGrid(Math.ceil(rows / (WORKGROUP_SIZE / lanes)));
  const inputs: Record<string, GPUBuffer | BufferRange> = shared ? { xbc: args.x.buffer } : { x: args.x.buffer, b: args.B.buffer, c: args.C.buffer };
  recorder.dispatch(kernel, {
    params: {
      heads: args.heads,
      head_dim: args.headDim,
      state_size: args.stateSize,
      heads_per_group: args.heads / args.groups,
      tokens: args.tokens,
      x_stride: args.x.stride ?? rows,
      x_offset: args.x.offset ?? 0,
      dt_stride: args.dt.stride ?? args.heads,
      dt_offset: args.dt.offset ?? 0,
      b_stride: args.B.stride ?? args.groups * args.stateSize,
      b_offset: args.B.offset ?? 0,
      c_stride: args.C.stride ?? args.groups * args.stateSize,
      c_offset: args.C.offset ?? 0,
      y_stride: args.y.stride ?? rows,
      y_offset: args.y.offset ?? 0,
      state_offset: args.stateOffset,
      groups_x: gx,
    },
    bind: { ...inputs, dt: args.dt.buffer, A: args.A, D: args.D, dt_bias: args.dtBias, state: args.state, y: args.y.buffer },
    workgroups: [gx, gy],
    label: 'ssm_scan',
  });
}

/** Tokens per chunk of the chunked scan (CHUNK in ssm_scan_chunked.wgsl). */
export const SCAN_CHUNK = 64;
const CHUNKED_WORKGROUP = 256;
const SSM_SCAN_CHUNKED = kernelFamily();

/** Floats of scratch the chunked scan needs for these sizes (`ssm_scan_chunked.wgsl`'s layout). */
export function chunkedScanScratchFloats(heads: number, headDim: number, stateSize: number, groups: number, tokens: number, chunk = SCAN_CHUNK): number {
  const chunks = Math.ceil(tokens / chunk);
  return 2 * tokens * heads + chunks * groups * chunk * chunk + chunks * heads * headDim * stateSize;
}

/** Whether the chunked form takes these inputs: x, B and C slices of one buffer with one row stride. */
export function chunkedScanFits(args: Pick<SsmScanArgs, 'x' | 'B' | 'C' | 'heads' | 'headDim' | 'groups' | 'stateSize'>): boolean {
  const rowStride = args.x.stride ?? args.heads * args.headDim;
  return (
    args.x.buffer === args.B.buffer &&
    args.x.buffer === args.C.buffer &&
    !('buffer' in args.x.buffer) &&
    (args.B.stride ?? args.groups * args.stateSize) === rowStride &&
    (args.C.stride ?? args.groups * args.stateSize) === rowStride
  );
}

/**
 * The same scan as `encodeSsmScan` in the chunked (state-space dual) form of ssm_scan_chunked.wgsl:
 * five dispatches, parallel over tokens within and across chunks; only the carry of each chunk's
 * end state into the next walks the chunks in order (one invocation per state value). For
 * prefill. Needs `chunkedScanFits` and a scratch of `chunkedScanScratchFloats` floats.
 */
export function encodeSsmScanChunked(recorder: StepRecorder, kernels: KernelCache, args: SsmScanArgs & { scratch: GPUBuffer; chunk?: number }): void {
  if (args.heads % args.groups !== 0) throw new RangeError(`ssmScan: ${args.heads} heads do not split into ${args.groups} groups`);
  if (args.tokens < 1) return;
  if (!chunkedScanFits(args)) throw new RangeError('ssmScan chunked: x, B and C must be slices of one buffer with one row stride');
  const written = [bufferOf(args.y.buffer), args.state, args.scratch];
  if (new Set(written).size !== 3 || [bufferOf(args.x.buffer), bufferOf(args.dt.buffer)].some((r) => written.includes(r))) {
    throw new RangeError('ssmScan chunked: y, the state and the scratch must be three buffers apart from x, dt, B and C');
  }
  const chunk = args.chunk ?? SCAN_CHUNK;
  const need = chunkedScanScratchFloats(args.heads, args.headDim, args.stateSize, args.groups, args.tokens, chunk);
  if (args.scratch.size < need * 4) throw new RangeError(`ssmScan chunked: scratch of ${args.scratch.size} bytes < ${need * 4}`);
  const chunks = Math.ceil(args.tokens / chunk);
  const rows = args.heads * args.headDim;
  const perChunk = rows * args.stateSize;
  const cbOffset = 2 * args.tokens * args.heads;
  const entry = (name: string, index: number) => {
    const key = index + 8 * chunk;
    return (
      kernels.variant(SSM_SCAN_CHUNKED, key) ??
      kernels.remember(SSM_SCAN_CHUNKED, key, shaderKernel(kernels, 'ssm_scan_chunked.wgsl', { entryPoint: name, constants: { WORKGROUP_SIZE: CHUNKED_WORKGROUP, CHUNK: chunk } }))
    );
  };
  const bind = { xbc: args.x.buffer, dt: args.dt.buffer, A: args.A, D: args.D, dt_bias: args.dtBias, state: args.state, y: args.y.buffer, scratch: args.scratch };
  const passes: Array<[string, number]> = [
    ['chunk_decay', chunks * args.heads],
    ['chunk_cb', chunks * args.groups * chunk * chunk],
    ['chunk_states', chunks * perChunk],
    ['chunk_carry', perChunk],
    ['chunk_outputs', args.tokens * rows],
  ];
  passes.forEach(([name, invocations], index) => {
    const [gx, gy] = foldedGrid(Math.ceil(invocations / CHUNKED_WORKGROUP));
    recorder.dispatch(entry(name, index), {
      params: {
        heads: args.heads,
        head_dim: args.headDim,
        state_size: args.stateSize,
        heads_per_group: args.heads / args.groups,
        groups: args.groups,
        tokens: args.tokens,
        chunks,
        x_stride: args.x.stride ?? rows,
        x_offset: args.x.offset ?? 0,
        dt_stride: args.dt.stride ?? args.heads,
        dt_offset: args.dt.offset ?? 0,
        b_offset: args.B.offset ?? 0,
        c_offset: args.C.offset ?? 0,
        y_stride: args.y.stride ?? rows,
        y_offset: args.y.offset ?? 0,
        state_offset: args.stateOffset,
        cb_offset: cbOffset,
        states_offset: cbOffset + chunks * args.groups * chunk * chunk,
        groups_x: gx,
      },
      bind,
      workgroups: [gx, gy],
      label: name,
    });
  });
}
