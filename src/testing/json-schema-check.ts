/**
 * For the structured-output tests: random schemas in the supported subset, and a small validator
 * for that subset written from the JSON Schema spec (independent of the schema -> grammar converter
 * it checks). No dependency: none of the project's packages validates JSON Schema.
 */

type Schema = boolean | Record<string, unknown>;

/** Why `value` does not validate against `schema` (empty when it does). */
export function schemaErrors(schema: Schema, value: unknown, root: Schema = schema, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: schema false`];
  const s = schema;
  if (typeof s.$ref === 'string') {
    const target = s.$ref === '#' ? root : (root as Record<string, Record<string, Schema>>)[s.$ref.split('/')[1]!]![s.$ref.split('/')[2]!]!;
    return schemaErrors(target, value, root, path);
  }
  const errors: string[] = [];
  if ('const' in s && !deepEqual(s.const, value)) errors.push(`${path}: not the const`);
  if (Array.isArray(s.enum) && !s.enum.some((v) => deepEqual(v, value))) errors.push(`${path}: not in enum`);
  if (Array.isArray(s.anyOf) && !s.anyOf.some((x) => schemaErrors(x as Schema, value, root, path).length === 0)) errors.push(`${path}: no anyOf branch`);
  if (Array.isArray(s.oneOf)) {
    const n = s.oneOf.filter((x) => schemaErrors(x as Schema, value, root, path).length === 0).length;
    if (n !== 1) errors.push(`${path}: ${n} oneOf branches match`);
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => typeOk(t as string, value))) errors.push(`${path}: not of type ${types.join('|')}`);
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof s.minLength === 'number' && length < s.minLength) errors.push(`${path}: shorter than ${s.minLength}`);
    if (typeof s.maxLength === 'number' && length > s.maxLength) errors.push(`${path}: longer than ${s.maxLength}`);
    // JavaScript's own RegExp (the u flag, as the spec advises), independent of the converter's parser.
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value)) errors.push(`${path}: does not match ${s.pattern}`);
    if (typeof s.format === 'string' && !formatOk(s.format, value)) errors.push(`${path}: not a ${s.format}`);
  }
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && value < s.minimum) errors.push(`${path}: below ${s.minimum}`);
    if (typeof s.maximum === 'number' && value > s.maximum) errors.push(`${path}: above ${s.maximum}`);
    if (typeof s.exclusiveMinimum === 'number' && value <= s.exclusiveMinimum) errors.push(`${path}: not above ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === 'number' && value >= s.exclusiveMaximum) errors.push(`${path}: not below ${s.exclusiveMaximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems) errors.push(`${path}: fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) errors.push(`${path}: more than ${s.maxItems} items`);
    if (s.items !== undefined) value.forEach((v, i) => errors.push(...schemaErrors(s.items as Schema, v, root, `${path}[${i}]`)));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required ?? []) as string[]) if (!(r in obj)) errors.push(`${path}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      if (k in props) errors.push(...schemaErrors(props[k]!, v, root, `${path}.${k}`));
      else if (s.additionalProperties === false) errors.push(`${path}: unexpected property ${k}`);
    }
  }
  return errors;
}

/** RFC 3339 dates and times checked by their numbers (Date's calendar), RFC 4122 UUIDs by shape. */
function formatOk(format: string, v: string): boolean {
  const dateOk = (d: string) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(d);
    if (!m) return false;
    // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
    const date = new Date(0);
    date.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    return date.getUTCFullYear() === Number(m[1]) && date.getUTCMonth() === Number(m[2]) - 1 && date.getUTCDate() === Number(m[3]);
  };
  const timeOk = (t: string) => {
    const m = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/i.exec(t);
    return !!m && Number(m[1]) < 24 && Number(m[2]) < 60 && Number(m[3]) < 60 && (m[6] === undefined || (Number(m[6]) < 24 && Number(m[7]) < 60));
  };
  switch (format) {
    case 'date': return dateOk(v);
    case 'time': return timeOk(v);
    case 'date-time': return v.length > 11 && /^[Tt]$/.test(v[10]!) && dateOk(v.slice(0, 10)) && timeOk(v.slice(11));
    case 'uuid': return /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i.test(v);
    default: return true;
  }
}

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'null': return v === null;
    case 'boolean': return typeof v === 'boolean';
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'array': return Array.isArray(v);
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    default: return false;
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canonical(x)]));
  return v;
}

/** A random schema of the supported subset, nested up to `depth`. */
export function randomSchema(next: () => number, depth = 3): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const leaf = (): Record<string, unknown> => {
    const r = next();
    if (r < 0.2) return next() < 0.5 ? { type: 'string' } : { type: 'string', minLength: 1, maxLength: 1 + Math.floor(next() * 8) };
    if (r < 0.27) return { type: 'integer' };
    if (r < 0.33) return { type: 'integer', ...randomBounds(next, false) };
    if (r < 0.38) return { type: 'number' };
    if (r < 0.42) return { type: 'number', ...randomBounds(next, true) };
    if (r < 0.43) return { type: 'string', pattern: next() < 0.5 ? pick(PATTERNS) : randomPattern(next) };
    if (r < 0.45) return { type: 'string', format: pick(['date', 'time', 'date-time', 'uuid']) };
    if (r < 0.55) return { type: 'boolean' };
    if (r < 0.6) return { type: ['string', 'null'] };
    if (r < 0.7) return { enum: pick([['red', 'green', 'blue'], [1, 2.5, 'x', null, true], [{ a: [1] }, 'é"\\']]) };
    if (r < 0.75) return { const: pick(['fixed', 42, { k: 'v' }]) };
    if (r < 0.85) return { oneOf: [{ type: 'string', maxLength: 3 }, { type: 'integer' }, { type: 'null' }] };
    return { anyOf: [{ type: 'number' }, { type: 'boolean' }] };
  };
  const node = (d: number): Record<string, unknown> => {
    if (d <= 0 || next() < 0.3) return leaf();
    if (next() < 0.55) {
      const names = ['id', 'name', 'tags', 'a b', 'é', 'nested', 'x'].filter(() => next() < 0.5);
      const properties = Object.fromEntries(names.map((n) => [n, node(d - 1)]));
      const required = names.filter(() => next() < 0.6);
      return { type: 'object', properties, required, ...(next() < 0.5 ? { additionalProperties: false } : {}) };
    }
    const minItems = Math.floor(next() * 2);
    return { type: 'array', items: node(d - 1), minItems, ...(next() < 0.6 ? { maxItems: minItems + Math.floor(next() * 4) } : {}) };
  };
  const schema = node(depth);
  if (next() < 0.2) return { type: 'object', properties: { item: { $ref: '#/$defs/item' }, list: { type: 'array', items: { $ref: '#/$defs/item' }, maxItems: 3 } }, required: ['item'], $defs: { item: schema } };
  return schema;
}

/** Patterns of the kind schemas carry. */
export const PATTERNS = [
  '^[a-z]+$', '^\\d{3}-\\d{4}$', '^[A-Z][a-z]*( [A-Z][a-z]*)*$', '^(red|green|blue)$', '^\\w+@\\w+\\.(com|org)$',
  '^[^"\\\\]{0,5}$', '^#[0-9a-fA-F]{6}$', 'ab', '^x?y+z*$', '^(?:[0-9]{1,3}\\.){3}[0-9]{1,3}$', '^\\s*\\S+$', '^["\\\\\\n]{1,3}$',
  '^.{2,4}$', '\\u00e9|ü$', '^[\\u4e00-\\u9fff]{1,3}$',
];

/**
 * A random regular pattern over a small alphabet (including characters a JSON string escapes): literals, classes
 * (negated too), \d \w \s, groups, alternation, quantifiers, and anchors at either end or not.
 */
export function randomPattern(next: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const atom = (d: number): string => {
    const r = next();
    if (r < 0.35) return pick(['a', 'b', 'é', '"', '\\\\', '\\n', '1', ' ', '\\.', '\\u4e2d']);
    if (r < 0.55) return pick(['[ab]', '[^a]', '[a-c1]', '[^"\\\\]', '[\\d\\s]', '[é-ü]', '.']);
    if (r < 0.7) return pick(['\\d', '\\w', '\\s', '\\D', '\\W', '\\S']);
    if (d <= 0) return 'a';
    return `(${next() < 0.3 ? '?:' : ''}${seq(d - 1)}${next() < 0.4 ? `|${seq(d - 1)}` : ''})`;
  };
  const seq = (d: number): string =>
    Array.from({ length: 1 + Math.floor(next() * 3) }, () => atom(d) + (next() < 0.4 ? pick(['?', '*', '+', '{2}', '{1,3}', '{0,}', '+?']) : '')).join('');
  return `${next() < 0.6 ? '^' : ''}${seq(2)}${next() < 0.6 ? '$' : ''}`;
}

/** Random numeric bounds: inclusive or exclusive, either side or both; integers for numbers (what is exact). */
export function randomBounds(next: () => number, integers: boolean): Record<string, number> {
  const value = () => (integers || next() < 0.5 ? Math.floor((next() - 0.5) * 2 * 10 ** Math.floor(next() * 5)) : Math.round((next() - 0.5) * 2000) / 10);
  const out: Record<string, number> = {};
  const lo = value();
  const hi = lo + Math.floor(next() * 10 ** Math.floor(next() * 5)) + 2;
  if (next() < 0.7) out[next() < 0.5 ? 'minimum' : 'exclusiveMinimum'] = lo;
  if (next() < 0.7 || Object.keys(out).length === 0) out[next() < 0.5 ? 'maximum' : 'exclusiveMaximum'] = hi;
  return out;
}
