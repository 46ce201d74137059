/**
 * The model catalog (public/models.json) and the "fits this device" verdict. The catalog is data,
 * not code: entries are validated when read, and a bad entry is skipped, not fatal.
 */
import { formatBytes } from '../engine/format-bytes.ts';
import type { BackendChoice, CpuReport, GpuReport, ModelEntry } from '../engine/api.ts';

export interface CatalogModel {
  id: string;
  name: string;
  family: string;
  parameters: string;
  quantization: string;
  /** Absolute URLs, or relative to the app (the built-in demo). */
  urls: string[];
  /** About this many bytes (display only: the download learns the exact size from the server). */
  approxSize: number;
  /** Estimated memory to run it: weights, a 4096-token KV cache, working buffers. */
  memoryEstimate: number;
  license: string;
  contextLength: number;
  homepage?: string | undefined;
  notes?: string | undefined;
  /** Shipped with the app (served from its own origin). */
  builtin?: boolean | undefined;
  /**
   * 'continuation' for a base model that continues text and does not follow instructions: the
   * chat then sends the text without a chat template or system prompt (prompt_format 'text').
   * 'transform' for an encoder-decoder model (Flan-T5): the app offers it in the "Transform text"
   * view (a task and a text in, the output out), not the chat.
   */
  mode?: CatalogMode | undefined;
  /** Openings to click in continuation mode. */
  examples?: string[] | undefined;
  /** The catalog id of an assistant model to suggest instead, for real questions. */
  assistant?: string | undefined;
}

export type CatalogMode = 'chat' | 'continuation' | 'transform';

export function parseCatalog(data: unknown): CatalogModel[] {
  const list = (data as { models?: unknown })?.models;
  if (!Array.isArray(list)) throw new Error('models.json has no "models" list.');
  const out: CatalogModel[] = [];
  for (const raw of list) {
    const m = raw as Partial<CatalogModel>;
    const ok =
      typeof m?.id === 'string' && typeof m.name === 'string' && Array.isArray(m.urls) && m.urls.length > 0 &&
      m.urls.every((u) => typeof u === 'string') && typeof m.approxSize === 'number' && typeof m.memoryEstimate === 'number';
    if (!ok) continue;
    out.push({
      id: m.id!, name: m.name!, family: String(m.family ?? ''), parameters: String(m.parameters ?? ''), quantization: String(m.quantization ?? ''),
      urls: m.urls!, approxSize: m.approxSize!, memoryEstimate: m.memoryEstimate!, license: String(m.license ?? 'unknown'),
      contextLength: Number(m.contextLength ?? 0), homepage: m.homepage, notes: m.notes, builtin: m.builtin === true,
      mode: m.mode === 'continuation' || m.mode === 'transform' ? m.mode : 'chat',
      examples: Array.isArray(m.examples) ? m.examples.filter((e): e is string => typeof e === 'string' && e.trim() !== '').slice(0, 8) : [],
      assistant: typeof m.assistant === 'string' ? m.assistant : undefined,
    });
  }
  return out;
}

export async function loadCatalog(base: string = document.baseURI): Promise<CatalogModel[]> {
  const response = await fetch(new URL('models.json', base));
  if (!response.ok) throw new Error(`The model catalog could not be read (HTTP ${response.status}).`);
  return parseCatalog(await response.json());
}

/** The store's download entry, with URLs made absolute (the worker resolves against its own URL). */
export function toStoreEntry(model: CatalogModel, base: string): ModelEntry {
  return { id: model.id, name: model.name, urls: model.urls.map((u) => new URL(u, base).href), quantization: model.quantization };
}

/** The backend a load would run on here: WebGPU, the CPU (WebAssembly), or none at all. */
export type RunningBackend = 'webgpu' | 'cpu' | 'none';

/**
 * The backend the engine will choose for `choice` (the engine's rule, src/engine/engine.ts): Auto
 * takes a hardware WebGPU adapter, else the CPU backend where WebAssembly SIMD runs, else a software
 * WebGPU adapter (SwiftShader and the like, far slower than the CPU backend).
 */
export function runningBackend(choice: BackendChoice, gpu: GpuReport | undefined, cpu: CpuReport | undefined): RunningBackend {
  const gpuUsable = gpu?.available === true;
  const cpuUsable = cpu?.wasmSimd === true;
  if (choice === 'webgpu') return gpuUsable ? 'webgpu' : 'none';
  if (choice === 'cpu') return cpuUsable ? 'cpu' : 'none';
  if (gpuUsable && !gpu.kernelPaths.software) return 'webgpu';
  if (cpuUsable) return 'cpu';
  return gpuUsable ? 'webgpu' : 'none';
}

/** One wasm32 memory: the CPU backend spreads a model's weights over several (src/engine/backend/cpu/shards.ts). */
export const CPU_MAX_BYTES = 4 * 1024 ** 3;
/** The memories it makes at most (CPU_MAX_SHARDS in src/engine/backend/cpu/shards.ts). */
export const CPU_DEFAULT_SHARDS = 8;
/**
 * What a model may take on the CPU when the engine does not say (its CpuReport.maxModelBytes):
 * 8 memories of 4 GiB less the backend's own buffers (32 MiB for the first, 32 MiB of staging for
 * each other: src/engine/backend/cpu/backend.ts `cpuMaxModelBytes`).
 */
export const CPU_DEFAULT_MODEL_BYTES = CPU_DEFAULT_SHARDS * CPU_MAX_BYTES - CPU_DEFAULT_SHARDS * 32 * 1024 ** 2;

export interface DeviceFacts {
  /** The backend a load would run on (`runningBackend`). */
  backend: RunningBackend;
  /** GPUAdapter limits.maxBufferSize, when there is an adapter. */
  maxBufferSize?: number | undefined;
  /** navigator.deviceMemory in GiB (browsers round it and cap it at 8), when exposed. */
  deviceMemoryGiB?: number | undefined;
  /** Free storage for this origin (quota - usage), when known. */
  freeStorage?: number | undefined;
  /**
   * The backends this browser could run at all, whichever is chosen (for "fits only on ..."):
   * WebGPU with a hardware adapter, the CPU with WebAssembly SIMD. Unknown: not said.
   */
  usable?: { webgpu: boolean; cpu: boolean } | undefined;
  /** The most the CPU backend may hold (weights, KV cache, scratch): the engine's CpuReport.maxModelBytes. */
  cpuMaxBytes?: number | undefined;
}

export type FitLevel = 'fits' | 'tight' | 'no';

export interface FitVerdict {
  level: FitLevel;
  /** One short sentence for the badge's tooltip and screen readers. */
  reason: string;
  /** Set when the model runs on one backend of this browser only: which (the badge says so). */
  only?: 'webgpu' | 'cpu' | undefined;
}

const GiB = 1024 ** 3;

/**
 * Whether a model can run here. Browsers report at most 8 GiB of device memory (and round down),
 * so above that the verdict is "tight", not "no": the real amount may be larger. A GPU's own
 * memory is not exposed to web pages at all; system memory is the best proxy there is.
 */
function verdictOn(model: CatalogModel, device: DeviceFacts, downloaded: boolean): FitVerdict {
  const cpuMax = device.cpuMaxBytes ?? CPU_DEFAULT_MODEL_BYTES;
  if (device.backend === 'none') return { level: 'no', reason: 'The chosen backend cannot run in this browser (no WebGPU, or no WebAssembly SIMD for the CPU).' };
  if (device.backend === 'cpu' && model.approxSize > cpuMax) {
    const memories = Math.max(1, Math.round(cpuMax / CPU_MAX_BYTES));
    return {
      level: 'no',
      reason: `On the CPU a model may take at most ${gb(cpuMax)} in this browser (${memories === 1 ? 'one 4 GiB WebAssembly memory' : `${memories} WebAssembly memories of 4 GiB`}, less the engine's own buffers); its weights take about ${gb(model.approxSize)}. It needs WebGPU.`,
    };
  }
  if (!downloaded && device.freeStorage !== undefined && model.approxSize > device.freeStorage) {
    return { level: 'no', reason: `Not enough storage: needs about ${gb(model.approxSize)}, ${gb(device.freeStorage)} free.` };
  }
  // The CPU backend's limit is a fact, where the device memory is only a browser's rounded hint.
  const cpuCapped = device.backend === 'cpu' && model.memoryEstimate > cpuMax;
  const memory = device.deviceMemoryGiB;
  if (memory !== undefined) {
    // A tab can rarely use more than about half of the system's memory for the GPU.
    const budget = memory * GiB * 0.5;
    const capped = memory >= 8;
    if (model.memoryEstimate > budget * 1.6 && !capped) {
      return { level: 'no', reason: `Needs about ${gb(model.memoryEstimate)} of memory; this device reports ${memory} GiB.` };
    }
    if (model.memoryEstimate > budget && !cpuCapped) {
      return { level: 'tight', reason: `Needs about ${gb(model.memoryEstimate)} of memory; this device reports ${capped ? 'at least ' : ''}${memory} GiB. It may not fit.` };
    }
  }
  if (cpuCapped) {
    return { level: 'tight', reason: `On the CPU a model may take at most ${gb(cpuMax)}; with a 4096-token context this one needs about ${gb(model.memoryEstimate)}, so it loads with a shorter context.` };
  }
  if (device.backend === 'webgpu' && device.maxBufferSize !== undefined && device.maxBufferSize < 256 * 1024 * 1024 && model.memoryEstimate > 2 * GiB) {
    return { level: 'tight', reason: `This GPU's buffers are small (${gb(device.maxBufferSize)}); large models may fail to load.` };
  }
  return { level: 'fits', reason: `Needs about ${gb(model.memoryEstimate)} of memory${memory !== undefined ? `; this device reports ${memory >= 8 ? 'at least ' : ''}${memory} GiB` : ''}.` };
}

/**
 * Whether a model can run here, on the backend a load would take (`device.backend`), and where the
 * browser has both backends, whether it fits only one of them: a model past the CPU's one-memory
 * limit says it runs on WebGPU only, and when the CPU is the chosen (or only working) backend the
 * "no" says whether WebGPU would run it. WebGPU weights are split into buffers by rows
 * (webgpu/weights.ts), so maxStorageBufferBindingSize limits a row, not a tensor: no catalog model
 * comes near it, and the GPU verdict stays with memory and buffer size.
 */
export function fitVerdict(model: CatalogModel, device: DeviceFacts, downloaded: boolean): FitVerdict {
  const here = verdictOn(model, device, downloaded);
  const usable = device.usable;
  if (!usable || device.backend === 'none') return here;
  const other: RunningBackend = device.backend === 'webgpu' ? 'cpu' : 'webgpu';
  if (!usable[other]) return here;
  const there = verdictOn(model, { ...device, backend: other }, downloaded);
  const name = (b: RunningBackend): string => (b === 'webgpu' ? 'WebGPU' : 'the CPU');
  if (here.level !== 'no' && there.level === 'no') return { ...here, only: device.backend, reason: `${here.reason} Runs on ${name(device.backend)} only: ${there.reason}` };
  if (here.level === 'no' && there.level !== 'no') {
    return { ...here, only: other, reason: `${here.reason} ${name(other)} can run it here: choose ${other === 'webgpu' ? 'WebGPU or Auto' : 'the CPU'} as the backend.` };
  }
  return here;
}

/** Sizes in the app's one unit system (binary). */
const gb = formatBytes;
