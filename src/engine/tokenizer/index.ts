/**
 * Tokenizers that give llama.cpp's ids for the same GGUF file: SentencePiece-style ("llama") and
 * byte-level BPE ("gpt2", "gemma4") with every pre-tokenizer llama.cpp names but Kimi-K2. Build one
 * from a GGUF file's metadata with Tokenizer.fromGgufMetadata.
 */
export { Tokenizer, StreamDecoder, type EncodeOptions, type DecodeOptions } from './tokenizer.ts';
export {
  ATTR,
  KNOWN_PRE_TOKENIZERS,
  type SpecialTokens,
  type Vocab,
  type VocabFlags,
  type VocabType,
  type TokenizerMetadata,
} from './vocab.ts';
export { TokenizerLoadError, TokenizeError } from './errors.ts';
