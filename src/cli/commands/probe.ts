import { Engine } from '../../engine/engine.ts';
import { nodeGpu, nodeProbeOptions } from '../../node/webgpu.ts';
import { UsageError, type CliCommand } from '../command.ts';

export const probeCommand: CliCommand = {
  usage: 'probe                    print the WebGPU adapter, its features and limits as JSON',
  needsGpu: true,
  async run(args) {
    if (args.length > 0) throw new UsageError(`probe takes no arguments, got: ${args.join(' ')}`);
    const engine = new Engine({ gpu: nodeGpu(), runtime: `node ${process.version}`, probeOptions: nodeProbeOptions() });
    const report = await engine.probe();
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return report.available ? 0 : 1;
  },
};
