/**
 * `hearth tokenize`: the ids it prints for a text file equal llama.cpp's for the same bytes and
 * flags, BOS only with --add-special, special tokens only with --parse-special.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { llamaRefTokenize } from '../../src/testing/llama-ref.ts';
import { vocabPath } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-tokenize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hearth(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/hearth.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('hearth tokenize', () => {
  // Text with a chat marker, non-ASCII, and a byte that is not UTF-8.
  const bytes = Uint8Array.from([...new TextEncoder().encode('<|im_start|>user\nH\u00E9llo  w\u00F6rld \u{1F999} '), 0xff, 0x21]);
  const file = join(dir, 'text.bin');
  writeFileSync(file, bytes);

  for (const [vocab, flags] of [
    ['qwen2', []],
    ['qwen2', ['--parse-special']],
    ['llama-bpe', ['--add-special', '--parse-special']],
    ['llama-spm', ['--add-special']],
    ['llama-spm', []],
  ] as const) {
    it(`${vocab} ${flags.join(' ') || '(no flags)'}`, () => {
      const r = hearth(['tokenize', vocabPath(vocab), '--text-file', file, ...flags, '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const ids = JSON.parse(r.stdout) as number[];
      const expected = llamaRefTokenize(vocabPath(vocab), bytes, {
        addSpecial: flags.includes('--add-special' as never),
        parseSpecial: flags.includes('--parse-special' as never),
      });
      expect(ids).toEqual(expected);
      if (vocab === 'llama-spm') expect(ids[0] === 1, 'BOS (id 1) only with --add-special').toBe(flags.length > 0);
    }, 60_000);
  }

  it('rejects a missing --text-file as a usage error', () => {
    const r = hearth(['tokenize', vocabPath('qwen2'), '--json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--text-file');
  });
});
