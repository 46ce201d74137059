/**
 * A request body read whole, up to a limit, and parsed as a JSON object. Too large is a 413 (checked
 * against Content-Length before anything is read, and again as the bytes arrive), not JSON or not an
 * object a 400.
 */
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.ts';

export async function readJsonObject(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const tooLarge = () => new ApiError(413, `The request body is larger than the server's limit of ${maxBytes} bytes.`, 'invalid_request_error', null, 'request_too_large');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw tooLarge();
  }
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > maxBytes) {
      req.resume();
      throw tooLarge();
    }
    parts.push(part);
  }
  const text = Buffer.concat(parts).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, `The request body is not valid JSON: ${(error as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, 'The request body must be a JSON object.', 'invalid_request_error', null, 'invalid_json');
  }
  return value as Record<string, unknown>;
}
