/**
 * {@link TrainOps} on WebGPU: every tensor of a training step is a device buffer, the ops record
 * dispatches into one StepRecorder (few submits: one when the host uploads or reads, and one per
 * few thousand dispatches), and the host reads back only what the step asks for (the per-token
 * losses, the gradients), in one `read`.
 *
 * Frozen base matrices are uploaded once as their GGUF bytes (QLoRA: the base stays in its quant
 * type on the device) and, for each product, dequantized by rows into an f32 scratch (the
 * weights_*.wgsl formats) that one f32 matrix kernel multiplies over strided views
 * (train_gemm.wgsl): x W^T forward, dy W backward, and the LoRA A and B products and gradients.
 * Training products have n tokens of rows, so a dequantized row is reused n times; the scratch is
 * bounded (large matrices go by chunks of rows), and the last one-chunk matrix is kept, which saves
 * a pass when a layer's forward is recomputed just before its backward (its last forward matrix is
 * its first backward one) and for the output matrix around the loss.
 *
 * Freed tensors go to a pool by byte size and are reused by later ops; uploads write with
 * queue.writeBuffer, which runs before commands not yet submitted, so an upload submits what is
 * recorded first (a pooled buffer may still be read by those commands).
 */
import { requireQuantFormat } from '../../gguf/quants/index.ts';
import type { AttentionShape, FrozenMatrix, LoraPair, RopeTable, TrainOps, Vec } from '../train-ops.ts';
import { KernelCache } from './kernel.ts';
import { foldedGrid, shaderKernel } from './kernels/common.ts';
import { encodeElementwise } from './kernels/elementwise.ts';
import { weightInclude } from './kernels/matmul.ts';
import { StepRecorder, type Binding } from './recorder.ts';
import type { UniformValues } from './uniforms.ts';
import { rowsPerPart, writePadded } from './weights.ts';
import { HearthError } from '../../errors.ts';

/** A frozen matrix in a GGML type no weights_*.wgsl reads. */
export class TrainWeightTypeError extends HearthError {
  override name = 'TrainWeightTypeError';
}

/** A training tensor on the device: `length` f32 values at the start of `buffer`. */
export class GpuTensor {
  freed = false;
  constructor(
    readonly buffer: GPUBuffer,
    readonly length: number,
  ) {}
}

interface FrozenOnDevice {
  parts: { buffer: GPUBuffer; rowStart: number; rows: number }[];
  include: string;
}

/** Dispatches per submit at most (each takes a 256-byte uniform slot). */
const DISPATCHES_PER_SUBMIT = 3000;
const UNIFORM_CAPACITY = 1 << 20;
/** Floats of dequantized weights one product step holds at most (64 MiB). */
const SCRATCH_FLOATS = 16 << 20;
/** Output rows and columns of one product workgroup (train_gemm.wgsl). */
const TILE = 64;
const MAX_GROUPS = 65535;

export interface TrainOpsCounters {
  dispatches: number;
  submits: number;
  /** Host reads (each waits for the device). */
  reads: number;
  /** Rows of frozen matrices dequantized. */
  dequantizedRows: number;
}

export class WebGpuTrainOps implements TrainOps<GpuTensor> {
  readonly recorder: StepRecorder;
  readonly kernels: KernelCache;
  readonly counters: TrainOpsCounters = { dispatches: 0, submits: 0, reads: 0, dequantizedRows: 0 };
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly frozen = new WeakMap<FrozenMatrix, FrozenOnDevice>();
  private readonly vectors = new WeakMap<Float32Array, GPUBuffer>();
  private readonly owned: GPUBuffer[] = [];
  private ropeCache: { table: RopeTable; tensor: GpuTensor } | undefined;
  private scratch: GPUBuffer | undefined;
  private scratchHolds: FrozenMatrix | undefined;
  private pending = 0;
  private readonly dummy: GPUBuffer;
  /** Bytes of tensors (live and pooled), of frozen weights and vectors, and the tensors' peak. */
  tensorBytes = 0;
  peakTensorBytes = 0;
  frozenBytes = 0;

  private readonly scratchFloats: number;

  /**
   * @param options.scratchFloats bounds the dequantized-weights scratch (default 16 Mi floats; tests make it small to cross chunks).
   * @param options.kernels the device's pipeline cache (the engine's), so each run does not compile them again; default a new one.
   */
  constructor(
    readonly device: GPUDevice,
    options: { scratchFloats?: number; kernels?: KernelCache } = {},
  ) {
    this.scratchFloats = options.scratchFloats ?? SCRATCH_FLOATS;
    this.recorder = new StepRecorder(device, UNIFORM_CAPACITY);
    this.kernels = options.kernels ?? new KernelCache(device);
    this.dummy = this.ownBuffer(16, 'train dummy');
  }

  // ---- tensors

  alloc(length: number): GpuTensor {
    const t = this.empty(length);
    this.recorder.commandEncoder().clearBuffer(t.buffer, 0, byteSize(length));
    return t;
  }

  upload(data: Float32Array | Float64Array): GpuTensor {
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    return this.uploadBytes(f32, f32.length);
  }

  async read(tensors: readonly GpuTensor[]): Promise<Vec[]> {
    const offsets: number[] = [];
    let size = 0;
    for (const t of tensors) {
      if (t.freed) throw new Error('read of a freed training tensor');
      offsets.push(size);
      size += byteSize(t.length);
    }
    const staging = this.device.createBuffer({ label: 'train readback', size: Math.max(4, size), usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const encoder = this.recorder.commandEncoder();
    tensors.forEach((t, i) => encoder.copyBufferToBuffer(t.buffer, 0, staging, offsets[i]!, byteSize(t.length)));
    this.flush();
    this.counters.reads++;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const all = new Float32Array(staging.getMappedRange().slice(0));
      return tensors.map((t, i) => all.slice(offsets[i]! / 4, offsets[i]! / 4 + t.length));
    } finally {
      staging.destroy();
    }
  }

  /** Device memory at its peak: the frozen base, the scratch, the tensors. */
  heldBytes(): number {
    return this.frozenBytes + this.scratchBytes + this.peakTensorBytes;
  }

  /** Bytes of the dequantized-weights scratch. */
  get scratchBytes(): number {
    return this.scratch?.size ?? 0;
  }

  length(t: GpuTensor): number {
    return t.length;
  }

  byteLength(t: GpuTensor): number {
    return t.length * 4;
  }

  copy(t: GpuTensor): GpuTensor {
    const out = this.empty(t.length);
    this.recorder.commandEncoder().copyBufferToBuffer(t.buffer, 0, out.buffer, 0, byteSize(t.length));
    return out;
  }

  free(...tensors: (GpuTensor | undefined)[]): void {
    for (const t of tensors) {
      if (!t || t.freed) continue;
      t.freed = true;
      const size = t.buffer.size;
      let list = this.pool.get(size);
      if (!list) this.pool.set(size, (list = []));
      list.push(t.buffer);
    }
  }

  /** Submits everything recorded so far. */
  flush(): void {
    this.recorder.submit();
    this.syncCounters();
  }

  /** Destroys every buffer the ops made; the ops are unusable afterwards. */
  destroy(): void {
    this.flush();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    for (const b of this.owned) b.destroy();
    this.scratch?.destroy();
    this.recorder.destroy();
  }

  // ---- frozen products

  matmul(w: FrozenMatrix, x: GpuTensor, n: number, bias?: Float32Array): GpuTensor {
    const y = this.empty(n * w.nOut);
    const b = bias ? this.vector(bias) : undefined;
    this.eachChunk(w, (scratch, o0, rows) =>
      this.gemm({ m: n, n: rows, k: w.nIn, a: x.buffer, aSm: w.nIn, aSk: 1, b: scratch, bSk: 1, bSn: w.nIn, c: y.buffer, cOff: o0, cSm: w.nOut, bias: b, biasOff: o0 }),
    );
    return y;
  }

  matmulBackward(w: FrozenMatrix, dy: GpuTensor, n: number, dx: GpuTensor): void {
    this.eachChunk(w, (scratch, o0, rows) =>
      this.gemm({ m: n, n: w.nIn, k: rows, a: dy.buffer, aOff: o0, aSm: w.nOut, aSk: 1, b: scratch, bSk: w.nIn, bSn: 1, c: dx.buffer, cSm: w.nIn, accumulate: true }),
    );
  }

  // ---- LoRA

  loraForward(p: LoraPair<GpuTensor>, nIn: number, nOut: number, x: GpuTensor, n: number, y: GpuTensor): GpuTensor {
    const { rank } = p;
    const u = this.empty(n * rank);
    this.gemm({ m: n, n: rank, k: nIn, a: x.buffer, aSm: nIn, aSk: 1, b: p.a.buffer, bSk: 1, bSn: nIn, c: u.buffer, cSm: rank });
    this.gemm({ m: n, n: nOut, k: rank, a: u.buffer, aSm: rank, aSk: 1, b: p.b.buffer, bSk: 1, bSn: rank, c: y.buffer, cSm: nOut, alpha: p.s, accumulate: true });
    return u;
  }

  loraBackward(p: LoraPair<GpuTensor>, nIn: number, nOut: number, x: GpuTensor, u: GpuTensor, dy: GpuTensor, n: number, grad: { a: GpuTensor; b: GpuTensor }, dx: GpuTensor): void {
    const { rank, s } = p;
    // bty = dy B: [n][rank]
    const bty = this.empty(n * rank);
    this.gemm({ m: n, n: rank, k: nOut, a: dy.buffer, aSm: nOut, aSk: 1, b: p.b.buffer, bSk: rank, bSn: 1, c: bty.buffer, cSm: rank });
    // dB[o][r] += s sum_t dy[t][o] u[t][r]
    this.gemm({ m: nOut, n: rank, k: n, a: dy.buffer, aSm: 1, aSk: nOut, b: u.buffer, bSk: rank, bSn: 1, c: grad.b.buffer, cSm: rank, alpha: s, accumulate: true });
    // dA[r][i] += s sum_t bty[t][r] x[t][i]
    this.gemm({ m: rank, n: nIn, k: n, a: bty.buffer, aSm: 1, aSk: rank, b: x.buffer, bSk: nIn, bSn: 1, c: grad.a.buffer, cSm: nIn, alpha: s, accumulate: true });
    // dx[t][i] += s sum_r bty[t][r] A[r][i]
    this.gemm({ m: n, n: nIn, k: rank, a: bty.buffer, aSm: rank, aSk: 1, b: p.a.buffer, bSk: nIn, bSn: 1, c: dx.buffer, cSm: nIn, alpha: s, accumulate: true });
    this.free(bty);
  }

  // ---- norms, rope, attention, GLU, loss

  rmsNorm(x: GpuTensor, rows: number, len: number, eps: number, w: Float32Array): { y: GpuTensor; r: GpuTensor } {
    const y = this.empty(rows * len);
    const r = this.empty(rows);
    const [gx, gy] = foldedGrid(rows);
    this.dispatch('train_rms_norm.wgsl', { len, rows, eps, groups_x: gx }, { x: x.buffer, w: this.vector(w), y: y.buffer, r: r.buffer }, [gx, gy]);
    return { y, r };
  }

  rmsNormBackward(x: GpuTensor, r: GpuTensor, len: number, w: Float32Array, dy: GpuTensor): GpuTensor {
    const rows = r.length;
    const dx = this.empty(x.length);
    const [gx, gy] = foldedGrid(rows);
    this.dispatch('train_rms_norm_backward.wgsl', { len, rows, groups_x: gx }, { x: x.buffer, r: r.buffer, w: this.vector(w), dy: dy.buffer, dx: dx.buffer }, [gx, gy]);
    return dx;
  }

  rope(x: GpuTensor, n: number, nHeads: number, headDim: number, table: RopeTable, inverse: boolean): void {
    const half = table.nRot / 2;
    const positions = table.cos.length / half;
    if (positions < n) throw new RangeError(`rope table of ${positions} positions for ${n} rows`);
    const t = this.ropeTable(table);
    const [gx, gy] = foldedGrid(Math.ceil((n * nHeads * half) / 256));
    this.dispatch('train_rope.wgsl', { n: positions, n_heads: nHeads, head_dim: headDim, half, neox: table.neox ? 1 : 0, sign: inverse ? -1 : 1, groups_x: gx }, { table: t.buffer, x: x.buffer }, [gx, gy]);
  }

  attention(q: GpuTensor, k: GpuTensor, v: GpuTensor, s: AttentionShape): { out: GpuTensor; probs: GpuTensor } {
    const { n, nHead, nHeadKv, headDimK, headDimV, scale } = s;
    const group = nHead / nHeadKv;
    const probs = this.empty(n * nHead * n);
    const [gx, gy] = foldedGrid(n * nHead);
    this.dispatch('train_attention_probs.wgsl', { n, n_head: nHead, group, dk: headDimK, scale, groups_x: gx }, { q: q.buffer, k: k.buffer, probs: probs.buffer }, [gx, gy]);
    const out = this.empty(n * nHead * headDimV);
    this.mix(probs, v, out, s, headDimV);
    return { out, probs };
  }

  attentionBackward(q: GpuTensor, k: GpuTensor, v: GpuTensor, probs: GpuTensor, dOut: GpuTensor, s: AttentionShape): { dq: GpuTensor; dk: GpuTensor; dv: GpuTensor } {
    const { n, nHead, nHeadKv, headDimK, headDimV, scale } = s;
    const group = nHead / nHeadKv;
    const dz = this.empty(n * nHead * n);
    const [gx, gy] = foldedGrid(n * nHead);
    this.dispatch('train_attention_dscores.wgsl', { n, n_head: nHead, group, dv: headDimV, scale, groups_x: gx }, { probs: probs.buffer, d_out: dOut.buffer, v: v.buffer, dz: dz.buffer }, [gx, gy]);
    const dq = this.empty(q.length);
    this.mix(dz, k, dq, s, headDimK);
    const dk = this.empty(k.length);
    this.mixT(dz, q, dk, s, headDimK);
    const dv = this.empty(v.length);
    this.mixT(probs, dOut, dv, s, headDimV);
    this.free(dz);
    return { dq, dk, dv };
  }

  swiglu(gate: GpuTensor, up: GpuTensor): GpuTensor {
    const y = this.empty(gate.length);
    const [gx, gy] = foldedGrid(Math.ceil(gate.length / 256));
    this.dispatch('train_swiglu.wgsl', { count: gate.length, groups_x: gx }, { gate: gate.buffer, up: up.buffer, y: y.buffer }, [gx, gy]);
    return y;
  }

  swigluBackward(gate: GpuTensor, up: GpuTensor, dy: GpuTensor): { dGate: GpuTensor; dUp: GpuTensor } {
    const dGate = this.empty(gate.length);
    const dUp = this.empty(gate.length);
    const [gx, gy] = foldedGrid(Math.ceil(gate.length / 256));
    this.dispatch('train_swiglu_backward.wgsl', { count: gate.length, groups_x: gx }, { gate: gate.buffer, up: up.buffer, dy: dy.buffer, d_gate: dGate.buffer, d_up: dUp.buffer }, [gx, gy]);
    return { dGate, dUp };
  }

  crossEntropy(logits: GpuTensor, n: number, nVocab: number, targets: ArrayLike<number>, weight: ArrayLike<number>, gradScale = 1): { loss: GpuTensor; dLogits: GpuTensor } {
    const t = this.uploadBytes(Uint32Array.from({ length: n }, (_, i) => targets[i] ?? 0), n);
    const w = this.uploadBytes(Float32Array.from({ length: n }, (_, i) => weight[i] ?? 0), n);
    const loss = this.empty(n);
    const dLogits = this.empty(n * nVocab);
    const [gx, gy] = foldedGrid(n);
    this.dispatch('train_cross_entropy.wgsl', { n_vocab: nVocab, rows: n, grad_scale: gradScale, groups_x: gx }, { logits: logits.buffer, targets: t.buffer, weight: w.buffer, loss: loss.buffer, d_logits: dLogits.buffer }, [gx, gy]);
    this.free(t, w);
    return { loss, dLogits };
  }

  addInPlace(a: GpuTensor, b: GpuTensor): void {
    if (a.length !== b.length) throw new RangeError(`addInPlace of ${a.length} and ${b.length} values`);
    encodeElementwise(this.recorder, this.kernels, { op: 'add', a: { buffer: a.buffer }, b: { buffer: b.buffer }, out: { buffer: a.buffer }, n: a.length, rows: 1, dummy: this.dummy });
    this.afterDispatch();
  }

  // ---- internals

  /** A tensor whose values are whatever its buffer held (every op writes all of its output). */
  private empty(length: number): GpuTensor {
    const size = byteSize(length);
    const reused = this.pool.get(size)?.pop();
    if (reused) return new GpuTensor(reused, length);
    const buffer = this.device.createBuffer({ label: 'train tensor', size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.tensorBytes += size;
    this.peakTensorBytes = Math.max(this.peakTensorBytes, this.tensorBytes);
    return new GpuTensor(buffer, length);
  }

  private uploadBytes(data: Float32Array | Uint32Array, length: number): GpuTensor {
    this.flush(); // a pooled buffer may be in commands not yet submitted, which writeBuffer would overtake
    const t = this.empty(length);
    this.device.queue.writeBuffer(t.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return t;
  }

  private ownBuffer(size: number, label: string): GPUBuffer {
    const b = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(size / 4) * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    this.owned.push(b);
    return b;
  }

  /** A frozen vector's device copy, made once. */
  private vector(v: Float32Array): GPUBuffer {
    let b = this.vectors.get(v);
    if (!b) {
      b = this.ownBuffer(v.byteLength, 'train vector');
      this.device.queue.writeBuffer(b, 0, v.buffer, v.byteOffset, v.byteLength);
      this.frozenBytes += b.size;
      this.vectors.set(v, b);
    }
    return b;
  }

  /** The rope table as [cos | sin] f32, uploaded once per table (the step makes one per window). */
  private ropeTable(table: RopeTable): GpuTensor {
    if (this.ropeCache?.table === table) return this.ropeCache.tensor;
    if (this.ropeCache) this.free(this.ropeCache.tensor);
    const data = new Float32Array(table.cos.length * 2);
    data.set(table.cos);
    data.set(table.sin, table.cos.length);
    const tensor = this.uploadBytes(data, data.length);
    this.ropeCache = { table, tensor };
    return tensor;
  }

  /** The matrix's GGUF bytes on the device, in parts of whole rows under the binding limit; uploaded once. */
  private frozenOnDevice(w: FrozenMatrix): FrozenOnDevice {
    let f = this.frozen.get(w);
    if (f) return f;
    const include = weightInclude(w.type);
    if (!include) throw new TrainWeightTypeError(`${w.name}: no WebGPU kernel reads weights of GGML type ${w.type}`, { tensor: w.name, type: w.type });
    const fmt = requireQuantFormat(w.type);
    const rowBytes = (w.nIn / fmt.blockSize) * fmt.typeSize;
    const perPart = rowsPerPart(rowBytes, this.device.limits);
    const parts: FrozenOnDevice['parts'] = [];
    for (let rowStart = 0; rowStart < w.nOut; rowStart += perPart) {
      const rows = Math.min(perPart, w.nOut - rowStart);
      const buffer = this.ownBuffer(rows * rowBytes, `${w.name} rows ${rowStart}..${rowStart + rows}`);
      writePadded(this.device, buffer, 0, w.bytes.subarray(rowStart * rowBytes, (rowStart + rows) * rowBytes));
      this.frozenBytes += buffer.size;
      parts.push({ buffer, rowStart, rows });
    }
    f = { parts, include };
    this.frozen.set(w, f);
    return f;
  }

  /**
   * Calls `use(scratch, firstRow, rows)` for chunks of W's rows dequantized to f32 in the scratch
   * ([rows][nIn]); a matrix that fits in one chunk and was the last one dequantized is not redone.
   */
  private eachChunk(w: FrozenMatrix, use: (scratch: GPUBuffer, o0: number, rows: number) => void): void {
    const f = this.frozenOnDevice(w);
    const maxFloats = Math.min(this.scratchFloats, Math.floor(Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize) / 4));
    const chunkRows = Math.max(1, Math.min(Math.floor(maxFloats / w.nIn), MAX_GROUPS * TILE));
    const scratch = this.scratchOf(Math.min(chunkRows, w.nOut) * w.nIn);
    const single = w.nOut <= chunkRows;
    if (single && this.scratchHolds === w) {
      use(scratch, 0, w.nOut);
      return;
    }
    this.scratchHolds = undefined;
    for (const part of f.parts) {
      for (let r = 0; r < part.rows; r += chunkRows) {
        const rows = Math.min(chunkRows, part.rows - r);
        const quads = w.nIn % 4 === 0;
        const [gx, gy] = foldedGrid(Math.ceil((rows * w.nIn) / (quads ? 4 : 1) / 256));
        this.dispatch('train_dequant.wgsl', { k: w.nIn, row0: r, rows, groups_x: gx, quads: quads ? 1 : 0 }, { weights: part.buffer, out: scratch }, [gx, gy], { weights: f.include });
        this.counters.dequantizedRows += rows;
        use(scratch, part.rowStart + r, rows);
      }
    }
    if (single) this.scratchHolds = w;
  }

  private scratchOf(floats: number): GPUBuffer {
    const size = byteSize(floats);
    if (!this.scratch || this.scratch.size < size) {
      // The old scratch may be bound by recorded commands: submit them before destroying it.
      if (this.scratch) {
        this.flush();
        this.scratch.destroy();
      }
      this.scratch = this.device.createBuffer({ label: 'train dequantized weights', size, usage: GPUBufferUsage.STORAGE });
      this.scratchHolds = undefined;
    }
    return this.scratch;
  }

  private gemm(g: {
    m: number;
    n: number;
    k: number;
    a: GPUBuffer;
    aOff?: number;
    aSm: number;
    aSk: number;
    b: GPUBuffer;
    bSk: number;
    bSn: number;
    c: GPUBuffer;
    cOff?: number;
    cSm: number;
    alpha?: number;
    accumulate?: boolean;
    bias?: GPUBuffer;
    biasOff?: number;
  }): void {
    const gx = Math.ceil(g.n / TILE);
    const gy = Math.ceil(g.m / TILE);
    if (gx > MAX_GROUPS || gy > MAX_GROUPS) throw new RangeError(`training product of ${g.m} x ${g.n} is over the dispatch limit`);
    this.dispatch(
      'train_gemm.wgsl',
      {
        m: g.m,
        n: g.n,
        k: g.k,
        a_off: g.aOff ?? 0,
        a_sm: g.aSm,
        a_sk: g.aSk,
        b_off: 0,
        b_sk: g.bSk,
        b_sn: g.bSn,
        c_off: g.cOff ?? 0,
        c_sm: g.cSm,
        bias_off: g.biasOff ?? 0,
        alpha: g.alpha ?? 1,
        accumulate: g.accumulate ? 1 : 0,
        has_bias: g.bias ? 1 : 0,
      },
      { a: g.a, b: g.b, c: g.c, bias: g.bias ?? this.dummy },
      [gx, gy],
    );
  }

  /** out[t][h][d] = sum_j p[t][h][j] x[j][h / group][d]. */
  private mix(p: GpuTensor, x: GpuTensor, out: GpuTensor, s: AttentionShape, dim: number): void {
    const [gx, gy] = foldedGrid(Math.ceil((s.n * s.nHead * dim) / 256));
    this.dispatch('train_attention_mix.wgsl', { n: s.n, n_head: s.nHead, group: s.nHead / s.nHeadKv, dim, groups_x: gx }, { p: p.buffer, x: x.buffer, out: out.buffer }, [gx, gy]);
  }

  /** out[j][kvh][d] = sum over kvh's heads h and t of p[t][h][j] y[t][h][d]. */
  private mixT(p: GpuTensor, y: GpuTensor, out: GpuTensor, s: AttentionShape, dim: number): void {
    const [gx, gy] = foldedGrid(Math.ceil((s.n * s.nHeadKv * dim) / 256));
    this.dispatch('train_attention_mix_t.wgsl', { n: s.n, n_head: s.nHead, group: s.nHead / s.nHeadKv, dim, groups_x: gx }, { p: p.buffer, y: y.buffer, out: out.buffer }, [gx, gy]);
  }

  private dispatch(file: string, params: UniformValues, bind: Record<string, Binding>, workgroups: [number, number], slots?: Record<string, string>): void {
    const name = slots?.weights ? `${file.replace('.wgsl', '')}_${slots.weights.replace('weights_', '').replace('.wgsl', '')}` : undefined;
    const kernel = shaderKernel(this.kernels, file, { ...(slots ? { slots } : {}), ...(name ? { name } : {}) });
    this.recorder.dispatch(kernel, { params, bind, workgroups, label: file });
    this.afterDispatch();
  }

  private afterDispatch(): void {
    this.pending++;
    if (this.pending >= DISPATCHES_PER_SUBMIT) this.flush();
  }

  private syncCounters(): void {
    this.pending = 0;
    this.counters.dispatches = this.recorder.counters.dispatches;
    this.counters.submits = this.recorder.counters.submits;
  }
}

/** Buffer bytes for `length` floats (never 0: WebGPU binds no empty buffer). */
function byteSize(length: number): number {
  return Math.max(16, Math.ceil((length * 4) / 16) * 16);
}
