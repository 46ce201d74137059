import { HearthError } from '../errors.ts';

/**
 * Detail of a {@link GgufFormatError}: where in the file the problem is and what a valid file has
 * there. Plain JSON (bigints are written as decimal strings) so it crosses a worker boundary.
 */
export interface GgufFormatErrorDetail extends Record<string, unknown> {
  /** Absolute byte offset in the file of the field that failed validation. */
  offset: number;
  /** What a valid file has at that offset, in words ("magic 'GGUF'", "power of two"). */
  expected: string;
  /** The value found, when it helps. */
  actual?: string | number;
  /** The metadata key or tensor name being read. */
  key?: string;
  tensor?: string;
  /** The source's name (file name or URL), when it has one. */
  source?: string;
}

/**
 * A GGUF file (or a set of split parts) is malformed, truncated, unsupported, or exceeds a limit.
 * Every failure of the reader on bad input is this class, never a RangeError or an allocation
 * failure: the file is untrusted input.
 */
export class GgufFormatError extends HearthError {
  override name = 'GgufFormatError';
  declare readonly detail: GgufFormatErrorDetail;

  constructor(message: string, detail: GgufFormatErrorDetail) {
    super(message.startsWith('GGUF') ? message : `GGUF: ${message}`, detail);
  }
}

/**
 * A byte source could not deliver what was asked: an HTTP server that ignores Range requests, a
 * short read, a file that changed size while being read. Distinct from a malformed file.
 */
export class GgufSourceError extends HearthError {
  override name = 'GgufSourceError';
}
