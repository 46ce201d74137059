/**
 * `hearth` command line: the engine core under Node with Dawn's WebGPU. Each command is a small
 * function returning an exit code; usage errors exit with 2, failures with 1.
 */
import { spawnSync } from 'node:child_process';
import { Engine } from '../engine/engine.ts';
import { ENGINE_VERSION } from '../engine/version.ts';
import { nodeGpu, nodeProbeOptions } from '../node/webgpu.ts';
import { softwareVulkanEnv } from '../node/vulkan-env.ts';

const USAGE = `hearth ${ENGINE_VERSION}: a private in-tab LLM engine, here under Node with WebGPU (Dawn)

Usage:
  hearth probe            print the WebGPU adapter, its features and limits as JSON
  hearth --version        print the version
  hearth help             this text

On a machine without a GPU driver, Chromium's SwiftShader is used when installed
(apt-get install chromium); set HEARTH_SOFTWARE_GPU=1 to force it.`;

type Command = (args: string[]) => Promise<number>;

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Re-runs this process with the environment that lets Dawn find a software Vulkan driver, when
 * that is needed. Returns the child's exit code, or null when the current process is fine as is.
 */
function reexecWithSoftwareVulkan(): number | null {
  const env = softwareVulkanEnv();
  if (!env) return null;
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  return child.status ?? 1;
}

function nodeEngine(): Engine {
  return new Engine({ gpu: nodeGpu(), runtime: `node ${process.version}`, probeOptions: nodeProbeOptions() });
}

const probe: Command = async (args) => {
  if (args.length > 0) throw new UsageError(`probe takes no arguments, got: ${args.join(' ')}`);
  const report = await nodeEngine().probe();
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report.available ? 0 : 1;
};

const COMMANDS: Record<string, { run: Command; needsGpu: boolean }> = {
  probe: { run: probe, needsGpu: true },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(ENGINE_VERSION + '\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`hearth: unknown command '${name}'\n\n${USAGE}\n`);
    return 2;
  }
  if (command.needsGpu) {
    const childStatus = reexecWithSoftwareVulkan();
    if (childStatus !== null) return childStatus;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`hearth ${name}: ${error.message}\n`);
      return 2;
    }
    const e = error as Error;
    process.stderr.write(`hearth ${name}: ${e.name}: ${e.message}\n`);
    return 1;
  }
}
