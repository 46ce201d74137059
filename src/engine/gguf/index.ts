/** GGUF: reading untrusted files through ranged sources, writing, split models, typed metadata. */
export * from './types.ts';
export * from './errors.ts';
export * from './source.ts';
export * from './reader.ts';
export * from './metadata.ts';
export * from './split.ts';
export * from './writer.ts';
export { GgmlType, ggmlTypeInfo, ggmlTypeByName, ggmlTypeName, byteSizeOf, type GgmlTypeInfo } from './ggml-types.ts';
export * from './json.ts';
