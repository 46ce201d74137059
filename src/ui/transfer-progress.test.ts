import { describe, expect, it } from 'vitest';
import { transferText } from './TransferProgress.tsx';
import { formatBytes, formatDuration } from '../engine/format-bytes.ts';

describe('formatBytes: binary units everywhere (issue 19 item 13)', () => {
  it('names sizes in KiB, MiB, GiB', () => {
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(58 * 1024 * 1024)).toBe('58 MiB');
    expect(formatBytes(6_291_456 + 300_000)).toBe('6.3 MiB');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.5 GiB');
    expect(formatBytes(NaN)).toBe('an unknown size');
  });

  it('says how long is left in the unit that matters', () => {
    expect(formatDuration(0.2)).toBe('1 s');
    expect(formatDuration(200)).toBe('3 min 20 s');
    expect(formatDuration(3900)).toBe('1 h 5 min');
  });

  it('writes a transfer as percent, bytes of total, rate and time left', () => {
    expect(transferText({ done: 26 * 1024 ** 2, total: 58 * 1024 ** 2, rate: 12 * 1024 ** 2, eta: 2.7 })).toBe('44% · 26 MiB of 58 MiB · 12 MiB/s · 3 s left');
    expect(transferText({ done: 1024, total: undefined })).toBe('1 KiB');
  });
});

