/**
 * The GGUF metadata keys chat formatting reads, taken from a plain key/value map (such as a GGUF
 * reader's `metadata`), so this module depends on the keys and not on the reader. A key holding a
 * value of the wrong type is treated as absent, as llama.cpp's optional `get_key` does.
 */
import type { ChatTemplateMetadata } from './format.ts';
import type { StopVocab } from './stop.ts';

type Metadata = ReadonlyMap<string, unknown>;

function str(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key);
  return typeof value === 'string' ? value : undefined;
}

function int(metadata: Metadata, key: string): number | undefined {
  const value = metadata.get(key);
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= 0n ? Number(value) : undefined;
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}

function numbers(metadata: Metadata, key: string): ArrayLike<number> | undefined {
  const value = metadata.get(key);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView) && !(value instanceof BigInt64Array) && !(value instanceof BigUint64Array)) {
    return value as unknown as ArrayLike<number>;
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return value as number[];
  return undefined;
}

/** `tokenizer.chat_template` and what the default choice needs (see {@link ChatTemplateMetadata}). */
export function chatTemplateMetadata(metadata: Metadata): ChatTemplateMetadata {
  const arch = str(metadata, 'general.architecture');
  return {
    chatTemplate: str(metadata, 'tokenizer.chat_template'),
    toolUseTemplate: str(metadata, 'tokenizer.chat_template.tool_use'),
    tokenizerPre: str(metadata, 'tokenizer.ggml.pre'),
    layerCount: arch === undefined ? undefined : int(metadata, `${arch}.block_count`),
  };
}

/** The vocabulary keys the end-of-generation rules read; undefined when there are no tokens. */
export function stopVocab(metadata: Metadata): StopVocab | undefined {
  const tokens = metadata.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) return undefined;
  return {
    tokens: tokens as string[],
    tokenTypes: numbers(metadata, 'tokenizer.ggml.token_type'),
    model: str(metadata, 'tokenizer.ggml.model'),
    bosTokenId: int(metadata, 'tokenizer.ggml.bos_token_id'),
    eosTokenId: int(metadata, 'tokenizer.ggml.eos_token_id'),
    eotTokenId: int(metadata, 'tokenizer.ggml.eot_token_id'),
    eomTokenId: int(metadata, 'tokenizer.ggml.eom_token_id'),
    fimPadTokenId: int(metadata, 'tokenizer.ggml.fim_pad_token_id'),
    fimRepTokenId: int(metadata, 'tokenizer.ggml.fim_rep_token_id'),
    fimSepTokenId: int(metadata, 'tokenizer.ggml.fim_sep_token_id'),
  };
}
