import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const HELPER = fileURLToPath(new URL('./forward-signals.ts', import.meta.url));

/**
 * A parent process (Node with tsx, as bin/hearth.js runs) that runs `childCode` through
 * runForwardingSignals and exits with what it returns. Resolves once the child printed its pid.
 */
async function parentOf(childCode: string) {
  const driver = `const { runForwardingSignals } = await import(${JSON.stringify(HELPER)});
process.exitCode = await runForwardingSignals(process.execPath, ['-e', ${JSON.stringify(childCode)}]);`;
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', driver], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  parent.stdout.setEncoding('utf8');
  const exited = new Promise<number | null>((resolve) => parent.once('exit', (code) => resolve(code)));
  const childPid = await new Promise<number>((resolve, reject) => {
    parent.stdout.on('data', (text: string) => {
      out += text;
      const m = /pid (\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`the parent exited before its child started: ${out}`)));
  });
  return { parent, childPid, exited, output: () => out };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('runForwardingSignals', () => {
  it('passes SIGTERM and SIGINT sent to the parent alone on to the child, and returns its exit code', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const run = await parentOf(`process.on('${signal}', () => { console.log('child stopping on ${signal}'); process.exit(7); });
console.log('pid ' + process.pid); setInterval(() => {}, 1000);`);
      run.parent.kill(signal);
      expect(await run.exited).toBe(7);
      expect(run.output()).toContain(`child stopping on ${signal}`);
      expect(alive(run.childPid)).toBe(false);
    }
  }, 30_000);

  it('a child ended by the signal makes the parent exit with 128 + its number', async () => {
    const run = await parentOf(`console.log('pid ' + process.pid); setInterval(() => {}, 1000);`);
    run.parent.kill('SIGTERM');
    expect(await run.exited).toBe(143);
    expect(alive(run.childPid)).toBe(false);
  }, 30_000);

  it('returns the exit code of a child that ends by itself', async () => {
    const run = await parentOf(`console.log('pid ' + process.pid); process.exitCode = 5;`);
    expect(await run.exited).toBe(5);
  }, 30_000);
});
