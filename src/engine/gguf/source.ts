/**
 * Ranged byte sources: the reader asks for `(offset, length)` windows and never needs the whole
 * file, so the same parser works on an in-memory buffer, a `File`/`Blob` from a file picker, an HTTP
 * server with Range support, IndexedDB chunks, or a Node file (src/node/file-source.ts).
 */
import { GgufSourceError } from './errors.ts';

export interface RangedSource {
  /** Total size in bytes. */
  readonly size: number;
  /** File name or URL, for error messages. */
  readonly name?: string;
  /**
   * Exactly `length` bytes starting at `offset` (callers stay within `size`). The returned bytes
   * may be a view into a shared buffer: callers must not modify them.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases an underlying handle, where the source has one. */
  close?(): Promise<void>;
}

/** Throws unless [offset, offset + length) lies inside a source of `size` bytes. */
export function checkRange(source: { size: number; name?: string }, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > source.size
  ) {
    throw new GgufSourceError(
      `read of ${length} bytes at offset ${offset} is outside ${source.name ?? 'the source'} (${source.size} bytes)`,
      { offset, length, size: source.size, source: source.name },
    );
  }
}

/** Throws unless a source returned exactly the bytes asked for. */
export function checkLength(source: { name?: string }, offset: number, length: number, got: number): void {
  if (got !== length) {
    throw new GgufSourceError(
      `short read from ${source.name ?? 'the source'}: ${got} of ${length} bytes at offset ${offset} (did the file change?)`,
      { offset, length, got, source: source.name },
    );
  }
}

export function bytesSource(bytes: Uint8Array, name?: string): RangedSource {
  const source: RangedSource = {
    size: bytes.length,
    ...(name !== undefined ? { name } : {}),
    async read(offset, length) {
      checkRange(source, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
  return source;
}

/** A `Blob` or `File` (its `name` is used when present). Reads with `Blob.slice`, never whole. */
export function blobSource(blob: Blob, name?: string): RangedSource {
  const label = name ?? (typeof (blob as File).name === 'string' ? (blob as File).name : undefined);
  const source: RangedSource = {
    size: blob.size,
    ...(label !== undefined ? { name: label } : {}),
    async read(offset, length) {
      checkRange(source, offset, length);
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      checkLength(source, offset, length, bytes.length);
      return bytes;
    },
  };
  return source;
}

export interface HttpRangeOptions {
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Extra request headers (authorization for a private mirror, for example). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Parses `Content-Range: bytes start-end/total`; total is NaN when the server sent `*`. */
export function parseContentRange(header: string | null): { start: number; end: number; total: number } | undefined {
  const match = header === null ? null : /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header);
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === '*' ? NaN : Number(match[3]) };
}

/**
 * A URL read with HTTP Range requests. Every response must be `206 Partial Content` with a
 * `Content-Range` for exactly the bytes asked: a server that answers 200 with the whole file would
 * otherwise turn a header read into a multi-gigabyte download. Without `size`, one 1-byte range
 * request learns it from `Content-Range`.
 */
export async function httpRangeSource(url: string, size?: number, options: HttpRangeOptions = {}): Promise<RangedSource> {
  const doFetch = options.fetch ?? fetch;

  async function fetchRange(offset: number, length: number): Promise<{ bytes: Uint8Array; total: number }> {
    const last = offset + length - 1;
    const response = await doFetch(url, {
      headers: { ...options.headers, Range: `bytes=${offset}-${last}` },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (response.status !== 206) {
      // Cancel the body: a 200 here may be the whole multi-gigabyte file.
      await response.body?.cancel().catch(() => undefined);
      throw new GgufSourceError(
        `${url}: expected 206 Partial Content for bytes ${offset}-${last}, got ${response.status} ${response.statusText}` +
          (response.status === 200 ? ' (the server does not support Range requests)' : ''),
        { offset, length, status: response.status, source: url },
      );
    }
    const range = parseContentRange(response.headers.get('Content-Range'));
    if (!range || range.start !== offset || range.end !== last) {
      await response.body?.cancel().catch(() => undefined);
      throw new GgufSourceError(
        `${url}: Content-Range '${response.headers.get('Content-Range')}' does not match the requested bytes ${offset}-${last}`,
        { offset, length, source: url },
      );
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length !== length) {
      throw new GgufSourceError(`${url}: got ${bytes.length} bytes for a ${length}-byte range at offset ${offset}`, {
        offset,
        length,
        got: bytes.length,
        source: url,
      });
    }
    return { bytes, total: range.total };
  }

  let total = size;
  if (total === undefined) {
    const probe = await fetchRange(0, 1);
    if (!Number.isSafeInteger(probe.total)) {
      throw new GgufSourceError(`${url}: the server did not report the file size in Content-Range`, { offset: 0, source: url });
    }
    total = probe.total;
  }
  const source: RangedSource = {
    size: total,
    name: url,
    async read(offset, length) {
      checkRange(source, offset, length);
      if (length === 0) return new Uint8Array(0);
      const { bytes, total: reported } = await fetchRange(offset, length);
      if (!Number.isNaN(reported) && reported !== source.size) {
        throw new GgufSourceError(`${url}: the file is now ${reported} bytes, expected ${source.size} (did it change?)`, {
          offset,
          source: url,
        });
      }
      return bytes;
    },
  };
  return source;
}
