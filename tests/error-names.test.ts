/**
 * Error classes name themselves with a string literal. The UI and the server switch on `name`
 * (src/ui/errors.ts, src/server/errors.ts), and the app's page bundle is minified without keepNames
 * (keeping every name cost about 12% of it), so a name taken from the class (`new.target.name`)
 * would come out as `e` or `O` in the page. Checked on the source text: every class that extends
 * Error, directly or through another error class, carries `name = 'ItsOwnName'` in its body.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

interface ClassDecl {
  file: string;
  name: string;
  base: string;
  body: string;
}

/** Top-level and nested class declarations with their bodies (up to the closing brace at their indent). */
function classes(file: string, text: string): ClassDecl[] {
  const out: ClassDecl[] = [];
  for (const m of text.matchAll(/^( *)(?:export )?(?:abstract )?class (\w+) extends (\w+)[^{\n]*\{(\}?)/gm)) {
    const start = m.index + m[0].length;
    const end = m[4] ? start : text.indexOf(`\n${m[1]}}`, start);
    out.push({ file: relative(ROOT, file), name: m[2]!, base: m[3]!, body: text.slice(start, end < 0 ? undefined : end) });
  }
  return out;
}

describe('error class names', () => {
  const all = sources(join(ROOT, 'src')).flatMap((file) => classes(file, readFileSync(file, 'utf8')));
  // Error classes: those extending Error, then those extending an error class, until nothing changes.
  const errorClasses = new Set(['Error']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of all) if (errorClasses.has(c.base) && !errorClasses.has(c.name)) grew = errorClasses.add(c.name).has(c.name);
  }
  const errors = all.filter((c) => errorClasses.has(c.base));

  it('finds the error classes (the scan works)', () => {
    const names = errors.map((c) => c.name);
    for (const known of ['HearthError', 'GrammarError', 'UnsupportedSchemaError', 'EngineMovedError', 'ServerCorsError', 'ImportFormatError']) expect(names).toContain(known);
  });

  it('every error class sets its name as a string literal that equals the class name', () => {
    const missing = errors
      .filter((c) => c.name !== 'HearthError' && !new RegExp(`\\bname = '${c.name}';`).test(c.body))
      .map((c) => `${c.file}: ${c.name}`);
    expect(missing).toEqual([]);
  });
});
