/**
 * Bind group layouts read from the WGSL. A kernel's bindings are its `@group(0) @binding(n) var<...>`
 * declarations; deriving the explicit layout from them (instead of `layout: 'auto'`) lets the
 * uniform block use a dynamic offset into one per-step uniform buffer, and lets bind groups be
 * cached and reused across token steps.
 */

export type BindingKind = 'uniform' | 'read-only-storage' | 'storage';

export interface BindingDecl {
  binding: number;
  name: string;
  kind: BindingKind;
}

const DECL = /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*(uniform|storage)\s*(?:,\s*(read|read_write)\s*)?>\s*(\w+)/g;

/** Parses the group-0 resource declarations of a WGSL module, sorted by binding index. */
export function parseBindings(wgsl: string): BindingDecl[] {
  const code = wgsl.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const decls: BindingDecl[] = [];
  for (const match of code.matchAll(DECL)) {
    const [, index, space, access, name] = match;
    const kind: BindingKind = space === 'uniform' ? 'uniform' : access === 'read_write' ? 'storage' : 'read-only-storage';
    decls.push({ binding: Number(index), name: name!, kind });
  }
  decls.sort((a, b) => a.binding - b.binding);
  for (let i = 1; i < decls.length; i++) {
    if (decls[i]!.binding === decls[i - 1]!.binding) throw new Error(`binding ${decls[i]!.binding} declared twice`);
  }
  return decls;
}

/** The explicit layout for `decls`; uniform blocks get a dynamic offset. */
export function bindGroupLayoutEntries(decls: readonly BindingDecl[]): GPUBindGroupLayoutEntry[] {
  return decls.map((decl) => ({
    binding: decl.binding,
    visibility: GPUShaderStage.COMPUTE,
    buffer:
      decl.kind === 'uniform'
        ? { type: 'uniform', hasDynamicOffset: true }
        : { type: decl.kind === 'storage' ? 'storage' : 'read-only-storage' },
  }));
}
