/**
 * Sizes as people read them, in binary units (KiB, MiB, GiB) everywhere: in the engine's messages
 * and in the UI, so one model never shows as "58 MB" in one place and "55.3 MiB" in another.
 */

/** `1.5 GiB`, `320 MiB`, `512 bytes`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'an unknown size';
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} bytes`;
  return `${Number.isInteger(value) || value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** `45 s`, `3 min 20 s`, `1 h 5 min`: a time left, rounded up to what matters. */
export function formatDuration(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.round((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ''}`;
}
