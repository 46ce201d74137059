/**
 * The store's public data: what callers pass in (catalog entries, options) and get back (models,
 * progress, usage). Plain JSON, so every value crosses the worker boundary as it is.
 */

/** What the browser's `navigator.storage` offers; injected so the store runs in Node tests. */
export interface StorageManagerLike {
  estimate?(): Promise<{ usage?: number; quota?: number }>;
  persist?(): Promise<boolean>;
  persisted?(): Promise<boolean>;
}

/** A catalog entry to download. */
export interface ModelEntry {
  id: string;
  name?: string;
  /**
   * One URL, or one per part of a split model in order. A single URL named like
   * `m-00001-of-00003.gguf` is expanded to all its parts.
   */
  urls: string[];
  /** Total bytes of all parts, when the catalog knows it. */
  size?: number;
  /** Lowercase hex SHA-256: one for a single file, one per part for a split model. */
  sha256?: string | string[];
  quantization?: string;
}

export interface DownloadProgress {
  id: string;
  phase: 'downloading' | 'retrying' | 'verifying';
  /** 0-based part being transferred, of `parts`. */
  part: number;
  parts: number;
  /** Bytes received so far, all parts. */
  bytes: number;
  /** Total bytes, once known. */
  total: number | undefined;
  /** Bytes per second over the last few seconds. */
  rate: number;
  /** Seconds left at the current rate, when total and rate are known. */
  eta: number | undefined;
  /** In the `retrying` phase: the failed attempt's number, the wait, and why. */
  attempt?: number;
  retryInMs?: number;
  reason?: string;
}

export interface DownloadOptions {
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborting pauses: the bytes stored so far stay, and `download` again resumes. */
  signal?: AbortSignal;
}

export interface ImportOptions {
  /** Copy into IndexedDB (survives reloads) or read the file in place (this session only). */
  copy: boolean;
  id?: string;
  name?: string;
  quantization?: string;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

/** A LoRA adapter's header, as the store lists it. */
export interface StoredAdapter {
  /** `adapter.type`: 'lora' is the one the engine loads. */
  type: string;
  /** Largest rank over its tensors. */
  rank: number;
  alpha: number;
  /** Adapted base tensors. */
  targets: number;
}

export interface CachedModel {
  id: string;
  name: string;
  /**
   * What the file is, read from `general.type` when it was stored: a model to load, or a LoRA
   * adapter to attach to a loaded model of `architecture`. Undefined while a download is partial.
   */
  kind: 'model' | 'adapter' | undefined;
  /** `general.architecture` (an adapter's: the base it is made for), once known. */
  architecture: string | undefined;
  /** Adapters only. */
  adapter?: StoredAdapter;
  /** Total bytes, when known. */
  size: number | undefined;
  /** Bytes held in IndexedDB (0 for a file read in place). */
  storedBytes: number;
  quantization: string | undefined;
  state: 'complete' | 'partial';
  /** `download`: from URLs; `file`: copied from a local file; `session`: a local file read in place. */
  origin: 'download' | 'file' | 'session';
  parts: number;
  /** SHA-256 per part, once complete and verified against the catalog's (undefined without one). */
  sha256: string[] | undefined;
  createdAt: number;
  lastUsed: number | undefined;
}

export interface StoreUsage {
  /** Bytes the store holds in IndexedDB, all models. */
  modelBytes: number;
  /** The origin's usage and quota from `navigator.storage.estimate()`, when available. */
  usage: number | undefined;
  quota: number | undefined;
  /** Whether the browser granted persistent storage (not evicted under pressure). */
  persisted: boolean | undefined;
}
