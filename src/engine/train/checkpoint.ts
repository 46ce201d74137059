/**
 * A training run's state as bytes, for IndexedDB (or a file) and a later resume: the adapter (its
 * targets' A and B as f32), AdamW's moments (f64) and step, and the trainer's options. Layout:
 * "HLCK", u32 version, u32 header length, UTF-8 JSON header, padding to 8 bytes, then per target A
 * and B (f32), then per parameter array m and v (f64). Reading checks every size against the header.
 */
import type { LoraAdapterData } from '../model/lora/adapter-data.ts';
import { CheckpointFormatError } from './errors.ts';
import type { TrainerOptions } from './trainer.ts';

const MAGIC = 0x4b434c48; // "HLCK" little-endian
const VERSION = 1;

export interface TrainingCheckpoint {
  adapter: LoraAdapterData;
  step: number;
  m: Float64Array[];
  v: Float64Array[];
  options: TrainerOptions;
}

interface Header {
  architecture: string;
  alpha: number;
  name?: string;
  step: number;
  options: TrainerOptions;
  targets: { base: string; rank: number; nIn: number; nOut: number }[];
}

export function writeCheckpoint(c: TrainingCheckpoint): Uint8Array {
  const header: Header = {
    architecture: c.adapter.architecture,
    alpha: c.adapter.alpha,
    ...(c.adapter.name !== undefined ? { name: c.adapter.name } : {}),
    step: c.step,
    options: c.options,
    targets: c.adapter.targets.map((t) => ({ base: t.base, rank: t.rank, nIn: t.nIn, nOut: t.nOut })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 8) * 8;
  const f32 = c.adapter.targets.reduce((s, t) => s + t.a.length + t.b.length, 0);
  const f64 = c.m.reduce((s, m) => s + m.length, 0) * 2;
  const dataStart64 = Math.ceil((start + 4 * f32) / 8) * 8;
  const out = new Uint8Array(dataStart64 + 8 * f64);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, json.length, true);
  out.set(json, 12);
  let off = start;
  for (const t of c.adapter.targets) {
    for (const v of [t.a, t.b]) {
      new Float32Array(out.buffer, off, v.length).set(v);
      off += 4 * v.length;
    }
  }
  off = dataStart64;
  for (let k = 0; k < c.m.length; k++) {
    for (const v of [c.m[k]!, c.v[k]!]) {
      new Float64Array(out.buffer, off, v.length).set(v);
      off += 8 * v.length;
    }
  }
  return out;
}

export function readCheckpoint(bytes: Uint8Array): TrainingCheckpoint {
  const fail = (msg: string): never => {
    throw new CheckpointFormatError(`not a training checkpoint: ${msg}`, { bytes: bytes.length });
  };
  if (bytes.length < 12) fail('too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('bad magic');
  if (view.getUint32(4, true) !== VERSION) fail(`version ${view.getUint32(4, true)} (this reader knows ${VERSION})`);
  const jsonLength = view.getUint32(8, true);
  if (12 + jsonLength > bytes.length) fail('the header runs past the end');
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + jsonLength))) as Header;
  } catch {
    return fail('the header is not JSON');
  }
  if (!Array.isArray(header.targets) || !Number.isInteger(header.step) || header.step < 0) fail('the header lacks targets or step');
  for (const t of header.targets) {
    if (![t.rank, t.nIn, t.nOut].every((x) => Number.isInteger(x) && x > 0)) fail(`target ${String(t.base)} has bad sizes`);
  }
  const start = Math.ceil((12 + jsonLength) / 8) * 8;
  const f32 = header.targets.reduce((s, t) => s + t.rank * (t.nIn + t.nOut), 0);
  const dataStart64 = Math.ceil((start + 4 * f32) / 8) * 8;
  const f64 = 2 * f32;
  if (bytes.length !== dataStart64 + 8 * f64) fail(`${bytes.length} bytes where the header implies ${dataStart64 + 8 * f64}`);
  const copy = bytes.slice(); // aligned, owned
  let off = start;
  const takeF32 = (n: number) => {
    const v = new Float32Array(copy.buffer, off, n).slice();
    off += 4 * n;
    return v;
  };
  const targets = header.targets.map((t) => {
    const a = takeF32(t.rank * t.nIn);
    const b = takeF32(t.nOut * t.rank);
    return { base: t.base, rank: t.rank, nIn: t.nIn, nOut: t.nOut, embedding: false, a, b };
  });
  off = dataStart64;
  const m: Float64Array[] = [];
  const v: Float64Array[] = [];
  for (const t of targets) {
    for (const p of [t.a, t.b]) {
      m.push(new Float64Array(copy.buffer, off, p.length).slice());
      off += 8 * p.length;
      v.push(new Float64Array(copy.buffer, off, p.length).slice());
      off += 8 * p.length;
    }
  }
  return { adapter: { architecture: header.architecture, alpha: header.alpha, name: header.name, targets }, step: header.step, m, v, options: header.options };
}
