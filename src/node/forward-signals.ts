/**
 * Runs a child process in the place of this one: stdio inherited, the signals that ask a process
 * to stop passed on to the child, and the child's exit code returned (128 + the signal's number
 * when a signal ended it, as a shell reports it). The CLI re-launches itself this way when Dawn
 * needs a software Vulkan driver; a blocking spawnSync there left a `kill -TERM` of the parent
 * alone with the child (`hearth serve`) still running, orphaned.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { constants } from 'node:os';

/**
 * SIGINT is passed on only when stdin is not a terminal: a terminal's Ctrl-C already reaches every
 * process of its foreground group, the child included, and a second copy would cut short the
 * child's graceful stop (`hearth serve` exits at once on a second interrupt).
 */
function forwarded(): NodeJS.Signals[] {
  return process.stdin.isTTY ? ['SIGTERM', 'SIGHUP'] : ['SIGTERM', 'SIGHUP', 'SIGINT'];
}

export function runForwardingSignals(command: string, args: readonly string[], options: Pick<SpawnOptions, 'env' | 'cwd'> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: 'inherit' });
    const signals = forwarded();
    const pass = (signal: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    for (const signal of signals) process.on(signal, pass);
    const detach = () => {
      for (const signal of signals) process.off(signal, pass);
    };
    child.once('error', (error) => {
      detach();
      reject(error);
    });
    child.once('exit', (code, signal) => {
      detach();
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}
