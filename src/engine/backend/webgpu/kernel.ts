/**
 * A compiled compute kernel: pipeline, explicit bind group layout and uniform layout, all derived
 * from one WGSL source. Kernels are compiled once per (name, entry point, override constants) and
 * cached by `KernelCache`; a token step only looks them up.
 */
import { bindGroupLayoutEntries, parseBindings, type BindingDecl } from './bindings.ts';
import { uniformLayout, type UniformLayout } from './uniforms.ts';

export interface KernelSpec {
  /** Stable name (the shader file name); part of the cache key and of error labels. */
  name: string;
  /** Full WGSL source, includes already resolved. */
  wgsl: string;
  entryPoint?: string;
  /** Values for the shader's `override` declarations. */
  constants?: Record<string, number>;
}

let nextKernelId = 1;

export class Kernel {
  readonly id = nextKernelId++;
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroupLayout: GPUBindGroupLayout;
  readonly bindings: readonly BindingDecl[];
  /** The layout of the uniform block, when the kernel has one (its uniform binding's struct). */
  readonly params: UniformLayout | undefined;

  constructor(device: GPUDevice, spec: KernelSpec, module: GPUShaderModule) {
    this.label = kernelKey(spec);
    this.bindings = parseBindings(spec.wgsl);
    const uniforms = this.bindings.filter((b) => b.kind === 'uniform');
    if (uniforms.length > 1) throw new Error(`${spec.name}: at most one uniform block per kernel`);
    if (uniforms.length === 1) {
      const struct = new RegExp(`var\\s*<\\s*uniform\\s*>\\s*${uniforms[0]!.name}\\s*:\\s*(\\w+)`).exec(spec.wgsl);
      if (!struct) throw new Error(`${spec.name}: cannot find the type of uniform '${uniforms[0]!.name}'`);
      this.params = uniformLayout(spec.wgsl, struct[1]!);
    }
    this.bindGroupLayout = device.createBindGroupLayout({ label: this.label, entries: bindGroupLayoutEntries(this.bindings) });
    this.pipeline = device.createComputePipeline({
      label: this.label,
      layout: device.createPipelineLayout({ label: this.label, bindGroupLayouts: [this.bindGroupLayout] }),
      compute: { module, entryPoint: spec.entryPoint ?? 'main', constants: spec.constants ?? {} },
    });
  }
}

export function kernelKey(spec: KernelSpec): string {
  const constants = spec.constants ?? {};
  const constantsKey = Object.keys(constants)
    .sort()
    .map((name) => `${name}=${constants[name]}`)
    .join(',');
  return `${spec.name}#${spec.entryPoint ?? 'main'}#${constantsKey}`;
}

let nextFamily = 0;

/**
 * A family of variants of one kernel (one shader file, or one encode function), for
 * `KernelCache.variant`: each variant is then found by a small integer key that the caller
 * computes from typed fields, so a dispatch builds no string and runs no preprocessor.
 */
export function kernelFamily(): number {
  if (nextFamily >= FAMILIES) throw new Error(`more than ${FAMILIES} kernel families`);
  return nextFamily++;
}

const FAMILIES = 64;
/** Keys below this keep family + key * FAMILIES a small integer (a V8 Smi: no allocation). */
const MAX_VARIANT_KEY = 2 ** 24;

export class KernelCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly kernels = new Map<string, Kernel>();
  private readonly variants = new Map<number, Kernel>();

  constructor(private readonly device: GPUDevice) {}

  get(spec: KernelSpec): Kernel {
    const key = kernelKey(spec);
    let kernel = this.kernels.get(key);
    if (!kernel) {
      let module = this.modules.get(spec.name);
      if (!module) {
        module = this.device.createShaderModule({ label: spec.name, code: spec.wgsl });
        this.modules.set(spec.name, module);
      }
      kernel = new Kernel(this.device, spec, module);
      this.kernels.set(key, kernel);
    }
    return kernel;
  }

  /**
   * The kernel of `family` under `key` (0 <= key < 2^24), or undefined until `remember` stores it.
   * Encode functions look their kernel up here first and build a `KernelSpec` (strings, the
   * preprocessor) only on a miss, once per variant.
   */
  variant(family: number, key: number): Kernel | undefined {
    return this.variants.get(family + key * FAMILIES);
  }

  remember(family: number, key: number, kernel: Kernel): Kernel {
    if (!Number.isInteger(key) || key < 0 || key >= MAX_VARIANT_KEY) throw new RangeError(`kernel variant key ${key} out of range`);
    this.variants.set(family + key * FAMILIES, kernel);
    return kernel;
  }

  get size(): number {
    return this.kernels.size;
  }
}
