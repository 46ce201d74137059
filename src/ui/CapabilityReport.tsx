import type { CpuReport, GpuReport } from '../engine/api.ts';
import { formatBytes } from '../engine/format-bytes.ts';

const LIMIT_LABELS: Record<string, string> = {
  maxBufferSize: 'Largest buffer',
  maxStorageBufferBindingSize: 'Largest storage binding',
  maxUniformBufferBindingSize: 'Largest uniform binding',
  maxStorageBuffersPerShaderStage: 'Storage buffers per stage',
  maxBindGroups: 'Bind groups',
  maxComputeWorkgroupStorageSize: 'Workgroup memory',
  maxComputeInvocationsPerWorkgroup: 'Invocations per workgroup',
  maxComputeWorkgroupSizeX: 'Workgroup size X',
  maxComputeWorkgroupSizeY: 'Workgroup size Y',
  maxComputeWorkgroupSizeZ: 'Workgroup size Z',
  maxComputeWorkgroupsPerDimension: 'Workgroups per dimension',
  minStorageBufferOffsetAlignment: 'Storage offset alignment',
  minUniformBufferOffsetAlignment: 'Uniform offset alignment',
};

const BYTE_LIMITS = new Set(['maxBufferSize', 'maxStorageBufferBindingSize', 'maxUniformBufferBindingSize', 'maxComputeWorkgroupStorageSize']);

/** The app's one byte formatter (binary units), shared with the engine's messages. */
export { formatBytes };

/**
 * What the engine found: the WebGPU adapter and what it enables, or why there is none and what to
 * do. `cpu`, when given, says whether models run on the CPU instead.
 */
export function CapabilityReport({ report, cpu }: { report: GpuReport; cpu?: CpuReport | undefined }) {
  if (!report.available) {
    return (
      <section className="panel warning" aria-labelledby="gpu-heading" data-testid="gpu-unavailable">
        <h2 id="gpu-heading">No WebGPU here</h2>
        <p>{report.reason}</p>
        <p>{report.advice}</p>
        {cpu?.wasmSimd && (
          <p data-testid="cpu-fallback-note">
            Models run on the CPU instead ({cpu.threadsAvailable ? `${cpu.defaultThreads} thread${cpu.defaultThreads === 1 ? '' : 's'}` : 'single-threaded'}): slower, but
            everything works.
          </p>
        )}
      </section>
    );
  }
  const { adapter, kernelPaths } = report;
  // The engine's adapterName, written out: the UI imports only the engine's API types.
  const name = [adapter.vendor, adapter.architecture].filter(Boolean).join(' ') || 'Unknown GPU';
  return (
    <section className="panel" aria-labelledby="gpu-heading" data-testid="gpu-report">
      <h2 id="gpu-heading">Your GPU</h2>
      <dl className="facts">
        <dt>Adapter</dt>
        <dd data-testid="adapter-name">{name}</dd>
        {adapter.description && (
          <>
            <dt>Driver</dt>
            <dd>{adapter.description}</dd>
          </>
        )}
        <dt>Kind</dt>
        <dd data-testid="adapter-kind">
          {kernelPaths.software ? 'Software (fallback) adapter: works, but slowly' : 'Hardware adapter'}
        </dd>
        <dt>Kernel paths</dt>
        <dd data-testid="kernel-paths">
          {kernelPaths.f16 ? 'f16' : 'f32 (no shader-f16)'}, {kernelPaths.subgroups ? 'subgroups' : 'no subgroups'}, matvec by {kernelPaths.matvec}
        </dd>
      </dl>
      <h3>Features</h3>
      <ul className="chips" data-testid="features">
        {adapter.features.map((feature) => (
          <li key={feature}>{feature}</li>
        ))}
      </ul>
      <h3>Limits</h3>
      <table className="limits" data-testid="limits">
        <tbody>
          {Object.entries(adapter.limits).map(([key, value]) => (
            <tr key={key}>
              <th scope="row" title={key}>
                {LIMIT_LABELS[key] ?? key}
              </th>
              <td>{BYTE_LIMITS.has(key) ? formatBytes(value) : value.toLocaleString('en-US')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The CPU backend: WebAssembly SIMD and relaxed SIMD, threads (or why it runs on one). */
export function CpuCapabilityReport({ cpu, inUse }: { cpu: CpuReport | undefined; inUse?: 'webgpu' | 'cpu' | undefined }) {
  const memory = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
  return (
    <section className="panel" aria-labelledby="cpu-heading" data-testid="cpu-report">
      <h2 id="cpu-heading">CPU backend</h2>
      {!cpu ? (
        <p className="muted">Asking the engine…</p>
      ) : (
        <dl className="facts">
          <dt>WebAssembly SIMD</dt>
          <dd data-testid="wasm-simd">{cpu.wasmSimd ? 'supported' : 'not supported: models cannot run on the CPU in this browser'}</dd>
          <dt>Relaxed SIMD</dt>
          <dd data-testid="relaxed-simd">{cpu.relaxedSimd ? 'supported (faster integer dot products)' : 'not supported (plain SIMD is used)'}</dd>
          <dt>Threads</dt>
          <dd data-testid="cpu-threads" data-threads={cpu.defaultThreads} data-cross-origin-isolated={String(cpu.crossOriginIsolated ?? '')}>
            {cpu.threadsAvailable
              ? `${cpu.defaultThreads} thread${cpu.defaultThreads === 1 ? '' : 's'} (of ${cpu.hardwareConcurrency} logical cores)`
              : `single-threaded: ${cpu.threadsReason ?? 'threads are not available'}`}
          </dd>
          <dt>Device memory</dt>
          <dd>{memory !== undefined ? `${memory} GiB reported (browsers round this down; many cap it at 8)` : 'not reported by this browser'}</dd>
          <dt>Used for</dt>
          <dd data-testid="backend-used">
            {inUse === 'cpu'
              ? 'Chat runs on the CPU now (WebGPU is missing, a slower software renderer, or the CPU was chosen in Models).'
              : inUse === 'webgpu'
                ? 'Chat runs on WebGPU now; the CPU takes over where WebGPU is missing or chosen in Models.'
                : 'No model is loaded. Auto runs models on WebGPU with a hardware GPU, otherwise on the CPU.'}
          </dd>
        </dl>
      )}
    </section>
  );
}
