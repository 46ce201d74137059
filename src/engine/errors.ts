/**
 * Named engine errors. Every error the engine raises on purpose has a stable `name` (callers switch
 * on it, it survives the worker boundary) and a message a person can act on. `detail` carries what a
 * developer needs to debug (offsets, sizes, adapter info) and is plain JSON so it crosses Comlink.
 */
export class HearthError extends Error {
  readonly detail: Record<string, unknown> | undefined;

  constructor(message: string, detail?: Record<string, unknown>) {
    super(message);
    this.detail = detail;
    // `name` identifies the class after a postMessage, where `instanceof` no longer works. Each
    // subclass also sets it as a string literal (`override name = 'X'`): the page bundle is minified
    // without keepNames, where `new.target.name` would be a mangled name (tests/error-names.test.ts).
    this.name = new.target.name;
  }
}

/** The page or process has no usable WebGPU adapter. */
export class WebGPUUnavailableError extends HearthError {
  override name = 'WebGPUUnavailableError';
}

/** The GPU device was lost (driver reset, tab backgrounded on some platforms, out of memory). */
export class DeviceLostError extends HearthError {
  override name = 'DeviceLostError';
}

/** Plain-object form of an error, as it crosses a worker or process boundary. */
export interface SerializedError {
  name: string;
  message: string;
  detail?: Record<string, unknown> | undefined;
  stack?: string | undefined;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const detail = error instanceof HearthError ? error.detail : undefined;
    return { name: error.name, message: error.message, detail, stack: error.stack };
  }
  return { name: 'Error', message: String(error) };
}

/** Rebuilds an Error whose `name`, `message` and `detail` equal the serialized one. */
export function deserializeError(data: SerializedError): Error {
  const error = new HearthError(data.message, data.detail);
  error.name = data.name;
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}
