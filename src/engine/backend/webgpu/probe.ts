/**
 * WebGPU capability probe: what adapter is there, what it can do, and which kernel paths that
 * enables. Platform-agnostic: it takes a `GPU` object (navigator.gpu in a browser or worker, the
 * `webgpu` package's in Node) and never touches the DOM.
 */

/** Limits that decide what models fit and which kernels we can run. */
export const REPORTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxBindGroups',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
] as const;

export type ReportedLimit = (typeof REPORTED_LIMITS)[number];

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a software or otherwise degraded adapter (SwiftShader, WARP, ...). */
  isFallbackAdapter: boolean;
  /** Every feature the adapter exposes, sorted. */
  features: string[];
  limits: Record<ReportedLimit, number>;
  subgroupMinSize?: number | undefined;
  subgroupMaxSize?: number | undefined;
}

/** Which kernel families the engine will use on this adapter. */
export interface KernelPaths {
  /** f16 arithmetic and f16 KV cache (needs `shader-f16`). */
  f16: boolean;
  /** Subgroup reductions in matmul and softmax (needs `subgroups`). */
  subgroups: boolean;
  /** A software adapter (SwiftShader, llvmpipe, WARP): the GPU is emulated on the CPU. */
  software: boolean;
  /** How matvec (decode) spreads rows over invocations; see `MatvecStrategy`. */
  matvec: MatvecStrategy;
}

/**
 * How matvec spreads a matrix's rows over invocations:
 * - `workgroup`: 16 invocations per row, 4 rows per workgroup, reduced in workgroup memory;
 * - `subgroup`: 64 invocations per row, one row per workgroup, reduced with subgroupAdd (needs the
 *   `subgroups` feature);
 * - `invocation`: one invocation per row, 64 rows per workgroup, no reduction and no barrier: for
 *   software adapters, where a barrier costs more than the arithmetic (2x faster on SwiftShader).
 */
export type MatvecStrategy = 'workgroup' | 'subgroup' | 'invocation';

export type GpuReport =
  | { available: true; adapter: AdapterReport; kernelPaths: KernelPaths }
  | { available: false; reason: string; advice: string };

export interface ProbeOptions {
  /** Ask for the fallback (software) adapter, e.g. SwiftShader on a machine without a GPU. */
  forceFallbackAdapter?: boolean;
  powerPreference?: GPUPowerPreference;
}

const NO_WEBGPU_ADVICE =
  'Hearth runs models on the GPU through WebGPU. Use a current Chrome, Edge or another Chromium ' +
  'browser (version 113 or newer; on Linux start it with --enable-unsafe-webgpu or enable ' +
  'chrome://flags/#enable-unsafe-webgpu), Safari 26 or newer, or Firefox 141 or newer on Windows. ' +
  'Make sure hardware acceleration is on in the browser settings and the page is served over ' +
  'HTTPS or from localhost. A CPU fallback (slower) is planned for browsers without WebGPU.';

const NO_ADAPTER_ADVICE =
  'The browser supports WebGPU but found no usable GPU adapter. The GPU may be blocklisted or ' +
  'hardware acceleration may be off: check chrome://gpu (or about:support), update the graphics ' +
  'driver, and turn on hardware acceleration in the browser settings.';

/** Reads `adapter.info` and the deprecated `adapter.isFallbackAdapter` into one plain object. */
export function describeAdapter(adapter: GPUAdapter): AdapterReport {
  const info = adapter.info as GPUAdapterInfo & {
    isFallbackAdapter?: boolean;
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
  };
  const legacyFallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const limits = {} as Record<ReportedLimit, number>;
  for (const name of REPORTED_LIMITS) {
    limits[name] = Number((adapter.limits as unknown as Record<string, number>)[name] ?? 0);
  }
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? legacyFallback ?? false),
    features: [...adapter.features].map(String).sort(),
    limits,
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
  };
}

/**
 * The adapter's name for people: vendor and architecture ("nvidia hopper"), with `detail` also the
 * device and driver description. Empty when the browser reports none of them.
 */
export function adapterName(a: Pick<AdapterReport, 'vendor' | 'architecture' | 'device' | 'description'>, detail = false): string {
  const parts = detail ? [a.vendor, a.architecture, a.device, a.description] : [a.vendor, a.architecture];
  return parts.filter(Boolean).join(' ');
}

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|\bwarp\b|basic render/i;

/** True for an adapter that emulates a GPU on the CPU. */
export function isSoftwareAdapter(adapter: Pick<AdapterReport, 'isFallbackAdapter' | 'vendor' | 'architecture' | 'device' | 'description'>): boolean {
  return adapter.isFallbackAdapter || SOFTWARE_ADAPTER.test([adapter.vendor, adapter.architecture, adapter.device, adapter.description].join(' '));
}

/** The kernel paths for a device's features on an adapter. */
export function kernelPathsFor(features: readonly string[], adapter: Parameters<typeof isSoftwareAdapter>[0]): KernelPaths {
  const subgroups = features.includes('subgroups');
  const software = isSoftwareAdapter(adapter);
  return {
    f16: features.includes('shader-f16'),
    subgroups,
    software,
    matvec: software ? 'invocation' : subgroups ? 'subgroup' : 'workgroup',
  };
}

/** Probes WebGPU. Never throws: an absent API or adapter is a report with a reason and advice. */
export async function probeWebGPU(gpu: GPU | undefined, options: ProbeOptions = {}): Promise<GpuReport> {
  if (!gpu) {
    return { available: false, reason: 'This browser does not expose WebGPU (navigator.gpu is missing).', advice: NO_WEBGPU_ADVICE };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({
      powerPreference: options.powerPreference ?? 'high-performance',
      forceFallbackAdapter: options.forceFallbackAdapter ?? false,
    });
  } catch (error) {
    return { available: false, reason: `requestAdapter() failed: ${String(error)}`, advice: NO_ADAPTER_ADVICE };
  }
  if (!adapter) {
    return { available: false, reason: 'WebGPU is present but no GPU adapter is available.', advice: NO_ADAPTER_ADVICE };
  }
  const report = describeAdapter(adapter);
  return { available: true, adapter: report, kernelPaths: kernelPathsFor(report.features, report) };
}
