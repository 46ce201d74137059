/**
 * JSON Schema -> GBNF, for `response_format: {type: 'json_schema'}`: the subset people use, each
 * keyword turned into grammar rules so every finished output parses and validates. A keyword
 * outside the subset is an UnsupportedSchemaError naming it and listing what is supported, never
 * silently ignored (annotations such as `description` constrain nothing and are accepted).
 *
 * Choices that keep outputs valid and finite: objects with `properties` hold only the declared
 * ones, in declared order (required ones always, optional ones maybe); numbers have at most 16
 * digits before and after the point; whitespace is at most one space between tokens.
 * `pattern` is converted as a regular expression (regex.ts); integer bounds exactly, number bounds
 * when they are integers (numeric-range.ts; a bounded number has no exponent).
 */
import { GrammarError, MAX_NESTING } from './grammar.ts';
import { integerRange, numberRange } from './numeric-range.ts';
import { patternToGbnf } from './regex.ts';

/** A schema uses a keyword (or a value of one) outside the supported subset. */
export class UnsupportedSchemaError extends GrammarError {
  override name = 'UnsupportedSchemaError';
}

/** Keywords that constrain the output, each turned into rules. */
export const SUPPORTED_SCHEMA_KEYWORDS = [
  'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems',
  'minLength', 'maxLength', 'pattern', 'format', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'enum', 'const', 'anyOf', 'oneOf', '$ref', '$defs', 'definitions',
] as const;
/** Keywords that describe without constraining. */
const ANNOTATIONS = new Set(['title', 'description', '$schema', '$id', '$comment', 'examples', 'default', 'deprecated', 'readOnly', 'writeOnly']);
const SUPPORTED = new Set<string>(SUPPORTED_SCHEMA_KEYWORDS);
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type JsonType = (typeof TYPES)[number];

/**
 * String formats as regular patterns, each accepting only valid values (RFC 3339 dates and times,
 * RFC 4122 UUIDs). February has 28 days here: the 29th would need the year, which a pattern cannot
 * check exactly, so it is left out rather than allowed in every year.
 */
const DATE = '\\d{4}-((0[13578]|1[02])-(0[1-9]|[12]\\d|3[01])|(0[469]|11)-(0[1-9]|[12]\\d|30)|02-(0[1-9]|1\\d|2[0-8]))';
const TIME = '([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,6})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)';
export const FORMAT_PATTERNS: Readonly<Record<string, string>> = {
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  'date-time': `^${DATE}T${TIME}$`,
  uuid: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
};

/** Rules every schema grammar may use. */
const PRIMITIVES: Record<string, string> = {
  ws: '| " "',
  string: '"\\"" char* "\\""',
  char: '[^"\\\\\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
  integer: '"-"? ("0" | [1-9] [0-9]{0,15})',
  number: 'integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
  boolean: '"true" | "false"',
  null: '"null"',
  value: 'object | array | string | number | boolean | null',
  object: '"{" ws ( string ":" ws value ( "," ws string ":" ws value )* ws )? "}"',
  array: '"[" ws ( value ( "," ws value )* ws )? "]"',
};

const DEPENDS: Record<string, string[]> = {
  string: ['char'],
  number: ['integer'],
  value: ['object', 'array', 'string', 'number', 'boolean', 'null'],
  object: ['ws', 'string', 'value'],
  array: ['ws', 'value'],
};

/** Any JSON object (`response_format: {type: 'json_object'}`). */
export function anyJsonObjectGbnf(): string {
  const rules = new Map<string, string>();
  usePrimitive(rules, 'object');
  return render('object', rules);
}

/** A GBNF grammar whose sentences are exactly the JSON texts this converter generates for `schema`. */
export function jsonSchemaToGbnf(schema: unknown): string {
  return new SchemaConverter(schema).convert();
}

function usePrimitive(rules: Map<string, string>, name: string): string {
  if (!rules.has(name)) {
    rules.set(name, PRIMITIVES[name]!);
    for (const dep of DEPENDS[name] ?? []) usePrimitive(rules, dep);
  }
  return name;
}

function render(root: string, rules: Map<string, string>): string {
  return [`root ::= ${root}`, ...[...rules].map(([name, body]) => `${name} ::= ${body}`)].join('\n') + '\n';
}

/** A GBNF literal for `text`. */
function literal(text: string): string {
  let out = '"';
  for (const c of text) {
    const cp = c.codePointAt(0)!;
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += c;
  }
  return `${out}"`;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

class SchemaConverter {
  private readonly rules = new Map<string, string>();
  /** $ref target -> its rule name (set before converting, so recursive schemas refer to it). */
  private readonly refs = new Map<string, string>();
  private counter = 0;
  /** Schemas being converted around the current one (nested properties, items, anyOf, $refs). */
  private depth = 0;

  constructor(private readonly root: unknown) {}

  convert(): string {
    return render(this.visit(this.root, '#', 'root-value'), this.rules);
  }

  private fail(path: string, what: string, detail: Record<string, unknown> = {}): never {
    throw new UnsupportedSchemaError(`JSON schema at ${path}: ${what}. Supported keywords: ${SUPPORTED_SCHEMA_KEYWORDS.join(', ')}; types: ${TYPES.join(', ')}.`, { path, ...detail });
  }

  private rule(hint: string, body: string): string {
    const name = `${hint.replace(/[^a-zA-Z0-9-]/g, '-').replace(/-+/g, '-').slice(0, 40)}-${this.counter++}`;
    this.rules.set(name, body);
    return name;
  }

  /** The rule name (or primitive) for a schema. */
  private visit(schema: unknown, path: string, hint: string): string {
    if (this.depth >= MAX_NESTING) this.fail(path, `schemas nested more than ${MAX_NESTING} deep are not supported`, { depth: this.depth });
    this.depth++;
    try {
      return this.visitOne(schema, path, hint);
    } finally {
      this.depth--;
    }
  }

  private visitOne(schema: unknown, path: string, hint: string): string {
    if (schema === true) return usePrimitive(this.rules, 'value');
    if (schema === false) this.fail(path, 'the schema `false` allows nothing');
    if (!isObject(schema)) this.fail(path, 'a schema must be an object or a boolean');
    for (const key of Object.keys(schema)) {
      if (!SUPPORTED.has(key) && !ANNOTATIONS.has(key)) this.fail(path, `the keyword "${key}" is not supported`, { keyword: key });
    }
    if ('$ref' in schema) return this.ref(schema.$ref, path);
    if ('const' in schema) return this.rule(hint, literal(JSON.stringify(schema.const)));
    if ('enum' in schema) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) this.fail(`${path}/enum`, 'enum must be a non-empty array');
      return this.rule(hint, schema.enum.map((v) => literal(JSON.stringify(v))).join(' | '));
    }
    for (const key of ['anyOf', 'oneOf'] as const) {
      if (key in schema) {
        const list = schema[key];
        if (!Array.isArray(list) || list.length === 0) this.fail(`${path}/${key}`, `${key} must be a non-empty array`);
        return this.rule(hint, list.map((s, i) => this.visit(s, `${path}/${key}/${i}`, `${hint}-${i}`)).join(' | '));
      }
    }
    const types = this.types(schema, path);
    return types.length === 1 ? this.typed(schema, types[0]!, path, hint) : this.rule(hint, types.map((t) => this.typed(schema, t, path, `${hint}-${t}`)).join(' | '));
  }

  private types(schema: Record<string, unknown>, path: string): JsonType[] {
    const t = schema.type;
    if (t === undefined) {
      if ('properties' in schema) return ['object'];
      if ('items' in schema) return ['array'];
      return [...TYPES.filter((x) => x !== 'integer')];
    }
    const list = Array.isArray(t) ? t : [t];
    for (const x of list) if (!TYPES.includes(x as JsonType)) this.fail(`${path}/type`, `unknown type ${JSON.stringify(x)}`);
    if (list.length === 0) this.fail(`${path}/type`, 'type must name at least one type');
    return list as JsonType[];
  }

  private typed(schema: Record<string, unknown>, type: JsonType, path: string, hint: string): string {
    switch (type) {
      case 'object':
        return this.object(schema, path, hint);
      case 'array':
        return this.array(schema, path, hint);
      case 'string':
        return this.string(schema, path, hint);
      case 'integer':
      case 'number':
        return this.numeric(schema, type, path, hint);
      default:
        return usePrimitive(this.rules, type);
    }
  }

  private count(schema: Record<string, unknown>, key: string, path: string): number | undefined {
    const v = schema[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(`${path}/${key}`, `${key} must be a non-negative integer`);
    return v;
  }

  /** A bound of `key`, or undefined; a safe integer's worth of size at most (the grammar spells it out). */
  private bound(schema: Record<string, unknown>, key: string, path: string): number | undefined {
    const v = schema[key];
    if (v === undefined) return undefined;
    if (typeof v === 'boolean') this.fail(`${path}/${key}`, `${key} as a boolean (draft 4) is not supported: give the bound as a number`);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`${path}/${key}`, `${key} must be a number`);
    if (Math.abs(v) > Number.MAX_SAFE_INTEGER) this.fail(`${path}/${key}`, `${key} beyond ±2^53 is not supported`);
    return v;
  }

  private numeric(schema: Record<string, unknown>, type: 'integer' | 'number', path: string, hint: string): string {
    const min = this.bound(schema, 'minimum', path);
    const max = this.bound(schema, 'maximum', path);
    const exMin = this.bound(schema, 'exclusiveMinimum', path);
    const exMax = this.bound(schema, 'exclusiveMaximum', path);
    if (min === undefined && max === undefined && exMin === undefined && exMax === undefined) return usePrimitive(this.rules, type);
    let body: string | undefined;
    if (type === 'integer') {
      const lows = [min === undefined ? undefined : Math.ceil(min), exMin === undefined ? undefined : Math.floor(exMin) + 1].filter((x) => x !== undefined);
      const highs = [max === undefined ? undefined : Math.floor(max), exMax === undefined ? undefined : Math.ceil(exMax) - 1].filter((x) => x !== undefined);
      body = integerRange(lows.length ? Math.max(...lows) : undefined, highs.length ? Math.min(...highs) : undefined);
    } else {
      // Numbers: exactly, for integer bounds (a fractional bound would need decimal comparisons).
      for (const key of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) {
        if (schema[key] !== undefined && !Number.isInteger(schema[key])) this.fail(`${path}/${key}`, `a fractional ${key} for type number is not supported (integer bounds are)`);
      }
      // The tighter of each pair (an exclusive bound equal to an inclusive one is the tighter).
      const loEx = exMin !== undefined && (min === undefined || exMin >= min);
      const hiEx = exMax !== undefined && (max === undefined || exMax <= max);
      body = numberRange(loEx ? exMin : min, loEx, hiEx ? exMax : max, hiEx);
    }
    if (body === undefined) this.fail(path, `no ${type} lies within the bounds`);
    return this.rule(hint, body);
  }

  private string(schema: Record<string, unknown>, path: string, hint: string): string {
    if ('format' in schema) {
      const format = schema.format;
      if (typeof format !== 'string' || !(format in FORMAT_PATTERNS)) this.fail(`${path}/format`, `the format ${JSON.stringify(format)} is not supported (supported: ${Object.keys(FORMAT_PATTERNS).join(', ')})`, { keyword: 'format' });
      if ('pattern' in schema) this.fail(path, 'format together with pattern is not supported');
      const { format: _, ...rest } = schema;
      return this.string({ ...rest, pattern: FORMAT_PATTERNS[format] }, path, hint);
    }
    if ('pattern' in schema) {
      const pattern = schema.pattern;
      if (typeof pattern !== 'string') this.fail(`${path}/pattern`, 'pattern must be a string');
      if ('minLength' in schema || 'maxLength' in schema) this.fail(path, 'pattern together with minLength or maxLength is not supported (write the length into the pattern)');
      const body = patternToGbnf(pattern, (what) => this.fail(`${path}/pattern`, what, { keyword: 'pattern' }));
      return this.rule(hint, `"\\"" ${body} "\\""`);
    }
    const min = this.count(schema, 'minLength', path) ?? 0;
    const max = this.count(schema, 'maxLength', path);
    if (min === 0 && max === undefined) return usePrimitive(this.rules, 'string');
    if (max !== undefined && max < min) this.fail(path, 'maxLength is below minLength');
    usePrimitive(this.rules, 'string');
    return this.rule(hint, `"\\"" char{${min},${max ?? ''}} "\\""`);
  }

  private array(schema: Record<string, unknown>, path: string, hint: string): string {
    const item = 'items' in schema ? this.visit(schema.items, `${path}/items`, `${hint}-item`) : usePrimitive(this.rules, 'value');
    const min = this.count(schema, 'minItems', path) ?? 0;
    const max = this.count(schema, 'maxItems', path);
    if (max !== undefined && max < min) this.fail(path, 'maxItems is below minItems');
    usePrimitive(this.rules, 'ws');
    if (max === 0) return this.rule(hint, '"[" ws "]"');
    const more = (lo: number) => `( "," ws ${item} ){${lo},${max === undefined ? '' : max - 1}}`;
    const body = min === 0 ? `( ${item} ${more(0)} ws )?` : `${item} ${more(min - 1)} ws`;
    return this.rule(hint, `"[" ws ${body} "]"`);
  }

  private object(schema: Record<string, unknown>, path: string, hint: string): string {
    const extra = schema.additionalProperties;
    if (extra !== undefined && extra !== false) this.fail(`${path}/additionalProperties`, 'only additionalProperties: false is supported (objects with properties hold only the declared ones)');
    if (!('properties' in schema)) {
      if ('required' in schema) this.fail(path, 'required without properties');
      return extra === false ? this.rule(hint, '"{" ws "}"') : usePrimitive(this.rules, 'object');
    }
    const props = schema.properties;
    if (!isObject(props)) this.fail(`${path}/properties`, 'properties must be an object');
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== 'string' || !(r in props))) {
      this.fail(`${path}/required`, 'required must list names declared in properties');
    }
    usePrimitive(this.rules, 'ws');
    const names = Object.keys(props);
    const pairs = names.map((name) => `${literal(JSON.stringify(name))} ":" ws ${this.visit(props[name], `${path}/properties/${name}`, `${hint}-${name}`)}`);
    // tail(i, first): properties i.. given whether one was written yet (decides the comma).
    const memo = new Map<string, string>();
    const tail = (i: number, first: boolean): string => {
      if (i === names.length) return '';
      const key = `${i},${first}`;
      const done = memo.get(key);
      if (done !== undefined) return done;
      const take = `${first ? '' : '"," ws '}${pairs[i]} ${tail(i + 1, false)}`.trim();
      const body = required.includes(names[i]) ? take : `${take} | ${tail(i + 1, first) || '""'}`;
      const name = this.rule(`${hint}-p${i}`, body);
      memo.set(key, name);
      return name;
    };
    return this.rule(hint, `"{" ws ${tail(0, true)} ws "}"`.replace('ws  ws', 'ws'));
  }

  private ref(target: unknown, path: string): string {
    if (typeof target !== 'string') this.fail(`${path}/$ref`, '$ref must be a string');
    const known = this.refs.get(target);
    if (known) return known;
    let resolved: unknown;
    if (target === '#') resolved = this.root;
    else {
      const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(target);
      const defs = m && isObject(this.root) ? this.root[m[1]!] : undefined;
      resolved = m && isObject(defs) ? defs[decodeURIComponent(m[2]!).replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
      if (resolved === undefined) this.fail(`${path}/$ref`, `$ref ${JSON.stringify(target)} does not name an entry of the root's $defs or definitions`);
    }
    const name = this.rule(`ref-${target.split('/').pop()}`, '');
    this.refs.set(target, name);
    this.rules.set(name, this.visit(resolved, target, name));
    return name;
  }
}
