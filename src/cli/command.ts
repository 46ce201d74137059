/** The shape of a `hearth` subcommand: parse `args`, do the work, return an exit code. */
export interface CliCommand {
  /** One line for the usage text, e.g. "probe            print the WebGPU adapter ...". */
  usage: string;
  /**
   * True when the command needs WebGPU: the CLI then makes sure Dawn can find a Vulkan driver. A
   * function decides from the arguments (e.g. `--backend cpu` needs none); see `commandNeedsGpu`.
   */
  needsGpu: boolean | ((args: readonly string[]) => boolean);
  run(args: string[]): Promise<number>;
}

/** Whether `command` run with `args` needs WebGPU. */
export function commandNeedsGpu(command: CliCommand, args: readonly string[]): boolean {
  return typeof command.needsGpu === 'function' ? command.needsGpu(args) : command.needsGpu;
}

/** The value of `--backend` in raw arguments (`--backend cpu` or `--backend=cpu`), if given. */
export function backendArg(args: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--backend') found = args[i + 1];
    else if (arg.startsWith('--backend=')) found = arg.slice('--backend='.length);
  }
  return found;
}

/** Bad command-line usage: reported with exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Minimal flag parser shared by the commands: `--flag value`, `--flag=value` and boolean
 * `--switch`. Unknown flags are usage errors, so a typo never silently changes behaviour.
 */
export function parseFlags(
  args: string[],
  spec: { values?: readonly string[]; switches?: readonly string[] },
): { positional: string[]; values: Map<string, string>; switches: Set<string> } {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const positional: string[] = [];
  const valueFlags = new Set(spec.values ?? []);
  const switchFlags = new Set(spec.switches ?? []);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    if (valueFlags.has(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      values.set(name, value);
    } else if (switchFlags.has(name) && eq < 0) {
      switches.add(name);
    } else {
      throw new UsageError(`unknown option ${arg}`);
    }
  }
  return { positional, values, switches };
}

/** A number flag's value from parseFlags' `values`: `fallback` when absent, a UsageError saying `what` when `ok` refuses it. */
export function numberFlag<F extends number | undefined>(values: ReadonlyMap<string, string>, flag: string, fallback: F, ok: (n: number) => boolean, what: string): number | F {
  const v = values.get(flag);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!ok(n)) throw new UsageError(`${flag} needs ${what}, got '${v}'`);
  return n;
}

/** A flag that counts something, at least 1 (`fallback` when absent). */
export function positiveIntFlag(values: ReadonlyMap<string, string>, flag: string, fallback: number): number {
  return numberFlag(values, flag, fallback, (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer');
}

/** A flag that is a size, index or seed, 0 or more (`fallback` when absent). */
export function nonNegativeIntFlag<F extends number | undefined>(values: ReadonlyMap<string, string>, flag: string, fallback: F): number | F {
  return numberFlag(values, flag, fallback, (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer');
}
