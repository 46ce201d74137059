/**
 * Uniform blocks declared once, in the WGSL. A kernel's parameters are the `struct` its shader
 * declares; this module reads that struct's fields from the shader source and packs a
 * `{field: value}` object into bytes with WGSL's layout rules. So the TS side cannot drift from the
 * shader: a missing, extra or misspelt field is an error at pack time, not silent garbage.
 *
 * Supported field types: scalars (u32, i32, f32) and vectors of them (vec2/vec3/vec4 with
 * `<u32>` etc. or the `vec4u`/`vec4f`/`vec4i` aliases). That is all uniform parameter blocks need.
 */

export type ScalarKind = 'u32' | 'i32' | 'f32';

export interface UniformField {
  name: string;
  kind: ScalarKind;
  /** 1 for scalars, 2..4 for vectors. */
  components: number;
  /** Byte offset inside the block. */
  offset: number;
}

export interface UniformLayout {
  structName: string;
  fields: UniformField[];
  /** Size in bytes, rounded up to the struct alignment (16 for uniform buffers). */
  byteLength: number;
}

export type UniformValues = Record<string, number | readonly number[]>;

const VECTOR_ALIASES: Record<string, [ScalarKind, number]> = {
  vec2u: ['u32', 2], vec3u: ['u32', 3], vec4u: ['u32', 4],
  vec2i: ['i32', 2], vec3i: ['i32', 3], vec4i: ['i32', 4],
  vec2f: ['f32', 2], vec3f: ['f32', 3], vec4f: ['f32', 4],
};

function parseFieldType(type: string, structName: string): [ScalarKind, number] {
  if (type === 'u32' || type === 'i32' || type === 'f32') return [type, 1];
  const alias = VECTOR_ALIASES[type];
  if (alias) return alias;
  const generic = /^vec([234])<(u32|i32|f32)>$/.exec(type);
  if (generic) return [generic[2] as ScalarKind, Number(generic[1])];
  throw new Error(`struct ${structName}: unsupported uniform field type '${type}'`);
}

/** WGSL alignment of a scalar or vector of 4-byte components: vec3 aligns like vec4. */
function alignmentOf(components: number): number {
  return components === 1 ? 4 : components === 2 ? 8 : 16;
}

const cache = new Map<string, UniformLayout>();

/** Parses `struct <structName> { ... }` from WGSL source into a byte layout. */
export function uniformLayout(wgsl: string, structName: string): UniformLayout {
  const key = `${structName}\u0000${wgsl}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const withoutComments = wgsl.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const match = new RegExp(`struct\\s+${structName}\\s*\\{([^}]*)\\}`).exec(withoutComments);
  if (!match) throw new Error(`struct ${structName} not found in shader`);
  const fields: UniformField[] = [];
  let offset = 0;
  for (const raw of match[1]!.split(',')) {
    const entry = raw.trim();
    if (!entry) continue;
    const fieldMatch = /^(?:@\w+(?:\([^)]*\))?\s+)*(\w+)\s*:\s*([\w<>]+)$/.exec(entry);
    if (!fieldMatch) throw new Error(`struct ${structName}: cannot parse field '${entry}'`);
    const [kind, components] = parseFieldType(fieldMatch[2]!, structName);
    const align = alignmentOf(components);
    offset = Math.ceil(offset / align) * align;
    fields.push({ name: fieldMatch[1]!, kind, components, offset });
    offset += 4 * components;
  }
  const layout = { structName, fields, byteLength: Math.max(16, Math.ceil(offset / 16) * 16) };
  cache.set(key, layout);
  return layout;
}

/** Packs values into a new buffer laid out as `layout`. Throws on missing or unknown fields. */
export function packUniforms(layout: UniformLayout, values: UniformValues): ArrayBuffer {
  const bytes = new ArrayBuffer(layout.byteLength);
  packUniformsInto(layout, values, new DataView(bytes), 0);
  return bytes;
}

/**
 * Packs values into `view` at byte `at` (the step recorder's staging area), allocating nothing:
 * this runs for every dispatch that is not replayed. Same checks as `packUniforms`.
 */
export function packUniformsInto(layout: UniformLayout, values: UniformValues, view: DataView, at: number): void {
  let given = 0;
  for (const name in values) if (values[name] !== undefined) given++;
  for (const field of layout.fields) {
    const value = values[field.name];
    if (value === undefined) throw new Error(`struct ${layout.structName}: missing value for '${field.name}'`);
    if (typeof value === 'number') {
      if (field.components !== 1) throw new Error(`struct ${layout.structName}.${field.name}: expected ${field.components} components, got 1`);
      setComponent(layout, field, view, at + field.offset, value);
      continue;
    }
    if (value.length !== field.components) {
      throw new Error(`struct ${layout.structName}.${field.name}: expected ${field.components} components, got ${value.length}`);
    }
    for (let i = 0; i < value.length; i++) setComponent(layout, field, view, at + field.offset + 4 * i, value[i]!);
  }
  if (given !== layout.fields.length) {
    for (const name of Object.keys(values)) {
      if (!layout.fields.some((f) => f.name === name)) throw new Error(`struct ${layout.structName} has no field '${name}'`);
    }
  }
}

function setComponent(layout: UniformLayout, field: UniformField, view: DataView, at: number, part: number): void {
  if (field.kind === 'f32') view.setFloat32(at, part, true);
  else if (field.kind === 'i32') view.setInt32(at, part, true);
  else {
    if (!Number.isInteger(part) || part < 0 || part > 0xffffffff) {
      throw new Error(`struct ${layout.structName}.${field.name}: ${part} is not a u32`);
    }
    view.setUint32(at, part, true);
  }
}
