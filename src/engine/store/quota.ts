/**
 * Storage space: refuse a download that cannot fit before its first byte, explain a quota that
 * runs out mid-way, and ask the browser once to keep the models (`navigator.storage.persist()`).
 */
import { StorageQuotaError, formatBytes } from './errors.ts';
import { storedBytes, totalSize, type ModelRecord } from './records.ts';
import type { StorageManagerLike } from './types.ts';

/** Whether a failed write was the browser's quota running out. */
export const isQuota = (error: unknown) =>
  error instanceof Error && (error.name === 'QuotaExceededError' || /quota/i.test(error.message));

/** The error for a quota that ran out while `record` was being stored. */
export function quotaError(record: ModelRecord, cause: unknown): StorageQuotaError {
  const kept = storedBytes(record);
  return new StorageQuotaError(
    `Storage ran out while saving "${record.name}" after ${formatBytes(kept)} of ${formatBytes(totalSize(record))}. Free space (delete other models) and download again to resume, or delete the partial download.`,
    { id: record.id, partialBytes: kept, cause: (cause as Error).name },
  );
}

export class StorageQuota {
  private persistRequested = false;

  /** `storage`: the browser's `navigator.storage`, or null where there is none. */
  constructor(private readonly storage: StorageManagerLike | null) {}

  /** Throws {@link StorageQuotaError} when the rest of `record` cannot fit in the origin's quota. */
  async checkSpace(record: ModelRecord): Promise<void> {
    const needed = totalSize(record) - storedBytes(record);
    const estimate = await this.storage?.estimate?.().catch(() => undefined);
    if (!estimate || estimate.quota === undefined) return;
    const free = estimate.quota - (estimate.usage ?? 0);
    // IndexedDB stores a little more than the payload; 1% covers keys and records.
    if (needed * 1.01 > free) {
      throw new StorageQuotaError(
        `Not enough storage for "${record.name}": it needs ${formatBytes(needed)} more, but this browser allows only ${formatBytes(Math.max(0, free))} more for this site. Delete other models or free disk space, then try again.`,
        { id: record.id, neededBytes: needed, freeBytes: free, quota: estimate.quota, usage: estimate.usage },
      );
    }
  }

  /** Asks for persistent storage, once per store, unless the origin has it already. */
  async requestPersistence(): Promise<void> {
    if (this.persistRequested || !this.storage?.persist) return;
    this.persistRequested = true;
    const already = await this.storage.persisted?.().catch(() => false);
    if (!already) await this.storage.persist().catch(() => false);
  }

  /** The origin's usage and quota, and whether its storage is persistent, where the browser says. */
  async origin(): Promise<{ usage: number | undefined; quota: number | undefined; persisted: boolean | undefined }> {
    const estimate = await this.storage?.estimate?.().catch(() => undefined);
    const persisted = await this.storage?.persisted?.().catch(() => undefined);
    return { usage: estimate?.usage, quota: estimate?.quota, persisted };
  }
}
