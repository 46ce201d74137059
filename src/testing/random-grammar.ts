/**
 * Random GBNF grammars and strings over a small alphabet (ASCII, two- three- and four-byte
 * characters), for tests that compare the grammar matcher with the reference recognizer.
 */
import { GrammarError, type Grammar } from '../engine/grammar/grammar.ts';
import { parseGbnf } from '../engine/grammar/gbnf.ts';

export const ALPHABET = ['a', 'b', 'c', '{', '"', 'é', 'ê', '中', '😀'];

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

export function randomString(next: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += pick(next, ALPHABET);
  return s;
}

/**
 * A string that mostly stays inside the language: each character is, with probability `stay`, one
 * that `live` (the reference recognizer) still accepts as a prefix, else any character.
 */
export function guidedString(next: () => number, length: number, stay: number, live: (text: string) => boolean): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    const options = next() < stay ? ALPHABET.filter((c) => live(s + c)) : ALPHABET;
    if (options.length === 0) break;
    s += pick(next, options);
  }
  return s;
}

function escape(c: string): string {
  return c === '"' ? '\\"' : c;
}

/** A random grammar of up to four rules (undefined when the draw is left-recursive, which GBNF forbids). */
export function randomGrammar(next: () => number): { grammar: Grammar | undefined; text: string } {
  const ruleCount = 1 + Math.floor(next() * 4);
  // A reference first in a sequence goes to a later rule, so most draws are not left-recursive.
  const item = (rule: number, depth: number, first: boolean): string => {
    const r = next();
    const later = ruleCount - rule - 1;
    let base: string;
    if (r < 0.35) base = `"${Array.from({ length: 1 + Math.floor(next() * 3) }, () => escape(pick(next, ALPHABET))).join('')}"`;
    else if (r < 0.55) base = pick(next, ['[a-c]', '[^a]', '[é-中]', '[a"]', '[^é-😀]']);
    else if (r < 0.6) base = '.';
    else if ((r < 0.8 || depth > 1) && !(first && later === 0)) base = `r${first ? rule + 1 + Math.floor(next() * later) : Math.floor(next() * ruleCount)}`;
    else if (depth <= 1) base = `(${alternatives(rule, depth + 1)})`;
    else base = '"a"';
    const op = next();
    return base + (op < 0.15 ? '*' : op < 0.25 ? '+' : op < 0.35 ? '?' : op < 0.4 ? '{1,2}' : '');
  };
  const sequence = (rule: number, depth: number) => Array.from({ length: Math.floor(next() * 3) + (depth === 0 ? 1 : 0) }, (_, i) => item(rule, depth, i === 0)).join(' ');
  const alternatives = (rule: number, depth: number): string => Array.from({ length: 1 + Math.floor(next() * 2) }, () => sequence(rule, depth)).join(' | ');
  const lines = Array.from({ length: ruleCount }, (_, i) => `r${i} ::= ${alternatives(i, 0)}`);
  const text = `root ::= r0\n${lines.join('\n')}\n`;
  try {
    return { grammar: parseGbnf(text), text };
  } catch (error) {
    if (error instanceof GrammarError && /left recursion/.test(error.message)) return { grammar: undefined, text };
    throw error;
  }
}
