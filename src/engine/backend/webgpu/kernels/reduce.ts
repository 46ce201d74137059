/**
 * Sum of a float32 vector on the GPU (reduce_sum.wgsl), run in passes until one value is left.
 * The CPU reference is `sumFloat64` below: the exact answer the GPU result is checked against.
 */
import reduceSumWgsl from '../../../../shaders/reduce_sum.wgsl?raw';
import { dispatchGrid, type PipelineCache } from '../pipelines.ts';
import { packUniforms, uniformLayout } from '../uniforms.ts';

const WORKGROUP_SIZE = 256;
/** Each workgroup sums this many items: 4 loads per invocation keeps the tree step a small share. */
const ITEMS_PER_GROUP = WORKGROUP_SIZE * 4;

/** Float64 reference: the exact sum (to double precision) the GPU result is compared with. */
export function sumFloat64(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum;
}

/**
 * Encodes the passes that reduce `n` floats of `input` to one float at offset 0 of the returned
 * buffer. Scratch buffers are created here because this is a standalone utility; the forward pass
 * will own its scratch space.
 */
export function encodeReduceSum(
  device: GPUDevice,
  pipelines: PipelineCache,
  encoder: GPUCommandEncoder,
  input: GPUBuffer,
  n: number,
): { result: GPUBuffer; scratch: GPUBuffer[] } {
  if (n < 1) throw new RangeError('encodeReduceSum: n must be at least 1');
  const pipeline = pipelines.get({
    shaderName: 'reduce_sum.wgsl',
    code: reduceSumWgsl,
    constants: { WORKGROUP_SIZE },
  });
  const layout = uniformLayout(reduceSumWgsl, 'Params');
  const scratch: GPUBuffer[] = [];
  let source = input;
  let count = n;
  do {
    const groups = Math.ceil(count / ITEMS_PER_GROUP);
    const [gx, gy] = dispatchGrid(groups, device.limits.maxComputeWorkgroupsPerDimension);
    const params = device.createBuffer({ size: layout.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(params, 0, packUniforms(layout, { n: count, items_per_group: ITEMS_PER_GROUP, groups_x: gx }));
    const output = device.createBuffer({ size: Math.max(4, groups * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    scratch.push(params, output);
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: source } },
        { binding: 2, resource: { buffer: output } },
      ],
    });
    const pass = encoder.beginComputePass({ label: `reduce_sum n=${count}` });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    source = output;
    count = groups;
  } while (count > 1);
  return { result: source, scratch };
}
