/**
 * The op interface (../ops.ts) on WebGPU: each op records one or two dispatches of the kernels in
 * ./kernels into a {@link StepRecorder}, so a whole token step (every layer, the logits and the
 * sampled token) is one command buffer and one submit. Pipelines are compiled once per variant
 * (KernelCache) and bind groups are cached by the buffers they bind; a decode step that binds what
 * the previous one bound creates no GPU objects. A step can be captured and replayed
 * (`capture`/`replay`, see recorder.ts); plans are invalidated when a scratch buffer they may bind
 * is reallocated, and destroyed with the backend. Sampled ids come back through a ring of mappable
 * buffers made once (`readIdsAsync`), so a decode loop creates no GPU object per token.
 */
import { GgmlType } from '../../gguf/ggml-types.ts';
import type {
  Activation,
  AttentionOp,
  Backend,
  DevicePenalties,
  BackendLimits,
  ByteReader,
  ConvOp,
  IdBuffer,
  KvStorage,
  MoeFfnOp,
  Region,
  RopeOp,
  Rows,
  SsmScanOp,
  Vector,
  Weight,
} from '../ops.ts';
import { gluMatmulInSteps, ropeKvWriteInSteps } from '../fused-steps.ts';
import { KernelCache, kernelFamily } from './kernel.ts';
import { createDecodeDispatchBuffer, decodeScratchFloats, encodeAttention, encodeKvWrite, kvCacheBytes, type KvCacheLayout } from './kernels/attention.ts';
import { foldedGrid, type RowView, shaderKernel } from './kernels/common.ts';
import { encodeElementwise } from './kernels/elementwise.ts';
import { encodeEmbed } from './kernels/embed.ts';
import { encodeGatedNorm } from './kernels/gated-norm.ts';
import { encodeGlu } from './kernels/glu.ts';
import { encodeGroupedMatmul, encodeIndexedMatvec, encodeMatmul, GROUPED_TILE_PAIRS, gluMatmulFits, groupedTiles, matmulSupports } from './kernels/matmul.ts';
import { encodeMoeCombine, encodeMoeRoute, encodeMoeSort } from './kernels/moe.ts';
import { encodeAddNorm, encodeNorm } from './kernels/norm.ts';
import { encodeRope, type RopeArgs } from './kernels/rope.ts';
import { encodeRopeKvWrite, ropeKvWriteFits } from './kernels/rope-kv-write.ts';
import { encodeHistoryPenalties, encodePenalties, encodeTokenMask } from './kernels/penalty.ts';
import { encodeRegionCopy, encodeRegionZero, type FloatRegion } from './kernels/region.ts';
import { encodeSample, sampleScratchElements } from './kernels/sample.ts';
import { encodeSsmConv } from './kernels/ssm-conv.ts';
import { chunkedScanFits, chunkedScanScratchFloats, encodeSsmScan, encodeSsmScanChunked, scanInputsShared } from './kernels/ssm-scan.ts';
import type { SamplingParams, TokenPenalties } from '../../sampling/params.ts';
import type { AllowedTokens } from '../../sampling/mask.ts';
import { readBuffer } from './readback.ts';
import type { KernelPaths, MatvecStrategy } from './probe.ts';
import { StepPlan, StepRecorder, type RecorderCounters } from './recorder.ts';
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
  /**
   * From this many tokens a Mamba2 scan runs in the chunked form (ssm_scan_chunked.wgsl, parallel
   * over tokens) instead of the sequential one. Default: never. On an H200 the sequential kernel
   * (one dispatch, parallel over heads and state rows) was faster at every prefill length measured
   * (512 tokens, 24 heads x 64 x 128: 0.43 ms vs 0.66 ms; 48 heads: 0.53 vs 1.21 ms); a GPU with
   * fewer lanes per head may differ (`hearth bench ssm` measures both).
   */
  chunkedScanFrom?: number;
}

const SOFTCAP = kernelFamily();
/** Slots of the id readback ring, and bytes per slot (64 ids). */
const READ_RING_SLOTS = 8;
const READ_SLOT_BYTES = 256;

interface ReadSlot {
  buffer: GPUBuffer;
  busy: boolean;
}

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  /** attention honours `causal: false` and a relative position bias (T5). */
  readonly relativeAttention = true;
  readonly limits: BackendLimits;
  private readonly kernels: KernelCache;
  private readonly chunkedScanFrom: number;
  private readonly recorder: StepRecorder;
  private readonly maxGroups: number;
  private readonly dummy: GPUBuffer;
  private readonly owned: GPUBuffer[] = [];
  private readonly weights: GpuWeight[] = [];
  private readonly matvec: MatvecStrategy;
  private attnScratch:
    | { partialO: GPUBuffer; partialStats: GPUBuffer; dispatch: GPUBuffer; crossDispatch: GPUBuffer; floats: { partialO: number; partialStats: number } }
    | undefined;
  /**
   * What the decode dispatch arguments were computed for in the step being recorded (one count per
   * step, not per layer): [causal, not causal], each in its own dispatch buffer, so T5's decoder,
   * whose self- and cross-attention alternate, counts each once per step too.
   */
  private decodeDispatchFor: [DecodeDispatchKey | undefined, DecodeDispatchKey | undefined] = [undefined, undefined];
  private readonly plans = new Set<StepPlan>();
  private readonly readRing: ReadSlot[] = [];
  private readNext = 0;
  private readonly toMap: Array<{ slot: ReadSlot; count: number; resolve: (ids: Uint32Array) => void; reject: (error: unknown) => void }> = [];
  private sampleScratch: { values: GPUBuffer; ids: GPUBuffer; elements: number } | undefined;
  private randomBuffer: GPUBuffer | undefined;
  private randomRows = 0;
  /** (token id, count) u32 pairs for the penalty kernel; grows to the most pairs asked for. */
  private penaltyPairs: { buffer: GPUBuffer; capacity: number } | undefined;
  private maskBuffer: { buffer: GPUBuffer; words: number } | undefined;
  /** The chosen experts (u32) and their weights (f32) of every token of a moeFfn, [tokens][used]. */
  private moeRouting: { ids: GPUBuffer; weights: GPUBuffer; entries: number } | undefined;
  /** Prefill's buckets of a chunk of (token, expert) pairs by expert (moe_sort.wgsl), sized for `pairs` pairs over `nExpert` experts. */
  private moeGrouping: { starts: GPUBuffer; order: GPUBuffer; tiles: GPUBuffer; pairs: number; nExpert: number } | undefined;
  /** The chunked scan's scratch (delta, decay, C.B, chunk states), grown to the largest prefill seen. */
  private scanScratch: { buffer: GPUBuffer; floats: number } | undefined;

  constructor(
    readonly device: GPUDevice,
    options: WebGpuBackendOptions = {},
  ) {
    this.kernels = options.kernels ?? new KernelCache(device);
    this.chunkedScanFrom = options.chunkedScanFrom ?? Number.POSITIVE_INFINITY;
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

  memoryLeft(): number {
    const held = this.weights.reduce((sum, w) => sum + w.parts.reduce((s, p) => s + p.buffer.size, 0), 0) + this.owned.reduce((sum, b) => sum + b.size, 0);
    return this.limits.memoryBudgetBytes - held;
  }

  free(items: ReadonlyArray<Weight | Activation>): number {
    let freed = 0;
    for (const item of items) {
      if (item instanceof GpuWeightHandle) {
        const at = this.weights.indexOf(item.gpu);
        if (at < 0) continue;
        this.weights.splice(at, 1);
        destroyWeight(item.gpu);
        freed += item.bytes;
      } else if (item instanceof GpuBufferHandle) {
        const at = this.owned.indexOf(item.buffer);
        if (at < 0) continue;
        this.owned.splice(at, 1);
        freed += item.buffer.size;
        item.buffer.destroy();
      }
    }
    return freed;
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
    let scratch = this.attnScratch;
    if (!scratch || scratch.floats.partialO < need.partialO || scratch.floats.partialStats < need.partialStats) {
      const dispatch = scratch?.dispatch ?? createDecodeDispatchBuffer(this.device);
      const crossDispatch = scratch?.crossDispatch ?? createDecodeDispatchBuffer(this.device);
      if (!scratch) this.owned.push(dispatch, crossDispatch);
      scratch = {
        partialO: this.buffer('attention partial o', need.partialO * 4),
        partialStats: this.buffer('attention partial stats', need.partialStats * 4),
        dispatch,
        crossDispatch,
        floats: need,
      };
      this.attnScratch = scratch;
      this.invalidatePlans();
    }
    return scratch;
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

  addNorm(x: Rows, cur: Rows, n: number, rows: number, eps: number, weight?: Vector, scale = 1): void {
    encodeAddNorm(this.recorder, this.kernels, { x: view(x), cur: view(cur), n, rows, eps, scale, ...(weight ? { weight: buf(weight) } : {}), dummy: this.dummy });
  }

  matmul(w: Weight, x: Rows, out: Rows, tokens: number, bias?: Vector): void {
    this.product(w, x, out, tokens, bias);
  }

  /** W x (+ bias) into out, or with `glu` the GLU of a [gate; up] product (gluMatmulFits). */
  private product(w: Weight, x: Rows, out: Rows, tokens: number, bias: Vector | undefined, glu?: 'silu' | 'gelu'): void {
    if (x.offset) throw new Error(`matmul ${w.name}: x rows must start at offset 0`);
    encodeMatmul(this.recorder, this.kernels, this.maxGroups, {
      weight: (w as GpuWeightHandle).gpu,
      x: { buffer: buf(x.t) },
      out: { buffer: buf(out.t) },
      tokens,
      outOffset: out.offset ?? 0,
      xStride: x.stride,
      outStride: out.stride,
      ...(bias ? { bias: buf(bias) } : {}),
      dummy: this.dummy,
      matvec: this.matvec,
      ...(glu ? { glu } : {}),
    });
  }

  rope(x: Rows, tokens: number, heads: number, headDim: number, positions: IdBuffer, op: RopeOp): void {
    encodeRope(this.recorder, this.kernels, {
      ...ropeParams(op),
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

  ropeKvWrite(cache: KvStorage, layer: number, q: Rows, k: Rows, v: Rows, heads: number, positions: IdBuffer, tokens: number, op: RopeOp): void {
    const kv = cache as GpuKv;
    if (!ropeKvWriteFits(view(q), view(k), view(v), kv.headDim)) {
      // q and k in one buffer but v apart (or an odd head size): the three ops.
      ropeKvWriteInSteps(this, cache, layer, q, k, v, heads, positions, tokens, op);
      return;
    }
    encodeRopeKvWrite(this.recorder, this.kernels, {
      ...ropeParams(op),
      cache: kv.layout,
      kCache: kv.k[layer]!,
      vCache: kv.v[layer]!,
      q: view(q),
      k: view(k),
      v: view(v),
      heads,
      tokens,
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
    if (kvLength > kv.capacity) throw new RangeError(`attention: kvLength ${kvLength} > capacity ${kv.capacity}`);
    // Causal, every query sees only keys up to its own position, so the whole cache is the same as
    // [0, kvLength): with the capacity, nothing the step records depends on the cache's length.
    // Not causal (T5's encoder and cross-attention), kvLength is what bounds the keys.
    const causal = op.causal !== false;
    const length = causal ? kv.capacity : kvLength;
    const positionsBuffer = buf(positions);
    const mode = causal ? 0 : 1;
    const last = this.decodeDispatchFor[mode];
    const dispatchReady = last !== undefined && last.positions === positionsBuffer && last.tokens === tokens && last.heads === heads && last.kvLength === length;
    if (!dispatchReady) this.decodeDispatchFor[mode] = { positions: positionsBuffer, tokens, heads, kvLength: length };
    encodeAttention(this.recorder, this.kernels, {
      cache: kv.layout,
      kCache: kv.k[layer]!,
      vCache: kv.v[layer]!,
      q: view(q),
      out: view(out),
      positions: positionsBuffer,
      tokens,
      heads,
      kvLength: length,
      scale: op.scale,
      softcap: op.softcap,
      window: op.window,
      causal,
      ...(op.bias ? { bias: { table: buf(op.bias.table), bucketIds: buf(op.bias.bucketIds), offset: op.bias.offset } } : {}),
      scratch: { partialO: scratch.partialO, partialStats: scratch.partialStats, dispatch: causal ? scratch.dispatch : scratch.crossDispatch },
      dispatchReady,
    });
  }

  gluMatmul(activation: 'silu' | 'gelu', w: Weight, x: Rows, gateUp: Rows, out: Rows, tokens: number, bias?: Vector): void {
    const gpu = (w as GpuWeightHandle).gpu;
    if (x.offset || !gluMatmulFits(gpu, tokens)) gluMatmulInSteps(this, activation, w, x, gateUp, out, tokens, bias);
    else this.product(w, x, out, tokens, bias, activation);
  }

  /**
   * The mixture-of-experts FFN, all on the device: router matmul, routing (moe_route.wgsl: ids and
   * weights in device buffers), the shared expert with the ordinary ops, then in chunks of
   * (token, expert) pairs that fit the scratch (a chunk may split a token's experts), the gate, up
   * and down products over only the chosen experts' rows, the GLU, and the weighted sum into out.
   * Decode runs one indexed matvec per pair; prefill buckets each chunk's pairs by expert on the
   * device (moe_sort.wgsl) and runs the expert-grouped product (matmul_grouped.wgsl), which reads an
   * expert's rows once per 8 of the chunk's pairs that chose it instead of once per pair.
   */
  moeFfn(x: Rows, out: Rows, tokens: number, op: MoeFfnOp): void {
    if (tokens < 1) return;
    if (x.t === out.t) throw new RangeError('moeFfn: out must be another activation than x');
    if (x.offset) throw new Error('moeFfn: x rows must start at offset 0');
    const s = op.scratch;
    const E = op.router.k;
    const F = op.nFf;
    const floatsOf = (a: Activation) => (a as GpuBufferHandle).length;
    const pairCapacity = Math.min(
      Math.floor(floatsOf(s.gate) / F),
      Math.floor(floatsOf(s.up) / F),
      Math.floor(floatsOf(s.h) / F),
      Math.floor(floatsOf(s.y) / E),
      65535,
    );
    if (pairCapacity < 1) throw new RangeError(`moeFfn: the scratch holds no expert row (${F} wide gate, ${E} wide output)`);
    const entries = tokens * op.used;
    if (!this.moeRouting || this.moeRouting.entries < entries) {
      this.moeRouting = { ids: this.buffer('moe expert ids', entries * 4), weights: this.buffer('moe expert weights', entries * 4), entries };
      this.invalidatePlans();
    }
    const routing = this.moeRouting;

    this.product(op.router, x, { t: s.logits, stride: op.nExpert }, tokens, undefined);
    encodeMoeRoute(this.recorder, this.kernels, {
      logits: buf(s.logits),
      logitsStride: op.nExpert,
      tokens,
      nExpert: op.nExpert,
      used: op.used,
      gating: op.gating,
      normalize: op.normalize,
      weightsScale: op.weightsScale,
      ids: routing.ids,
      weights: routing.weights,
    });

    // The shared expert writes out first; the routing has consumed the logits, whose first
    // `tokens` floats then take the shared gate's logit x · gateInp.
    let shared: 'none' | 'plain' | 'gated' = 'none';
    if (op.shared) {
      const sh = op.shared;
      const G = sh.nFf;
      this.product(sh.gate, x, { t: s.gate, stride: G }, tokens, undefined);
      this.product(sh.up, x, { t: s.up, stride: G }, tokens, undefined);
      this.glu(op.activation, { t: s.gate, stride: G }, { t: s.up, stride: G }, { t: s.h, stride: G }, G, tokens);
      this.product(sh.down, { t: s.h, stride: G }, out, tokens, undefined);
      shared = 'plain';
      if (sh.gateInp) {
        const gateRow = new GpuWeightHandle({ name: 'ffn_gate_inp_shexp', type: GgmlType.F32, k: E, rows: 1, rowBytes: 4 * E, parts: [{ buffer: buf(sh.gateInp), rowStart: 0, rows: 1 }] });
        this.product(gateRow, x, { t: s.logits, stride: 1 }, tokens, undefined);
        shared = 'gated';
      }
    }

    // Prefill groups each chunk's pairs by expert on the device, so an expert's rows are read once
    // per 8 of the chunk's pairs that chose it; decode (one token) reads each chosen expert once anyway.
    const grouping = tokens > 1 ? this.moeGroupingFor(Math.min(pairCapacity, entries), op.nExpert) : undefined;
    for (let pairBase = 0; pairBase < entries; pairBase += pairCapacity) {
      const pairs = Math.min(pairCapacity, entries - pairBase);
      const maxTiles = groupedTiles(pairs, op.nExpert);
      if (grouping) {
        encodeMoeSort(this.recorder, this.kernels, { ids: routing.ids, pairBase, pairs, nExpert: op.nExpert, starts: grouping.starts, order: grouping.order, tiles: grouping.tiles, tile: GROUPED_TILE_PAIRS, maxTiles });
      }
      // gate and up read each pair's token row of x; the GLU's rows are per pair of the chunk, so
      // down reads them with used = 1 and the chunk's first pair subtracted.
      const expertProduct = (w: Weight, rows: number, input: Rows, output: Activation, outStride: number, used: number, xRowBase: number) => {
        const common = { weight: (w as GpuWeightHandle).gpu, rows, used, pairBase, xRowBase, pairs, x: { buffer: buf(input.t) }, xStride: input.stride, out: { buffer: buf(output) }, outStride };
        if (grouping) encodeGroupedMatmul(this.recorder, this.kernels, this.maxGroups, { ...common, order: grouping.order, tiles: grouping.tiles, maxTiles });
        else encodeIndexedMatvec(this.recorder, this.kernels, this.maxGroups, { ...common, ids: routing.ids, matvec: this.matvec });
      };
      expertProduct(op.gate, F, x, s.gate, F, op.used, 0);
      expertProduct(op.up, F, x, s.up, F, op.used, 0);
      this.glu(op.activation, { t: s.gate, stride: F }, { t: s.up, stride: F }, { t: s.h, stride: F }, F, pairs);
      expertProduct(op.down, E, { t: s.h, stride: F }, s.y, E, 1, pairBase);
      encodeMoeCombine(this.recorder, this.kernels, this.maxGroups, {
        y: buf(s.y),
        weights: routing.weights,
        used: op.used,
        n: E,
        pairBase,
        pairs,
        out: view(out),
        shared,
        gate: buf(s.logits),
        gateStride: 1,
        dummy: this.dummy,
      });
    }
  }

  private moeGroupingFor(pairs: number, nExpert: number): { starts: GPUBuffer; order: GPUBuffer; tiles: GPUBuffer } {
    const g = this.moeGrouping;
    if (g && g.pairs >= pairs && g.nExpert >= nExpert) return g;
    const size = { pairs: Math.max(pairs, g?.pairs ?? 0), nExpert: Math.max(nExpert, g?.nExpert ?? 0) };
    this.moeGrouping = {
      starts: this.buffer('moe expert starts', size.nExpert * 4),
      order: this.buffer('moe pairs by expert', size.pairs * 4),
      tiles: this.buffer('moe expert tiles', groupedTiles(size.pairs, size.nExpert) * 16),
      ...size,
    };
    this.invalidatePlans();
    return this.moeGrouping;
  }

  glu(activation: 'silu' | 'gelu', gate: Rows, up: Rows, out: Rows, n: number, rows: number): void {
    encodeGlu(this.recorder, this.kernels, { activation, gate: view(gate), up: view(up), out: view(out), n, rows });
  }

  ssmConv(x: Rows, out: Rows, tokens: number, op: ConvOp): void {
    if (op.weight.length !== op.channels * op.kernel) throw new RangeError(`ssmConv: ${op.weight.name} has ${op.weight.length} values, not ${op.channels} x ${op.kernel}`);
    const state = region(op.state, 'ssmConv state');
    if (op.state.floats !== (op.kernel - 1) * op.channels) throw new RangeError(`ssmConv: a state of ${op.state.floats} floats for ${op.kernel - 1} columns of ${op.channels}`);
    encodeSsmConv(this.recorder, this.kernels, {
      x: view(x),
      out: view(out),
      tokens,
      channels: op.channels,
      kernel: op.kernel,
      weight: buf(op.weight),
      ...(op.bias ? { bias: buf(op.bias) } : {}),
      silu: op.silu,
      state: state.buffer,
      stateOffset: state.offset,
      dummy: this.dummy,
    });
  }

  ssmScan(x: Rows, dt: Rows, B: Rows, C: Rows, y: Rows, tokens: number, op: SsmScanOp): void {
    const state = region(op.state, 'ssmScan state');
    if (op.state.floats !== op.heads * op.headDim * op.stateSize) {
      throw new RangeError(`ssmScan: a state of ${op.state.floats} floats for ${op.heads} x ${op.headDim} x ${op.stateSize}`);
    }
    for (const v of [op.A, op.D, op.dtBias]) if (v.length !== op.heads) throw new RangeError(`ssmScan: ${v.name} has ${v.length} values for ${op.heads} heads`);
    const args = {
      heads: op.heads,
      headDim: op.headDim,
      stateSize: op.stateSize,
      groups: op.groups,
      tokens,
      x: view(x),
      dt: view(dt),
      B: view(B),
      C: view(C),
      y: view(y),
      A: buf(op.A),
      D: buf(op.D),
      dtBias: buf(op.dtBias),
      state: state.buffer,
      stateOffset: state.offset,
    };
    const storageLimit = this.device.limits.maxStorageBuffersPerShaderStage;
    if (!scanInputsShared(args) && storageLimit < 9) {
      throw new RangeError(`ssmScan: x, B and C in different activations need 9 storage buffers per shader, this device binds ${storageLimit}: pass them as slices of one activation`);
    }
    // The sequential form (one dispatch, the state in registers) unless asked for the chunked one
    // from some length on (see the option).
    if (tokens < this.chunkedScanFrom || !chunkedScanFits(args)) {
      encodeSsmScan(this.recorder, this.kernels, args);
      return;
    }
    const floats = chunkedScanScratchFloats(op.heads, op.headDim, op.stateSize, op.groups, tokens);
    if (!this.scanScratch || this.scanScratch.floats < floats) {
      this.scanScratch = { buffer: this.buffer('ssm scan scratch', floats * 4), floats };
      this.invalidatePlans();
    }
    encodeSsmScanChunked(this.recorder, this.kernels, { ...args, scratch: this.scanScratch.buffer });
  }

  gatedNorm(y: Rows, z: Rows, n: number, rows: number, groups: number, eps: number, weight: Vector): void {
    if (weight.length !== n) throw new RangeError(`gatedNorm: ${weight.name} has ${weight.length} values for rows of ${n}`);
    encodeGatedNorm(this.recorder, this.kernels, { y: view(y), z: view(z), n, rows, groups, eps, weight: buf(weight) });
  }

  relu(x: Rows, out: Rows, n: number, rows: number): void {
    encodeElementwise(this.recorder, this.kernels, { op: 'relu', a: view(x), out: view(out), n, rows, dummy: this.dummy });
  }

  mul(a: Rows, b: Rows, out: Rows, n: number, rows: number): void {
    encodeElementwise(this.recorder, this.kernels, { op: 'mul', a: view(a), b: view(b), out: view(out), n, rows, dummy: this.dummy });
  }

  copy(from: Region, to: Region): void {
    encodeRegionCopy(this.recorder, this.kernels, region(from, 'copy source'), region(to, 'copy target'));
  }

  zero(target: Region): void {
    encodeRegionZero(this.recorder, this.kernels, region(target, 'zero'));
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
    const kernel = this.kernels.variant(SOFTCAP, 0) ?? this.kernels.remember(SOFTCAP, 0, shaderKernel(this.kernels, 'softcap.wgsl', { constants: { WORKGROUP_SIZE } }));
    const [gx, gy] = foldedGrid(Math.ceil((n * rows) / WORKGROUP_SIZE));
    this.recorder.dispatch(kernel, {
      params: { n, rows, stride: x.stride, offset: x.offset ?? 0, cap, groups_x: gx },
      bind: { x: buf(x.t) },
      workgroups: [gx, gy],
      label: 'softcap',
    });
  }

  sample(
    logits: Rows,
    vocab: number,
    rows: number,
    params: SamplingParams,
    u: readonly number[],
    out: IdBuffer,
    penalties?: TokenPenalties | DevicePenalties,
    allowed?: AllowedTokens,
  ): void {
    if (penalties && 'history' in penalties) {
      if (rows !== 1) throw new RangeError('sample: penalties from a device history take one row');
      encodeHistoryPenalties(this.recorder, this.kernels, {
        logits: buf(logits.t),
        logitsOffset: logits.offset ?? 0,
        vocab,
        history: buf(penalties.history),
        tokens: buf(penalties.tokens),
        positions: buf(penalties.positions),
        last: penalties.last,
        params: penalties.params,
      });
    } else if (penalties && penalties.counts.length > 0) this.penalize(logits, vocab, rows, penalties);
    if (allowed) this.mask(logits, vocab, rows, allowed);
    const elements = sampleScratchElements(vocab, rows);
    if (!this.sampleScratch || this.sampleScratch.elements < elements) {
      this.sampleScratch = { values: this.buffer('sample values', elements * 4), ids: this.buffer('sample ids', elements * 4), elements };
      this.invalidatePlans();
    }
    if (!this.randomBuffer || this.randomRows < rows) {
      this.randomBuffer = this.buffer('sample uniforms', rows * 4);
      this.randomRows = rows;
      this.invalidatePlans();
    }
    this.writeRandom(u, rows);
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

  /**
   * A grammar's token mask on the device: the bitset (vocab / 8 bytes, 19 KB for 152k tokens) is
   * written to a buffer the step reads, so the logits are never read back. The write changes per
   * token, so a masked step is recorded afresh, never replayed from a plan.
   */
  private mask(logits: Rows, vocab: number, rows: number, allowed: AllowedTokens): void {
    if (rows !== 1) throw new RangeError('sample: a token mask takes one row');
    const words = Math.ceil(vocab / 32);
    if (allowed.length < words) throw new RangeError(`sample: a mask of ${allowed.length} words for ${vocab} tokens`);
    if (!this.maskBuffer || this.maskBuffer.words < words) {
      this.maskBuffer = { buffer: this.buffer('token mask', words * 4), words };
      this.invalidatePlans();
    }
    this.device.queue.writeBuffer(this.maskBuffer.buffer, 0, allowed, 0, words);
    encodeTokenMask(this.recorder, this.kernels, { logits: buf(logits.t), logitsOffset: logits.offset ?? 0, vocab, allowed: this.maskBuffer.buffer });
  }

  /** Applies the penalties to each row on the device, so sampling with them still reads back only ids. */
  private penalize(logits: Rows, vocab: number, rows: number, penalties: TokenPenalties): void {
    const count = penalties.counts.length;
    if (!this.penaltyPairs || this.penaltyPairs.capacity < count) {
      const capacity = Math.max(64, 2 ** Math.ceil(Math.log2(count)));
      this.penaltyPairs = { buffer: this.buffer('penalty pairs', capacity * 8), capacity };
      this.invalidatePlans();
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

  private readonly randomStaging = new Float32Array(1);

  /** The sampling uniforms of the step being recorded (queue-ordered before its submit). */
  private writeRandom(u: readonly number[], rows: number): void {
    if (u.length < rows) throw new RangeError(`sample: ${rows} rows need ${rows} uniforms, got ${u.length}`);
    const values = rows === 1 ? this.randomStaging : new Float32Array(rows);
    for (let i = 0; i < rows; i++) values[i] = u[i]!;
    this.device.queue.writeBuffer(this.randomBuffer!, 0, values);
  }

  capture(): StepPlan {
    const plan = this.recorder.capture();
    this.plans.add(plan);
    return plan;
  }

  replay(plan: StepPlan, u: readonly number[]): void {
    if (!(plan instanceof StepPlan) || !this.plans.has(plan)) throw new Error('replay of a plan this backend did not capture');
    if (u.length > 0) this.writeRandom(u, u.length);
    this.recorder.replay(plan);
  }

  /** Plans bind scratch buffers; when one is reallocated they must be captured again. */
  private invalidatePlans(): void {
    for (const plan of this.plans) plan.destroy();
    this.plans.clear();
  }

  /** Dispatches and submits recorded so far, for tests and the benchmark. */
  get counters(): Readonly<RecorderCounters> {
    return this.recorder.counters;
  }

  submit(): void {
    this.flush();
  }

  /** Submits the step, then starts mapping the readbacks it carries. */
  private flush(): void {
    this.recorder.submit();
    this.decodeDispatchFor = [undefined, undefined];
    for (const { slot, count, resolve, reject } of this.toMap) {
      slot.buffer.mapAsync(GPUMapMode.READ, 0, READ_SLOT_BYTES).then(
        () => {
          const ids = new Uint32Array(slot.buffer.getMappedRange(0, READ_SLOT_BYTES).slice(0, count * 4));
          slot.buffer.unmap();
          slot.busy = false;
          resolve(ids);
        },
        (error: unknown) => {
          slot.busy = false;
          reject(error);
        },
      );
    }
    this.toMap.length = 0;
  }

  async read(t: Activation, floats: number, offset = 0): Promise<Float32Array> {
    this.flush();
    return new Float32Array(await readBuffer(this.device, buf(t), floats * 4, offset * 4));
  }

  async readIds(t: IdBuffer, count: number): Promise<Uint32Array> {
    this.flush();
    return new Uint32Array(await readBuffer(this.device, buf(t), count * 4));
  }

  readIdsAsync(t: IdBuffer, count: number): Promise<Uint32Array> {
    if (!Number.isInteger(count) || count < 1 || count * 4 > READ_SLOT_BYTES) throw new RangeError(`readIdsAsync: 1..${READ_SLOT_BYTES / 4} ids, got ${count}`);
    if (this.readRing.length === 0) {
      for (let i = 0; i < READ_RING_SLOTS; i++) {
        const buffer = this.device.createBuffer({ label: `id readback ${i}`, size: READ_SLOT_BYTES, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        this.owned.push(buffer);
        this.readRing.push({ buffer, busy: false });
      }
    }
    const slot = this.readRing[this.readNext]!;
    if (slot.busy) throw new Error(`more than ${READ_RING_SLOTS} id reads pending`);
    this.readNext = (this.readNext + 1) % READ_RING_SLOTS;
    slot.busy = true;
    this.recorder.copyAtEnd(buf(t), 0, slot.buffer, 0, count * 4);
    return new Promise((resolve, reject) => this.toMap.push({ slot, count, resolve, reject }));
  }

  destroy(): void {
    this.invalidatePlans();
    for (const w of this.weights) destroyWeight(w);
    for (const b of this.owned) b.destroy();
    this.recorder.destroy();
  }
}

interface DecodeDispatchKey {
  positions: GPUBuffer;
  tokens: number;
  heads: number;
  kvLength: number;
}

function buf(handle: Vector | Activation | IdBuffer): GPUBuffer {
  if (!(handle instanceof GpuBufferHandle)) throw new TypeError(`${handle.name} was not allocated by the WebGPU backend`);
  return handle.buffer;
}

/** A region's buffer, checked to lie inside its activation. */
function region(r: Region, what: string): FloatRegion {
  if (!Number.isInteger(r.offset) || !Number.isInteger(r.floats) || r.offset < 0 || r.floats < 0 || r.offset + r.floats > r.t.floats) {
    throw new RangeError(`${what}: floats [${r.offset}, ${r.offset + r.floats}) outside ${r.t.name} (${r.t.floats} floats)`);
  }
  return { buffer: buf(r.t), offset: r.offset, floats: r.floats };
}

function view(rows: Rows): RowView {
  return { buffer: buf(rows.t), stride: rows.stride, offset: rows.offset ?? 0 };
}

/** The kernels' rope parameters from the op's. */
function ropeParams(op: RopeOp): Pick<RopeArgs, 'mode' | 'nRot' | 'freqBase' | 'scaling'> {
  return {
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
  };
}
