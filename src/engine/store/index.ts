/** Model store: download, import, verify and read GGUF models cached in IndexedDB. */
export {
  ModelStore,
  fileModelId,
  DEFAULT_CHUNK_BYTES,
  type CachedModel,
  type DownloadOptions,
  type DownloadProgress,
  type ImportOptions,
  type ModelEntry,
  type ModelRecord,
  type ModelStoreOptions,
  type StorageManagerLike,
  type StoreUsage,
} from './model-store.ts';
export { DownloadError, DownloadInProgressError, IntegrityError, ModelNotFoundError, StorageQuotaError, formatBytes } from './errors.ts';
export { Sha256, sha256Hex, type Sha256State } from './sha256.ts';
export { DEFAULT_STALL_MS, NetworkStallError, stallGuardedFetch } from './stall-fetch.ts';
export type { LockManagerLike } from './locks.ts';
export { RateMeter } from './progress.ts';
