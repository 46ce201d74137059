/**
 * The Jinja runtime for chat templates: @huggingface/jinja, with the globals Hugging Face
 * transformers gives a template, and corrections where @huggingface/jinja differs from Python's
 * jinja2 on constructs that real chat templates use.
 *
 * The reference is Python's jinja2 as transformers sets it up (`ImmutableSandboxedEnvironment`,
 * `trim_blocks` and `lstrip_blocks`, `loopcontrols`, `tojson` without HTML escaping). The tests
 * render every template in llama.cpp's `models/templates` with both and compare the bytes.
 *
 * How the corrections attach: `Interpreter.evaluate` is the one public method every node goes
 * through, and the interpreter's other methods call back into it, so an override sees every
 * expression. When a correction has evaluated an operand already, it hands the node back to the
 * library with that operand replaced by an {@link Evaluated} node, so nothing is evaluated twice.
 * After parsing, one pass wraps each expression whose value is printed (`{{ x }}`) in a
 * {@link Printed} node, so printing can follow Python's `str()`.
 *
 * The corrections, each matching jinja2:
 * - printing, `|string` and `~` use Python's `str()`: `True`, `None`, `{'a': 1}`, `['x']` (the
 *   library prints `true`, nothing, and JSON);
 * - `==` and `!=` compare as Python does: by value for lists and dicts, `'1' != 1`;
 * - `'a' + {}` is an error, as in Python (the library would write "a[object Map]");
 * - an undefined value iterates as empty and has length 0; `none | selectattr(...)` is empty;
 * - a string iterates by characters; tuples unpack in `for a, b in [(1, 2)]`;
 * - `|safe` makes markup, and `markup + str` HTML-escapes the plain side (markupsafe's `Markup`);
 * - `str.format`, `select`/`reject`, `map('filter')`, `min`/`max`/`sum`, dicts with integer keys.
 *
 * The corrections subclass the library's Interpreter and rewrite its parsed nodes, which are
 * internals, not its public API: package.json pins @huggingface/jinja to one exact version, and an
 * upgrade must pass tests/chat (every llama.cpp template against Python's jinja2) before it lands.
 *
 * Known gaps, none used by the templates tested: the parser rejects the one-element tuple `(x,)` and
 * transformers' `{% generation %}` tag; `map`/`select` give lists where jinja2 gives generators (so
 * `x | map(...) | tojson` renders instead of failing as in Python).
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { strftime } from './strftime.ts';

/** Any value of the jinja runtime (the library's `AnyRuntimeValue`, which it does not export). */
export type RuntimeValue = ReturnType<Environment['set']>;
type Node = NonNullable<Parameters<Interpreter['evaluate']>[0]>;
type Program = Template['parsed'];

/**
 * What one render may take. A chat template comes with the model file, so it is untrusted code: a
 * `range(1e8)`, nested loops or a string doubled in a loop would freeze or crash the tab. The bounds
 * follow Python jinja2's sandbox (MAX_RANGE 100000) and are far above what real templates need:
 * llama.cpp's 68 templates render a 200-turn conversation in a few thousand steps.
 */
export const TEMPLATE_LIMITS = {
  /** Expressions and statements evaluated. */
  steps: 1_000_000,
  /** Wall time of one render. */
  ms: 5_000,
  /** Characters of any string value, the output included. */
  chars: 8_000_000,
  /** Items of any list, `range()` included. */
  items: 100_000,
};

/** A render went past one of TEMPLATE_LIMITS. */
export class TemplateLimitError extends Error {
  constructor(
    readonly limit: keyof typeof TEMPLATE_LIMITS,
    message: string,
  ) {
    super(message);
    this.name = 'TemplateLimitError';
  }
}

function tooLong(what: string, length: number): never {
  throw new TemplateLimitError(what === 'list' ? 'items' : 'chars', `the template built a ${what} of ${length} ${what === 'list' ? 'items' : 'characters'} (the limit is ${what === 'list' ? TEMPLATE_LIMITS.items : TEMPLATE_LIMITS.chars})`);
}

/** Thrown by the template's `raise_exception(message)`. */
export class TemplateRaise extends Error {
  readonly templateMessage: string;

  constructor(message: string) {
    super(message);
    this.name = 'TemplateRaise';
    this.templateMessage = message;
  }
}

// ---- runtime values -----------------------------------------------------------------------------

/** Converts plain JSON-like data (and JS functions) to a runtime value, as the library does for context. */
function toRuntime(value: unknown): RuntimeValue {
  return new Environment().set('value', value);
}

function arrayOf(items: RuntimeValue[]): RuntimeValue {
  const array = toRuntime([]);
  (array.value as RuntimeValue[]).push(...items);
  return array;
}

type NativeFunction = (args: RuntimeValue[], scope: Environment) => RuntimeValue;
const FunctionValue = toRuntime(() => undefined).constructor as new (fn: NativeFunction) => RuntimeValue;
const StringValue = toRuntime('').constructor as new (value: string) => RuntimeValue;
const FloatValue = toRuntime(0.5).constructor as new (value: number) => RuntimeValue;

const isUndefined = (v: RuntimeValue) => v.type === 'UndefinedValue';
const isNone = (v: RuntimeValue) => v.type === 'NullValue';
const isString = (v: RuntimeValue) => v.type === 'StringValue';
const isArrayLike = (v: RuntimeValue) => v.type === 'ArrayValue' || v.type === 'TupleValue';
const isMapping = (v: RuntimeValue) => v.type === 'ObjectValue' || v.type === 'KeywordArgumentsValue';
const items = (v: RuntimeValue) => v.value as RuntimeValue[];
const entries = (v: RuntimeValue) => v.value as Map<string, RuntimeValue>;

/** Strings that are markupsafe `Markup` in jinja2 (made by `|safe`). */
const markup = new WeakSet<object>();

function makeMarkup(text: string): RuntimeValue {
  const value = new StringValue(text);
  markup.add(value);
  return value;
}

/** markupsafe.escape. */
function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;');
}

/** Python's `repr()` of a string: single quotes unless the text has `'` and no `"`. */
function reprString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += '\\' + quote;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + quote;
}

function reprDict(map: Map<string, RuntimeValue>): string {
  return '{' + [...map].map(([k, v]) => `${reprString(k)}: ${pythonStr(v, true)}`).join(', ') + '}';
}

/** Python's `str()` of a value, or `repr()` inside a container. */
function pythonStr(value: RuntimeValue, repr = false): string {
  if (intKeyedDicts.has(value)) {
    return '{' + items(value).map((p) => `${pythonStr(items(p)[0]!, true)}: ${pythonStr(items(p)[1]!, true)}`).join(', ') + '}';
  }
  switch (value.type) {
    case 'StringValue':
      return repr ? reprString(value.value as string) : (value.value as string);
    case 'BooleanValue':
      return value.value ? 'True' : 'False';
    case 'NullValue':
      return 'None';
    case 'UndefinedValue':
      return '';
    case 'ArrayValue':
      return '[' + items(value).map((v) => pythonStr(v, true)).join(', ') + ']';
    case 'TupleValue': {
      const parts = items(value).map((v) => pythonStr(v, true));
      return '(' + parts.join(', ') + (parts.length === 1 ? ',)' : ')');
    }
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
      return reprDict(entries(value));
    case 'NamespaceValue':
      return `<Namespace ${reprDict(entries(value))}>`;
    default:
      return value.toString();
  }
}

function pythonTypeName(value: RuntimeValue): string {
  if (intKeyedDicts.has(value)) return 'dict';
  const names: Record<string, string> = {
    StringValue: 'str', IntegerValue: 'int', FloatValue: 'float', BooleanValue: 'bool', NullValue: 'NoneType',
    ArrayValue: 'list', TupleValue: 'tuple', ObjectValue: 'dict', KeywordArgumentsValue: 'dict',
    NamespaceValue: 'Namespace', FunctionValue: 'function', UndefinedValue: 'Undefined',
  };
  return names[value.type] ?? value.type;
}

/**
 * Python's `str.format` for the forms templates use: `{}` and `{0}` (positional), `{name}`
 * (keyword), `{{` and `}}`. A format spec or conversion fails loudly rather than render otherwise.
 */
function pythonFormat(template: string, args: RuntimeValue[]): RuntimeValue {
  const positional: RuntimeValue[] = [];
  let keywords = new Map<string, RuntimeValue>();
  for (const arg of args) {
    if (arg.type === 'KeywordArgumentsValue') keywords = entries(arg);
    else positional.push(arg);
  }
  let next = 0;
  const out = template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (whole, field: string | undefined) => {
    if (whole === '{{') return '{';
    if (whole === '}}') return '}';
    const name = field ?? '';
    if (/[!:]/.test(name)) throw new Error(`str.format: format specs are not supported ('${whole}')`);
    let value: RuntimeValue | undefined;
    if (name === '') value = positional[next++];
    else if (/^\d+$/.test(name)) value = positional[Number(name)];
    else value = keywords.get(name);
    if (value === undefined) throw new Error(`str.format: no argument for '${whole}'`);
    return pythonStr(value);
  });
  return toRuntime(out);
}

/**
 * Dicts with integer keys (ByteDance Seed-OSS: `{0: 0, 512: 128, ...} | dictsort`). The library's
 * object keeps string keys only, so an object literal with an integer key becomes an array of
 * `[key, value]` pairs marked here, which iteration, `dictsort`, `items()`, `|length` and `d[k]` read.
 */
const intKeyedDicts = new WeakSet<object>();

function dictKey(value: RuntimeValue): string | number {
  if (value.type === 'StringValue' || value.type === 'IntegerValue') return value.value as string | number;
  throw new Error(`dict keys must be strings or integers: got ${value.type}`);
}

/** Python's `==`: numbers (and bools) by value, strings, None, lists and dicts element by element. */
function pythonEquals(a: RuntimeValue, b: RuntimeValue): boolean {
  const numeric = (v: RuntimeValue) => v.type === 'IntegerValue' || v.type === 'FloatValue' || v.type === 'BooleanValue';
  if (numeric(a) && numeric(b)) return Number(a.value) === Number(b.value);
  if (intKeyedDicts.has(a) || intKeyedDicts.has(b)) return a === b;
  if (a.type !== b.type) return false;
  switch (a.type) {
    case 'StringValue':
      return a.value === b.value;
    case 'NullValue':
    case 'UndefinedValue':
      return true;
    case 'ArrayValue':
    case 'TupleValue':
      return items(a).length === items(b).length && items(a).every((x, i) => pythonEquals(x, items(b)[i]!));
    case 'ObjectValue': {
      const x = entries(a);
      const y = entries(b);
      return x.size === y.size && [...x].every(([k, v]) => y.has(k) && pythonEquals(v, y.get(k)!));
    }
    default:
      return a === b;
  }
}

/** Python's ordering for `sort`/`min`/`max`/`dictsort`: numbers with numbers, strings with strings. */
function comparePython(a: RuntimeValue, b: RuntimeValue, caseSensitive = true): number {
  let x = a.value as unknown;
  let y = b.value as unknown;
  if (typeof x === 'boolean') x = Number(x);
  if (typeof y === 'boolean') y = Number(y);
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  if (typeof x === 'string' && typeof y === 'string') {
    if (!caseSensitive) {
      x = x.toLowerCase();
      y = (y as string).toLowerCase();
    }
    return (x as string) < (y as string) ? -1 : (x as string) > (y as string) ? 1 : 0;
  }
  throw new Error(`'<' not supported between instances of '${a.type}' and '${b.type}'`);
}

function sortedPairs(dict: RuntimeValue, sort: boolean): RuntimeValue {
  const pairs = items(dict).slice();
  if (sort) pairs.sort((p, q) => comparePython(items(p)[0]!, items(q)[0]!, false));
  return arrayOf(pairs);
}

// ---- AST ----------------------------------------------------------------------------------------

/** A node carrying a value that is computed already (see the module comment). */
const EVALUATED = 'HearthEvaluated';
interface Evaluated { type: typeof EVALUATED; value: RuntimeValue }
function evaluated(value: RuntimeValue): Node {
  return { type: EVALUATED, value } satisfies Evaluated as unknown as Node;
}

/** An expression whose value the template prints. */
const PRINTED = 'HearthPrinted';
interface Printed { type: typeof PRINTED; expression: Node }

// The AST shapes the corrections read (the library does not export its node classes).
interface BodyNode { type: string; body?: Node[]; alternate?: Node[]; defaultBlock?: Node[] }
interface ForNode { type: 'For'; iterable: Node }
interface SelectNode { type: 'SelectExpression'; lhs: Node; test: Node }
interface FilterNode { type: 'FilterExpression'; operand: Node; filter: Node }
interface IdentifierNode { type: 'Identifier'; value: string }
interface CallNode { type: 'CallExpression'; callee: Node; args: Node[] }
interface MemberNode { type: 'MemberExpression'; object: Node; property: Node; computed: boolean }
interface ObjectLiteralNode { type: 'ObjectLiteral'; value: Map<Node, Node> }
interface BinaryNode { type: 'BinaryExpression'; operator: { value: string }; left: Node; right: Node }

/** Node types that are statements; anything else standing in a body is an expression that prints. */
const STATEMENTS = new Set([
  'Program', 'If', 'For', 'Break', 'Continue', 'Set', 'Macro', 'Comment', 'FilterStatement', 'CallStatement',
]);

function wrapPrinted(body: Node[] | undefined): void {
  if (!body) return;
  for (let i = 0; i < body.length; i++) {
    const node = body[i]!;
    if (STATEMENTS.has(node.type)) {
      const block = node as unknown as BodyNode;
      wrapPrinted(block.body);
      wrapPrinted(block.alternate);
      wrapPrinted(block.defaultBlock);
    } else {
      body[i] = { type: PRINTED, expression: node } satisfies Printed as unknown as Node;
    }
  }
}

function filterName(filter: Node): string | undefined {
  if (filter.type === 'Identifier') return (filter as unknown as IdentifierNode).value;
  if (filter.type === 'CallExpression') {
    const callee = (filter as unknown as CallNode).callee;
    if (callee.type === 'Identifier') return (callee as unknown as IdentifierNode).value;
  }
  return undefined;
}

/** Filters that jinja2 applies to an undefined value as to an empty one. */
const UNDEFINED_AS_EMPTY: Record<string, () => RuntimeValue> = {
  length: () => toRuntime(0),
  count: () => toRuntime(0),
  list: () => toRuntime([]),
  string: () => toRuntime(''),
  trim: () => toRuntime(''),
  join: () => toRuntime(''),
  selectattr: () => toRuntime([]),
  rejectattr: () => toRuntime([]),
  select: () => toRuntime([]),
  reject: () => toRuntime([]),
  map: () => toRuntime([]),
};

/** Filters that jinja2 guards with `if value:`, so `none | selectattr(...)` is empty, not an error. */
const NONE_AS_EMPTY = new Set(['selectattr', 'rejectattr', 'select', 'reject', 'map']);

// ---- interpreter --------------------------------------------------------------------------------

export class ChatTemplateInterpreter extends Interpreter {
  private steps = 0;
  private readonly deadline = performance.now() + TEMPLATE_LIMITS.ms;

  /** Every node goes through here: the step and time budget, and the size of what it made. */
  override evaluate(statement: Parameters<Interpreter['evaluate']>[0], environment: Environment): RuntimeValue {
    this.charge(1);
    const value = this.evaluateCompat(statement, environment);
    if (isString(value) && (value.value as string).length > TEMPLATE_LIMITS.chars) tooLong('string', (value.value as string).length);
    if (value.type === 'ArrayValue' && (value.value as unknown[]).length > TEMPLATE_LIMITS.items) tooLong('list', (value.value as unknown[]).length);
    return value;
  }

  /** Counts `steps` of work (a node, or each item a global such as range() makes) against the budget. */
  charge(steps: number): void {
    const before = this.steps;
    this.steps += steps;
    if (this.steps > TEMPLATE_LIMITS.steps) {
      throw new TemplateLimitError('steps', `the template ran more than ${TEMPLATE_LIMITS.steps} steps`);
    }
    if (this.steps >> 8 !== before >> 8 && performance.now() > this.deadline) {
      throw new TemplateLimitError('ms', `the template ran longer than ${TEMPLATE_LIMITS.ms / 1000} s`);
    }
  }

  private evaluateCompat(statement: Parameters<Interpreter['evaluate']>[0], environment: Environment): RuntimeValue {
    if (statement === undefined) return super.evaluate(statement, environment);
    switch (statement.type) {
      case EVALUATED:
        return (statement as unknown as Evaluated).value;
      case PRINTED: {
        const value = this.evaluate((statement as unknown as Printed).expression, environment);
        return isString(value) || isUndefined(value) ? value : toRuntime(pythonStr(value));
      }
      case 'For':
        return this.forCompat(statement as unknown as ForNode, environment);
      case 'FilterExpression':
        return this.filterCompat(statement as unknown as FilterNode, environment);
      case 'CallExpression':
        return this.callCompat(statement as unknown as CallNode, environment);
      case 'MemberExpression':
        return this.memberCompat(statement as unknown as MemberNode, environment);
      case 'ObjectLiteral':
        return this.objectLiteralCompat(statement as unknown as ObjectLiteralNode, environment);
      case 'BinaryExpression':
        return this.binaryCompat(statement as unknown as BinaryNode, environment);
      default:
        return super.evaluate(statement, environment);
    }
  }

  private forCompat(node: ForNode, environment: Environment): RuntimeValue {
    const select = node.iterable.type === 'SelectExpression' ? (node.iterable as unknown as SelectNode) : undefined;
    let iterable = this.evaluate(select ? select.lhs : node.iterable, environment);
    if (isUndefined(iterable)) iterable = toRuntime([]);
    else if (isString(iterable)) iterable = toRuntime(Array.from(iterable.value as string));
    else if (intKeyedDicts.has(iterable)) iterable = arrayOf(items(iterable).map((pair) => items(pair)[0]!));
    else if (isArrayLike(iterable) && items(iterable).some((item) => item.type === 'TupleValue')) {
      // The library unpacks `for a, b in ...` only from lists.
      iterable = arrayOf(items(iterable).map((item) => (item.type === 'TupleValue' ? arrayOf(items(item)) : item)));
    }
    const patched = select
      ? { ...node, iterable: { ...select, lhs: evaluated(iterable) } }
      : { ...node, iterable: evaluated(iterable) };
    return super.evaluate(patched as unknown as Node, environment);
  }

  private filterCompat(node: FilterNode, environment: Environment): RuntimeValue {
    const operand = this.evaluate(node.operand, environment);
    const name = filterName(node.filter);
    if (name !== undefined) {
      if (isUndefined(operand) && Object.hasOwn(UNDEFINED_AS_EMPTY, name)) return UNDEFINED_AS_EMPTY[name]!();
      if (isNone(operand) && NONE_AS_EMPTY.has(name)) return toRuntime([]);
      if (name === 'safe' && isString(operand)) return makeMarkup(operand.value as string);
      if (name === 'string' && !isString(operand)) return toRuntime(pythonStr(operand));
      if (intKeyedDicts.has(operand)) {
        if (name === 'dictsort') return sortedPairs(operand, true);
        if (name === 'items') return sortedPairs(operand, false);
        if (name === 'length') return toRuntime(items(operand).length);
      }
      if ((name === 'min' || name === 'max' || name === 'sum') && isArrayLike(operand)) {
        return this.aggregate(name, operand, node.filter);
      }
      if ((name === 'select' || name === 'reject') && isArrayLike(operand)) {
        return this.selectByTest(name === 'select', operand, node.filter, environment);
      }
      if (name === 'map' && isArrayLike(operand) && node.filter.type === 'CallExpression') {
        const args = (node.filter as unknown as CallNode).args;
        if (args.length > 0 && args[0]!.type !== 'KeywordArgumentExpression') {
          return this.mapFilter(operand, node.filter as unknown as CallNode, environment);
        }
      }
    }
    return super.evaluate({ ...node, operand: evaluated(operand) } as unknown as Node, environment);
  }

  /** jinja2's `select(test, *args)` / `reject(...)`; without a test, by truthiness. */
  private selectByTest(keep: boolean, operand: RuntimeValue, filter: Node, environment: Environment): RuntimeValue {
    const args = filter.type === 'CallExpression'
      ? (filter as unknown as CallNode).args.map((arg) => this.evaluate(arg, environment))
      : [];
    let test: (value: RuntimeValue) => boolean = (value) => value.__bool__().value;
    if (args.length > 0) {
      const testName = args[0]!;
      if (!isString(testName)) throw new Error(`select/reject: test name must be a string, got ${testName.type}`);
      const fn = environment.tests.get(testName.value as string);
      if (!fn) throw new Error(`No test named '${testName.value as string}'`);
      test = (value) => fn(value, ...args.slice(1));
    }
    return arrayOf(items(operand).filter((value) => test(value) === keep));
  }

  /** jinja2's `map('filter', *args)`: applies a filter to each item (the library knows `map(attribute=...)` only). */
  private mapFilter(operand: RuntimeValue, filter: CallNode, environment: Environment): RuntimeValue {
    const [nameNode, ...rest] = filter.args;
    const name = this.evaluate(nameNode, environment);
    if (!isString(name)) throw new Error(`map: filter name must be a string, got ${name.type}`);
    const identifier = { type: 'Identifier', value: name.value as string };
    const applied = rest.length === 0 ? identifier : { type: 'CallExpression', callee: identifier, args: rest };
    return arrayOf(items(operand).map((item) =>
      this.evaluate({ type: 'FilterExpression', operand: evaluated(item), filter: applied } as unknown as Node, environment)));
  }

  /** jinja2's `min`, `max` (case-insensitive for strings by default) and `sum`, without `attribute`. */
  private aggregate(name: 'min' | 'max' | 'sum', operand: RuntimeValue, filter: Node): RuntimeValue {
    const args = filter.type === 'CallExpression' ? (filter as unknown as CallNode).args : [];
    if (args.length > 0) throw new Error(`the '${name}' filter is supported without arguments only`);
    const values = items(operand);
    if (name === 'sum') {
      let total = 0;
      for (const v of values) {
        if (typeof v.value !== 'number' && typeof v.value !== 'boolean') throw new Error(`sum of ${v.type}`);
        total += Number(v.value);
      }
      return values.some((v) => v.type === 'FloatValue') ? new FloatValue(total) : toRuntime(total);
    }
    if (values.length === 0) return toRuntime(undefined);
    let best = values[0]!;
    for (const v of values.slice(1)) {
      const order = comparePython(v, best, false);
      if (name === 'min' ? order < 0 : order > 0) best = v;
    }
    return best;
  }

  private callCompat(node: CallNode, environment: Environment): RuntimeValue {
    if (node.callee.type !== 'MemberExpression') return super.evaluate(node as unknown as Node, environment);
    const member = node.callee as unknown as MemberNode;
    if (member.computed || member.property.type !== 'Identifier') return super.evaluate(node as unknown as Node, environment);
    const method = (member.property as unknown as IdentifierNode).value;
    const object = this.evaluate(member.object, environment);
    let bound: RuntimeValue | undefined;
    if (isString(object) && method === 'format') {
      const text = object.value as string;
      bound = new FunctionValue((args) => pythonFormat(text, args));
    } else if (intKeyedDicts.has(object) && method === 'items') {
      bound = new FunctionValue(() => sortedPairs(object, false));
    }
    const callee = bound ?? this.evaluate({ ...member, object: evaluated(object) } as unknown as Node, environment);
    return super.evaluate({ ...node, callee: evaluated(callee) } as unknown as Node, environment);
  }

  private memberCompat(node: MemberNode, environment: Environment): RuntimeValue {
    const object = this.evaluate(node.object, environment);
    if (intKeyedDicts.has(object) && node.computed && node.property.type !== 'SliceExpression') {
      const key = dictKey(this.evaluate(node.property, environment));
      const pair = items(object).find((p) => dictKey(items(p)[0]!) === key);
      return pair ? items(pair)[1]! : toRuntime(undefined);
    }
    return super.evaluate({ ...node, object: evaluated(object) } as unknown as Node, environment);
  }

  private objectLiteralCompat(node: ObjectLiteralNode, environment: Environment): RuntimeValue {
    const pairs: [RuntimeValue, RuntimeValue][] = [];
    for (const [key, value] of node.value) pairs.push([this.evaluate(key, environment), this.evaluate(value, environment)]);
    if (pairs.every(([key]) => isString(key))) {
      const literal = new Map<Node, Node>(pairs.map(([k, v]) => [evaluated(k), evaluated(v)]));
      return super.evaluate({ ...node, value: literal } as unknown as Node, environment);
    }
    const dict = arrayOf(pairs.map(([key, value]) => {
      dictKey(key);
      return arrayOf([key, value]);
    }));
    intKeyedDicts.add(dict);
    return dict;
  }

  private binaryCompat(node: BinaryNode, environment: Environment): RuntimeValue {
    const op = node.operator.value;
    if (op === 'and' || op === 'or') return super.evaluate(node as unknown as Node, environment);
    const left = this.evaluate(node.left, environment);
    const right = this.evaluate(node.right, environment);
    if (op === '+' && isString(left) && isString(right) && (markup.has(left) || markup.has(right))) {
      // markupsafe: Markup + str escapes the str, and the result is Markup.
      const l = markup.has(left) ? (left.value as string) : escapeHtml(left.value as string);
      const r = markup.has(right) ? (right.value as string) : escapeHtml(right.value as string);
      return makeMarkup(l + r);
    }
    if (op === '~') return toRuntime(pythonStr(left) + pythonStr(right));
    if (op === '*') checkRepeat(left, right);
    if (op === '==' || op === '!=') return toRuntime(pythonEquals(left, right) === (op === '=='));
    if (op === '+' && isString(left) !== isString(right) && !isUndefined(left) && !isUndefined(right)) {
      // The library would concatenate `'a' + {}` into "a[object Map]"; Python refuses.
      const other = isString(left) ? right : left;
      throw new Error(`can only concatenate str (not "${pythonTypeName(other)}") to str`);
    }
    if ((op === 'in' || op === 'not in') && intKeyedDicts.has(right)) {
      const key = dictKey(left);
      const found = items(right).some((p) => dictKey(items(p)[0]!) === key);
      return toRuntime(op === 'in' ? found : !found);
    }
    return super.evaluate({ ...node, left: evaluated(left), right: evaluated(right) } as unknown as Node, environment);
  }
}

/** `'ab' * n` and `[x] * n` would allocate before any check could see the result. */
function checkRepeat(left: RuntimeValue, right: RuntimeValue): void {
  for (const [seq, times] of [[left, right], [right, left]] as const) {
    if (times.type !== 'IntegerValue' && times.type !== 'FloatValue') continue;
    const n = Number(times.value);
    if (isString(seq) && (seq.value as string).length * n > TEMPLATE_LIMITS.chars) tooLong('string', (seq.value as string).length * n);
    if (seq.type === 'ArrayValue' && (seq.value as unknown[]).length * n > TEMPLATE_LIMITS.items) tooLong('list', (seq.value as unknown[]).length * n);
  }
}

// ---- rendering ----------------------------------------------------------------------------------

/** What a render needs besides the template: the context variables and the clock. */
export interface JinjaRenderInput {
  /** Top-level template variables (messages, add_generation_prompt, bos_token, ...). */
  context: Record<string, unknown>;
  /** The date `strftime_now` formats. */
  now: Date;
}

/** Parses a template; throws the library's error on a syntax it does not accept. */
export function parseTemplate(source: string): Program {
  const program = new Template(source).parsed;
  wrapPrinted(program.body as Node[]);
  return program;
}

function range(interpreter: ChatTemplateInterpreter, start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > TEMPLATE_LIMITS.items) {
    throw new TemplateLimitError('items', `range() of ${count} items (the limit is ${TEMPLATE_LIMITS.items})`);
  }
  interpreter.charge(count);
  const out: number[] = [];
  if (step > 0) for (let i = start; i < stop; i += step) out.push(i);
  else for (let i = start; i > stop; i += step) out.push(i);
  return out;
}

/** Renders a parsed template with transformers' globals. */
export function renderProgram(program: Program, input: JinjaRenderInput): string {
  const globals: Record<string, unknown> = {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    range: (start: number, stop?: number, step?: number) => range(interpreter, start, stop, step),
    raise_exception: (message: unknown) => {
      throw new TemplateRaise(String(message));
    },
    strftime_now: (format: unknown) => strftime(input.now, String(format)),
  };
  const env = new Environment();
  const interpreter = new ChatTemplateInterpreter(env);
  for (const [name, value] of Object.entries({ ...globals, ...input.context })) {
    if (value !== undefined) env.set(name, value);
  }
  const result = interpreter.run(program);
  return String(result.value);
}
