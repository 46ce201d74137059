import { beforeAll, describe, expect, it } from 'vitest';
import { anyJsonObjectGbnf, jsonSchemaToGbnf } from './json-schema.ts';
import { parseGbnf } from './gbnf.ts';
import { GrammarAutomaton, REJECT } from './automaton.ts';
import { automatonVerdict } from '../../testing/grammar-reference.ts';
import { GrammarConstraint, maskHas, TokenTrie } from './token-mask.ts';
import { freshSeed, mulberry32 } from '../../testing/random.ts';
import { PATTERNS, randomBounds, randomPattern, randomSchema, schemaErrors } from '../../testing/json-schema-check.ts';
import { loadTokenizer } from '../../../tests/tokenizer/helpers.ts';

const verdict = (schema: unknown, text: string) => automatonVerdict(jsonSchemaToGbnf(schema), text);

describe('JSON schema to grammar', () => {
  it('objects: required properties always, optional ones maybe, in declared order, nothing else', () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'string' }, c: { type: 'boolean' } }, required: ['b'] };
    expect(verdict(schema, '{"b": "x"}')).toBe('complete');
    expect(verdict(schema, '{"a": -12, "b": "x\\n\\u00e9", "c": true}')).toBe('complete');
    expect(verdict(schema, '{"a": 1')).toBe('prefix');
    expect(verdict(schema, '{"a": 1}')).toBe('reject'); // b is required
    expect(verdict(schema, '{"c": true}')).toBe('reject');
    expect(verdict(schema, '{"b": "x", "d": 1}')).toBe('reject');
    expect(verdict(schema, '{"a": 1.5')).toBe('reject');
    expect(verdict(schema, '{"a": 01')).toBe('reject');
  });

  it('arrays with bounds, enums, consts, anyOf, nullable types and $ref to $defs (recursive too)', () => {
    expect(verdict({ type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 2 }, '[ ')).toBe('prefix');
    expect(verdict({ type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 2 }, '[]')).toBe('reject');
    expect(verdict({ type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 2 }, '[1e5, -0.25]')).toBe('complete');
    expect(verdict({ type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 2 }, '[1, 2, 3')).toBe('reject');
    expect(verdict({ enum: ['a', 1, null] }, 'null')).toBe('complete');
    expect(verdict({ enum: ['a', 1, null] }, '"b"')).toBe('reject');
    expect(verdict({ const: { k: [1, 'x'] } }, '{"k":[1,"x"]}')).toBe('complete');
    expect(verdict({ anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 2 }] }, '"abc')).toBe('reject');
    expect(verdict({ type: ['string', 'null'] }, 'null')).toBe('complete');
    const tree = { $ref: '#/$defs/node', $defs: { node: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['kids'] } } };
    expect(verdict(tree, '{"kids": [{"kids": []}, {"kids": [{"kids": []}]}]}')).toBe('complete');
    expect(verdict(true, '[{"any": "json"}, 1]')).toBe('complete');
    expect(verdict({ type: 'object' }, '{"free": {"form": null}}')).toBe('complete');
  });

  it('json_object mode allows any JSON object and nothing else', () => {
    const automaton = new GrammarAutomaton(parseGbnf(anyJsonObjectGbnf()));
    const run = (t: string) => automaton.walk(automaton.start, new TextEncoder().encode(t));
    expect(automaton.accepting(run('{"a": [1, {"b": null}], "c": "d"}'))).toBe(true);
    expect(run('[1]')).toBe(REJECT);
    expect(run('"s"')).toBe(REJECT);
  });

  it('rejects keywords outside the subset with an UnsupportedSchemaError naming the keyword and the supported ones', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'number', multipleOf: 2 }, /"multipleOf" is not supported.*Supported keywords: type, properties/],
      [{ type: 'array', uniqueItems: true }, /"uniqueItems" is not supported/],
      [{ type: 'object', properties: { a: { type: 'string', contentEncoding: 'base64' } } }, /#\/properties\/a: the keyword "contentEncoding"/],
      [{ type: 'object', properties: {}, additionalProperties: { type: 'string' } }, /only additionalProperties: false/],
      [{ type: 'date' }, /unknown type "date"/],
      [{ $ref: '#/$defs/missing' }, /does not name an entry/],
      [{ type: 'object', properties: { a: true }, required: ['b'] }, /required must list names/],
      [{ allOf: [] }, /"allOf" is not supported/],
    ];
    for (const [schema, message] of cases) {
      expect(() => jsonSchemaToGbnf(schema), JSON.stringify(schema)).toThrow(expect.objectContaining({ name: 'UnsupportedSchemaError', message: expect.stringMatching(message) }));
    }
  });
});

describe('deeply nested schemas', () => {
  const nest = (levels: number, wrap: (inner: unknown) => unknown) => {
    let schema: unknown = { type: 'string' };
    for (let i = 0; i < levels; i++) schema = wrap(schema);
    return schema;
  };
  const tooDeep = expect.objectContaining({ name: 'UnsupportedSchemaError', message: expect.stringMatching(/nested more than 100 deep/) });

  it('are an UnsupportedSchemaError past the nesting limit, not a stack overflow', () => {
    expect(() => jsonSchemaToGbnf(nest(20000, (a) => ({ type: 'object', properties: { a }, required: ['a'] })))).toThrow(tooDeep);
    expect(() => jsonSchemaToGbnf(nest(20000, (items) => ({ items })))).toThrow(tooDeep);
    expect(() => jsonSchemaToGbnf(nest(20000, (s) => ({ anyOf: [s, { type: 'null' }] })))).toThrow(tooDeep);
    const defs: Record<string, unknown> = { d20000: { type: 'null' } };
    for (let i = 0; i < 20000; i++) defs[`d${i}`] = { anyOf: [{ $ref: `#/$defs/d${i + 1}` }, { type: 'null' }] };
    expect(() => jsonSchemaToGbnf({ $ref: '#/$defs/d0', $defs: defs })).toThrow(tooDeep);
    const pattern = `${'('.repeat(20000)}a${')'.repeat(20000)}`;
    expect(() => jsonSchemaToGbnf({ type: 'string', pattern })).toThrow(expect.objectContaining({ name: 'UnsupportedSchemaError', message: expect.stringMatching(/pattern: groups nested more than 100 deep/) }));
  });

  it('within the limit still compile and constrain', () => {
    const deep = nest(90, (a) => ({ type: 'object', properties: { a }, required: ['a'] }));
    const text = `${'{"a": '.repeat(90)}"x"${'}'.repeat(90)}`;
    expect(verdict(deep, text)).toBe('complete');
    expect(verdict(deep, text.slice(0, -1))).toBe('prefix');
    expect(verdict({ type: 'string', pattern: `^${'('.repeat(90)}ab${')'.repeat(90)}$` }, '"ab"')).toBe('complete');
  });
});

describe('constrained generation under random schemas', () => {
  let pieces: Array<Uint8Array | null>;
  let trie: TokenTrie;
  let closers: Set<number>;
  beforeAll(async () => {
    // The first 8000 tokens of Qwen2's vocabulary (its 256 byte tokens and the commonest merges):
    // real multi-byte, merged tokens, and small enough to build hundreds of grammars quickly.
    const tokenizer = await loadTokenizer('qwen2');
    pieces = Array.from({ length: 8000 }, (_, id) => (tokenizer.isControl(id) ? null : tokenizer.tokenToPiece(id)));
    trie = TokenTrie.build(pieces);
    closers = new Set(pieces.flatMap((p, id) => (p && /["}\]0-9]/.test(new TextDecoder().decode(p)) ? [id] : [])));
  });

  it('every finished output of a random walk parses and validates (300 schemas)', () => {
    const next = mulberry32(freshSeed('random schemas'));
    const END = pieces.length; // a stand-in end-of-generation token
    let finished = 0;
    for (let trial = 0; trial < 300; trial++) {
      const schema = randomSchema(next);
      const constraint = new GrammarConstraint(parseGbnf(jsonSchemaToGbnf(schema)), { trie, pieces: [...pieces, null], endTokens: [END] });
      const decoder = new TextDecoder();
      let text = '';
      for (let step = 0; step < 400; step++) {
        const mask = constraint.allowed();
        const allowed = Array.from({ length: END + 1 }, (_, i) => i).filter((i) => maskHas(mask, i));
        expect(allowed.length, `${JSON.stringify(schema)} after ${JSON.stringify(text)}`).toBeGreaterThan(0);
        // Random tokens, leaning towards ones that close strings, arrays and objects so walks end.
        const leaning = allowed.filter((i) => i === END || closers.has(i));
        const pool = leaning.length > 0 && next() < 0.6 ? leaning : allowed;
        const token = pool[Math.floor(next() * pool.length)]!;
        if (token === END) break;
        constraint.accept(token);
        text += decoder.decode(pieces[token]!, { stream: true });
        if (!constraint.canContinue) break;
      }
      if (!constraint.complete) continue;
      finished++;
      const value = JSON.parse(text);
      expect(schemaErrors(schema, value), `${JSON.stringify(schema)}\n${text}`).toEqual([]);
    }
    expect(finished).toBeGreaterThan(250);
  }, 600_000);
});

describe('pattern and numeric bounds', () => {
  /** Random strings over the characters the patterns use. */
  const randomText = (next: () => number): string => {
    const chars = ['a', 'b', 'c', 'é', 'ü', '"', '\\', '\n', '1', '2', ' ', '.', '中', 'x', 'y', 'z', '@', 'A'];
    return Array.from({ length: Math.floor(next() * 7) }, () => chars[Math.floor(next() * chars.length)]!).join('');
  };

  it('a pattern accepts exactly the strings JavaScript RegExp matches (listed and random patterns)', () => {
    const next = mulberry32(freshSeed('patterns'));
    const patterns = [...PATTERNS, ...Array.from({ length: 60 }, () => randomPattern(next))];
    let matched = 0;
    for (const pattern of patterns) {
      const automaton = new GrammarAutomaton(parseGbnf(jsonSchemaToGbnf({ type: 'string', pattern })));
      const regex = new RegExp(pattern, 'u');
      for (let i = 0; i < 150; i++) {
        const text = randomText(next);
        const state = automaton.walk(automaton.start, new TextEncoder().encode(JSON.stringify(text)));
        const accepted = state !== REJECT && automaton.accepting(state);
        expect(accepted, `${pattern} on ${JSON.stringify(text)}`).toBe(regex.test(text));
        if (accepted) matched++;
      }
    }
    expect(matched).toBeGreaterThan(200);
  });

  it('integer and number bounds accept exactly the values inside them', () => {
    const next = mulberry32(freshSeed('bounds'));
    for (let trial = 0; trial < 60; trial++) {
      const integer = next() < 0.5;
      const schema = { type: integer ? 'integer' : 'number', ...randomBounds(next, !integer) };
      const automaton = new GrammarAutomaton(parseGbnf(jsonSchemaToGbnf(schema)));
      const values = Array.from({ length: 80 }, () => {
        const around = Object.values(schema).filter((v) => typeof v === 'number') as number[];
        const base = around[Math.floor(next() * around.length)]!;
        const v = base + Math.floor((next() - 0.5) * 8) + (integer || next() < 0.5 ? 0 : Math.floor(next() * 100) / 100);
        return Number(v.toFixed(2));
      });
      for (const v of values) {
        const state = automaton.walk(automaton.start, new TextEncoder().encode(String(v)));
        const accepted = state !== REJECT && automaton.accepting(state);
        const valid = Number.isInteger(v) || !integer ? schemaErrors(schema, v).length === 0 : false;
        expect(accepted, `${JSON.stringify(schema)} on ${v}`).toBe(valid);
      }
    }
  });

  it('refuses by name what is not regular or not exact', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'string', pattern: '^(a)\\1$' }, /backreference/],
      [{ type: 'string', pattern: '^(?=a)a$' }, /lookahead/],
      [{ type: 'string', pattern: '^(?<!a)b$' }, /lookbehind/],
      [{ type: 'string', pattern: '\\bword' }, /word boundary/],
      [{ type: 'string', pattern: 'a^b' }, /"\^" inside/],
      [{ type: 'string', pattern: '(a$)' }, /"\$" inside/],
      [{ type: 'string', pattern: '^[a-z]+$', maxLength: 3 }, /pattern together with/],
      [{ type: 'number', minimum: 0.5 }, /fractional minimum/],
      [{ type: 'integer', minimum: 3, maximum: 2 }, /no integer lies within/],
      [{ type: 'integer', exclusiveMinimum: true, minimum: 1 }, /boolean/],
    ];
    for (const [schema, message] of cases) {
      expect(() => jsonSchemaToGbnf(schema), JSON.stringify(schema)).toThrow(expect.objectContaining({ name: 'UnsupportedSchemaError', message: expect.stringMatching(message) }));
    }
  });
});

describe('string formats', () => {
  it('date, time, date-time and uuid accept valid values and refuse invalid ones (checked by the calendar)', () => {
    const cases: Array<[string, string, boolean]> = [
      ['date', '2024-02-28', true], ['date', '2023-04-31', false], ['date', '2024-13-01', false], ['date', '2024-01-31', true],
      ['time', '23:59:59Z', true], ['time', '12:00:00.123+05:30', true], ['time', '24:00:00Z', false], ['time', '12:00:00', false],
      ['date-time', '2024-06-30T08:15:00-07:00', true], ['date-time', '2024-06-31T08:15:00Z', false],
      ['uuid', '123e4567-e89b-12d3-a456-426614174000', true], ['uuid', '123e4567-e89b-12d3-a456-42661417400', false],
    ];
    for (const [format, value, valid] of cases) {
      const schema = { type: 'string', format };
      expect(verdict(schema, JSON.stringify(value)) === 'complete', `${format} ${value}`).toBe(valid);
      expect(schemaErrors(schema, value).length === 0, `validator: ${format} ${value}`).toBe(valid);
    }
    expect(() => jsonSchemaToGbnf({ type: 'string', format: 'email' })).toThrow(expect.objectContaining({ name: 'UnsupportedSchemaError', message: expect.stringMatching(/format "email" is not supported/) }));
  });
});
