/**
 * llama.cpp's GBNF (grammars/README.md there), parsed into a Grammar: the same syntax and the same
 * rewrite of repetitions into generated rules, so grammars from the llama.cpp ecosystem work as
 * they are.
 *
 *   root  ::= "{" ws pair ("," ws pair)* "}"     # rules, one per line (continued inside parens)
 *   pair  ::= [a-z]+ ":" ws ( "true" | "false" )  # literals, classes, groups, alternatives
 *   ws    ::= [ \t\n]{0,20}                       # repetitions: * + ? {m} {m,} {m,n}; `.` any char
 *
 * Not supported (GrammarError): llama.cpp's token references (`<[id]>`, `<name>`).
 */
import { charRanges, checkGrammar, GrammarError, MAX_CODE_POINT, MAX_NESTING, type Alternative, type Element, type Grammar } from './grammar.ts';

/** Upper bound on generated rules from repetitions (llama.cpp's MAX_REPETITION_THRESHOLD). */
const MAX_REPETITION_RULES = 2000;
/** Upper bound on rules, written and generated: keeps a hostile grammar's compile time and memory bounded. */
const MAX_RULES = MAX_REPETITION_RULES * 10;

export function parseGbnf(text: string, rootName = 'root'): Grammar {
  return new GbnfParser(text).parse(rootName);
}

class GbnfParser {
  private readonly cps: number[];
  private pos = 0;
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly rules: Array<Alternative[] | undefined> = [];
  private readonly defined = new Set<number>();
  /** Open parentheses around the current position. */
  private depth = 0;

  constructor(text: string) {
    this.cps = Array.from(text, (c) => c.codePointAt(0)!);
  }

  parse(rootName: string): Grammar {
    this.space(true);
    while (this.pos < this.cps.length) this.rule();
    const undefinedRef = this.names.find((_, id) => !this.rules[id]);
    if (undefinedRef !== undefined) throw new GrammarError(`GBNF: rule "${undefinedRef}" is used but never defined`, { rule: undefinedRef });
    const root = this.ids.get(rootName);
    if (root === undefined) throw new GrammarError(`GBNF: the grammar has no "${rootName}" rule`);
    const grammar: Grammar = { rules: this.rules as Alternative[][], names: this.names, root };
    checkGrammar(grammar);
    return grammar;
  }

  private fail(what: string): never {
    const line = this.cps.slice(0, this.pos).filter((c) => c === 10).length + 1;
    const near = String.fromCodePoint(...this.cps.slice(this.pos, this.pos + 20));
    throw new GrammarError(`GBNF: ${what} at line ${line} near ${JSON.stringify(near)}`, { offset: this.pos, line });
  }

  private peek(offset = 0): number | undefined {
    return this.cps[this.pos + offset];
  }

  /** Skips blanks and # comments; newlines only when `newlines` (inside parens, after ::= or |). */
  private space(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === 0x20 || c === 0x09 || (newlines && (c === 0x0a || c === 0x0d))) this.pos++;
      else if (c === 0x23) while (this.pos < this.cps.length && this.peek() !== 0x0a) this.pos++;
      else return;
    }
  }

  private isWordChar(c: number | undefined): boolean {
    return c !== undefined && ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f);
  }

  private name(): string {
    const start = this.pos;
    while (this.isWordChar(this.peek())) this.pos++;
    if (this.pos === start) this.fail('expected a rule name');
    return String.fromCodePoint(...this.cps.slice(start, this.pos));
  }

  private idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      if (this.names.length >= MAX_RULES) this.fail(`more than ${MAX_RULES} rules (counting those repetitions and groups generate)`);
      id = this.names.length;
      this.ids.set(name, id);
      this.names.push(name);
      this.rules.push(undefined);
    }
    return id;
  }

  private generated(base: string): number {
    return this.idOf(`${base}-${this.names.length}`);
  }

  private rule(): void {
    const name = this.name();
    const id = this.idOf(name);
    if (this.defined.has(id)) this.fail(`rule "${name}" defined twice`);
    this.space(false);
    if (!(this.peek() === 0x3a && this.peek(1) === 0x3a && this.peek(2) === 0x3d)) this.fail('expected ::=');
    this.pos += 3;
    this.space(true);
    this.defined.add(id);
    this.rules[id] = this.alternatives(name, false);
    const c = this.peek();
    if (c === 0x0d && this.peek(1) === 0x0a) this.pos += 2;
    else if (c === 0x0a) this.pos++;
    else if (c !== undefined) this.fail('expected the end of the rule (a newline)');
    this.space(true);
  }

  private alternatives(ruleName: string, nested: boolean): Alternative[] {
    const alts = [this.sequence(ruleName, nested)];
    while (this.peek() === 0x7c) {
      this.pos++;
      this.space(true);
      alts.push(this.sequence(ruleName, nested));
    }
    return alts;
  }

  /** A sequence of symbols; each symbol is its elements, so a postfix operator applies to the last. */
  private sequence(ruleName: string, nested: boolean): Element[] {
    const out: Element[] = [];
    let lastStart = -1;
    for (;;) {
      const c = this.peek();
      if (c === 0x22) {
        lastStart = out.length;
        this.pos++;
        while (this.peek() !== 0x22) {
          if (this.peek() === undefined) this.fail('unterminated string');
          const cp = this.char();
          out.push({ kind: 'char', ranges: charRanges([[cp, cp]]) });
        }
        this.pos++;
      } else if (c === 0x5b) {
        lastStart = out.length;
        this.pos++;
        const negate = this.peek() === 0x5e;
        if (negate) this.pos++;
        const pairs: Array<[number, number]> = [];
        while (this.peek() !== 0x5d) {
          if (this.peek() === undefined) this.fail('unterminated character class');
          const lo = this.char();
          let hi = lo;
          if (this.peek() === 0x2d && this.peek(1) !== 0x5d && this.peek(1) !== undefined) {
            this.pos++;
            hi = this.char();
          }
          pairs.push([lo, hi]);
        }
        this.pos++;
        out.push({ kind: 'char', ranges: charRanges(pairs, negate) });
      } else if (c === 0x2e) {
        lastStart = out.length;
        this.pos++;
        out.push({ kind: 'char', ranges: charRanges([[0, MAX_CODE_POINT]]) });
      } else if (this.isWordChar(c)) {
        lastStart = out.length;
        out.push({ kind: 'ref', rule: this.idOf(this.name()) });
      } else if (c === 0x28) {
        lastStart = out.length;
        if (++this.depth > MAX_NESTING) this.fail(`groups nested more than ${MAX_NESTING} deep`);
        this.pos++;
        this.space(true);
        const sub = this.generated(ruleName);
        this.rules[sub] = this.alternatives(ruleName, true);
        if (this.peek() !== 0x29) this.fail('expected )');
        this.pos++;
        this.depth--;
        out.push({ kind: 'ref', rule: sub });
      } else if (c === 0x2a || c === 0x2b || c === 0x3f || c === 0x7b) {
        if (lastStart < 0) this.fail('a repetition operator needs something before it');
        this.pos++;
        let min = c === 0x2b ? 1 : 0;
        let max = c === 0x3f ? 1 : Infinity;
        if (c === 0x7b) {
          this.space(nested);
          min = this.integer();
          this.space(nested);
          max = min;
          if (this.peek() === 0x2c) {
            this.pos++;
            this.space(nested);
            max = this.isDigit(this.peek()) ? this.integer() : Infinity;
            this.space(nested);
          }
          if (this.peek() !== 0x7d) this.fail('expected }');
          this.pos++;
          if (max < min) this.fail(`repetition {${min},${max}}: max below min`);
        }
        const symbol = out.splice(lastStart);
        out.push(...this.repeat(ruleName, symbol, min, max));
        lastStart = -1;
      } else if (c === 0x3c) {
        this.fail('token references (<...>) are not supported');
      } else {
        return out;
      }
      this.space(nested);
    }
  }

  /**
   * llama.cpp's rewrite: S{m,n} -> S (m times) then S'(n-m) with S'(x) ::= S S'(x-1) | (empty),
   * S'(1) ::= S | ; S{m,} -> S (m times) then S' with S' ::= S S' | .
   */
  private repeat(ruleName: string, symbol: Element[], min: number, max: number): Element[] {
    if (Math.max(min, Number.isFinite(max) ? max : 0) > MAX_REPETITION_RULES) this.fail(`repetition count above ${MAX_REPETITION_RULES}`);
    const out: Element[] = [];
    for (let i = 0; i < min; i++) out.push(...symbol);
    if (max === Infinity) {
      const rec = this.generated(ruleName);
      this.rules[rec] = [[...symbol, { kind: 'ref', rule: rec }], []];
      out.push({ kind: 'ref', rule: rec });
    } else if (max > min) {
      let last: number | undefined;
      for (let i = 0; i < max - min; i++) {
        const rec = this.generated(ruleName);
        this.rules[rec] = [last === undefined ? [...symbol] : [...symbol, { kind: 'ref', rule: last }], []];
        last = rec;
      }
      out.push({ kind: 'ref', rule: last! });
    }
    return out;
  }

  private isDigit(c: number | undefined): boolean {
    return c !== undefined && c >= 0x30 && c <= 0x39;
  }

  private integer(): number {
    const start = this.pos;
    while (this.isDigit(this.peek())) this.pos++;
    if (start === this.pos) this.fail('expected an integer');
    return Number(String.fromCodePoint(...this.cps.slice(start, this.pos)));
  }

  /** One character of a literal or class, with \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH escapes. */
  private char(): number {
    const c = this.peek()!;
    this.pos++;
    if (c !== 0x5c) return c;
    const e = this.peek();
    this.pos++;
    switch (e) {
      case 0x6e: return 0x0a;
      case 0x72: return 0x0d;
      case 0x74: return 0x09;
      case 0x78: return this.hex(2);
      case 0x75: return this.hex(4);
      case 0x55: return this.hex(8);
      case 0x5c: case 0x22: case 0x5b: case 0x5d: case 0x2d: case 0x27: case 0x5e: return e;
      default: this.pos--; return this.fail('unknown escape');
    }
  }

  private hex(digits: number): number {
    let v = 0;
    for (let i = 0; i < digits; i++) {
      const c = this.peek();
      const d = c === undefined ? -1 : c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) this.fail(`expected ${digits} hex digits`);
      v = v * 16 + d;
      this.pos++;
    }
    if (v > MAX_CODE_POINT) this.fail('code point above U+10FFFF');
    return v;
  }
}
