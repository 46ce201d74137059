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

/** Whether the model has recurrent layers (a hybrid, or mamba2) and so a recurrent state. */
export function hasRecurrentLayers(c: ModelConfig): boolean {
  return c.layers.some((l) => l.mixer !== 'attention');
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

/** The whole of an activation, as a region. */
const whole = (t: Activation): Region => ({ t, offset: 0, floats: t.floats });

export class RecurrentState {
  /** Per layer its live state's regions (undefined for an attention layer), made once at load. */
  private readonly layers: (LayerState | undefined)[];
  /** The recurrent layers' live state activations; each snapshot holds one copy of each, in this order. */
  private readonly live: Activation[];
  private readonly snapshots: Snapshot[];
  private nextSlot = 0;

  /** The backend's copy and zero ops exist (the loader refuses hybrids on a backend without them). */
  constructor(
    private readonly backend: Backend,
    config: ModelConfig,
    snapshots = STATE_SNAPSHOTS,
  ) {
    this.live = [];
    this.layers = config.layers.map((_, il) => {
      const f = layerFloats(config, il);
      if (f.conv + f.scan === 0) return undefined;
      const t = backend.activation(`state.${il}`, f.conv + f.scan);
      this.live.push(t);
      return { conv: { t, offset: 0, floats: f.conv }, scan: f.scan > 0 ? { t, offset: f.conv, floats: f.scan } : undefined };
    });
    this.snapshots = Array.from({ length: snapshots }, (_, i) => ({
      position: -1,
      layers: this.live.map((t) => backend.activation(`${t.name}.snapshot${i}`, t.floats)),
    }));
  }

  /** Layer `il`'s live state, or undefined for an attention layer. */
  layer(il: number): LayerState | undefined {
    return this.layers[il];
  }

  /** Records zeroing the live state (a new sequence) and forgets the snapshots. */
  recordReset(): void {
    for (const t of this.live) this.backend.zero!(whole(t));
    for (const s of this.snapshots) s.position = -1;
  }

  /** Records a copy of the live state, which has folded in `position` tokens, into the ring. */
  recordSnapshot(position: number): void {
    const slot = this.snapshots[this.nextSlot]!;
    this.nextSlot = (this.nextSlot + 1) % this.snapshots.length;
    this.live.forEach((t, i) => this.backend.copy!(whole(t), whole(slot.layers[i]!)));
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
    this.live.forEach((t, i) => this.backend.copy!(whole(best.layers[i]!), whole(t)));
    for (const s of this.snapshots) if (s.position > best.position) s.position = -1;
    return best.position;
  }
}
