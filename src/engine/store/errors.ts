/**
 * Model store errors. Each names what happened and what the person can do about it; `detail` holds
 * the numbers (bytes, status codes, URLs) as plain JSON so it crosses the worker boundary.
 */
import { HearthError } from '../errors.ts';

/** Not enough storage: refused before a download, or the browser's quota ran out mid-way. */
export class StorageQuotaError extends HearthError {
  override name = 'StorageQuotaError';
}

/**
 * The download could not finish: the server answered 404/403/5xx, the connection kept failing
 * after the retries, or the server sent something other than the file. `detail.partialBytes`
 * says how much is kept for a resume.
 */
export class DownloadError extends HearthError {
  override name = 'DownloadError';
}

/**
 * The bytes are not the model they should be: wrong size, SHA-256 mismatch, not a GGUF file, a
 * missing chunk in the cache. The damaged data is deleted; downloading again is the remedy.
 */
export class IntegrityError extends HearthError {
  override name = 'IntegrityError';
}

/** No cached model with that id, or it is only partly downloaded. */
export class ModelNotFoundError extends HearthError {
  override name = 'ModelNotFoundError';
}

/** A download of that model is already running in this store. */
export class DownloadInProgressError extends HearthError {
  override name = 'DownloadInProgressError';
}

/** Sizes in messages people read: binary units, as everywhere in the app. */
export { formatBytes } from '../format-bytes.ts';
