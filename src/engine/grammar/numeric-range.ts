/**
 * GBNF for JSON numbers within bounds: integers in [lo, hi] (either side may be open), written as
 * JSON writes them (no leading zeros, no "-0"), and numbers with integer bounds. An integer range is
 * cut by digit count, and a range of equal-length digit strings by its first digit: the digits both
 * ends share, then a branch for the low end's first digit, one for the digits strictly between
 * (any digits after them) and one for the high end's.
 */

/** Digits at most of an integer whose range is open upwards (as the unbounded integer rule has). */
export const MAX_INTEGER_DIGITS = 16;

/** Equal-length digit strings from `a` to `b` (a <= b). */
function sameLength(a: string, b: string): string {
  if (a.length === 0) return '';
  if (a === b) return `"${a}"`;
  if (a[0] === b[0]) return [`"${a[0]}"`, sameLength(a.slice(1), b.slice(1))].filter(Boolean).join(' ');
  const rest = a.length - 1;
  const lowFull = /^0*$/.test(a.slice(1));
  const highFull = /^9*$/.test(b.slice(1));
  const a0 = Number(a[0]);
  const b0 = Number(b[0]);
  const any = rest === 0 ? '' : rest === 1 ? ' [0-9]' : ` [0-9]{${rest}}`;
  const parts: string[] = [];
  if (!lowFull) parts.push(`"${a0}" ${sameLength(a.slice(1), '9'.repeat(rest))}`);
  const from = lowFull ? a0 : a0 + 1;
  const to = highFull ? b0 : b0 - 1;
  if (from <= to) parts.push(`${from === to ? `"${from}"` : `[${from}-${to}]`}${any}`);
  if (!highFull) parts.push(`"${b0}" ${sameLength('0'.repeat(rest), b.slice(1))}`);
  return parts.length === 1 ? parts[0]! : `(${parts.join(' | ')})`;
}

/**
 * Non-negative integers in [lo, hi] (safe integers; hi undefined: any of up to MAX_INTEGER_DIGITS
 * digits), or undefined when there are none.
 */
function naturals(lo: number, hi: number | undefined): string | undefined {
  if (hi !== undefined && lo > hi) return undefined;
  const loDigits = String(lo).length;
  if (hi === undefined && loDigits > MAX_INTEGER_DIGITS) return undefined;
  const hiDigits = hi === undefined ? loDigits : String(hi).length;
  const parts: string[] = [];
  for (let d = loDigits; d <= hiDigits; d++) {
    const from = d === loDigits ? String(lo) : `1${'0'.repeat(d - 1)}`;
    const to = hi !== undefined && d === hiDigits ? String(hi) : '9'.repeat(d);
    parts.push(sameLength(from, to));
  }
  // Open upwards: every longer length, whole, in one rule.
  if (hi === undefined && loDigits < MAX_INTEGER_DIGITS) parts.push(`[1-9] [0-9]{${loDigits},${MAX_INTEGER_DIGITS - 1}}`);
  return parts.length === 1 ? parts[0]! : `(${parts.join(' | ')})`;
}

/** JSON integers in [lo, hi] (safe integers; undefined: open on that side), or undefined when there are none. */
export function integerRange(lo: number | undefined, hi: number | undefined): string | undefined {
  const parts: string[] = [];
  if (lo === undefined || lo < 0) {
    // Negative: "-" and a magnitude in [max(1, -hi), -lo].
    const magnitudes = naturals(hi === undefined || hi >= 0 ? 1 : -hi, lo === undefined ? undefined : -lo);
    if (magnitudes) parts.push(`"-" ${magnitudes}`);
  }
  if (hi === undefined || hi >= 0) {
    const nonNegative = naturals(Math.max(0, lo ?? 0), hi);
    if (nonNegative) parts.push(nonNegative);
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0]! : `(${parts.join(' | ')})`;
}

/**
 * JSON numbers x with `lo` <= x <= `hi` (or < when exclusive), integer bounds (undefined: open),
 * without an exponent: the integers of the range, and numbers with a non-zero fraction whose
 * integer part n keeps them inside (x in (n, n + 1) for x >= 0, in (-(n + 1), -n) below zero).
 */
export function numberRange(lo: number | undefined, loExclusive: boolean, hi: number | undefined, hiExclusive: boolean): string | undefined {
  const fraction = '"." [0-9]{0,15} [1-9]';
  const parts: string[] = [];
  const ints = integerRange(lo === undefined ? undefined : loExclusive ? lo + 1 : lo, hi === undefined ? undefined : hiExclusive ? hi - 1 : hi);
  if (ints) parts.push(ints);
  // x in (n, n + 1): lo <= n and n + 1 <= hi, exclusive or not.
  const positive = naturals(Math.max(0, lo ?? 0), hi === undefined ? undefined : hi - 1);
  if (positive) parts.push(`${positive} ${fraction}`);
  // x in (-(n + 1), -n): n <= -lo - 1 and -n <= hi.
  if (lo === undefined || lo < 0) {
    const negative = naturals(Math.max(0, hi === undefined ? 0 : -hi), lo === undefined ? undefined : -lo - 1);
    if (negative) parts.push(`"-" ${negative} ${fraction}`);
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0]! : `(${parts.join(' | ')})`;
}
