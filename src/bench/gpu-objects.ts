/**
 * Counts the GPU objects a device creates, by wrapping its `create*` methods (as gpu-memory.ts
 * wraps createBuffer): buffers, bind groups, pipelines, shader modules, layouts, query sets,
 * textures and samplers. Command encoders are counted apart, since WebGPU needs one per submit,
 * and so are submits. A decode step that replays its plan must create no object and use one
 * encoder and one submit: the loop test and `hearth bench` check that with these counts.
 */
export interface GpuObjectCounts {
  /** Every object but command encoders. */
  objects: number;
  commandEncoders: number;
  submits: number;
  /** Per kind, for a failure message. */
  byKind: Record<string, number>;
}

export interface GpuObjectCounter {
  /** Counts since the wrapper was installed. */
  snapshot(): GpuObjectCounts;
}

const OBJECT_METHODS = [
  'createBuffer',
  'createBindGroup',
  'createBindGroupLayout',
  'createPipelineLayout',
  'createComputePipeline',
  'createComputePipelineAsync',
  'createRenderPipeline',
  'createRenderPipelineAsync',
  'createShaderModule',
  'createQuerySet',
  'createTexture',
  'createSampler',
] as const;

export function countGpuObjects(device: GPUDevice): GpuObjectCounter {
  const byKind: Record<string, number> = {};
  let commandEncoders = 0;
  let submits = 0;
  const target = device as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of OBJECT_METHODS) {
    const original = target[method];
    if (typeof original !== 'function') continue;
    const bound = original.bind(device);
    byKind[method] = 0;
    target[method] = (...args: unknown[]) => {
      byKind[method]!++;
      return bound(...args);
    };
  }
  const createEncoder = device.createCommandEncoder.bind(device);
  device.createCommandEncoder = (descriptor?: GPUCommandEncoderDescriptor) => {
    commandEncoders++;
    return createEncoder(descriptor);
  };
  const queue = device.queue;
  const submit = queue.submit.bind(queue);
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    submits++;
    submit(buffers);
  };
  return {
    snapshot: () => ({ objects: Object.values(byKind).reduce((a, b) => a + b, 0), commandEncoders, submits, byKind: { ...byKind } }),
  };
}
