export * from './params.ts';
export * from './penalties.ts';
export * from './chain.ts';
export * from './mask.ts';
