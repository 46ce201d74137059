import { describe, expect, it } from 'vitest';
import { nonNegativeIntFlag, numberFlag, positiveIntFlag, UsageError } from './command.ts';

describe('number flags', () => {
  const values = new Map([['--runs', '3'], ['--zero', '0'], ['--half', '0.5'], ['--word', 'ten'], ['--big', '1e20']]);

  it('read the value, or the fallback when the flag is absent', () => {
    expect(positiveIntFlag(values, '--runs', 9)).toBe(3);
    expect(positiveIntFlag(values, '--absent', 9)).toBe(9);
    expect(nonNegativeIntFlag(values, '--zero', 5)).toBe(0);
    expect(nonNegativeIntFlag(values, '--absent', undefined)).toBeUndefined();
    expect(numberFlag(values, '--half', 1, (n) => n > 0, 'a positive number')).toBe(0.5);
  });

  it('refuse a bad value with a UsageError naming the flag and the value', () => {
    for (const flag of ['--zero', '--half', '--word', '--big']) {
      expect(() => positiveIntFlag(values, flag, 1)).toThrow(UsageError);
      expect(() => positiveIntFlag(values, flag, 1)).toThrow(`${flag} needs a positive integer, got '${values.get(flag)}'`);
    }
    expect(() => nonNegativeIntFlag(values, '--half', 1)).toThrow("--half needs a non-negative integer, got '0.5'");
    expect(() => numberFlag(values, '--word', 1, Number.isFinite, 'a number')).toThrow("--word needs a number, got 'ten'");
  });
});
