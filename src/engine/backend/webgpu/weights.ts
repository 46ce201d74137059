/**
 * Weight tensors on the GPU. A matrix is stored as its GGUF bytes, unchanged (kernels dequantize
 * on the fly), split by whole rows into several buffers when it is larger than the device allows
 * one binding to be (a 151k x 3584 embedding is over 1 GiB in F16). Uploads stream from a ranged
 * reader in chunks, so the whole tensor is never held in JS memory.
 */
import { byteSizeOf, ggmlTypeName, type GgmlType } from '../../gguf/ggml-types.ts';

export interface GpuWeightPart {
  buffer: GPUBuffer;
  /** First row of the tensor held by this buffer. */
  rowStart: number;
  rows: number;
}

/** A 2-D weight: `rows` rows of `k` values each (GGUF shape [k, rows, ...]). */
export interface GpuWeight {
  name: string;
  type: GgmlType;
  k: number;
  rows: number;
  /** Bytes per row in the GGUF encoding. */
  rowBytes: number;
  parts: GpuWeightPart[];
}

/** Reads `length` bytes at `offset` of the tensor's data. */
export type TensorBytesReader = (offset: number, length: number) => Promise<Uint8Array>;

/** Largest upload chunk: bounds JS memory during loading. */
const UPLOAD_CHUNK_BYTES = 16 << 20;

/** How many rows fit in one buffer under the device's binding and buffer limits. */
export function rowsPerPart(rowBytes: number, limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'>): number {
  const maxBytes = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const rows = Math.floor(maxBytes / rowBytes);
  if (rows < 1) throw new RangeError(`one row of ${rowBytes} bytes exceeds the device's largest binding (${maxBytes} bytes)`);
  return rows;
}

export async function uploadWeight(
  device: GPUDevice,
  info: { name: string; type: GgmlType; shape: readonly number[] },
  read: TensorBytesReader,
  options: { maxRowsPerPart?: number } = {},
): Promise<GpuWeight> {
  const [k, ...rest] = info.shape;
  if (k === undefined) throw new RangeError(`${info.name}: a weight needs at least one dimension`);
  const rows = rest.reduce((a, b) => a * b, 1);
  const rowBytes = byteSizeOf(info.type, k);
  const perPart = Math.min(options.maxRowsPerPart ?? Infinity, rowsPerPart(rowBytes, device.limits));
  const parts: GpuWeightPart[] = [];
  for (let rowStart = 0; rowStart < rows; rowStart += perPart) {
    const partRows = Math.min(perPart, rows - rowStart);
    const partBytes = partRows * rowBytes;
    const buffer = device.createBuffer({
      label: `${info.name} ${ggmlTypeName(info.type)} rows ${rowStart}..${rowStart + partRows}`,
      size: Math.ceil(partBytes / 4) * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    for (let done = 0; done < partBytes; ) {
      const length = Math.min(UPLOAD_CHUNK_BYTES, partBytes - done);
      const bytes = await read(rowStart * rowBytes + done, length);
      if (bytes.byteLength !== length) throw new RangeError(`${info.name}: short read at ${done} (${bytes.byteLength} of ${length} bytes)`);
      writePadded(device, buffer, done, bytes);
      done += length;
    }
    parts.push({ buffer, rowStart, rows: partRows });
  }
  return { name: info.name, type: info.type, k, rows, rowBytes, parts };
}

/** writeBuffer needs sizes that are multiples of 4; pad the last chunk with zeros. */
export function writePadded(device: GPUDevice, buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
  if (bytes.byteLength % 4 === 0 && bytes.byteOffset % 4 === 0) {
    device.queue.writeBuffer(buffer, offset, bytes as Uint8Array<ArrayBuffer>);
    return;
  }
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  device.queue.writeBuffer(buffer, offset, padded);
}

export function destroyWeight(weight: GpuWeight): void {
  for (const part of weight.parts) part.buffer.destroy();
}
