/**
 * The op interface (../ops.ts) on WebGPU: each op records one or two dispatches of the kernels in
 * ./kernels into a {@link StepRecorder}, so a whole token step (every layer, the logits and the
 * sampled token) is one command buffer and one submit. Pipelines are compiled once per variant
 * (KernelCache) and bind groups are cached by the buffers they bind; a decode step that binds what
 * the previous one bound creates no GPU objects.
 */
import type { GgmlType } from '../../gguf/ggml-types.ts';
import type {
  Activation,
  AttentionOp,
  Backend,
  BackendLimits,
  ByteReader,
  IdBuffer,
  KvStorage,
  RopeOp,
  Rows,
  Vector,
  Weight,
} from '../ops.ts';
import { KernelCache } from './kernel.ts';
import { decodeScratchFloats, encodeAttention, encodeKvWrite, kvCacheBytes, type KvCacheLayout } from './kernels/attention.ts';
import { foldedGrid, type RowView, shaderKernel } from './kernels/common.ts';
import { encodeElementwise } from './kernels/elementwise.ts';
import { encodeEmbed } from './kernels/embed.ts';
import { encodeGlu } from './kernels/glu.ts';
import { encodeMatmul, matmulSupports } from './kernels/matmul.ts';
import { encodeNorm } from './kernels/norm.ts';
import { encodeRope } from './kernels/rope.ts';
import { encodePenalties } from './kernels/penalty.ts';
import { encodeSample, sampleScratchElements } from './kernels/sample.ts';
import type { SamplingParams, TokenPenalties } from '../../sampling/params.ts';
import { readBuffer } from './readback.ts';
import type { KernelPaths, MatvecStrategy } from './probe.ts';
import { StepRecorder } from './recorder.ts';
import { destroyWeight, uploadWeight, type GpuWeight } from './weights.ts';

class GpuWeightHandle implements Weight {
  readonly name: string;
  readonly type: GgmlType;
  readonly k: number;
  readonly rows: number;
  readonly bytes: number;
  constructor(readonly gpu: GpuWeight) {
    this.name = gpu.name;
    this.type = gpu.type;
    this.k = gpu.k;
    this.rows = gpu.rows;
    this.bytes = gpu.rowBytes * gpu.rows;
  }
}

class GpuBufferHandle implements Vector, Activation, IdBuffer {
  constructor(
    readonly name: string,
    /** Elements (4 bytes each). */
    readonly length: number,
    readonly buffer: GPUBuffer,
  ) {}
  get floats(): number {
    return this.length;
  }
}

class GpuKv implements KvStorage {
  constructor(
    readonly layers: number,
    readonly capacity: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly k: GPUBuffer[],
    readonly v: GPUBuffer[],
    readonly bytes: number,
  ) {}
  get layout(): KvCacheLayout {
    return { capacity: this.capacity, kvHeads: this.kvHeads, headDim: this.headDim, dtype: 'f32' };
  }
}

export interface WebGpuBackendOptions {
  /** The device's kernel paths (`GpuContext.kernelPaths`); default: the f32 paths that work everywhere. */
  kernelPaths?: KernelPaths;
  /** Bytes the model may take on the device; default: no budget beyond the device's own limits. */
  memoryBudgetBytes?: number;
  /** Compiled kernels to share with other backends on the same device (compiling is slow on some drivers). */
  kernels?: KernelCache;
}

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  readonly limits: BackendLimits;
  private readonly kernels: KernelCache;
  private readonly recorder: StepRecorder;
  private readonly maxGroups: number;
  private readonly dummy: GPUBuffer;
  private readonly owned: GPUBuffer[] = [];
  private readonly weights: GpuWeight[] = [];
  private readonly matvec: MatvecStrategy;
  private attnScratch: { partialO: GPUBuffer; partialStats: GPUBuffer; floats: { partialO: number; partialStats: number } } | undefined;
  private sampleScratch: { values: GPUBuffer; ids: GPUBuffer; elements: number } | undefined;
  private randomBuffer: GPUBuffer | undefined;
  private randomRows = 0;
  /** (token id, count) u32 pairs for the penalty kernel; grows to the most pairs asked for. */
  private penaltyPairs: { buffer: GPUBuffer; capacity: number } | undefined;

  constructor(
    readonly device: GPUDevice,
    options: WebGpuBackendOptions = {},
  ) {
    this.kernels = options.kernels ?? new KernelCache(device);
    this.recorder = new StepRecorder(device);
    this.maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    this.matvec = options.kernelPaths?.matvec ?? 'workgroup';
    this.limits = {
      maxBufferBytes: Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize),
      memoryBudgetBytes: options.memoryBudgetBytes ?? Number.POSITIVE_INFINITY,
    };
    this.dummy = this.buffer('dummy', 16);
  }

  supportsWeight(type: GgmlType): boolean {
    return matmulSupports(type);
  }

  private buffer(label: string, bytes: number): GPUBuffer {
    const buffer = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.owned.push(buffer);
    return buffer;
  }

  async weight(info: { name: string; type: GgmlType; shape: readonly number[] }, read: ByteReader): Promise<Weight> {
    const gpu = await uploadWeight(this.device, info, read);
    this.weights.push(gpu);
    return new GpuWeightHandle(gpu);
  }

  vector(name: string, values: Float32Array): Vector {
    const buffer = this.buffer(name, values.byteLength);
    this.device.queue.writeBuffer(buffer, 0, values as Float32Array<ArrayBuffer>);
    return new GpuBufferHandle(name, values.length, buffer);
  }

  activation(name: string, floats: number): Activation {
    return new GpuBufferHandle(name, floats, this.buffer(name, floats * 4));
  }

  ids(name: string, length: number): IdBuffer {
    return new GpuBufferHandle(name, length, this.buffer(name, length * 4));
  }

  kvStorage(layout: { layers: number; capacity: number; kvHeads: number; headDim: number }): KvStorage {
    const bytes = kvCacheBytes({ ...layout, dtype: 'f32' });
    const k: GPUBuffer[] = [];
    const v: GPUBuffer[] = [];
    for (let il = 0; il < layout.layers; il++) {
      k.push(this.buffer(`k cache ${il}`, bytes));
      v.push(this.buffer(`v cache ${il}`, bytes));
    }
    return new GpuKv(layout.layers, layout.capacity, layout.kvHeads, layout.headDim, k, v, 2 * layout.layers * bytes);
  }

  /** Decode-attention scratch for `heads` query heads, grown once to the largest model seen. */
  private attentionScratch(heads: number, headDim: number, capacity: number) {
    const need = decodeScratchFloats(4, heads, headDim, capacity);
    const have = this.attnScratch?.floats;
    if (!have || have.partialO < need.partialO || have.partialStats < need.partialStats) {
      this.attnScratch = {
        partialO: this.buffer('attention partial o', need.partialO * 4),
        partialStats: this.buffer('attention partial stats', need.partialStats * 4),
        floats: need,
      };
    }
    return this.attnScratch;
  }

  begin(): void {
    // The recorder opens its encoder lazily; nothing to do until the first op.
  }

  writeIds(target: IdBuffer, values: Uint32Array): void {
    const t = target as GpuBufferHandle;
    if (values.length > t.length) throw new RangeError(`${t.name}: ${values.length} ids > ${t.length}`);
    if (values.length > 0) this.device.queue.writeBuffer(t.buffer, 0, values as Uint32Array<ArrayBuffer>);
  }

  embed(table: Weight, ids: IdBuffer, out: Rows, tokens: number, scale: number): void {
    encodeEmbed(this.recorder, this.kernels, this.maxGroups, {
      table: (table as GpuWeightHandle).gpu,
      ids: { buffer: buf(ids) },
      out: { buffer: buf(out.t) },
      tokens,
      outStride: out.stride,
      scale,
    });
    if (out.offset) throw new Error('embed writes rows from offset 0');
  }

  norm(kind: 'rms' | 'layer', x: Rows, out: Rows, n: number, rows: number, eps: number, weight?: Vector, bias?: Vector): void {
    encodeNorm(this.recorder, this.kernels, {
      kind,
      x: view(x),
      out: view(out),
      n,
      rows,
      eps,
      ...(weight ? { weight: buf(weight) } : {}),
      ...(bias ? { bias: buf(bias) } : {}),
      dummy: this.dummy,
    });
  }

  matmul(w: Weight, x: Rows, out: Rows, tokens: number, bias?: Vector): void {
    if (x.offset || out.offset) throw new Error(`matmul ${w.name}: x and out rows must start at offset 0`);
    encodeMatmul(this.recorder, this.kernels, this.maxGroups, {
      weight: (w as GpuWeightHandle).gpu,
      x: { buffer: buf(x.t) },
      out: { buffer: buf(out.t) },
      tokens,
      xStride: x.stride,
      outStride: out.stride,
      ...(bias ? { bias: buf(bias) } : {}),
      dummy: this.dummy,
      matvec: this.matvec,
    });
  }

  rope(x: Rows, tokens: number, heads: number, headDim: number, positions: IdBuffer, op: RopeOp): void {
    encodeRope(this.recorder, this.kernels, {
      mode: op.mode,
      nRot: op.nRot,
      freqBase: op.freqBase,
      scaling: {
        freqScale: op.freqScale,
        extFactor: op.extFactor,
        attnFactor: op.attnFactor,
        betaFast: op.betaFast,
        betaSlow: op.betaSlow,
        origCtx: op.origCtx,
      },
      x: buf(x.t),
      tokenStride: x.stride,
      offset: x.offset ?? 0,
      tokens,
      heads,
      headDim,
      positions: buf(positions),
      ...(op.factors ? { freqFactors: buf(op.factors) } : {}),
      dummy: this.dummy,
    });
  }

  kvWrite(cache: KvStorage, layer: number, k: Rows, v: Rows, positions: IdBuffer, tokens: number): void {
    const kv = cache as GpuKv;
    encodeKvWrite(this.recorder, this.kernels, {
      cache: kv.layout,
      kCache: kv.k[layer]!,
      vCache: kv.v[layer]!,
      k: view(k),
      v: view(v),
      positions: buf(positions),
      tokens,
    });
  }

  attention(cache: KvStorage, layer: number, q: Rows, out: Rows, positions: IdBuffer, tokens: number, heads: number, kvLength: number, op: AttentionOp): void {
    const kv = cache as GpuKv;
    const scratch = this.attentionScratch(heads, kv.headDim, kv.capacity);
    encodeAttention(this.recorder, this.kernels, {
      cache: kv.layout,
      kCache: kv.k[layer]!,
      vCache: kv.v[layer]!,
      q: view(q),
      out: view(out),
      positions: buf(positions),
      tokens,
      heads,
      kvLength,
      scale: op.scale,
      softcap: op.softcap,
      window: op.window,
      scratch,
    });
  }

  glu(activation: 'silu' | 'gelu', gate: Rows, up: Rows, out: Rows, n: number, rows: number): void {
    encodeGlu(this.recorder, this.kernels, { activation, gate: view(gate), up: view(up), out: view(out), n, rows });
  }

  add(a: Rows, b: Rows, out: Rows, n: number, rows: number, scale = 1): void {
    encodeElementwise(this.recorder, this.kernels, { op: 'add', a: view(a), b: view(b), out: view(out), n, rows, scale, dummy: this.dummy });
  }

  scale(a: Rows, out: Rows, n: number, rows: number, scale: number): void {
    encodeElementwise(this.recorder, this.kernels, { op: 'scale', a: view(a), out: view(out), n, rows, scale, dummy: this.dummy });
  }

  softcap(x: Rows, n: number, rows: number, cap: number): void {
    if (n < 1 || rows < 1) return;
    const WORKGROUP_SIZE = 256;
    const kernel = shaderKernel(this.kernels, 'softcap.wgsl', { constants: { WORKGROUP_SIZE } });
    const [gx, gy] = foldedGrid(Math.ceil((n * rows) / WORKGROUP_SIZE));
    this.recorder.dispatch(kernel, {
      params: { n, rows, stride: x.stride, offset: x.offset ?? 0, cap, groups_x: gx },
      bind: { x: buf(x.t) },
      workgroups: [gx, gy],
      label: 'softcap',
    });
  }

  sample(logits: Rows, vocab: number, rows: number, params: SamplingParams, u: readonly number[], out: IdBuffer, penalties?: TokenPenalties): void {
    if (penalties && penalties.counts.length > 0) this.penalize(logits, vocab, rows, penalties);
    const elements = sampleScratchElements(vocab, rows);
    if (!this.sampleScratch || this.sampleScratch.elements < elements) {
      this.sampleScratch = { values: this.buffer('sample values', elements * 4), ids: this.buffer('sample ids', elements * 4), elements };
    }
    if (!this.randomBuffer || this.randomRows < rows) {
      this.randomBuffer = this.buffer('sample uniforms', rows * 4);
      this.randomRows = rows;
    }
    if (u.length < rows) throw new RangeError(`sample: ${rows} rows need ${rows} uniforms, got ${u.length}`);
    this.device.queue.writeBuffer(this.randomBuffer, 0, Float32Array.from(u.slice(0, rows)));
    encodeSample(this.recorder, this.kernels, {
      logits: view(logits),
      vocab,
      rows,
      params,
      random: this.randomBuffer,
      tokens: buf(out),
      scratch: { values: this.sampleScratch.values, ids: this.sampleScratch.ids },
    });
  }

  /** Applies the penalties to each row on the device, so sampling with them still reads back only ids. */
  private penalize(logits: Rows, vocab: number, rows: number, penalties: TokenPenalties): void {
    const count = penalties.counts.length;
    if (!this.penaltyPairs || this.penaltyPairs.capacity < count) {
      const capacity = Math.max(64, 2 ** Math.ceil(Math.log2(count)));
      this.penaltyPairs = { buffer: this.buffer('penalty pairs', capacity * 8), capacity };
    }
    const pairs = new Uint32Array(2 * count);
    penalties.counts.forEach(([id, n], i) => {
      // Ids outside u32 (negative) become out-of-vocabulary ids, which the kernel skips.
      pairs[2 * i] = id >= 0 && id < vocab ? id : vocab;
      pairs[2 * i + 1] = n;
    });
    this.device.queue.writeBuffer(this.penaltyPairs.buffer, 0, pairs);
    for (let r = 0; r < rows; r++) {
      encodePenalties(this.recorder, this.kernels, {
        logits: buf(logits.t),
        logitsOffset: (logits.offset ?? 0) + r * logits.stride,
        vocab,
        seen: this.penaltyPairs.buffer,
        count,
        params: penalties.params,
      });
    }
  }

  submit(): void {
    this.recorder.submit();
  }

  async read(t: Activation, floats: number, offset = 0): Promise<Float32Array> {
    this.recorder.submit();
    return new Float32Array(await readBuffer(this.device, buf(t), floats * 4, offset * 4));
  }

  async readIds(t: IdBuffer, count: number): Promise<Uint32Array> {
    this.recorder.submit();
    return new Uint32Array(await readBuffer(this.device, buf(t), count * 4));
  }

  destroy(): void {
    for (const w of this.weights) destroyWeight(w);
    for (const b of this.owned) b.destroy();
    this.recorder.destroy();
  }
}

function buf(handle: Vector | Activation | IdBuffer): GPUBuffer {
  if (!(handle instanceof GpuBufferHandle)) throw new TypeError(`${handle.name} was not allocated by the WebGPU backend`);
  return handle.buffer;
}

function view(rows: Rows): RowView {
  return { buffer: buf(rows.t), stride: rows.stride, offset: rows.offset ?? 0 };
}
