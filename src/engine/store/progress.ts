/** Progress events of a transfer: the moving rate, the time left, and how often they are sent. */
import type { DownloadProgress, DownloadOptions } from './types.ts';

/** What a transfer step knows; the rest of a {@link DownloadProgress} is filled in by the emitter. */
export type PartProgress = Omit<DownloadProgress, 'id' | 'parts' | 'total' | 'rate' | 'eta'>;

/** Sends a progress event; without `force`, at most one every 100 ms. */
export type EmitProgress = (progress: PartProgress, force?: boolean) => void;

/** Moving rate over the last few seconds, for progress events (downloads, copies, loads). */
export class RateMeter {
  private samples: Array<{ t: number; bytes: number }> = [];
  constructor(private readonly now: () => number) {}
  add(bytes: number): number {
    const t = this.now();
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > 3000) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (t - first.t) / 1000;
    return dt > 0 ? (bytes - first.bytes) / dt : 0;
  }
}

/** The emitter for one transfer of model `id` (`parts` files, `total` bytes). */
export function progressEmitter(
  model: { id: string; parts: number; total: number },
  onProgress: DownloadOptions['onProgress'],
  now: () => number,
): EmitProgress {
  const meter = new RateMeter(now);
  let lastEmit = 0;
  return (progress, force = false) => {
    if (!onProgress) return;
    const rate = meter.add(progress.bytes);
    const t = now();
    if (!force && t - lastEmit < 100) return;
    lastEmit = t;
    const eta = rate > 0 ? (model.total - progress.bytes) / rate : undefined;
    onProgress({ id: model.id, parts: model.parts, total: model.total, rate, eta, ...progress });
  };
}
