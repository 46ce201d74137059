/**
 * Stop strings over streamed text. Generated text arrives in pieces that may split a stop string
 * ("<|im" + "_end|>"), so text that could still become a stop string is held back until it
 * either completes one (generation ends, the stop string and what follows are dropped) or can
 * no longer match (it is released). What `push` returns is always safe to show.
 */
export class StopStringMatcher {
  private pending = '';
  private readonly stops: string[];
  private readonly longest: number;

  constructor(stops: readonly string[]) {
    this.stops = [...new Set(stops.filter((s) => s.length > 0))];
    this.longest = Math.max(0, ...this.stops.map((s) => s.length));
  }

  /** Adds generated text; returns the text safe to emit and whether a stop string was found. */
  push(text: string): { emit: string; stopped: boolean } {
    this.pending += text;
    if (this.stops.length === 0) {
      const emit = this.pending;
      this.pending = '';
      return { emit, stopped: false };
    }
    let first = -1;
    for (const stop of this.stops) {
      const at = this.pending.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      const emit = this.pending.slice(0, first);
      this.pending = '';
      return { emit, stopped: true };
    }
    // Hold back the longest suffix that is a prefix of some stop string.
    let hold = 0;
    const maxHold = Math.min(this.longest - 1, this.pending.length);
    for (let n = maxHold; n > 0; n--) {
      const suffix = this.pending.slice(this.pending.length - n);
      if (this.stops.some((stop) => stop.startsWith(suffix))) {
        hold = n;
        break;
      }
    }
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }

  /** At the end of generation (no stop string found): the held-back text, which is output too. */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }
}
