/**
 * {@link TrainOps} on the CPU in plain TypeScript loops, in float32 (training) or float64 (the
 * gradient checks run the same code on exact-enough numbers). Base matrices are dequantized one at
 * a time into a reused scratch as a matmul reads them (the last one is cached: a forward matmul and
 * its backward over the same tensor decode it once when they follow each other).
 */
import { requireQuantFormat } from '../gguf/quants/index.ts';
import type { AttentionShape, FrozenMatrix, LoraPair, RopeTable, TrainOps, Vec } from './ops.ts';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export class CpuTrainOps implements TrainOps<Vec> {
  private scratch = new Float32Array(0);
  private cached: FrozenMatrix | undefined;

  constructor(readonly precision: 'f32' | 'f64' = 'f32') {}

  alloc(length: number): Vec {
    return this.precision === 'f32' ? new Float32Array(length) : new Float64Array(length);
  }

  /** The array itself: host tensors are host arrays. */
  upload(data: Vec): Vec {
    return data;
  }

  read(tensors: readonly Vec[]): Promise<Vec[]> {
    return Promise.resolve([...tensors]);
  }

  length(t: Vec): number {
    return t.length;
  }

  byteLength(t: Vec): number {
    return t.byteLength;
  }

  copy(t: Vec): Vec {
    const out = this.alloc(t.length);
    out.set(t);
    return out;
  }

  /** The garbage collector's job here. */
  free(): void {}

  /** W as f32 values, [nOut][nIn]. */
  dequantize(w: FrozenMatrix): Float32Array {
    const count = w.nIn * w.nOut;
    if (this.cached === w) return this.scratch.subarray(0, count);
    if (this.scratch.length < count) this.scratch = new Float32Array(count);
    const out = this.scratch.subarray(0, count);
    requireQuantFormat(w.type).dequantize(w.bytes, out, count);
    this.cached = w;
    return out;
  }

  matmul(w: FrozenMatrix, x: Vec, n: number, bias?: Float32Array): Vec {
    const { nIn, nOut } = w;
    const wf = this.dequantize(w);
    const y = this.alloc(n * nOut);
    for (let o = 0; o < nOut; o++) {
      const row = o * nIn;
      const b = bias ? bias[o]! : 0;
      let t = 0;
      // Four tokens per pass over the weight row: each weight is read once for four products.
      for (; t + 4 <= n; t += 4) {
        const x0 = t * nIn;
        const x1 = x0 + nIn;
        const x2 = x1 + nIn;
        const x3 = x2 + nIn;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let i = 0; i < nIn; i++) {
          const wi = wf[row + i]!;
          s0 += wi * x[x0 + i]!;
          s1 += wi * x[x1 + i]!;
          s2 += wi * x[x2 + i]!;
          s3 += wi * x[x3 + i]!;
        }
        y[t * nOut + o] = s0 + b;
        y[(t + 1) * nOut + o] = s1 + b;
        y[(t + 2) * nOut + o] = s2 + b;
        y[(t + 3) * nOut + o] = s3 + b;
      }
      for (; t < n; t++) {
        const xo = t * nIn;
        let sum = 0;
        for (let i = 0; i < nIn; i++) sum += wf[row + i]! * x[xo + i]!;
        y[t * nOut + o] = sum + b;
      }
    }
    return y;
  }

  matmulBackward(w: FrozenMatrix, dy: Vec, n: number, dx: Vec): void {
    const { nIn, nOut } = w;
    const wf = this.dequantize(w);
    for (let o = 0; o < nOut; o++) {
      const row = o * nIn;
      let t = 0;
      for (; t + 4 <= n; t += 4) {
        const g0 = dy[t * nOut + o]!;
        const g1 = dy[(t + 1) * nOut + o]!;
        const g2 = dy[(t + 2) * nOut + o]!;
        const g3 = dy[(t + 3) * nOut + o]!;
        if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0) continue;
        const x0 = t * nIn;
        const x1 = x0 + nIn;
        const x2 = x1 + nIn;
        const x3 = x2 + nIn;
        for (let i = 0; i < nIn; i++) {
          const wi = wf[row + i]!;
          dx[x0 + i] = dx[x0 + i]! + wi * g0;
          dx[x1 + i] = dx[x1 + i]! + wi * g1;
          dx[x2 + i] = dx[x2 + i]! + wi * g2;
          dx[x3 + i] = dx[x3 + i]! + wi * g3;
        }
      }
      for (; t < n; t++) {
        const g = dy[t * nOut + o]!;
        if (g === 0) continue;
        const xo = t * nIn;
        for (let i = 0; i < nIn; i++) dx[xo + i] = dx[xo + i]! + wf[row + i]! * g;
      }
    }
  }

  loraForward(p: LoraPair, nIn: number, nOut: number, x: Vec, n: number, y: Vec): Vec {
    const { a, b, rank, s } = p;
    const u = this.alloc(n * rank);
    for (let t = 0; t < n; t++) {
      for (let r = 0; r < rank; r++) {
        let sum = 0;
        for (let i = 0; i < nIn; i++) sum += a[r * nIn + i]! * x[t * nIn + i]!;
        u[t * rank + r] = sum;
      }
      for (let o = 0; o < nOut; o++) {
        let sum = 0;
        for (let r = 0; r < rank; r++) sum += b[o * rank + r]! * u[t * rank + r]!;
        y[t * nOut + o] = y[t * nOut + o]! + s * sum;
      }
    }
    return u;
  }

  loraBackward(p: LoraPair, nIn: number, nOut: number, x: Vec, u: Vec, dy: Vec, n: number, grad: { a: Vec; b: Vec }, dx: Vec): void {
    const { a, b, rank, s } = p;
    const bty = new Float64Array(rank);
    for (let t = 0; t < n; t++) {
      bty.fill(0);
      for (let o = 0; o < nOut; o++) {
        const d = dy[t * nOut + o]!;
        if (d === 0) continue;
        for (let r = 0; r < rank; r++) {
          bty[r] = bty[r]! + b[o * rank + r]! * d;
          grad.b[o * rank + r] = grad.b[o * rank + r]! + s * d * u[t * rank + r]!;
        }
      }
      for (let r = 0; r < rank; r++) {
        const c = s * bty[r]!;
        if (c === 0) continue;
        for (let i = 0; i < nIn; i++) {
          grad.a[r * nIn + i] = grad.a[r * nIn + i]! + c * x[t * nIn + i]!;
          dx[t * nIn + i] = dx[t * nIn + i]! + c * a[r * nIn + i]!;
        }
      }
    }
  }

  rmsNorm(x: Vec, rows: number, len: number, eps: number, w: Float32Array): { y: Vec; r: Vec } {
    const y = this.alloc(rows * len);
    const r = this.alloc(rows);
    for (let k = 0; k < rows; k++) {
      const off = k * len;
      let ss = 0;
      for (let i = 0; i < len; i++) ss += x[off + i]! * x[off + i]!;
      const scale = 1 / Math.sqrt(ss / len + eps);
      r[k] = scale;
      for (let i = 0; i < len; i++) y[off + i] = x[off + i]! * scale * w[i]!;
    }
    return { y, r };
  }

  rmsNormBackward(x: Vec, r: Vec, len: number, w: Float32Array, dy: Vec): Vec {
    const dx = this.alloc(x.length);
    for (let k = 0; k < r.length; k++) {
      const off = k * len;
      const s = r[k]!;
      let dot = 0;
      for (let i = 0; i < len; i++) dot += w[i]! * dy[off + i]! * x[off + i]!;
      const c = (s * s * s * dot) / len;
      for (let i = 0; i < len; i++) dx[off + i] = s * w[i]! * dy[off + i]! - x[off + i]! * c;
    }
    return dx;
  }

  rope(x: Vec, n: number, nHeads: number, headDim: number, table: RopeTable, inverse: boolean): void {
    const half = table.nRot / 2;
    const sign = inverse ? -1 : 1;
    const width = nHeads * headDim;
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < nHeads; h++) {
        const base = t * width + h * headDim;
        for (let i = 0; i < half; i++) {
          const a = base + (table.neox ? i : 2 * i);
          const b = table.neox ? a + half : a + 1;
          const c = table.cos[t * half + i]!;
          const sn = sign * table.sin[t * half + i]!;
          const x0 = x[a]!;
          const x1 = x[b]!;
          x[a] = x0 * c - x1 * sn;
          x[b] = x0 * sn + x1 * c;
        }
      }
    }
  }

  attention(q: Vec, k: Vec, v: Vec, sh: AttentionShape): { out: Vec; probs: Vec } {
    const { n, nHead, nHeadKv, headDimK: dk, headDimV: dv, scale } = sh;
    const group = nHead / nHeadKv;
    const qW = nHead * dk;
    const kW = nHeadKv * dk;
    const vW = nHeadKv * dv;
    const oW = nHead * dv;
    const probs = this.alloc(n * nHead * n);
    const out = this.alloc(n * oW);
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < nHead; h++) {
        const kvh = Math.floor(h / group);
        const row = (t * nHead + h) * n;
        let max = -Infinity;
        for (let j = 0; j <= t; j++) {
          let dot = 0;
          for (let d = 0; d < dk; d++) dot += q[t * qW + h * dk + d]! * k[j * kW + kvh * dk + d]!;
          const sc = dot * scale;
          probs[row + j] = sc;
          if (sc > max) max = sc;
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) {
          const e = Math.exp(probs[row + j]! - max);
          probs[row + j] = e;
          sum += e;
        }
        const o = t * oW + h * dv;
        for (let j = 0; j <= t; j++) {
          const p = (probs[row + j] = probs[row + j]! / sum);
          const vo = j * vW + kvh * dv;
          for (let d = 0; d < dv; d++) out[o + d] = out[o + d]! + p * v[vo + d]!;
        }
      }
    }
    return { out, probs };
  }

  attentionBackward(q: Vec, k: Vec, v: Vec, probs: Vec, dOut: Vec, sh: AttentionShape): { dq: Vec; dk: Vec; dv: Vec } {
    const { n, nHead, nHeadKv, headDimK: hk, headDimV: hv, scale } = sh;
    const group = nHead / nHeadKv;
    const qW = nHead * hk;
    const kW = nHeadKv * hk;
    const vW = nHeadKv * hv;
    const oW = nHead * hv;
    const dq = this.alloc(q.length);
    const dk = this.alloc(k.length);
    const dv = this.alloc(v.length);
    const dp = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < nHead; h++) {
        const kvh = Math.floor(h / group);
        const row = (t * nHead + h) * n;
        const o = t * oW + h * hv;
        let pdp = 0;
        for (let j = 0; j <= t; j++) {
          const p = probs[row + j]!;
          const vo = j * vW + kvh * hv;
          let dot = 0;
          for (let d = 0; d < hv; d++) {
            const g = dOut[o + d]!;
            dot += g * v[vo + d]!;
            dv[vo + d] = dv[vo + d]! + p * g;
          }
          dp[j] = dot;
          pdp += p * dot;
        }
        for (let j = 0; j <= t; j++) {
          const dz = probs[row + j]! * (dp[j]! - pdp) * scale;
          if (dz === 0) continue;
          const qo = t * qW + h * hk;
          const ko = j * kW + kvh * hk;
          for (let d = 0; d < hk; d++) {
            dq[qo + d] = dq[qo + d]! + dz * k[ko + d]!;
            dk[ko + d] = dk[ko + d]! + dz * q[qo + d]!;
          }
        }
      }
    }
    return { dq, dk, dv };
  }

  swiglu(gate: Vec, up: Vec): Vec {
    const y = this.alloc(gate.length);
    for (let i = 0; i < y.length; i++) {
      const g = gate[i]!;
      y[i] = g * sigmoid(g) * up[i]!;
    }
    return y;
  }

  swigluBackward(gate: Vec, up: Vec, dy: Vec): { dGate: Vec; dUp: Vec } {
    const dGate = this.alloc(gate.length);
    const dUp = this.alloc(gate.length);
    for (let i = 0; i < gate.length; i++) {
      const g = gate[i]!;
      const sg = sigmoid(g);
      dUp[i] = dy[i]! * g * sg;
      dGate[i] = dy[i]! * up[i]! * sg * (1 + g * (1 - sg));
    }
    return { dGate, dUp };
  }

  crossEntropy(logits: Vec, n: number, nVocab: number, targets: ArrayLike<number>, weight: ArrayLike<number>, gradScale = 1): { loss: Vec; dLogits: Vec } {
    const dLogits = this.alloc(n * nVocab);
    const loss = this.alloc(n);
    for (let t = 0; t < n; t++) {
      const wt = weight[t]!;
      if (!(wt > 0)) continue;
      const off = t * nVocab;
      let max = -Infinity;
      for (let i = 0; i < nVocab; i++) max = Math.max(max, logits[off + i]!);
      let sum = 0;
      for (let i = 0; i < nVocab; i++) sum += Math.exp(logits[off + i]! - max);
      const lse = max + Math.log(sum);
      const target = targets[t]!;
      loss[t] = wt * (lse - logits[off + target]!);
      const g = wt * gradScale;
      for (let i = 0; i < nVocab; i++) dLogits[off + i] = g * Math.exp(logits[off + i]! - lse);
      dLogits[off + target] = dLogits[off + target]! - g;
    }
    return { loss, dLogits };
  }

  addInPlace(a: Vec, b: Vec): void {
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
  }
}
