/**
 * The recurrent state of a hybrid's sequence (mamba2, granitehybrid, lfm2), beside its KV cache:
 * per recurrent layer the convolution's last columns and (Mamba2) the scan state, in one
 * activation per layer on the backend, and a few snapshots of the whole state at known positions.
 *
 * A KV cache is truncated by forgetting positions; a recurrent state cannot be: it has folded every
 * token in. So every prefill chunk ends with a snapshot (the end of a prompt is the end of its last
 * chunk: where the next chat turn diverges from this one at the earliest), kept in a small ring,
 * and `rewind(n)` goes back to the latest snapshot at or before n (or to the empty state): the
 * caller re-evaluates from the position it returns. llama.cpp keeps one state per sequence and
 * re-evaluates the whole prompt when a turn diverges; the snapshots save that.
 */
import type { Activation, Backend, Region } from '../backend/ops.ts';
import type { ModelConfig } from './config.ts';

/** Snapshots kept (a ring): the last prefill chunks' ends. */
export const STATE_SNAPSHOTS = 2;

/** One recurrent layer's state regions: the conv columns, then (Mamba2) the scan state. */
export interface LayerState {
  conv: Region;
  scan: Region | undefined;
}

/** Floats of one recurrent layer's state: conv [kernel - 1][channels] (+ scan [heads][headDim][stateSize]). */
function layerFloats(c: ModelConfig, il: number): { conv: number; scan: number } {
  const mixer = c.layers[il]!.mixer;
  if (mixer === 'ssm') return { conv: (c.ssm!.convKernel - 1) * c.ssm!.convDim, scan: c.ssm!.inner * c.ssm!.stateSize };
  if (mixer === 'shortconv') return { conv: (c.shortConvWidth - 1) * c.nEmbd, scan: 0 };
  return { conv: 0, scan: 0 };
}

/** Bytes of one copy of a sequence's recurrent state (0 for a transformer). */
export function recurrentStateBytes(c: ModelConfig): number {
  let floats = 0;
  for (let il = 0; il < c.nLayer; il++) {
    const f = layerFloats(c, il);
    floats += f.conv + f.scan;
  }
  return floats * 4;
}

/** The largest single layer's state in bytes (one activation each: the backend's buffer limit applies). */
export function largestLayerStateBytes(c: ModelConfig): number {
  let largest = 0;
  for (let il = 0; il < c.nLayer; il++) {
    const f = layerFloats(c, il);
    largest = Math.max(largest, (f.conv + f.scan) * 4);
  }
  return largest;
}

interface Snapshot {
  /** Tokens folded in; -1 while the slot is empty. */
  position: number;
  layers: Activation[];
}

export class RecurrentState {
  private readonly live: (Activation | undefined)[];
  private readonly floats: number[];
  private readonly snapshots: Snapshot[];
  private nextSlot = 0;

  constructor(
    private readonly backend: Backend,
    private readonly config: ModelConfig,
    snapshots = STATE_SNAPSHOTS,
  ) {
    if (!backend.ssmConv || !backend.copy || !backend.zero) {
      throw new Error(`the ${backend.kind} backend has no recurrent-state ops`);
    }
    this.floats = config.layers.map((_, il) => {
      const f = layerFloats(config, il);
      return f.conv + f.scan;
    });
    this.live = this.floats.map((n, il) => (n > 0 ? backend.activation(`state.${il}`, n) : undefined));
    this.snapshots = Array.from({ length: snapshots }, (_, i) => ({
      position: -1,
      layers: this.floats.flatMap((n, il) => (n > 0 ? [backend.activation(`state.${il}.snapshot${i}`, n)] : [])),
    }));
  }

  /** Layer `il`'s live state, or undefined for an attention layer. */
  layer(il: number): LayerState | undefined {
    const t = this.live[il];
    if (!t) return undefined;
    const f = layerFloats(this.config, il);
    return {
      conv: { t, offset: 0, floats: f.conv },
      scan: f.scan > 0 ? { t, offset: f.conv, floats: f.scan } : undefined,
    };
  }

  /** Records zeroing the live state (a new sequence) and forgets the snapshots. */
  recordReset(): void {
    for (const t of this.live) if (t) this.backend.zero!({ t, offset: 0, floats: t.floats });
    for (const s of this.snapshots) s.position = -1;
  }

  /** Records a copy of the live state, which has folded in `position` tokens, into the ring. */
  recordSnapshot(position: number): void {
    const slot = this.snapshots[this.nextSlot]!;
    this.nextSlot = (this.nextSlot + 1) % this.snapshots.length;
    let i = 0;
    for (const t of this.live) if (t) this.backend.copy!({ t, offset: 0, floats: t.floats }, { t: slot.layers[i++]!, offset: 0, floats: t.floats });
    slot.position = position;
  }

  /**
   * Records going back to the latest snapshot at or before `position` (the empty state if none)
   * and returns the position it holds. Snapshots past it are forgotten: they belong to another future.
   */
  recordRewind(position: number): number {
    let best: Snapshot | undefined;
    for (const s of this.snapshots) if (s.position >= 0 && s.position <= position && (!best || s.position > best.position)) best = s;
    if (!best) {
      this.recordReset();
      return 0;
    }
    let i = 0;
    for (const t of this.live) if (t) this.backend.copy!({ t: best.layers[i++]!, offset: 0, floats: t.floats }, { t, offset: 0, floats: t.floats });
    for (const s of this.snapshots) if (s.position > best.position) s.position = -1;
    return best.position;
  }
}
