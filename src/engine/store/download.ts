/**
 * A part fetched over HTTP: its size from a one-byte Range request, then its bytes from where the
 * stored ones end (`Range: bytes=stored-`), so a paused or broken download resumes. Failures that
 * another attempt may fix come out as {@link RetryableError}; the caller decides when to retry.
 *
 * A resume must not splice two versions of a file. The part's validator (a strong ETag, else
 * Last-Modified) is recorded with the partial download and sent as `If-Range`: a server whose file
 * changed answers 200 with the new file instead of 206. A changed validator or size (on a 206, a 200
 * or a 416) comes out as {@link ResourceChangedError}, and the caller restarts the part from zero.
 */
import { parseContentRange } from '../gguf/source.ts';
import { writeChunks, type PartWrite } from './chunk-writer.ts';
import { DownloadError, formatBytes } from './errors.ts';
import { storedBytes, type ModelRecord } from './records.ts';
import { RetryableError, isAbort, retryDelay, sleep, type RetryPolicy } from './retry.ts';

export interface HttpOptions {
  fetch: typeof fetch;
  /** Extra request headers (a private mirror's authorization). */
  headers: Record<string, string>;
  retry: RetryPolicy;
}

/** The file on the server changed since the stored bytes were fetched: they must be fetched again. */
export class ResourceChangedError extends Error {
  override name = 'ResourceChangedError';
  constructor(
    message: string,
    readonly size: number,
    readonly validator: string | undefined,
  ) {
    super(message);
  }
}

/**
 * What identifies this version of the file, for `If-Range`: a strong ETag (If-Range refuses weak
 * ones), else Last-Modified, else undefined (then only the size can tell a change).
 */
export function validatorOf(response: Response): string | undefined {
  const etag = response.headers.get('ETag');
  if (etag && !etag.startsWith('W/')) return etag;
  return response.headers.get('Last-Modified') ?? undefined;
}

/** A part's size and validator, from a one-byte Range request (or a 200's Content-Length). */
export async function probeSize(http: HttpOptions, url: string, signal: AbortSignal | undefined): Promise<{ size: number; validator: string | undefined }> {
  let failures = 0;
  for (;;) {
    let response: Response;
    try {
      response = await http.fetch(url, { headers: { ...http.headers, Range: 'bytes=0-0' }, cache: 'no-store', ...(signal ? { signal } : {}) });
    } catch (error) {
      if (isAbort(error)) throw error;
      if (++failures >= http.retry.attempts) {
        throw new DownloadError(`Cannot reach ${url} (${(error as Error).message}). Check the connection and try again.`, { url });
      }
      await sleep(retryDelay(http.retry, failures), signal);
      continue;
    }
    await response.body?.cancel().catch(() => undefined);
    if (response.status === 206) {
      const total = parseContentRange(response.headers.get('Content-Range'))?.total;
      // NaN: the server sent `bytes 0-0/*`, so the size is still unknown.
      if (total !== undefined && !Number.isNaN(total)) return { size: total, validator: validatorOf(response) };
    } else if (response.status === 200) {
      const length = Number(response.headers.get('Content-Length') ?? NaN);
      if (Number.isSafeInteger(length) && !response.headers.get('Content-Encoding')) return { size: length, validator: validatorOf(response) };
    } else if (response.status >= 500 && ++failures < http.retry.attempts) {
      await sleep(retryDelay(http.retry, failures), signal);
      continue;
    } else {
      const error = httpError(undefined, url, response.status, response.statusText);
      if (error instanceof RetryableError) {
        throw new DownloadError(`${url} is not available: ${error.message} ${failures} times in a row. Try again later.`, {
          url,
          status: response.status,
        });
      }
      throw error;
    }
    throw new DownloadError(
      `${url} does not say how big the file is (no Content-Range or Content-Length visible; a cross-origin server must expose them with Access-Control-Expose-Headers).`,
      { url, status: response.status },
    );
  }
}

/** One HTTP attempt for a part, from its stored bytes to the end. */
export async function transferHttp(http: HttpOptions, target: PartWrite, url: string): Promise<void> {
  const { record, signal } = target;
  const part = record.parts[target.part]!;
  const start = part.stored;
  const headers: Record<string, string> = { ...http.headers, Range: `bytes=${start}-` };
  if (start > 0 && part.validator !== undefined) headers['If-Range'] = part.validator;
  let response: Response;
  try {
    response = await http.fetch(url, { headers, cache: 'no-store', ...(signal ? { signal } : {}) });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new RetryableError(`network error: ${(error as Error).message}`);
  }
  const changed = (size: number, why: string) => new ResourceChangedError(`"${record.name}" changed on the server (${why})`, size, validatorOf(response));
  const validator = validatorOf(response);
  const validatorChanged = validator !== undefined && part.validator !== undefined && validator !== part.validator;
  let skip = 0;
  if (response.status === 206) {
    const range = parseContentRange(response.headers.get('Content-Range'));
    if (range && !Number.isNaN(range.total) && range.total !== part.size) {
      await response.body?.cancel().catch(() => undefined);
      throw changed(range.total, `its size is now ${formatBytes(range.total)}, was ${formatBytes(part.size!)}`);
    }
    if (validatorChanged && start > 0) {
      await response.body?.cancel().catch(() => undefined);
      throw changed(part.size!, `${validator} instead of ${part.validator}`);
    }
    if (!range || range.start !== start) {
      await response.body?.cancel().catch(() => undefined);
      throw new DownloadError(
        `The server sent the wrong part of "${record.name}" (Content-Range '${response.headers.get('Content-Range')}' for a request from byte ${start} of ${part.size}). The file may have changed on the server; delete the partial download and try again.`,
        { id: record.id, url, contentRange: response.headers.get('Content-Range'), start, partialBytes: storedBytes(record) },
      );
    }
  } else if (response.status === 200) {
    const length = Number(response.headers.get('Content-Length') ?? NaN);
    if (start > 0 && (validatorChanged || (Number.isSafeInteger(length) && length !== part.size) || (part.validator !== undefined && validator === undefined))) {
      // With If-Range, a 200 is the new version of the file; without a validator, a new size says so.
      await response.body?.cancel().catch(() => undefined);
      throw changed(Number.isSafeInteger(length) ? length : part.size!, validatorChanged ? `${validator} instead of ${part.validator}` : 'the server sent the whole file again');
    }
    // The server ignores Range: the body is the whole file. Skip what is already stored.
    skip = start;
  } else if (response.status === 416) {
    await response.body?.cancel().catch(() => undefined);
    // `Content-Range: bytes */total` says how big the file is now.
    const match = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(response.headers.get('Content-Range') ?? '');
    const total = match ? Number(match[1]) : undefined;
    if (start === part.size && (total === undefined || total === part.size)) return;
    // Asked for bytes the server no longer has: the file shrank (or was replaced).
    throw changed(total ?? part.size!, `it no longer has byte ${start} (416)`);
  } else {
    await response.body?.cancel().catch(() => undefined);
    throw httpError(record, url, response.status, response.statusText);
  }
  if (start === 0 && validator !== undefined) part.validator = validator;
  if (!response.body) throw new RetryableError('empty response body');
  const reader = response.body.getReader();
  try {
    await writeChunks(target, reader, skip);
  } finally {
    // Stops the transfer when writeChunks gave up early (a harmless no-op after the end).
    await reader.cancel().catch(() => undefined);
  }
}

function httpError(record: ModelRecord | undefined, url: string, status: number, statusText: string): Error {
  const what = record ? `"${record.name}"` : url;
  const detail = { url, status, partialBytes: record ? storedBytes(record) : 0 };
  if (status === 404 || status === 410) return new DownloadError(`${what} was not found on the server (${status}). The link may be outdated.`, detail);
  if (status === 401 || status === 403) {
    return new DownloadError(`The server refused access to ${what} (${status}). The model may be gated: accept its license on the model hub, or use another link.`, detail);
  }
  if (status >= 500 || status === 408 || status === 429) return new RetryableError(`the server answered ${status} ${statusText}`.trim());
  return new DownloadError(`Unexpected answer ${status} ${statusText} from the server for ${what}.`, detail);
}
