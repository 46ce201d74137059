/**
 * Records a whole step of GPU work (a token step, a prefill chunk, a test) into one command
 * encoder and one compute pass, then submits it once. Uniform parameters of every dispatch go
 * into one staging area that is uploaded with a single `writeBuffer` before the submit; each
 * dispatch binds its slot with a dynamic offset. Bind groups are cached by the buffers they bind,
 * so a decode step that binds the same buffers as the last one creates nothing.
 */
import type { Kernel } from './kernel.ts';
import { packUniforms, type UniformValues } from './uniforms.ts';

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
  workgroups: readonly [number, number?, number?];
  label?: string;
}

const MAX_CACHED_BIND_GROUPS = 8192;

export class StepRecorder {
  private readonly uniformBuffer: GPUBuffer;
  private readonly staging: Uint8Array<ArrayBuffer>;
  private readonly slotAlign: number;
  private uniformUsed = 0;
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;

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
  }

  /** The encoder of the current step, for copies between dispatches. Ends the open pass. */
  commandEncoder(): GPUCommandEncoder {
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder({ label: 'step' });
    return this.encoder;
  }

  dispatch(kernel: Kernel, args: DispatchArgs): void {
    let uniformOffset = -1;
    if (kernel.params) {
      if (!args.params) throw new Error(`${kernel.label}: missing params`);
      const bytes = new Uint8Array(packUniforms(kernel.params, args.params));
      uniformOffset = Math.ceil(this.uniformUsed / this.slotAlign) * this.slotAlign;
      if (uniformOffset + bytes.byteLength > this.staging.byteLength) {
        throw new Error(`step uniform capacity ${this.staging.byteLength} exceeded; raise uniformCapacity`);
      }
      this.staging.set(bytes, uniformOffset);
      this.uniformUsed = uniformOffset + bytes.byteLength;
    } else if (args.params) {
      throw new Error(`${kernel.label}: has no uniform block but params were given`);
    }
    const bindGroup = this.bindGroupFor(kernel, args.bind);
    if (!this.pass) this.pass = this.commandEncoder().beginComputePass({ label: 'step' });
    this.pass.setPipeline(kernel.pipeline);
    if (uniformOffset >= 0) this.pass.setBindGroup(0, bindGroup, [uniformOffset]);
    else this.pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = args.workgroups;
    if (x > 0 && y > 0 && z > 0) this.pass.dispatchWorkgroups(x, y, z);
  }

  /** Uploads the step's uniforms and submits everything recorded. */
  submit(): void {
    this.endPass();
    if (!this.encoder) return;
    if (this.uniformUsed > 0) {
      this.device.queue.writeBuffer(this.uniformBuffer, 0, this.staging, 0, Math.ceil(this.uniformUsed / 4) * 4);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
    this.uniformUsed = 0;
  }

  destroy(): void {
    this.uniformBuffer.destroy();
    this.bindGroups.clear();
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

  private bindGroupFor(kernel: Kernel, bind: Record<string, Binding>): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = [];
    const keyParts: Array<string | number> = [kernel.id];
    for (const decl of kernel.bindings) {
      if (decl.kind === 'uniform') {
        entries.push({ binding: decl.binding, resource: { buffer: this.uniformBuffer, offset: 0, size: kernel.params!.byteLength } });
        continue;
      }
      const given = bind[decl.name];
      if (!given) throw new Error(`${kernel.label}: no buffer bound to '${decl.name}'`);
      const range: BufferRange = 'buffer' in given ? given : { buffer: given };
      const resource: GPUBufferBinding = { buffer: range.buffer, offset: range.offset ?? 0 };
      if (range.size !== undefined) resource.size = range.size;
      entries.push({ binding: decl.binding, resource });
      keyParts.push(this.bufferId(range.buffer), range.offset ?? 0, range.size ?? -1);
    }
    for (const name of Object.keys(bind)) {
      if (!kernel.bindings.some((d) => d.name === name)) throw new Error(`${kernel.label}: declares no binding '${name}'`);
    }
    const key = keyParts.join(':');
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size >= MAX_CACHED_BIND_GROUPS) this.bindGroups.clear();
      group = this.device.createBindGroup({ label: kernel.label, layout: kernel.bindGroupLayout, entries });
      this.bindGroups.set(key, group);
    }
    return group;
  }
}
