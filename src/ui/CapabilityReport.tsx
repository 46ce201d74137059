import type { GpuReport } from '../engine/api.ts';

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

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

/** What the engine found: the WebGPU adapter and what it enables, or why there is none and what to do. */
export function CapabilityReport({ report }: { report: GpuReport }) {
  if (!report.available) {
    return (
      <section className="panel warning" aria-labelledby="gpu-heading" data-testid="gpu-unavailable">
        <h2 id="gpu-heading">No WebGPU here</h2>
        <p>{report.reason}</p>
        <p>{report.advice}</p>
      </section>
    );
  }
  const { adapter, kernelPaths } = report;
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
          {adapter.isFallbackAdapter ? 'Software (fallback) adapter: works, but slowly' : 'Hardware adapter'}
        </dd>
        <dt>Kernel paths</dt>
        <dd data-testid="kernel-paths">
          {kernelPaths.f16 ? 'f16' : 'f32 (no shader-f16)'}, {kernelPaths.subgroups ? 'subgroups' : 'no subgroups'}
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
