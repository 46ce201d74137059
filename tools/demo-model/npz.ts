/**
 * Reads the float32 arrays of an uncompressed `.npz` (what numpy.savez writes: a ZIP archive of
 * stored `.npy` files). Enough for the demo model's checkpoint; anything else is refused.
 */
import { readFileSync } from 'node:fs';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

export function readNpz(path: string): Map<string, NpyArray> {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const arrays = new Map<string, NpyArray>();
  let at = 0;
  while (at + 4 <= bytes.length && view.getUint32(at, true) === 0x04034b50) {
    const method = view.getUint16(at + 8, true);
    const flags = view.getUint16(at + 6, true);
    let size = view.getUint32(at + 18, true);
    const nameLength = view.getUint16(at + 26, true);
    const extraLength = view.getUint16(at + 28, true);
    const name = bytes.subarray(at + 30, at + 30 + nameLength).toString('utf8');
    const start = at + 30 + nameLength + extraLength;
    if (method !== 0) throw new Error(`${path}: ${name} is compressed; save with numpy.savez, not savez_compressed`);
    if (size === 0xffffffff) {
      // ZIP64: the real sizes are in the extra field (id 1: uncompressed, compressed).
      const extra = new DataView(bytes.buffer, bytes.byteOffset + at + 30 + nameLength, extraLength);
      size = Number(extra.getBigUint64(4, true));
    }
    if (flags & 0x08) throw new Error(`${path}: streamed ZIP entries are not supported`);
    arrays.set(name.replace(/\.npy$/, ''), parseNpy(bytes.subarray(start, start + size), name));
    at = start + size;
  }
  return arrays;
}

function parseNpy(bytes: Buffer, name: string): NpyArray {
  if (bytes[0] !== 0x93 || bytes.subarray(1, 6).toString('latin1') !== 'NUMPY') throw new Error(`${name}: not a .npy file`);
  const major = bytes[6]!;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = bytes.subarray(headerStart, headerStart + headerLength).toString('latin1');
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`${name}: expected little-endian float32, header ${header}`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${name}: Fortran order is not supported`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)![1]!.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const dataStart = headerStart + headerLength;
  const count = shape.reduce((a, b) => a * b, 1);
  const copy = new Float32Array(count);
  new Uint8Array(copy.buffer).set(bytes.subarray(dataStart, dataStart + count * 4));
  return { shape, data: copy };
}
