/**
 * Compute pipelines are compiled once per (shader, entry point, override constants) and reused:
 * compiling WGSL costs milliseconds to seconds, a token step must cost none of it.
 */
export interface PipelineKey {
  /** A stable name for the shader (its file name), used in the cache key and in error labels. */
  shaderName: string;
  code: string;
  entryPoint?: string;
  constants?: Record<string, number>;
}

export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(private readonly device: GPUDevice) {}

  get(key: PipelineKey): GPUComputePipeline {
    const constants = key.constants ?? {};
    const constantsKey = Object.keys(constants)
      .sort()
      .map((name) => `${name}=${constants[name]}`)
      .join(',');
    const entryPoint = key.entryPoint ?? 'main';
    const cacheKey = `${key.shaderName}#${entryPoint}#${constantsKey}`;
    let pipeline = this.pipelines.get(cacheKey);
    if (!pipeline) {
      let module = this.modules.get(key.shaderName);
      if (!module) {
        module = this.device.createShaderModule({ label: key.shaderName, code: key.code });
        this.modules.set(key.shaderName, module);
      }
      pipeline = this.device.createComputePipeline({
        label: cacheKey,
        layout: 'auto',
        compute: { module, entryPoint, constants },
      });
      this.pipelines.set(cacheKey, pipeline);
    }
    return pipeline;
  }

  get size(): number {
    return this.pipelines.size;
  }
}

/** Splits a 1-D workgroup count into a 2-D dispatch that respects the per-dimension limit. */
export function dispatchGrid(groups: number, maxPerDimension: number): [number, number] {
  if (groups <= maxPerDimension) return [groups, 1];
  const y = Math.ceil(groups / maxPerDimension);
  return [Math.ceil(groups / y), y];
}
