/**
 * Device setup: one `GPUDevice` per engine, with the adapter's limits that matter raised to what
 * the adapter allows (the defaults are far too small for model weights) and the optional features
 * that switch on faster kernels. Device loss and uncaptured errors are surfaced to the owner instead
 * of being logged and ignored.
 */
import { DeviceLostError, WebGPUUnavailableError } from '../../errors.ts';
import { describeAdapter, kernelPathsFor, type AdapterReport, type KernelPaths, type ProbeOptions } from './probe.ts';

/** Limits we raise to the adapter's maximum: weights need big buffers and many bindings. */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;

const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

export interface GpuContextOptions extends ProbeOptions {
  /** Turn off optional features even where present, e.g. to test the f32 paths on a real GPU. */
  disableFeatures?: readonly string[];
  /** Called once if the device is lost; the context is unusable afterwards. */
  onLost?: (error: DeviceLostError) => void;
  /** Called for validation or out-of-memory errors no error scope caught. */
  onUncapturedError?: (error: Error) => void;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterReport;
  kernelPaths: KernelPaths;
  /** Resolves when the device is lost (never rejects). */
  lost: Promise<DeviceLostError>;
  destroy(): void;
}

export async function createGpuContext(gpu: GPU | undefined, options: GpuContextOptions = {}): Promise<GpuContext> {
  if (!gpu) throw new WebGPUUnavailableError('WebGPU is not available in this environment (no navigator.gpu).');
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
    forceFallbackAdapter: options.forceFallbackAdapter ?? false,
  });
  if (!adapter) throw new WebGPUUnavailableError('WebGPU is present but no GPU adapter is available.');

  const disabled = new Set(options.disableFeatures ?? []);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  } catch (error) {
    throw new WebGPUUnavailableError(`The GPU adapter refused to create a device: ${String(error)}`, {
      requiredFeatures,
      requiredLimits,
    });
  }

  const report = describeAdapter(adapter);
  const features = [...device.features].map(String);
  let destroyed = false;
  const lost = device.lost.then((info) => {
    const error = new DeviceLostError(
      destroyed ? 'The GPU device was released.' : `The GPU device was lost (${info.reason}): ${info.message}`,
      { reason: info.reason, message: info.message },
    );
    if (!destroyed) options.onLost?.(error);
    return error;
  });
  device.addEventListener('uncapturederror', (event) => {
    const gpuError = (event as GPUUncapturedErrorEvent).error;
    options.onUncapturedError?.(new Error(`Uncaptured WebGPU error: ${gpuError.message}`));
  });
  return {
    device,
    adapter: report,
    kernelPaths: kernelPathsFor(features, report),
    lost,
    destroy() {
      destroyed = true;
      device.destroy();
    },
  };
}
