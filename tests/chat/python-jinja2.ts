/**
 * Renders chat templates with Python's jinja2 (tests/chat/jinja2_render.py), the reference our
 * renderer is compared with. All cases go to one Python process.
 *
 * It needs Debian's python3-jinja2, installed for /usr/bin/python3 (scripts/setup.sh,
 * ensure_python_jinja2). A `python3` on PATH may be another interpreter without jinja2.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./jinja2_render.py', import.meta.url));

export interface PythonCase {
  template: string;
  context: Record<string, unknown>;
  /** [year, month, day, hour, minute, second] for strftime_now. */
  now: [number, number, number, number, number, number];
}

export type PythonResult =
  | { ok: true; text: string }
  | { ok: false; raised: boolean; message: string };

export function renderWithPython(cases: readonly PythonCase[]): PythonResult[] {
  let out: string;
  try {
    out = execFileSync(PYTHON, [SCRIPT], {
      input: JSON.stringify({ cases }),
      maxBuffer: 512 * 1024 * 1024,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '');
    const hint = stderr.includes("No module named 'jinja2'")
      ? ' Python jinja2 is missing: apt-get install -y python3-jinja2 (scripts/test.sh does it).'
      : '';
    throw new Error(`${PYTHON} ${SCRIPT} failed.${hint}\n${stderr.slice(-4000)}`);
  }
  const results = JSON.parse(out) as PythonResult[];
  if (results.length !== cases.length) throw new Error(`python rendered ${results.length} of ${cases.length} cases`);
  return results;
}
