/**
 * The part of Vitest's API the kernel GPU tests (src/**\/*.gpu.test.ts) use, so they run unchanged
 * on the device machine, which has Node (carried) but no node_modules. The device bundle aliases
 * `vitest` to this file. Tests are collected at import and run by `runCollected()`, one at a time,
 * as the gpu project runs them (fileParallelism: false). A matcher this shim lacks throws
 * "not supported", which fails that test loudly rather than passing it.
 */
type Fn = (ctx: TestContext) => unknown;

interface TestContext {
  skip(): never;
}

interface Entry {
  name: string;
  fn: Fn;
  timeoutMs: number;
}

interface Suite {
  name: string;
  tests: Entry[];
  beforeAll: Array<() => unknown>;
  afterAll: Array<() => unknown>;
  children: Suite[];
}

export interface TestOutcome {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  ms: number;
  error?: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const root: Suite = { name: '', tests: [], beforeAll: [], afterAll: [], children: [] };
let current = root;

class SkipSignal extends Error {}

export function describe(name: string, body: () => void): void {
  const suite: Suite = { name, tests: [], beforeAll: [], afterAll: [], children: [] };
  current.children.push(suite);
  const parent = current;
  current = suite;
  try {
    body();
  } finally {
    current = parent;
  }
}

function addTest(name: string, fn: Fn, timeout?: number | { timeout?: number }): void {
  const timeoutMs = typeof timeout === 'number' ? timeout : (timeout?.timeout ?? DEFAULT_TIMEOUT_MS);
  current.tests.push({ name, fn, timeoutMs });
}

/** Vitest's test-name formatting: printf-style %s %i %d %f %j %o, then $field for object cases. */
function formatName(template: string, value: unknown, index: number): string {
  const args = Array.isArray(value) ? [...value] : [value];
  let name = template.replace(/%[sidfjo#%]/g, (spec) => {
    if (spec === '%%') return '%';
    if (spec === '%#') return String(index);
    const arg = args.shift();
    if (spec === '%j' || spec === '%o') return JSON.stringify(arg);
    return String(arg);
  });
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    name = name.replace(/\$([A-Za-z_][\w.]*)/g, (_, path: string) => {
      let v: unknown = value;
      for (const key of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[key];
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
  }
  return name;
}

type TestFn = ((name: string, fn: Fn, timeout?: number) => void) & {
  each<T>(cases: readonly T[]): (name: string, fn: (c: T) => unknown, timeout?: number) => void;
  for<T>(cases: readonly T[]): (name: string, fn: (c: T, ctx: TestContext) => unknown, timeout?: number) => void;
  skip(name: string, fn?: Fn): void;
};

export const it: TestFn = Object.assign((name: string, fn: Fn, timeout?: number) => addTest(name, fn, timeout), {
  each<T>(cases: readonly T[]) {
    return (name: string, fn: (c: T) => unknown, timeout?: number) => {
      cases.forEach((c, i) => addTest(formatName(name, c, i), () => (Array.isArray(c) ? (fn as (...a: unknown[]) => unknown)(...c) : fn(c)), timeout));
    };
  },
  for<T>(cases: readonly T[]) {
    return (name: string, fn: (c: T, ctx: TestContext) => unknown, timeout?: number) => {
      cases.forEach((c, i) => addTest(formatName(name, c, i), (ctx) => fn(c, ctx), timeout));
    };
  },
  skip(name: string) {
    addTest(name, (ctx) => ctx.skip());
  },
});
export const test = it;

export function beforeAll(fn: () => unknown): void {
  current.beforeAll.push(fn);
}
export function afterAll(fn: () => unknown): void {
  current.afterAll.push(fn);
}

class AssertionError extends Error {
  override name = 'AssertionError';
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'bigint' || v === undefined || v === null) return String(v);
  try {
    const s = JSON.stringify(v, (_, x: unknown) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x));
    return s.length > 200 ? s.slice(0, 200) + '...' : s;
  } catch {
    return String(v);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b) || Array.isArray(a) || Array.isArray(b)) {
    const x = a as ArrayLike<unknown>;
    const y = b as ArrayLike<unknown>;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!deepEqual(x[i], y[i])) return false;
    return true;
  }
  if (a instanceof Map || b instanceof Map || a instanceof Set || b instanceof Set) {
    return show([...(a as Iterable<unknown>)]) === show([...(b as Iterable<unknown>)]);
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

type Matchers = Record<string, (...args: never[]) => void>;

function matchers(actual: unknown, negate: boolean): Matchers {
  const check = (ok: boolean, what: string) => {
    if (ok === negate) throw new AssertionError(`expected ${show(actual)} ${negate ? 'not ' : ''}${what}`);
  };
  const n = actual as number;
  return {
    toBe: (e: unknown) => check(Object.is(actual, e), `to be ${show(e)}`),
    toEqual: (e: unknown) => check(deepEqual(actual, e), `to equal ${show(e)}`),
    toStrictEqual: (e: unknown) => check(deepEqual(actual, e), `to equal ${show(e)}`),
    toBeCloseTo: (e: number, digits = 2) => check(Math.abs(n - e) < 10 ** -digits / 2, `to be close to ${e} (${digits} digits)`),
    toBeGreaterThan: (e: number) => check(n > e, `to be > ${e}`),
    toBeGreaterThanOrEqual: (e: number) => check(n >= e, `to be >= ${e}`),
    toBeLessThan: (e: number) => check(n < e, `to be < ${e}`),
    toBeLessThanOrEqual: (e: number) => check(n <= e, `to be <= ${e}`),
    toBeNaN: () => check(Number.isNaN(n), 'to be NaN'),
    toBeTruthy: () => check(Boolean(actual), 'to be truthy'),
    toBeFalsy: () => check(!actual, 'to be falsy'),
    toBeDefined: () => check(actual !== undefined, 'to be defined'),
    toBeUndefined: () => check(actual === undefined, 'to be undefined'),
    toContain: (e: unknown) => check((actual as { includes(x: unknown): boolean }).includes(e), `to contain ${show(e)}`),
    toHaveLength: (e: number) => check((actual as { length: number }).length === e, `to have length ${e}`),
    // A function that throws: anything, an error of a class, or one whose message matches.
    toThrow: (e?: RegExp | string | (new (...args: never[]) => Error)) => {
      let thrown: unknown;
      let threw = false;
      try {
        (actual as () => unknown)();
      } catch (error) {
        thrown = error;
        threw = true;
      }
      const text = thrown instanceof Error ? thrown.message : String(thrown);
      const fits =
        threw &&
        (e === undefined ||
          (e instanceof RegExp ? e.test(text) : typeof e === 'string' ? text.includes(e) : thrown instanceof e));
      check(fits, `to throw${e === undefined ? '' : ` ${e instanceof RegExp || typeof e === 'string' ? String(e) : e.name}`}${threw ? ` (threw: ${text})` : ' (it did not throw)'}`);
    },
  };
}

type Expectation = Matchers & { not: Matchers };

export function expect(actual: unknown, message?: string): Expectation {
  const wrap = (m: Matchers): Matchers =>
    new Proxy(m, {
      get(target, key: string) {
        const f = target[key];
        if (!f) throw new AssertionError(`expect().${key} is not supported by the device-check Vitest shim`);
        return (...args: never[]) => {
          try {
            f(...args);
          } catch (e) {
            if (message && e instanceof AssertionError) e.message = `${message}: ${e.message}`;
            throw e;
          }
        };
      },
    });
  return Object.assign(wrap(matchers(actual, false)), { not: wrap(matchers(actual, true)) });
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const context: TestContext = {
  skip(): never {
    throw new SkipSignal();
  },
};

async function runSuite(suite: Suite, prefix: string, out: TestOutcome[], report: (o: TestOutcome) => void): Promise<void> {
  const path = suite.name ? (prefix ? `${prefix} > ${suite.name}` : suite.name) : prefix;
  try {
    for (const hook of suite.beforeAll) await withTimeout(Promise.resolve(hook()), DEFAULT_TIMEOUT_MS, `${path} beforeAll`);
  } catch (error) {
    // As Vitest does: a failed beforeAll fails every test under it.
    const e = error as Error;
    const fail = (s: Suite, p: string) => {
      for (const t of s.tests) report(pushed(out, { name: `${p} > ${t.name}`, status: 'fail', ms: 0, error: `beforeAll: ${e.message}` }));
      for (const c of s.children) fail(c, `${p} > ${c.name}`);
    };
    fail(suite, path);
    return;
  }
  for (const t of suite.tests) {
    const t0 = performance.now();
    const name = path ? `${path} > ${t.name}` : t.name;
    try {
      await withTimeout(Promise.resolve().then(() => t.fn(context)), t.timeoutMs, name);
      report(pushed(out, { name, status: 'pass', ms: performance.now() - t0 }));
    } catch (error) {
      if (error instanceof SkipSignal) {
        report(pushed(out, { name, status: 'skip', ms: performance.now() - t0 }));
        continue;
      }
      const e = error as Error;
      report(pushed(out, { name, status: 'fail', ms: performance.now() - t0, error: `${e.name}: ${e.message}`.slice(0, 500) }));
    }
  }
  for (const child of suite.children) await runSuite(child, path, out, report);
  for (const hook of suite.afterAll) {
    try {
      await hook();
    } catch (error) {
      report(pushed(out, { name: `${path} afterAll`, status: 'fail', ms: 0, error: (error as Error).message }));
    }
  }
}

function pushed(out: TestOutcome[], o: TestOutcome): TestOutcome {
  out.push(o);
  return o;
}

/** Runs and forgets everything registered since the last call (one test file's worth). */
export async function runCollected(file: string, report: (o: TestOutcome) => void): Promise<TestOutcome[]> {
  const suite: Suite = { ...root, name: file, children: [...root.children], tests: [...root.tests], beforeAll: [...root.beforeAll], afterAll: [...root.afterAll] };
  root.children = [];
  root.tests = [];
  root.beforeAll = [];
  root.afterAll = [];
  const out: TestOutcome[] = [];
  await runSuite(suite, '', out, report);
  return out;
}
