/** One-line descriptions for the progress log (platform-agnostic: the page logs them too). */
import { adapterName as nameOf, type AdapterReport } from '../engine/backend/webgpu/probe.ts';
import type { RunSample } from './types.ts';

export function adapterName(a: Pick<AdapterReport, 'vendor' | 'architecture' | 'device' | 'description'>): string {
  return nameOf(a, true) || 'unknown adapter';
}

export function describeSample(s: RunSample): string {
  const decode = Object.entries(s.decodeTps).map(([c, v]) => `decode@${c} ${v.toFixed(2)} tok/s`);
  return [
    `load ${(s.loadMs / 1000).toFixed(2)} s`,
    ...(s.warmupMs !== undefined ? [`warmup ${(s.warmupMs / 1000).toFixed(2)} s`] : []),
    `ttft ${(s.ttftMs / 1000).toFixed(2)} s`,
    `prefill ${s.prefillTps.toFixed(1)} tok/s`,
    ...decode,
    ...(s.decodeHost
      ? [
          `host ${s.decodeHost.hostMsPerToken.toFixed(3)} ms/tok (submit ${s.decodeHost.submitMsPerToken.toFixed(3)}), ${s.decodeHost.dispatchesPerToken.toFixed(0)} dispatches, ` +
            `${s.decodeHost.submitsPerToken.toFixed(2)} submits, ${s.decodeHost.objectsPerToken.toFixed(2)} objects per token`,
        ]
      : []),
  ].join(', ');
}
