/**
 * Records a whole step of GPU work (a token step, a prefill chunk, a test) into one command
 * encoder and one compute pass, then submits it once. Uniform parameters of every dispatch go
 * into one staging area that is uploaded with a single `writeBuffer` before the submit; each
 * dispatch binds its slot with a dynamic offset. Bind groups are cached by the buffers they bind
 * (looked up by a numeric hash, no string keys), so a step that binds the same buffers as the last
 * one creates nothing.
 *
 * A step can also be captured into a {@link StepPlan}: the flat list of what each dispatch set
 * (pipeline, bind group, uniform slot, workgroups or indirect arguments), with the step's uniform
 * values copied into the plan's own buffer. `replay` records that list again without calling any
 * encode function, so a decode step whose per-token values all live in buffers (ids, positions,
 * sampling uniforms, indirect dispatch arguments) costs one setPipeline/setBindGroup/dispatch per
 * entry and nothing else.
 */
import type { Kernel } from './kernel.ts';
import { packUniformsInto, type UniformValues } from './uniforms.ts';

/** A buffer, or a byte range of one, bound to a storage binding. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

export type Binding = GPUBuffer | BufferRange;

export interface DispatchArgs {
  /** Values for the kernel's uniform struct, by field name. */
  params?: UniformValues;
  /** Storage buffers by the names the WGSL declares. */
  bind: Record<string, Binding>;
  /** Workgroup counts; ignored when `indirect` is given. */
  workgroups: readonly [number, number?, number?];
  /** Workgroup counts read by the GPU from three u32 at `offset` of `buffer` (written by an earlier dispatch). */
  indirect?: { buffer: GPUBuffer; offset: number };
  label?: string;
}

/** Counts since the recorder was made: what a step cost, for tests and the benchmark. */
export interface RecorderCounters {
  dispatches: number;
  submits: number;
  replays: number;
}

const MAX_CACHED_BIND_GROUPS = 8192;
/** Bound buffers per kernel, at most (3 numbers of key each). */
const MAX_BINDINGS = 16;

interface CachedGroup {
  key: Float64Array;
  group: GPUBindGroup;
  entries: GPUBindGroupEntry[];
  /** The binding of the uniform block (the shared uniform buffer), or -1. */
  uniformBinding: number;
}

/** One captured dispatch. */
interface PlannedDispatch {
  pipeline: GPUComputePipeline;
  /** The shared group that was bound, and the entries that made it (rebound to the plan's uniforms). */
  group: GPUBindGroup;
  entries: readonly GPUBindGroupEntry[];
  uniformBinding: number;
  layout: GPUBindGroupLayout;
  /** Uniform slot, or -1. */
  offset: number;
  x: number;
  y: number;
  z: number;
  indirect: { buffer: GPUBuffer; offset: number } | undefined;
}

/**
 * A captured step: replayed by `StepRecorder.replay`. Owns its uniform buffer and bind groups, so
 * steps recorded between replays cannot overwrite what it binds. `valid` turns false when
 * `invalidate` is called (something it binds was reallocated) or when it is destroyed.
 */
export class StepPlan {
  readonly pipelines: GPUComputePipeline[] = [];
  readonly groups: GPUBindGroup[] = [];
  /** Per entry: the dynamic offsets to pass ([] when the kernel has no uniforms). */
  readonly offsets: number[][] = [];
  readonly x: number[] = [];
  readonly y: number[] = [];
  readonly z: number[] = [];
  readonly indirect: Array<GPUBuffer | undefined> = [];
  readonly indirectOffset: number[] = [];
  private uniforms: GPUBuffer | undefined;
  private live = true;

  /** Filled when the captured step is submitted; empty and invalid before. */
  complete = false;

  get dispatches(): number {
    return this.pipelines.length;
  }

  get valid(): boolean {
    return this.live && this.complete;
  }

  /** @internal Builds the plan from the captured list and the staging bytes of its step. */
  fill(device: GPUDevice, list: readonly PlannedDispatch[], staging: Uint8Array<ArrayBuffer>, used: number): void {
    const size = Math.max(16, Math.ceil(used / 4) * 4);
    const uniforms = device.createBuffer({ label: 'plan uniforms', size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    if (used > 0) device.queue.writeBuffer(uniforms, 0, staging, 0, Math.ceil(used / 4) * 4);
    this.uniforms = uniforms;
    const rebound = new Map<GPUBindGroup, GPUBindGroup>();
    for (const d of list) {
      let group = rebound.get(d.group);
      if (!group) {
        const entries = d.entries.map((e) =>
          e.binding === d.uniformBinding ? { binding: e.binding, resource: { ...(e.resource as GPUBufferBinding), buffer: uniforms } } : e,
        );
        group = device.createBindGroup({ label: 'plan', layout: d.layout, entries });
        rebound.set(d.group, group);
      }
      this.pipelines.push(d.pipeline);
      this.groups.push(group);
      this.offsets.push(d.offset >= 0 ? [d.offset] : []);
      this.x.push(d.x);
      this.y.push(d.y);
      this.z.push(d.z);
      this.indirect.push(d.indirect?.buffer);
      this.indirectOffset.push(d.indirect?.offset ?? 0);
    }
    this.complete = true;
  }

  /** Something the plan binds was reallocated: it must be captured again. */
  invalidate(): void {
    this.live = false;
  }

  destroy(): void {
    this.live = false;
    this.uniforms?.destroy();
    this.uniforms = undefined;
  }
}

export class StepRecorder {
  private readonly uniformBuffer: GPUBuffer;
  private readonly staging: Uint8Array<ArrayBuffer>;
  private readonly stagingView: DataView;
  private readonly slotAlign: number;
  private uniformUsed = 0;
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private readonly bindGroups = new Map<number, CachedGroup[]>();
  private cachedGroups = 0;
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private readonly key = new Float64Array(1 + 3 * MAX_BINDINGS);
  private capturing: { plan: StepPlan; list: PlannedDispatch[] } | undefined;
  /** Copies to record after the step's pass (e.g. sampled ids into a readback buffer). */
  private readonly copies: Array<{ src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }> = [];
  readonly counters: RecorderCounters = { dispatches: 0, submits: 0, replays: 0 };

  /** @param uniformCapacity bytes of uniform data one step may use (slots are 256-byte aligned). */
  constructor(
    private readonly device: GPUDevice,
    uniformCapacity = 1 << 20,
  ) {
    this.slotAlign = device.limits.minUniformBufferOffsetAlignment;
    this.uniformBuffer = device.createBuffer({
      label: 'step uniforms',
      size: uniformCapacity,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.staging = new Uint8Array(uniformCapacity);
    this.stagingView = new DataView(this.staging.buffer);
  }

  /** The encoder of the current step, for copies between dispatches. Ends the open pass. */
  commandEncoder(): GPUCommandEncoder {
    if (this.capturing) throw new Error('a captured step cannot record copies between dispatches');
    return this.openEncoder();
  }

  /** Records a buffer copy at the end of the current step, after every dispatch (not part of a capture). */
  copyAtEnd(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.copies.push({ src, srcOffset, dst, dstOffset, size });
  }

  dispatch(kernel: Kernel, args: DispatchArgs): void {
    let uniformOffset = -1;
    if (kernel.params) {
      if (!args.params) throw new Error(`${kernel.label}: missing params`);
      uniformOffset = Math.ceil(this.uniformUsed / this.slotAlign) * this.slotAlign;
      if (uniformOffset + kernel.params.byteLength > this.staging.byteLength) {
        throw new Error(`step uniform capacity ${this.staging.byteLength} exceeded; raise uniformCapacity`);
      }
      packUniformsInto(kernel.params, args.params, this.stagingView, uniformOffset);
      this.uniformUsed = uniformOffset + kernel.params.byteLength;
    } else if (args.params) {
      throw new Error(`${kernel.label}: has no uniform block but params were given`);
    }
    const cached = this.bindGroupFor(kernel, args.bind);
    const pass = this.openPass();
    pass.setPipeline(kernel.pipeline);
    if (uniformOffset >= 0) pass.setBindGroup(0, cached.group, [uniformOffset]);
    else pass.setBindGroup(0, cached.group);
    const [x, y = 1, z = 1] = args.workgroups;
    if (args.indirect) pass.dispatchWorkgroupsIndirect(args.indirect.buffer, args.indirect.offset);
    else if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    this.counters.dispatches++;
    this.capturing?.list.push({
      pipeline: kernel.pipeline,
      group: cached.group,
      entries: cached.entries,
      uniformBinding: cached.uniformBinding,
      layout: kernel.bindGroupLayout,
      offset: uniformOffset,
      x,
      y,
      z,
      indirect: args.indirect,
    });
  }

  /**
   * Starts capturing: the dispatches recorded until the next `submit` also go into the returned
   * plan, which is complete (and replayable) once that submit has happened.
   */
  capture(): StepPlan {
    if (this.capturing) throw new Error('already capturing a step');
    const plan = new StepPlan();
    this.capturing = { plan, list: [] };
    return plan;
  }

  /** Records a captured step's dispatches into the current step. */
  replay(plan: StepPlan): void {
    if (!plan.valid) throw new Error('replay of a plan that is incomplete, invalidated or destroyed');
    const pass = this.openPass();
    const n = plan.pipelines.length;
    for (let i = 0; i < n; i++) {
      pass.setPipeline(plan.pipelines[i]!);
      pass.setBindGroup(0, plan.groups[i]!, plan.offsets[i]!);
      const indirect = plan.indirect[i];
      if (indirect) pass.dispatchWorkgroupsIndirect(indirect, plan.indirectOffset[i]!);
      else if (plan.x[i]! > 0 && plan.y[i]! > 0 && plan.z[i]! > 0) pass.dispatchWorkgroups(plan.x[i]!, plan.y[i]!, plan.z[i]!);
    }
    this.counters.dispatches += n;
    this.counters.replays++;
  }

  /** Uploads the step's uniforms and submits everything recorded. */
  submit(): void {
    this.endPass();
    if (this.copies.length > 0) {
      const encoder = this.openEncoder();
      for (const c of this.copies) encoder.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
      this.copies.length = 0;
    }
    const capturing = this.capturing;
    this.capturing = undefined;
    if (!this.encoder) return;
    if (this.uniformUsed > 0) {
      this.device.queue.writeBuffer(this.uniformBuffer, 0, this.staging, 0, Math.ceil(this.uniformUsed / 4) * 4);
    }
    if (capturing) capturing.plan.fill(this.device, capturing.list, this.staging, this.uniformUsed);
    this.device.queue.submit([this.encoder.finish()]);
    this.counters.submits++;
    this.encoder = undefined;
    this.uniformUsed = 0;
  }

  destroy(): void {
    this.uniformBuffer.destroy();
    this.bindGroups.clear();
  }

  private openEncoder(): GPUCommandEncoder {
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder({ label: 'step' });
    return this.encoder;
  }

  private openPass(): GPUComputePassEncoder {
    this.pass ??= this.openEncoder().beginComputePass({ label: 'step' });
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  /**
   * The cached bind group for these buffers: the key (kernel, then buffer id, offset and size per
   * binding) is built in a reused array and hashed, so a hit allocates nothing.
   */
  private bindGroupFor(kernel: Kernel, bind: Record<string, Binding>): CachedGroup {
    const key = this.key;
    let n = 0;
    key[n++] = kernel.id;
    let hash = kernel.id | 0;
    for (const decl of kernel.bindings) {
      if (decl.kind === 'uniform') continue;
      const given = bind[decl.name];
      if (!given) throw new Error(`${kernel.label}: no buffer bound to '${decl.name}'`);
      let id: number, offset: number, size: number;
      if ('buffer' in given) {
        id = this.bufferId(given.buffer);
        offset = given.offset ?? 0;
        size = given.size ?? -1;
      } else {
        id = this.bufferId(given);
        offset = 0;
        size = -1;
      }
      if (n + 3 > key.length) throw new Error(`${kernel.label}: more than ${MAX_BINDINGS} bindings`);
      key[n++] = id;
      key[n++] = offset;
      key[n++] = size;
      hash = (Math.imul(hash, 0x01000193) ^ id) | 0;
      hash = (Math.imul(hash, 0x01000193) ^ offset) | 0;
      hash = (Math.imul(hash, 0x01000193) ^ size) | 0;
    }
    const bucket = this.bindGroups.get(hash);
    if (bucket) {
      for (const cached of bucket) {
        if (cached.key.length !== n) continue;
        let same = true;
        for (let i = 0; i < n && same; i++) same = cached.key[i] === key[i];
        if (same) return cached;
      }
    }
    return this.createGroup(kernel, bind, hash, key.slice(0, n));
  }

  private createGroup(kernel: Kernel, bind: Record<string, Binding>, hash: number, key: Float64Array): CachedGroup {
    for (const name of Object.keys(bind)) {
      if (!kernel.bindings.some((d) => d.name === name)) throw new Error(`${kernel.label}: declares no binding '${name}'`);
    }
    const entries: GPUBindGroupEntry[] = [];
    let uniformBinding = -1;
    for (const decl of kernel.bindings) {
      if (decl.kind === 'uniform') {
        uniformBinding = decl.binding;
        entries.push({ binding: decl.binding, resource: { buffer: this.uniformBuffer, offset: 0, size: kernel.params!.byteLength } });
        continue;
      }
      const given = bind[decl.name]!;
      const range: BufferRange = 'buffer' in given ? given : { buffer: given };
      const resource: GPUBufferBinding = { buffer: range.buffer, offset: range.offset ?? 0 };
      if (range.size !== undefined) resource.size = range.size;
      entries.push({ binding: decl.binding, resource });
    }
    if (this.cachedGroups >= MAX_CACHED_BIND_GROUPS) {
      this.bindGroups.clear();
      this.cachedGroups = 0;
    }
    const group = this.device.createBindGroup({ label: kernel.label, layout: kernel.bindGroupLayout, entries });
    const cached: CachedGroup = { key, group, entries, uniformBinding };
    let bucket = this.bindGroups.get(hash);
    if (!bucket) this.bindGroups.set(hash, (bucket = []));
    bucket.push(cached);
    this.cachedGroups++;
    return cached;
  }
}
