import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../../tests/tokenizer/helpers.ts';
import { ATTR } from '../tokenizer/index.ts';
import { maskHas } from '../grammar/index.ts';
import { compiledGrammar, constraintVocabulary } from './constraint.ts';

describe('compiledGrammar', () => {
  it('compiles a grammar once per tokenizer, end tokens and text, and keeps the 8 most recently used', async () => {
    const tokenizer = await loadTokenizer('llama-spm');
    const first = compiledGrammar(tokenizer, [2], 'root ::= "yes"');
    expect(compiledGrammar(tokenizer, [2], 'root ::= "yes"')).toBe(first);
    expect(compiledGrammar(tokenizer, [2, 7], 'root ::= "yes"')).not.toBe(first);

    // Seven more grammars and a use of the first keep it; the eighth after that evicts it.
    for (let i = 0; i < 6; i++) compiledGrammar(tokenizer, [2], `root ::= "n${i}"`);
    expect(compiledGrammar(tokenizer, [2], 'root ::= "yes"')).toBe(first);
    for (let i = 0; i < 8; i++) compiledGrammar(tokenizer, [2], `root ::= "m${i}"`);
    expect(compiledGrammar(tokenizer, [2], 'root ::= "yes"')).not.toBe(first);
  }, 60_000);

  it('names a bad grammar as parseGbnf does', async () => {
    const tokenizer = await loadTokenizer('llama-spm');
    expect(() => compiledGrammar(tokenizer, [2], 'root ::= nowhere')).toThrow(expect.objectContaining({ name: 'GrammarError' }));
  });
});

describe('constraintVocabulary', () => {
  it('never lets a grammar take control, user-defined (padding) or unused tokens, unless kept', async () => {
    const tokenizer = await loadTokenizer('qwen2');
    const never = ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN | ATTR.UNUSED;
    const markup = Array.from({ length: tokenizer.size }, (_, id) => id).filter((id) => tokenizer.tokenAttr(id) & never);
    // Qwen2's vocabulary pads itself with user-defined [PADn] tokens whose text any string allows.
    const pad = markup.find((id) => (tokenizer.tokenAttr(id) & ATTR.USER_DEFINED) !== 0)!;
    expect(new TextDecoder().decode(tokenizer.tokenToPiece(pad))).toMatch(/^\[PAD\d+\]$/);
    const eos = tokenizer.special.eos ?? -1;
    const grammar = compiledGrammar(tokenizer, [eos], 'root ::= "\\"" [^"]* "\\""');
    const inString = grammar.automaton.walk(grammar.automaton.start, [0x22]);
    const mask = grammar.mask(inString);
    expect(markup.length).toBeGreaterThan(100);
    expect(markup.filter((id) => maskHas(mask, id))).toEqual([]);
    // An ordinary token is allowed there, so the mask is not empty by accident.
    expect(maskHas(mask, tokenizer.encode('hello', { addSpecial: false })[0]!)).toBe(true);
    // A kept marker counts as its text.
    const kept = constraintVocabulary(tokenizer, [eos], new Set([pad]));
    expect(kept.pieces[pad]).not.toBeNull();
    expect(constraintVocabulary(tokenizer, [eos]).pieces[pad]).toBeNull();
  }, 60_000);
});
