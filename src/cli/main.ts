/**
 * `hearth` command line: the engine core under Node with Dawn's WebGPU. Each command lives in
 * src/cli/commands/ and returns an exit code; usage errors exit with 2, failures with 1.
 */
import { ENGINE_VERSION } from '../engine/version.ts';
import { runForwardingSignals } from '../node/forward-signals.ts';
import { softwareVulkanEnv } from '../node/vulkan-env.ts';
import { UsageError, type CliCommand, commandNeedsGpu } from './command.ts';
import { benchCommand } from './commands/bench.ts';
import { probeCommand } from './commands/probe.ts';
import { inspectCommand } from './commands/inspect.ts';
import { tokenizeCommand } from './commands/tokenize.ts';
import { makeModelCommand } from './commands/make-model.ts';
import { makeLoraCommand } from './commands/make-lora.ts';
import { quantizeCommand } from './commands/quantize.ts';
import { evalCommand } from './commands/eval.ts';
import { pruneCommand } from './commands/prune.ts';
import { logitsCommand } from './commands/logits.ts';
import { generateCommand } from './commands/generate.ts';
import { serveCommand } from './commands/serve.ts';
import { finetuneCommand } from './commands/finetune.ts';

/** Every subcommand, by name. Add new commands here. */
const COMMANDS: Record<string, CliCommand> = {
  probe: probeCommand,
  bench: benchCommand,
  inspect: inspectCommand,
  tokenize: tokenizeCommand,
  'make-model': makeModelCommand,
  'make-lora': makeLoraCommand,
  quantize: quantizeCommand,
  eval: evalCommand,
  prune: pruneCommand,
  logits: logitsCommand,
  generate: generateCommand,
  serve: serveCommand,
  finetune: finetuneCommand,
};

function usage(): string {
  const lines = Object.values(COMMANDS).map((command) => `  hearth ${command.usage}`);
  return `hearth ${ENGINE_VERSION}: a private in-tab LLM engine, here under Node with WebGPU (Dawn)

Usage:
${lines.join('\n')}
  hearth --version
  hearth help

On a machine without a GPU driver, Chromium's SwiftShader is used when installed
(apt-get install chromium); set HEARTH_SOFTWARE_GPU=1 to force it.`;
}

/**
 * Re-runs this process with the environment that lets Dawn find a software Vulkan driver, when
 * that is needed. Returns the child's exit code, or null when the current process is fine as is.
 * Signals sent to this process reach the child (a stopped `hearth serve` must not run on).
 */
async function reexecWithSoftwareVulkan(): Promise<number | null> {
  const env = softwareVulkanEnv();
  if (!env) return null;
  return runForwardingSignals(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env: { ...process.env, ...env } });
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(ENGINE_VERSION + '\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`hearth: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  try {
    if (commandNeedsGpu(command, rest)) {
      const childStatus = await reexecWithSoftwareVulkan();
      if (childStatus !== null) return childStatus;
    }
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
