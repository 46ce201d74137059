/**
 * LoRA adapters at run time, never merged into the base weights (which stay in their file format,
 * quantized or not): after the base matmul y = W x, each active adapter adds s * B (A x), as
 * llama.cpp's `build_lora_mm`; after the embedding lookup, s * B A[token] (`build_inp_embd`). The
 * delta is made of the backend's own ops (two small matmuls, a scale of the rank-wide product and
 * an add), so every backend runs it, prefill and decode, and a captured decode step replays it.
 * A and B are uploaded as F32 (adapters are small next to the base; F32 reads any rank).
 */
import { GgmlType } from '../../gguf/ggml-types.ts';
import type { Activation, Backend, IdBuffer, Rows, Weight } from '../../backend/ops.ts';
import { loraScale } from './adapter-file.ts';
import { AdapterTooLargeError } from './errors.ts';
import type { LoraAdapterData } from './adapter-data.ts';

interface LoraPair {
  rank: number;
  nOut: number;
  embedding: boolean;
  a: Weight;
  b: Weight;
}

/** An adapter uploaded to one backend, with its scratch for `batch` tokens per step. */
export interface LoadedLora {
  readonly id: string;
  readonly alpha: number;
  readonly name: string | undefined;
  /** By base tensor name. */
  readonly targets: ReadonlyMap<string, LoraPair>;
  /** Bytes of A and B on the backend. */
  readonly bytes: number;
  /** [batch][largest rank]: A x. */
  readonly lowRank: Activation;
  /** [batch][widest output]: B (A x). */
  readonly delta: Activation;
}

/** An adapter in use for a step, at its scale (llama.cpp's `--lora-scaled FILE SCALE`). */
export interface ActiveLora {
  lora: LoadedLora;
  scale: number;
}

function bytesOf(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * The bytes `uploadLora` will take (A and B as F32, and the scratch for `batch` tokens), checked
 * before anything is uploaded against what the backend has left and its largest buffer: throws
 * {@link AdapterTooLargeError}.
 */
export function checkLoraFits(backend: Backend, data: LoraAdapterData, batch: number): number {
  let tensors = 0;
  let largest = 0;
  let maxRank = 1;
  let maxOut = 1;
  for (const t of data.targets) {
    tensors += 4 * (t.a.length + t.b.length);
    largest = Math.max(largest, 4 * t.a.length, 4 * t.b.length);
    maxRank = Math.max(maxRank, t.rank);
    maxOut = Math.max(maxOut, t.nOut);
  }
  const need = tensors + 4 * batch * (maxRank + maxOut);
  const left = backend.memoryLeft?.() ?? Number.POSITIVE_INFINITY;
  const detail = { needBytes: need, leftBytes: Number.isFinite(left) ? left : null, largestTensorBytes: largest, maxBufferBytes: backend.limits.maxBufferBytes };
  if (largest > backend.limits.maxBufferBytes) {
    throw new AdapterTooLargeError(`the adapter has a ${largest}-byte tensor, over the device's largest buffer (${backend.limits.maxBufferBytes} bytes)`, detail);
  }
  if (need > left) {
    throw new AdapterTooLargeError(`the adapter needs ${need} bytes (its tensors as F32 and scratch); the backend has ${Math.max(0, left)} bytes left after the model`, detail);
  }
  return need;
}

/** Uploads an adapter's A and B (F32) and allocates its scratch for steps of up to `batch` tokens. */
export async function uploadLora(backend: Backend, data: LoraAdapterData, batch: number, id: string): Promise<LoadedLora> {
  const targets = new Map<string, LoraPair>();
  let bytes = 0;
  let maxRank = 1;
  let maxOut = 1;
  for (const t of data.targets) {
    const upload = async (suffix: 'a' | 'b', values: Float32Array, shape: number[]) => {
      const all = bytesOf(values);
      const w = await backend.weight({ name: `${t.base}.lora_${suffix} (${id})`, type: GgmlType.F32, shape }, async (offset, length) => all.subarray(offset, offset + length));
      bytes += w.bytes;
      return w;
    };
    // A as the backend's matmul (or, for embeddings, lookup) weight: rows of its row length.
    const a = await upload('a', t.a, t.embedding ? [t.rank, t.nIn] : [t.nIn, t.rank]);
    const b = await upload('b', t.b, [t.rank, t.nOut]);
    targets.set(t.base, { rank: t.rank, nOut: t.nOut, embedding: t.embedding, a, b });
    maxRank = Math.max(maxRank, t.rank);
    maxOut = Math.max(maxOut, t.nOut);
  }
  return {
    id,
    alpha: data.alpha,
    name: data.name,
    targets,
    bytes,
    lowRank: backend.activation(`lora ${id} A x`, batch * maxRank),
    delta: backend.activation(`lora ${id} B A x`, batch * maxOut),
  };
}

/** Gives an adapter's A, B and scratch back to the backend, as far as it can (Backend.free); returns the bytes freed. */
export function freeLora(backend: Backend, lora: LoadedLora): number {
  if (!backend.free) return 0;
  const items = [...lora.targets.values()].flatMap((pair) => [pair.a, pair.b]);
  return backend.free([...items, lora.lowRank, lora.delta]);
}

/** Whether any active adapter adapts this base tensor. */
export function adapts(adapters: readonly ActiveLora[] | undefined, base: string): boolean {
  return adapters?.some((a) => a.lora.targets.has(base)) ?? false;
}

/**
 * out += s * B (A x) for each active adapter of base tensor `base` (x rows from offset 0, as the
 * base matmul read them; out may be a view, such as q inside a stacked [q | k | v]).
 */
export function addLoraDeltas(b: Backend, adapters: readonly ActiveLora[], base: string, x: Rows, out: Rows, tokens: number): void {
  for (const { lora, scale } of adapters) {
    const pair = lora.targets.get(base);
    if (!pair || pair.embedding) continue;
    const s = loraScale(lora.alpha, pair.rank, scale);
    if (s === 0) continue;
    const ax: Rows = { t: lora.lowRank, stride: pair.rank };
    const bax: Rows = { t: lora.delta, stride: pair.nOut };
    b.matmul(pair.a, x, ax, tokens);
    b.scale(ax, ax, pair.rank, tokens, s);
    b.matmul(pair.b, ax, bax, tokens);
    b.add(out, bax, out, pair.nOut, tokens);
  }
}

/**
 * x += embeddingScale * s * B A[id] for each active adapter of the token embeddings: x holds
 * embeddingScale * token_embd[id] already (gemma and granite scale the sum, as llama.cpp does).
 */
export function addLoraEmbeddings(b: Backend, adapters: readonly ActiveLora[], ids: IdBuffer, x: Rows, tokens: number, embeddingScale: number): void {
  for (const { lora, scale } of adapters) {
    const pair = lora.targets.get('token_embd.weight');
    if (!pair) continue;
    const s = loraScale(lora.alpha, pair.rank, scale);
    if (s === 0) continue;
    const ax: Rows = { t: lora.lowRank, stride: pair.rank };
    const bax: Rows = { t: lora.delta, stride: pair.nOut };
    b.embed(pair.a, ids, ax, tokens, s * embeddingScale);
    b.matmul(pair.b, ax, bax, tokens);
    b.add(x, bax, x, pair.nOut, tokens);
  }
}

/** Same adapters at the same scales, in any order (the KV prefix and captured steps carry over). */
export function sameAdapters(a: readonly ActiveLora[], b: readonly ActiveLora[]): boolean {
  if (a.length !== b.length) return false;
  const key = (l: readonly ActiveLora[]) => l.map((x) => `${x.lora.id}\u0000${x.scale}`).sort().join('\u0001');
  return key(a) === key(b);
}
