/**
 * Entry of the device bundle (hearth.mjs): the `hearth` CLI, plus `device ...`, the steps of the
 * real-GPU check that are not CLI commands (model generation split over processes, the model bench
 * on the two Llama shapes). Bundled by scripts/device-check/bundle.mjs into one file that runs
 * under a bare Node with only `webgpu` (dawn.node) beside it.
 */
import { main } from '../../src/cli/main.ts';
import { deviceCommand } from './models.ts';

const [first, ...rest] = process.argv.slice(2);
try {
  process.exitCode = first === 'device' ? await deviceCommand(rest) : await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
}
