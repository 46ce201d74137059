/** The pure arithmetic of the report: medians with their spread, ratios to peers, the decode floor. */
import type { RunSample } from './types.ts';

/** Median and the min–max spread of a set of runs. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function stat(values: readonly number[]): Stat | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, runs: v.length };
}

/** Every figure of a runtime's runs, summarized. */
export interface Summary {
  loadMs?: Stat | undefined;
  warmupMs?: Stat | undefined;
  ttftMs?: Stat | undefined;
  prefillTps?: Stat | undefined;
  decodeTps: Record<string, Stat | undefined>;
  peakDeviceBytes?: Stat | undefined;
  peakHeapBytes?: Stat | undefined;
  /** Decode's host costs per token (WebGPU runtimes). */
  host?: HostSummary | undefined;
}

export interface HostSummary {
  hostMsPerToken: Stat;
  /** 1000 / the median host ms per token: the decode rate host time alone allows. */
  ceilingTps: number;
  submitMsPerToken: Stat | undefined;
  dispatchesPerToken: Stat | undefined;
  submitsPerToken: Stat | undefined;
  objectsPerToken: Stat | undefined;
}

export function summarize(samples: readonly RunSample[]): Summary {
  const pick = (f: (s: RunSample) => number | undefined) => stat(samples.map(f).filter((x): x is number => x !== undefined));
  const contexts = [...new Set(samples.flatMap((s) => Object.keys(s.decodeTps)))];
  return {
    loadMs: pick((s) => s.loadMs),
    warmupMs: pick((s) => s.warmupMs),
    ttftMs: pick((s) => s.ttftMs),
    prefillTps: pick((s) => s.prefillTps),
    decodeTps: Object.fromEntries(contexts.map((c) => [c, pick((s) => s.decodeTps[c])])),
    peakDeviceBytes: pick((s) => s.peakDeviceBytes),
    peakHeapBytes: pick((s) => s.peakHeapBytes),
    host: summarizeHost(samples),
  };
}

function summarizeHost(samples: readonly RunSample[]): HostSummary | undefined {
  const costs = samples.flatMap((s) => (s.decodeHost ? [s.decodeHost] : []));
  const hostMsPerToken = stat(costs.map((c) => c.hostMsPerToken));
  if (!hostMsPerToken) return undefined;
  return {
    hostMsPerToken,
    ceilingTps: 1000 / hostMsPerToken.median,
    submitMsPerToken: stat(costs.map((c) => c.submitMsPerToken)),
    dispatchesPerToken: stat(costs.map((c) => c.dispatchesPerToken)),
    submitsPerToken: stat(costs.map((c) => c.submitsPerToken)),
    objectsPerToken: stat(costs.map((c) => c.objectsPerToken)),
  };
}

/** ours / peer of two medians; undefined when either is missing or the peer's is 0. */
export function ratio(ours: Stat | undefined, peer: Stat | undefined): number | undefined {
  if (!ours || !peer || peer.median === 0) return undefined;
  return ours.median / peer.median;
}

/** Ratios of the speed figures (higher is better for tok/s, lower for ms). */
export function ratios(ours: Summary, peer: Summary): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {
    loadMs: ratio(ours.loadMs, peer.loadMs),
    ttftMs: ratio(ours.ttftMs, peer.ttftMs),
    prefillTps: ratio(ours.prefillTps, peer.prefillTps),
  };
  for (const c of Object.keys(ours.decodeTps)) out[`decodeTps@${c}`] = ratio(ours.decodeTps[c], peer.decodeTps[c]);
  return out;
}

/**
 * The decode bandwidth floor: a decode step reads each weight matrix once, so with
 * `weightBytesPerToken` bytes and a device that streams `bytesPerS`, no runtime exceeds
 * bytesPerS / weightBytesPerToken tokens/s (KV-cache reads only lower it). `fraction` is the
 * measured decode rate over that ceiling.
 */
export function decodeFloor(weightBytesPerToken: number, bytesPerS: number, decodeTps?: number): { floorMsPerToken: number; ceilingTps: number; fraction?: number } {
  if (!(weightBytesPerToken > 0) || !(bytesPerS > 0)) throw new RangeError('decodeFloor: bytes per token and bandwidth must be positive');
  const ceilingTps = bytesPerS / weightBytesPerToken;
  return { floorMsPerToken: 1000 / ceilingTps, ceilingTps, ...(decodeTps !== undefined ? { fraction: decodeTps / ceilingTps } : {}) };
}

/**
 * Weight bytes one decode step reads: every 2-D tensor except the token embedding (of which a step
 * reads one row), unless the embedding is also the output projection (tied), which reads it whole.
 * A 3-D expert tensor ([k, rows, experts]: a mixture of experts) is read for `expertsUsed` of its
 * experts only; without that count, whole (what the file holds, not what a step reads).
 */
export function weightBytesPerToken(tensors: ReadonlyArray<{ name: string; shape: readonly number[]; byteSize: number }>, expertsUsed?: number): number {
  const tied = !tensors.some((t) => t.name === 'output.weight');
  let bytes = 0;
  for (const t of tensors) {
    if (t.shape.length < 2) continue;
    if (t.name === 'token_embd.weight' && !tied) continue;
    const experts = t.shape.length >= 3 ? t.shape[2]! : 1;
    bytes += expertsUsed !== undefined && experts > 1 ? (t.byteSize * Math.min(expertsUsed, experts)) / experts : t.byteSize;
  }
  return bytes;
}
