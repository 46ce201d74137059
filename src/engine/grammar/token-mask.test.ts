import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGbnf } from './gbnf.ts';
import { CompiledGrammar, GrammarConstraint, grammarMask, maskHas, plainTokens, TokenTrie, type TokenMask } from './token-mask.ts';
import { jsonSchemaToGbnf } from './json-schema.ts';
import { randomSchema } from '../../testing/json-schema-check.ts';
import { GrammarError, type Grammar } from './grammar.ts';
import { llamaCppSourceDir } from '../../testing/llama-ref.ts';
import { recognizeBytes } from '../../testing/grammar-reference.ts';
import { freshSeed, mulberry32 } from '../../testing/random.ts';
import { ALPHABET, randomGrammar } from '../../testing/random-grammar.ts';
import { loadTokenizer } from '../../../tests/tokenizer/helpers.ts';

const utf8 = new TextEncoder();

/** The allowed set by brute force: every token's bytes after `prefix` against the reference recognizer. */
function bruteForceMask(grammar: Grammar, prefix: Uint8Array, pieces: ReadonlyArray<Uint8Array | null>): number[] {
  const allowed: number[] = [];
  pieces.forEach((piece, id) => {
    if (!piece || piece.length === 0) return;
    const bytes = new Uint8Array(prefix.length + piece.length);
    bytes.set(prefix);
    bytes.set(piece, prefix.length);
    if (recognizeBytes(grammar, bytes) !== 'reject') allowed.push(id);
  });
  return allowed;
}

function ids(mask: TokenMask, size: number): number[] {
  return Array.from({ length: size }, (_, i) => i).filter((i) => maskHas(mask, i));
}

/** A small vocabulary: every string of one or two alphabet characters, and the single bytes of the multi-byte ones. */
function smallVocabulary(): Array<Uint8Array | null> {
  const texts = [...ALPHABET, ...ALPHABET.flatMap((a) => ALPHABET.map((b) => a + b)), 'abc', '"a"'];
  const pieces: Array<Uint8Array | null> = texts.map((t) => utf8.encode(t));
  for (const c of ALPHABET) for (const b of utf8.encode(c)) if (b >= 0x80) pieces.push(Uint8Array.of(b));
  for (const c of ['中', '😀']) pieces.push(utf8.encode(c).slice(0, 2));
  pieces.push(null); // a special token: never allowed
  return pieces;
}

describe('token trie', () => {
  it('holds every token once, under its bytes', () => {
    const pieces = [utf8.encode('ab'), utf8.encode('a'), utf8.encode('b'), null, utf8.encode('ab'), utf8.encode('abc')];
    const trie = TokenTrie.build(pieces);
    expect(trie.nodes).toBe(1 + 4); // root, a, ab, abc, b
    expect([...trie.tokenIds].sort()).toEqual([0, 1, 2, 4, 5]);
  });
});

describe('grammar token masks', () => {
  it('equal the brute-force allowed set on random grammars, along random constrained walks', () => {
    const next = mulberry32(freshSeed('grammar masks'));
    const pieces = smallVocabulary();
    const trie = TokenTrie.build(pieces);
    let compared = 0;
    for (let trial = 0; trial < 40; trial++) {
      const { grammar, text } = randomGrammar(next);
      if (!grammar) continue;
      const constraint = new GrammarConstraint(grammar, { trie, pieces, endTokens: [] });
      let prefix = new Uint8Array(0);
      for (let step = 0; step < 6; step++) {
        let allowed: TokenMask;
        try {
          allowed = constraint.allowed();
        } catch (e) {
          // Some random grammars parse a prefix more ways than the automaton keeps: it refuses them
          // by name (GrammarError, "too ambiguous"), as it must; there is no mask to compare then.
          if (e instanceof GrammarError && /too ambiguous/.test(e.message)) break;
          throw e;
        }
        const ours = ids(allowed, pieces.length);
        expect(ours, `${text}\nafter ${JSON.stringify(new TextDecoder().decode(prefix))}`).toEqual(bruteForceMask(grammar, prefix, pieces));
        compared++;
        if (ours.length === 0) break;
        const token = ours[Math.floor(next() * ours.length)]!;
        constraint.accept(token);
        prefix = Uint8Array.from([...prefix, ...pieces[token]!]);
      }
    }
    expect(compared).toBeGreaterThan(60);
  });

  it('on the 152k-token Qwen2 vocabulary equal the brute-force set for JSON (every token tried)', async () => {
    const tokenizer = await loadTokenizer('qwen2');
    const pieces = Array.from({ length: tokenizer.size }, (_, id) => (tokenizer.isControl(id) ? null : tokenizer.tokenToPiece(id)));
    const trie = TokenTrie.build(pieces);
    const grammar = parseGbnf(readFileSync(join(llamaCppSourceDir(), 'grammars', 'json.gbnf'), 'utf8'));
    const eos = tokenizer.special.eos!;
    const constraint = new GrammarConstraint(grammar, { trie, pieces, endTokens: [eos] });
    let text = '';
    for (const chunk of ['', '{"na', 'me": "\\u00e9中', '", "n": [1.5, ', '-2]}']) {
      for (const id of tokenizer.encode(chunk, { addSpecial: false })) constraint.accept(id);
      text += chunk;
      const expected = bruteForceMask(grammar, utf8.encode(text), pieces);
      const complete = text.endsWith('}');
      expect(ids(constraint.allowed(), pieces.length), text).toEqual(complete ? [...expected, eos].sort((a, b) => a - b) : expected);
      expect(expected.length).toBeGreaterThan(0);
    }
    expect(constraint.complete).toBe(true);
  }, 600_000);

  it('refuses a token the grammar does not allow, and an end token before the grammar is complete', () => {
    const pieces = [utf8.encode('a'), utf8.encode('b'), null];
    const constraint = new GrammarConstraint(parseGbnf('root ::= "ab"'), { trie: TokenTrie.build(pieces), pieces, endTokens: [2] });
    expect(() => constraint.accept(1)).toThrow(expect.objectContaining({ name: 'GrammarViolationError' }));
    expect(() => constraint.accept(2)).toThrow(expect.objectContaining({ name: 'GrammarViolationError' }));
    constraint.accept(0);
    constraint.accept(1);
    expect(constraint.complete).toBe(true);
    expect(constraint.canContinue).toBe(false);
    expect(ids(constraint.allowed(), 3)).toEqual([2]);
  });
});

describe('CompiledGrammar (shared across generations)', () => {
  const pieces = [utf8.encode('a'), utf8.encode('b'), utf8.encode('ab'), null];
  const vocabulary = { trie: TokenTrie.build(pieces), pieces, endTokens: [3] };

  it('serves every constraint over it the same masks, each constraint keeping its own position', () => {
    const compiled = new CompiledGrammar(parseGbnf('root ::= "a" "b"*'), vocabulary);
    const first = new GrammarConstraint(compiled);
    const second = new GrammarConstraint(compiled);
    const atStart = first.allowed();
    expect(ids(atStart, 4)).toEqual([0, 2]);
    first.accept(0);
    // The second generation has not moved, and reuses the mask the first one built.
    expect(second.allowed()).toBe(atStart);
    expect(ids(first.allowed(), 4)).toEqual([1, 3]);
    second.accept(2);
    expect(second.allowed()).toBe(first.allowed());
  });

  it('starts its mask cache over past maxMasks, and the masks stay right', () => {
    const compiled = new CompiledGrammar(parseGbnf('root ::= "a" "b" "b"'), vocabulary, 1);
    const constraint = new GrammarConstraint(compiled);
    const start = constraint.allowed();
    constraint.accept(0);
    expect(ids(constraint.allowed(), 4)).toEqual([1]);
    const again = new GrammarConstraint(compiled);
    // Evicted: built again, equal but not the same array.
    expect(again.allowed()).not.toBe(start);
    expect(ids(again.allowed(), 4)).toEqual([0, 2]);
  });
});

describe('plain-token masks (strings without a trie walk per position)', () => {
  it('equal the full trie walk along random walks of random schemas with string lengths, and of GBNF grammars', async () => {
    // Qwen2's first 6000 tokens (byte tokens, partial characters, quotes, escapes, newlines) and a
    // few long and multi-byte ones.
    const tokenizer = await loadTokenizer('qwen2');
    const pieces: Array<Uint8Array | null> = Array.from({ length: 6000 }, (_, id) => (tokenizer.isControl(id) ? null : tokenizer.tokenToPiece(id)));
    for (const t of ['中文', 'é', '😀x', 'a'.repeat(30), ' '.repeat(60), 'ab"', '\\n', '"}']) pieces.push(utf8.encode(t));
    // Tokens ending partway through a character: after plain ones, a surrogate's start, past U+10FFFF.
    for (const b of [[0x61, 0x62, 0xe4, 0xb8], [0xe4], [0xed, 0xa0], [0xf4, 0x90], [0xf0, 0x9f, 0x98], [0x80, 0x61]]) pieces.push(Uint8Array.from(b));
    const vocabulary = { trie: TokenTrie.build(pieces), pieces, endTokens: [] };
    const plain = plainTokens(vocabulary);
    // Most tokens are plain, so the walk left is small.
    expect(plain.rest.tokenIds.length).toBeLessThan(pieces.length / 4);
    const next = mulberry32(freshSeed('plain masks'));
    const lengths = (s: unknown): unknown => {
      if (Array.isArray(s)) return s.map(lengths);
      if (typeof s !== 'object' || s === null) return s;
      const out: Record<string, unknown> = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'enum' || k === 'const' ? v : lengths(v)]));
      // A pattern or a format fixes its own lengths (the schema converter refuses both together).
      if (out.type === 'string' && out.pattern === undefined && out.format === undefined && next() < 0.8) Object.assign(out, { minLength: Math.floor(next() * 3), maxLength: 3 + Math.floor(next() * 20) });
      return out;
    };
    const grammars = [
      ...Array.from({ length: 30 }, () => parseGbnf(jsonSchemaToGbnf(lengths(randomSchema(next))))),
      parseGbnf('root ::= "\\"" [^"\\\\\\x00-\\x1f]{2,7} "\\"" [a-z]*'),
      parseGbnf('root ::= ([^"\\\\\\x00-\\x1f] [^"\\\\\\x00-\\x1f])* "."'),
      parseGbnf('root ::= [^\\n]{0,5} "\\n" .{3}'),
    ];
    let compared = 0;
    let withPlain = 0; // steps where plain tokens were allowed (the fast path's case)
    for (const grammar of grammars) {
      const compiled = new CompiledGrammar(grammar, vocabulary);
      const constraint = new GrammarConstraint(compiled);
      let state = compiled.automaton.start;
      for (let step = 0; step < 60; step++) {
        const mask = constraint.allowed();
        const full = grammarMask(compiled.automaton, state, vocabulary.trie);
        expect(ids(mask, pieces.length)).toEqual(ids(full, pieces.length));
        compared++;
        const allowed = ids(mask, pieces.length);
        if (allowed.length === 0) break;
        if (allowed.some((id) => plain.rest.tokenIds.indexOf(id) < 0)) withPlain++;
        const token = allowed[Math.floor(next() * allowed.length)]!;
        constraint.accept(token);
        state = compiled.automaton.walk(state, pieces[token]!);
        if (!constraint.canContinue) break;
      }
    }
    expect(compared).toBeGreaterThan(300);
    expect(withPlain).toBeGreaterThan(50);
  }, 120_000);
});
