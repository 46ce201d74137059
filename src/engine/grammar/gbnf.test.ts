import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGbnf } from './gbnf.ts';
import { GrammarAutomaton, REJECT } from './automaton.ts';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { automatonVerdict as verdict, recognize } from '../../testing/grammar-reference.ts';
import { mulberry32, freshSeed } from '../../testing/random.ts';
import { guidedString, randomGrammar } from '../../testing/random-grammar.ts';

const codePoints = (text: string) => Array.from(text, (c) => c.codePointAt(0)!);


describe('GBNF parser', () => {
  it('parses every grammar shipped with llama.cpp', () => {
    const dir = join(llamaCppSourceDir(), 'grammars');
    const files = readdirSync(dir).filter((f) => f.endsWith('.gbnf'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) expect(() => parseGbnf(readFileSync(join(dir, file), 'utf8')), file).not.toThrow();
  });

  it('rewrites repetitions as llama.cpp does: {m,n} bounds, * + ? and groups', () => {
    const g = 'root ::= "a"{2,3} ("b" | "c")* "d"? [0-9]+';
    expect(verdict(g, 'a')).toBe('prefix');
    expect(verdict(g, 'aa0')).toBe('complete');
    expect(verdict(g, 'aaa0')).toBe('complete');
    expect(verdict(g, 'aaaa')).toBe('reject');
    expect(verdict(g, 'aabcbd12')).toBe('complete');
    expect(verdict(g, 'aabcbd')).toBe('prefix');
    expect(verdict(g, 'aadb')).toBe('reject');
  });

  it('reads escapes, negated classes, any-char and multi-line rules', () => {
    const g = `root ::= "\\x41\\u00e9\\n" [^"\\\\] item
item ::=
  . | "\\U0001F600"   # a comment
`;
    expect(verdict(g, 'Aé\nxy')).toBe('complete');
    expect(verdict(g, 'Aé\n"y')).toBe('reject');
    expect(verdict(g, 'Aé\n\\y')).toBe('reject');
    expect(verdict(g, 'Aé\nx😀')).toBe('complete');
  });

  it('rejects broken grammars with a GrammarError that says why', () => {
    const cases: Array<[string, RegExp]> = [
      ['root ::= foo', /"foo" is used but never defined/],
      ['main ::= "a"', /no "root" rule/],
      ['root ::= root "a" | "b"', /left recursion/],
      ['root ::= x "a"\nx ::= "" | root', /left recursion/],
      ['root ::= "abc', /unterminated string/],
      ['root ::= [a-', /unterminated character class/],
      ['root ::= * "a"', /repetition operator needs something/],
      ['root ::= "a"{3,1}', /max below min/],
      ['root ::= "a"\nroot ::= "b"', /defined twice/],
      ['root ::= <[12]>', /token references/],
      ['root "a"', /expected ::=/],
    ];
    for (const [text, message] of cases) {
      expect(() => parseGbnf(text), text).toThrow(expect.objectContaining({ name: 'GrammarError', message: expect.stringMatching(message) }));
    }
  });
});

describe('large and deep grammars', () => {
  it('groups nested past the limit are a GrammarError, not a stack overflow', () => {
    const text = `root ::= ${'('.repeat(20000)}"a"${')'.repeat(20000)}`;
    expect(() => parseGbnf(text)).toThrow(expect.objectContaining({ name: 'GrammarError', message: expect.stringMatching(/groups nested more than 100 deep/) }));
    expect(verdict(`root ::= ${'('.repeat(90)}"a"${')'.repeat(90)}`, 'a')).toBe('complete');
  });

  it('a long chain of rules compiles and matches without recursion; too many rules is a GrammarError', () => {
    const chain = (n: number) => ['root ::= r0', ...Array.from({ length: n }, (_, i) => `r${i} ::= r${i + 1} | "x"`), `r${n} ::= "y"`].join('\n');
    const long = parseGbnf(chain(15000));
    expect(verdict(long, 'y')).toBe('complete');
    expect(verdict(long, 'x')).toBe('complete');
    expect(verdict(long, 'z')).toBe('reject');
    expect(() => parseGbnf(chain(25000))).toThrow(expect.objectContaining({ name: 'GrammarError', message: expect.stringMatching(/more than 20000 rules/) }));
  });
});

describe('grammar automaton', () => {
  it('accepts exactly the prefixes of JSON that llama.cpp\'s json.gbnf allows', () => {
    const json = readFileSync(join(llamaCppSourceDir(), 'grammars', 'json.gbnf'), 'utf8');
    expect(verdict(json, '{"a": [1, 2.5e3, "x\\u00e9"], "b": {"c": null}}')).toBe('complete');
    expect(verdict(json, '{"a": [1, 2')).toBe('prefix');
    expect(verdict(json, '{"a": 01}')).toBe('reject');
    expect(verdict(json, '{"a" 1}')).toBe('reject');
    expect(verdict(json, '[1]')).toBe('reject');
    expect(verdict(json, '{"\u0001"}')).toBe('reject');
  });

  it('takes a character byte by byte: a partial character is allowed when some completion is', () => {
    const automaton = new GrammarAutomaton(parseGbnf('root ::= [é-ê] | "中"'));
    const walk = (...bytes: number[]) => automaton.walk(automaton.start, bytes);
    expect(walk(0xc3)).not.toBe(REJECT); // é is C3 A9
    expect(walk(0xc3, 0xa9)).not.toBe(REJECT);
    expect(automaton.accepting(walk(0xc3, 0xa9))).toBe(true);
    expect(walk(0xc3, 0xa0)).toBe(REJECT); // à
    expect(walk(0xc4)).toBe(REJECT); // U+0100.. is past ê
    expect(walk(0xe4, 0xb8)).not.toBe(REJECT); // 中 is E4 B8 AD
    expect(walk(0xe4, 0xb9)).toBe(REJECT);
    expect(walk(0xc0, 0x80)).toBe(REJECT); // overlong NUL
    expect(walk(0xa9)).toBe(REJECT); // a lone continuation byte
    const any = new GrammarAutomaton(parseGbnf('root ::= .'));
    expect(any.walk(any.start, [0xed, 0x9f, 0xbf])).not.toBe(REJECT); // U+D7FF
    expect(any.walk(any.start, [0xed, 0xa0])).toBe(REJECT); // a surrogate, U+D800..
    expect(any.walk(any.start, [0xed, 0xbf, 0xbf])).toBe(REJECT);
  });

  it('refuses an exponentially ambiguous grammar by name instead of stalling', () => {
    // Found by the random test below: the parses of "bbb..." triple with each character.
    const text = String.raw`root ::= r0
r0 ::= ("中\"\""*) | r1 "\"中b" r1
r1 ::= [a"]* "{中b" ([^é-😀] "é"?) | [^a]{1,2} r0{1,2} r1+`;
    const automaton = new GrammarAutomaton(parseGbnf(text));
    expect(() => automaton.walk(automaton.start, new TextEncoder().encode('b'.repeat(12)))).toThrow(
      expect.objectContaining({ name: 'GrammarError', message: expect.stringMatching(/too ambiguous/) }),
    );
  });

  it('agrees with the reference recognizer on random grammars and strings', () => {
    const next = mulberry32(freshSeed('random grammars'));
    let checked = 0;
    const seen = new Set<string>();
    for (let trial = 0; trial < 80; trial++) {
      const { grammar, text } = randomGrammar(next);
      if (!grammar) continue;
      const automaton = new GrammarAutomaton(grammar);
      for (let s = 0; s < 30; s++) {
        const input = guidedString(next, 1 + Math.floor(next() * 10), 0.9, (t) => recognize(grammar, codePoints(t)) !== 'reject');
        const bytes = new TextEncoder().encode(input);
        let state: number;
        try {
          state = automaton.walk(automaton.start, bytes);
        } catch (error) {
          // An exponentially ambiguous draw: refused by name (checked below), not compared.
          expect(error).toMatchObject({ name: 'GrammarError', message: expect.stringMatching(/too ambiguous/) });
          break;
        }
        const ours = state === REJECT ? 'reject' : automaton.accepting(state) ? 'complete' : 'prefix';
        const theirs = recognize(grammar, codePoints(input));
        expect(ours, `${text}\ninput ${JSON.stringify(input)}`).toBe(theirs);
        seen.add(theirs);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(600);
    expect([...seen].sort()).toEqual(['complete', 'prefix', 'reject']);
  });
});

