export * from './grammar.ts';
export * from './gbnf.ts';
export * from './automaton.ts';
export * from './token-mask.ts';
export * from './json-schema.ts';
