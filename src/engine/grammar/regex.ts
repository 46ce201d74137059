/**
 * JSON Schema `pattern` (an ECMAScript regular expression, matched with the `u` flag as the spec
 * advises) -> a GBNF expression for the body of a JSON string whose decoded value it matches. The
 * regular subset: literals, `.`, classes with ranges and negation, the escapes \d \w \s \D \W \S
 * \n \t \r \f \v \0 \xHH \uHHHH \u{H..} and escaped syntax characters, groups (capturing, `(?:`,
 * named), alternation, the quantifiers ? * + {n} {n,} {n,m} (lazy ones match the same strings), and
 * the anchors ^ and $ at the start and end of a top-level alternative (a pattern is searched for, so
 * an unanchored side may have any text around it). What is not regular or not exact here is an
 * UnsupportedSchemaError naming it: backreferences, lookaround, word boundaries, anchors elsewhere.
 *
 * A character the JSON string must escape (`"`, `\`, control characters) is written as its escape
 * (`\"`, `\\`, `\n`, `\u001f`); every other character as itself.
 */
import { JSON_PLAIN_CHARS, MAX_NESTING } from './grammar.ts';

type Range = readonly [number, number];

/** Any character `.` matches: all but the line terminators. */
const DOT: Range[] = complement([[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]]);
const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: Range[] = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
const CONTROL_ESCAPES: Record<number, string> = { 0x08: 'b', 0x09: 't', 0x0a: 'n', 0x0c: 'f', 0x0d: 'r' };
/** Characters written as themselves in a JSON string (surrogates are not characters). */
const PLAIN: readonly Range[] = JSON_PLAIN_CHARS;

function normalize(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of normalize(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

function intersect(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [alo, ahi] of a) for (const [blo, bhi] of b) if (Math.max(alo, blo) <= Math.min(ahi, bhi)) out.push([Math.max(alo, blo), Math.min(ahi, bhi)]);
  return normalize(out);
}

function gbnfChar(cp: number): string {
  return /[0-9A-Za-z]/.test(String.fromCodePoint(cp)) ? String.fromCodePoint(cp) : `\\U${cp.toString(16).padStart(8, '0')}`;
}

/** A set of characters as GBNF for the JSON string body: a class of the plain ones, escapes for the rest. */
function charSet(ranges: readonly Range[]): string {
  const set = normalize(ranges);
  const alts: string[] = [];
  const plain = intersect(set, PLAIN);
  if (plain.length > 0) alts.push(`[${plain.map(([lo, hi]) => (lo === hi ? gbnfChar(lo) : `${gbnfChar(lo)}-${gbnfChar(hi)}`)).join('')}]`);
  for (const [lo, hi] of intersect(set, [[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c]])) {
    for (let cp = lo; cp <= hi; cp++) {
      const escape = cp === 0x22 ? '"' : cp === 0x5c ? '\\' : CONTROL_ESCAPES[cp] ?? `u${cp.toString(16).padStart(4, '0')}`;
      alts.push(`"\\\\${escape === '"' ? '\\"' : escape === '\\' ? '\\\\' : escape}"`);
    }
  }
  // No character at all (`[^\s\S]`): a lone surrogate, which no UTF-8 text holds.
  if (alts.length === 0) return '[\\U0000d800]';
  return alts.length === 1 ? alts[0]! : `(${alts.join(' | ')})`;
}

/**
 * A converted piece: its GBNF, whether it matches the empty string, and the GBNF of its non-empty
 * strings (null: none). A repetition repeats the non-empty part only: `(a*)*` as written would be
 * a rule that can call itself before consuming a character (left recursion).
 */
interface Node {
  text: string;
  nullable: boolean;
  plus: string | null;
}

const EMPTY: Node = { text: '""', nullable: true, plus: null };

function chars(text: string): Node {
  return { text, nullable: false, plus: text };
}

function alternatives(nodes: Node[]): Node {
  if (nodes.length === 1) return nodes[0]!;
  const text = `(${nodes.map((n) => n.text).join(' | ')})`;
  if (!nodes.some((n) => n.nullable)) return { text, nullable: false, plus: text };
  const pluses = nodes.flatMap((n) => (n.plus === null ? [] : [n.plus]));
  return { text, nullable: true, plus: pluses.length === 0 ? null : pluses.length === 1 ? pluses[0]! : `(${pluses.join(' | ')})` };
}

function sequence(nodes: Node[]): Node {
  return nodes.reduce((a, b) => {
    const text = `${a.text} ${b.text}`;
    if (!a.nullable || !b.nullable) return { text, nullable: false, plus: text };
    // Both may be empty: non-empty when the first part is, or else the second.
    const options = [a.plus === null ? null : `${a.plus} ${b.text}`, b.plus].filter((x): x is string => x !== null);
    return { text, nullable: true, plus: options.length === 0 ? null : options.length === 1 ? options[0]! : `(${options.join(' | ')})` };
  }, EMPTY);
}

function repeat(text: string, min: number, max: number | undefined): string {
  if (max === 0) return '""';
  if (min === 0 && max === undefined) return `(${text})*`;
  if (min === 1 && max === undefined) return `(${text})+`;
  if (min === 0 && max === 1) return `(${text})?`;
  return `(${text}){${min},${max ?? ''}}`;
}

function quantify(node: Node, min: number, max: number | undefined): Node {
  if (!node.nullable) {
    const text = repeat(node.text, min, max);
    if (max === 0) return EMPTY;
    return { text, nullable: min === 0, plus: min === 0 ? repeat(node.text, 1, max) : text };
  }
  // A may be empty, so A{min,max} is (A minus the empty string){0,max}.
  if (node.plus === null || max === 0) return EMPTY;
  return { text: repeat(node.plus, 0, max), nullable: true, plus: repeat(node.plus, 1, max) };
}

/**
 * The GBNF expression of a pattern's strings, as JSON string bodies; what it cannot convert goes to
 * `fail` (the schema converter's, which throws UnsupportedSchemaError).
 */
export function patternToGbnf(pattern: string, fail: (what: string) => never): string {
  return new RegexParser(pattern, fail).parse();
}

class RegexParser {
  private readonly cps: number[];
  private pos = 0;
  /** Open groups around the current position. */
  private depth = 0;

  constructor(
    private readonly pattern: string,
    private readonly onFail: (what: string) => never,
  ) {
    this.cps = Array.from(pattern, (c) => c.codePointAt(0)!);
  }

  private fail(what: string): never {
    return this.onFail(`${what} in the pattern ${JSON.stringify(this.pattern)} (supported: the regular subset: literals, ., classes, \\d \\w \\s, groups, |, ? * + {n,m}, ^ and $ around the pattern)`);
  }

  private peek(offset = 0): number | undefined {
    return this.cps[this.pos + offset];
  }

  private eat(c: string): boolean {
    if (this.peek() === c.codePointAt(0)) {
      this.pos++;
      return true;
    }
    return false;
  }

  parse(): string {
    const any = quantify(chars(charSet([[0, 0x10ffff]])), 0, undefined);
    const alts: Node[] = [];
    do {
      const anchoredStart = this.eat('^');
      const body = this.sequence(true);
      const anchoredEnd = this.eat('$');
      if (this.peek() !== undefined && this.peek() !== 0x7c) this.fail(`an anchor or ")" where it cannot be (at offset ${this.pos})`);
      alts.push(sequence([...(anchoredStart ? [] : [any]), body, ...(anchoredEnd ? [] : [any])]));
    } while (this.eat('|'));
    return `(${alternatives(alts).text})`;
  }

  /** Alternatives up to ")" or the end. */
  private alternation(): Node {
    const alts = [this.sequence(false)];
    while (this.eat('|')) alts.push(this.sequence(false));
    return alternatives(alts);
  }

  /** Terms up to "|", ")" or the end (and, at the top, up to a final "$"). */
  private sequence(top: boolean): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === 0x7c || c === 0x29) break;
      if (c === 0x24) {
        // "$" ends a top-level alternative; anywhere else it is an anchor this converter cannot place.
        if (top && (this.peek(1) === undefined || this.peek(1) === 0x7c)) break;
        this.fail('"$" inside the pattern');
      }
      if (c === 0x5e) this.fail('"^" inside the pattern');
      items.push(this.quantified(this.atom()));
    }
    return sequence(items);
  }

  private quantified(atom: Node): Node {
    const c = this.peek();
    let q: [number, number | undefined] | undefined;
    if (c === 0x3f || c === 0x2a || c === 0x2b) {
      this.pos++;
      q = c === 0x3f ? [0, 1] : c === 0x2a ? [0, undefined] : [1, undefined];
    } else if (c === 0x7b) {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(String.fromCodePoint(...this.cps.slice(this.pos, this.pos + 24)));
      if (!m) return atom; // a literal "{", as ECMAScript reads one that starts no quantifier
      this.pos += m[0].length;
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? undefined : Number(m[3]);
      if (max !== undefined && max < min) this.fail('a quantifier {n,m} with m < n');
      q = [min, max];
    }
    if (q === undefined) return atom;
    this.eat('?'); // lazy: the same strings
    if (this.peek() === 0x3f || this.peek() === 0x2a || this.peek() === 0x2b || this.peek() === 0x7b) this.fail('a quantifier after a quantifier');
    return quantify(atom, q[0], q[1]);
  }

  private atom(): Node {
    const c = this.peek()!;
    this.pos++;
    switch (c) {
      case 0x28: // (
        return this.group();
      case 0x2e: // .
        return chars(charSet(DOT));
      case 0x5b: // [
        return chars(charSet(this.classBody()));
      case 0x5c: // \
        return this.atomEscape();
      case 0x2a: case 0x2b: case 0x3f:
        return this.fail('a quantifier with nothing before it');
      case 0x29: case 0x5d: case 0x7d:
        // ECMAScript with the u flag refuses a lone "]" or "}" too.
        return this.fail(`a lone "${String.fromCodePoint(c)}"`);
      default:
        return chars(charSet([[c, c]]));
    }
  }

  private group(): Node {
    if (++this.depth > MAX_NESTING) this.fail(`groups nested more than ${MAX_NESTING} deep`);
    if (this.eat('?')) {
      if (this.eat(':')) {
        /* non-capturing */
      } else if (this.peek() === 0x3c && this.peek(1) !== 0x3d && this.peek(1) !== 0x21) {
        while (this.peek() !== undefined && this.peek() !== 0x3e) this.pos++;
        if (!this.eat('>')) this.fail('an unterminated group name');
      } else this.fail('a lookahead or lookbehind (not a regular language this converter handles)');
    }
    const body = this.alternation();
    if (!this.eat(')')) this.fail('an unclosed group');
    this.depth--;
    return { ...body, text: `(${body.text})` };
  }

  private atomEscape(): Node {
    const c = this.peek();
    if (c === undefined) this.fail('a pattern ending in "\\"');
    if (c === 0x62 || c === 0x42) this.fail('a word boundary (\\b, \\B)');
    if ((c >= 0x31 && c <= 0x39) || c === 0x6b) this.fail('a backreference');
    return chars(charSet(this.escapeSet(false)));
  }

  /** The characters of an escape after "\", in or out of a class. */
  private escapeSet(inClass: boolean): Range[] {
    const c = this.peek()!;
    this.pos++;
    const ch = String.fromCodePoint(c);
    switch (ch) {
      case 'd': return DIGIT;
      case 'D': return complement(DIGIT);
      case 'w': return WORD;
      case 'W': return complement(WORD);
      case 's': return SPACE;
      case 'S': return complement(SPACE);
      case 'n': return [[0x0a, 0x0a]];
      case 't': return [[0x09, 0x09]];
      case 'r': return [[0x0d, 0x0d]];
      case 'f': return [[0x0c, 0x0c]];
      case 'v': return [[0x0b, 0x0b]];
      case 'b': if (inClass) return [[0x08, 0x08]]; break;
      case '0': if (!(this.peek()! >= 0x30 && this.peek()! <= 0x39)) return [[0, 0]]; break;
      case 'x': {
        const m = /^[0-9a-fA-F]{2}/.exec(String.fromCodePoint(...this.cps.slice(this.pos, this.pos + 2)));
        if (!m) this.fail('a bad \\x escape');
        this.pos += 2;
        const cp = parseInt(m[0], 16);
        return [[cp, cp]];
      }
      case 'u': {
        const rest = String.fromCodePoint(...this.cps.slice(this.pos, this.pos + 10));
        const m = /^\{([0-9a-fA-F]{1,6})\}/.exec(rest) ?? /^([0-9a-fA-F]{4})/.exec(rest);
        if (!m) this.fail('a bad \\u escape');
        this.pos += m[0].length;
        const cp = parseInt(m[1]!, 16);
        if (cp > 0x10ffff) this.fail('a code point past U+10FFFF');
        return [[cp, cp]];
      }
      default:
        // With the u flag only syntax characters (and "-" in a class, "/") may be escaped as themselves.
        if ('^$\\.*+?()[]{}|/'.includes(ch) || (inClass && ch === '-')) return [[c, c]];
    }
    return this.fail(`the escape \\${ch}`);
  }

  /** A class after "[", through its "]". */
  private classBody(): Range[] {
    const negated = this.eat('^');
    const ranges: Range[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail('an unclosed class');
      if (c === 0x5d) {
        this.pos++;
        break;
      }
      const lo = this.classAtom();
      if (this.peek() === 0x2d && this.peek(1) !== 0x5d && this.peek(1) !== undefined) {
        this.pos++;
        const hi = this.classAtom();
        if (lo.length !== 1 || hi.length !== 1 || lo[0]![0] !== lo[0]![1] || hi[0]![0] !== hi[0]![1]) this.fail('a class range with a class (\\d, \\w, \\s) at an end');
        if (hi[0]![0] < lo[0]![0]) this.fail('a class range out of order');
        ranges.push([lo[0]![0], hi[0]![0]]);
      } else ranges.push(...lo);
    }
    return negated ? complement(ranges) : normalize(ranges);
  }

  private classAtom(): Range[] {
    const c = this.peek()!;
    this.pos++;
    if (c === 0x5c) return this.escapeSet(true);
    if (c === 0x5b && this.peek() === 0x3a) this.fail('a POSIX class');
    return [[c, c]];
  }
}
