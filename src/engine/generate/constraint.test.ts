import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../../tests/tokenizer/helpers.ts';
import { compiledGrammar } from './constraint.ts';

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
  });

  it('names a bad grammar as parseGbnf does', async () => {
    const tokenizer = await loadTokenizer('llama-spm');
    expect(() => compiledGrammar(tokenizer, [2], 'root ::= nowhere')).toThrow(expect.objectContaining({ name: 'GrammarError' }));
  });
});
