import { HearthError } from '../errors.ts';

/**
 * The model's tokenizer cannot be built from its GGUF metadata: a missing or mistyped key, or a
 * tokenizer kind (`tokenizer.ggml.model`) or pre-tokenizer (`tokenizer.ggml.pre`) this engine does
 * not implement. `detail.key` names the metadata key at fault.
 */
export class TokenizerLoadError extends HearthError {
  override name = 'TokenizerLoadError';
}

/**
 * Text could not be tokenized the way llama.cpp would: in practice, input bytes that llama.cpp
 * itself rejects (a UTF-8 form of a code point past U+10FFFF) or a vocabulary without the byte
 * token a character falls back to.
 */
export class TokenizeError extends HearthError {
  override name = 'TokenizeError';
}
