/**
 * Incremental SHA-256 (FIPS 180-4). WebCrypto's `digest` takes the whole message at once, which for
 * a 4 GB model means holding it in memory; a download hashes each network chunk as it arrives
 * instead. The state can be saved after any update and restored, so a download resumed after a
 * reload continues the hash where it stopped instead of re-reading gigabytes from IndexedDB.
 */

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** A saved hash state: plain JSON, so it can sit in a download's IndexedDB record. */
export interface Sha256State {
  /** The eight working words H0..H7. */
  h: number[];
  /** Bytes of an incomplete 64-byte block, as hex (empty at a block boundary). */
  pending: string;
  /** Total bytes hashed so far. */
  length: number;
}

export class Sha256 {
  private readonly h = new Uint32Array(INITIAL);
  private readonly block = new Uint8Array(64);
  private blockUsed = 0;
  private total = 0;
  private readonly w = new Uint32Array(64);

  /** Bytes hashed so far. */
  get length(): number {
    return this.total;
  }

  static restore(state: Sha256State): Sha256 {
    const hash = new Sha256();
    if (state.h.length !== 8 || state.pending.length % 2 !== 0 || state.pending.length >= 128) {
      throw new RangeError('SHA-256: malformed saved state');
    }
    hash.h.set(state.h);
    for (let i = 0; i < state.pending.length / 2; i++) hash.block[i] = parseInt(state.pending.slice(2 * i, 2 * i + 2), 16);
    hash.blockUsed = state.pending.length / 2;
    hash.total = state.length;
    if (hash.total % 64 !== hash.blockUsed) throw new RangeError('SHA-256: saved length does not match the pending bytes');
    return hash;
  }

  save(): Sha256State {
    return { h: Array.from(this.h), pending: toHex(this.block.subarray(0, this.blockUsed)), length: this.total };
  }

  update(data: Uint8Array): this {
    let i = 0;
    const n = data.length;
    this.total += n;
    if (this.blockUsed > 0) {
      const take = Math.min(64 - this.blockUsed, n);
      this.block.set(data.subarray(0, take), this.blockUsed);
      this.blockUsed += take;
      i = take;
      if (this.blockUsed < 64) return this;
      this.compress(this.block, 0);
      this.blockUsed = 0;
    }
    // Whole blocks straight from the input: no copy on the hot path.
    for (; i + 64 <= n; i += 64) this.compress(data, i);
    if (i < n) {
      this.block.set(data.subarray(i), 0);
      this.blockUsed = n - i;
    }
    return this;
  }

  /** The digest as lowercase hex. The object must not be updated afterwards. */
  hex(): string {
    const bitsHi = Math.floor(this.total / 0x20000000);
    const bitsLo = (this.total * 8) >>> 0;
    const padLength = this.blockUsed < 56 ? 56 - this.blockUsed : 120 - this.blockUsed;
    const tail = new Uint8Array(padLength + 8);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(padLength, bitsHi);
    view.setUint32(padLength + 4, bitsLo);
    const total = this.total;
    this.update(tail);
    this.total = total;
    let out = '';
    for (const word of this.h) out += word.toString(16).padStart(8, '0');
    return out;
  }

  private compress(data: Uint8Array, at: number): void {
    const w = this.w;
    for (let t = 0; t < 16; t++) {
      const j = at + 4 * t;
      w[t] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!;
      const y = w[t - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
    }
    const h = this.h;
    let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, hh = h[7]!;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[t]! + w[t]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = h[0]! + a;
    h[1] = h[1]! + b;
    h[2] = h[2]! + c;
    h[3] = h[3]! + d;
    h[4] = h[4]! + e;
    h[5] = h[5]! + f;
    h[6] = h[6]! + g;
    h[7] = h[7]! + hh;
  }
}

function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** One-shot helper. */
export function sha256Hex(data: Uint8Array): string {
  return new Sha256().update(data).hex();
}
