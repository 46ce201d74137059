/**
 * Importance matrices as llama.cpp's llama-imatrix writes them, read into the per-tensor weights
 * llama-quantize passes to its quantizers (tools/quantize `load_imatrix`):
 * - GGUF (what llama-imatrix writes by default): tensors "<name>.in_sum2" (sums of squared
 *   activations, ne0 per expert) and "<name>.counts" (tokens seen, one per expert), with the keys
 *   imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size; weights = in_sum2 / count, or 1
 *   where an expert saw no token.
 * - Legacy .dat: i32 entry count, then per entry i32 name length, the name, i32 ncall, i32 nval
 *   and nval float32 values (already divided by the token count and multiplied by ncall); optional
 *   trailing chunk count and dataset name. weights = values / ncall (as they are when ncall is 0).
 */
import { GgmlType } from '../gguf/ggml-types.ts';
import { readGguf } from '../gguf/reader.ts';
import type { RangedSource } from '../gguf/source.ts';
import { ImatrixFormatError } from './errors.ts';
import type { ImportanceMatrix } from './quantize.ts';

const fr = Math.fround;

function littleFloats(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

async function readGgufImatrix(source: RangedSource): Promise<Map<string, Float32Array>> {
  const file = await readGguf(source);
  for (const key of ['imatrix.datasets', 'imatrix.chunk_count', 'imatrix.chunk_size']) {
    if (!file.metadata.has(key)) throw new ImatrixFormatError(`${source.name ?? 'the imatrix'}: GGUF imatrix without ${key}`, { key });
  }
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const out = new Map<string, Float32Array>();
  for (const t of file.tensors) {
    if (!t.name.endsWith('.in_sum2')) continue;
    const name = t.name.slice(0, -'.in_sum2'.length);
    const counts = byName.get(`${name}.counts`);
    if (!counts) throw new ImatrixFormatError(`imatrix: ${t.name} has no ${name}.counts`, { tensor: t.name });
    if (t.type !== GgmlType.F32 || counts.type !== GgmlType.F32) throw new ImatrixFormatError(`imatrix: sums and counts for ${name} must be F32`, { tensor: name });
    const sums = littleFloats(await source.read(file.dataOffset + t.offset, t.byteSize));
    const n = littleFloats(await source.read(file.dataOffset + counts.offset, counts.byteSize));
    if (n.length === 0 || sums.length % n.length !== 0) {
      throw new ImatrixFormatError(`imatrix: ${name} has ${sums.length} sums for ${n.length} counts`, { tensor: name });
    }
    const ne0 = sums.length / n.length;
    const w = new Float32Array(sums.length);
    for (let j = 0; j < n.length; j++) {
      // llama.cpp rounds the stored count to an integer, then divides in float.
      const count = fr(Math.round(n[j]!));
      for (let i = 0; i < ne0; i++) w[j * ne0 + i] = count > 0 ? fr(sums[j * ne0 + i]! / count) : 1;
    }
    out.set(name, w);
  }
  for (const t of file.tensors) {
    if (t.name.endsWith('.counts') && !out.has(t.name.slice(0, -'.counts'.length))) {
      throw new ImatrixFormatError(`imatrix: ${t.name} has no matching .in_sum2`, { tensor: t.name });
    }
  }
  if (out.size === 0) throw new ImatrixFormatError(`${source.name ?? 'the imatrix'}: no entries`, {});
  return out;
}

async function readLegacyImatrix(source: RangedSource): Promise<Map<string, Float32Array>> {
  const bytes = await source.read(0, source.size);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const i32 = (what: string): number => {
    if (at + 4 > bytes.length) throw new ImatrixFormatError(`imatrix: truncated at ${what}`, { offset: at });
    const v = view.getInt32(at, true);
    at += 4;
    return v;
  };
  const n = i32('the entry count');
  if (n < 1) throw new ImatrixFormatError(`${source.name ?? 'the imatrix'}: not an imatrix (no entries)`, {});
  const out = new Map<string, Float32Array>();
  for (let e = 0; e < n; e++) {
    const len = i32('a name length');
    if (len < 0 || at + len > bytes.length) throw new ImatrixFormatError(`imatrix: bad name length ${len} in entry ${e}`, { offset: at });
    const name = new TextDecoder().decode(bytes.subarray(at, at + len));
    at += len;
    const ncall = i32('ncall');
    const nval = i32('nval');
    if (nval < 1 || at + 4 * nval > bytes.length) throw new ImatrixFormatError(`imatrix: bad value count ${nval} for ${name}`, { offset: at });
    const values = littleFloats(bytes.subarray(at, at + 4 * nval));
    at += 4 * nval;
    if (ncall > 0) for (let i = 0; i < nval; i++) values[i] = fr(values[i]! / fr(ncall));
    out.set(name, values);
  }
  return out;
}

/** Reads either format (GGUF when the file starts with the GGUF magic); checks values are finite. */
export async function readImatrix(source: RangedSource): Promise<ImportanceMatrix> {
  const magic = source.size >= 4 ? await source.read(0, 4) : new Uint8Array(0);
  const isGguf = magic.length === 4 && String.fromCharCode(...magic) === 'GGUF';
  const m = isGguf ? await readGgufImatrix(source) : await readLegacyImatrix(source);
  for (const [name, w] of m) {
    if (!w.every(Number.isFinite)) throw new ImatrixFormatError(`imatrix: non-finite value for ${name}`, { tensor: name });
  }
  return m;
}
