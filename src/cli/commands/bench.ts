import { writeFileSync } from 'node:fs';
import { createGpuContext } from '../../engine/backend/webgpu/device.ts';
import { benchMatmul, type MatmulBenchOptions } from '../../engine/backend/webgpu/kernels/bench-matmul.ts';
import { ggmlTypeByName } from '../../engine/gguf/ggml-types.ts';
import { nodeGpu, nodeProbeOptions } from '../../node/webgpu.ts';
import { parseFlags, UsageError, type CliCommand } from '../command.ts';

const KERNEL_FLAGS = { values: ['--types', '--shapes', '--prefill', '--seconds', '--json'], switches: ['--no-subgroups', '--wall'] } as const;

/** `hearth bench kernels`: GB/s and GFLOP/s of the matmul kernels per format beside the copy bandwidth. */
async function benchKernels(args: string[]): Promise<number> {
  const { positional, values, switches } = parseFlags(args, KERNEL_FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const options: MatmulBenchOptions = { log: (line) => process.stdout.write(line + '\n') };
  const types = values.get('--types');
  if (types) {
    options.types = types.split(',').map((name) => {
      const info = ggmlTypeByName(name);
      if (!info) throw new UsageError(`unknown type ${name}`);
      return info.type;
    });
  }
  const shapes = values.get('--shapes');
  if (shapes) {
    options.shapes = shapes.split(',').map((shape) => {
      const [rows, k] = shape.split('x').map(Number);
      if (!rows || !k) throw new UsageError(`bad shape ${shape}: expected ROWSxK`);
      return [rows, k] as const;
    });
  }
  if (values.has('--prefill')) options.prefillTokens = Number(values.get('--prefill'));
  if (values.has('--seconds')) options.seconds = Number(values.get('--seconds'));
  if (switches.has('--no-subgroups')) options.subgroups = false;
  if (switches.has('--wall')) options.wallTime = true;
  const context = await createGpuContext(nodeGpu(), nodeProbeOptions());
  try {
    const report = await benchMatmul(context, options);
    const json = values.get('--json');
    if (json) writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  } finally {
    context.destroy();
  }
  return 0;
}

const SUITES: Record<string, (args: string[]) => Promise<number>> = { kernels: benchKernels };

export const benchCommand: CliCommand = {
  usage: 'bench kernels [--types Q4_K,Q8_0] [--shapes 4096x4096] [--prefill 512] [--json FILE]\n' +
    '                           matmul kernel GB/s and GFLOP/s beside the copy bandwidth',
  needsGpu: true,
  async run(args) {
    const [suite, ...rest] = args;
    const run = suite ? SUITES[suite] : undefined;
    if (!run) throw new UsageError(`bench needs a suite: ${Object.keys(SUITES).join(', ')}`);
    return run(rest);
  },
};
