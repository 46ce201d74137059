/**
 * End-of-generation tokens (src/engine/chat/stop.ts): on every vocabulary GGUF of llama.cpp's test
 * suite, the ids must equal llama.cpp's own `llama_vocab_is_eog` set (through tools/llama-ref); on
 * hand-made vocabularies, the rules llama.cpp applies and the token a chat template ends turns with.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseChatFormat, type ChatFormat } from '../../src/engine/chat/format.ts';
import { chatTemplateMetadata, stopVocab } from '../../src/engine/chat/metadata.ts';
import {
  TokenType,
  endOfGenerationTokens,
  llamaCppEndOfGenerationIds,
  stopStrings,
  type StopVocab,
} from '../../src/engine/chat/stop.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import type { GgufFile } from '../../src/engine/gguf/types.ts';
import { nodeFileSource } from '../../src/node/file-source.ts';
import { llamaCppSourceDir, llamaRefVocabInfo } from '../../src/testing/llama-ref.ts';

const { control, normal, userDefined } = TokenType;

/** A vocabulary of the given tokens (text or [text, type]); filler tokens make ids line up. */
function vocabOf(entries: (string | [string, number])[], extra: Partial<StopVocab> = {}): StopVocab {
  const tokens = entries.map((e) => (typeof e === 'string' ? e : e[0]));
  const tokenTypes = entries.map((e) => (typeof e === 'string' ? normal : e[1]));
  return { tokens, tokenTypes, ...extra };
}

function builtin(name: Extract<ChatFormat, { kind: 'builtin' }>['name']): ChatFormat {
  return { kind: 'builtin', name };
}

describe('end-of-generation tokens of real vocabularies equal llama.cpp', () => {
  const modelsDir = join(llamaCppSourceDir(), 'models');
  const files = readdirSync(modelsDir).filter((f) => f.startsWith('ggml-vocab-') && f.endsWith('.gguf')).sort();
  const ggufs = new Map<string, GgufFile>();

  beforeAll(async () => {
    for (const file of files) {
      const source = await nodeFileSource(join(modelsDir, file));
      try {
        ggufs.set(file, await readGguf(source));
      } finally {
        await source.close();
      }
    }
  }, 120_000);

  it('finds the vocabularies', () => {
    expect(files.length).toBeGreaterThanOrEqual(15);
  });

  it.each(files)('%s', (file) => {
    const gguf = ggufs.get(file)!;
    const vocab = stopVocab(gguf.metadata);
    expect(vocab).toBeDefined();
    const reference = llamaRefVocabInfo(join(modelsDir, file), { timeoutMs: 120_000 });
    expect(llamaCppEndOfGenerationIds(vocab!)).toEqual(reference.eog);
    // With the model's chat format the set can only grow, and still holds llama.cpp's ids.
    const format = chooseChatFormat(chatTemplateMetadata(gguf.metadata)).format;
    const eog = endOfGenerationTokens(vocab!, format);
    expect(eog.llamaCppIds).toEqual(reference.eog);
    for (const id of reference.eog) expect(eog.ids).toContain(id);
    if (eog.fromTemplate !== undefined) expect(eog.ids).toContain(eog.fromTemplate);
  }, 120_000);

  it('reads the turn end from the real templates these vocabularies carry', () => {
    const expectations: Record<string, string> = {
      'ggml-vocab-qwen2.gguf': '<|im_end|>',
      'ggml-vocab-phi-3.gguf': '<|end|>',
      'ggml-vocab-command-r.gguf': '<|END_OF_TURN_TOKEN|>',
      'ggml-vocab-gemma-4.gguf': '<turn|>',
    };
    for (const [file, end] of Object.entries(expectations)) {
      const gguf = ggufs.get(file)!;
      const vocab = stopVocab(gguf.metadata)!;
      const eog = endOfGenerationTokens(vocab, chooseChatFormat(chatTemplateMetadata(gguf.metadata)).format);
      expect(eog.turnEndToken, file).toBe(vocab.tokens.indexOf(end));
      expect(eog.turnEndText, file).toBe(end);
      expect(stopStrings(vocab, eog), file).toContain(end);
    }
  });
});

describe("llama.cpp's end-of-generation rules", () => {
  it('marks listed texts, and eos/eot/eom ids from the metadata whatever their text', () => {
    const vocab = vocabOf(['<unk>', '<s>', ['<|my_eos|>', control], ['<|eot_id|>', control], ['<|stop_here|>', control], ['<|eom_id|>', control]], {
      model: 'gpt2',
      eosTokenId: 2,
      eotTokenId: 4,
    });
    expect(llamaCppEndOfGenerationIds(vocab)).toEqual([2, 3, 4, 5]);
  });

  it("uses the tokenizer model's default EOS when the file names none, and ignores ids out of range", () => {
    const tokens = Array.from({ length: 20 }, (_, i) => `t${i}`);
    expect(llamaCppEndOfGenerationIds({ tokens, model: 'llama' })).toEqual([2]);
    expect(llamaCppEndOfGenerationIds({ tokens, model: 'gpt2' })).toEqual([11]);
    expect(llamaCppEndOfGenerationIds({ tokens, model: 't5' })).toEqual([1]);
    expect(llamaCppEndOfGenerationIds({ tokens, model: 'bert' })).toEqual([]);
    expect(llamaCppEndOfGenerationIds({ tokens })).toEqual([]);
    // An out-of-range id falls back to the default, as llama.cpp's "bad special token" path does.
    expect(llamaCppEndOfGenerationIds({ tokens, model: 'llama', eosTokenId: 999 })).toEqual([2]);
    expect(llamaCppEndOfGenerationIds({ tokens, model: 'llama', eosTokenId: 7 })).toEqual([7]);
    expect(llamaCppEndOfGenerationIds({ tokens, model: 'constructor' })).toEqual([]);
  });

  it('ends on FIM pad/repo/file-separator tokens, by metadata or by text', () => {
    const vocab = vocabOf(['a', ['<|fim_pad|>', control], ['<|repo_name|>', control], ['<|file_sep|>', control], ['<|fim_prefix|>', control]]);
    expect(llamaCppEndOfGenerationIds(vocab)).toEqual([1, 2, 3]);
    expect(llamaCppEndOfGenerationIds({ ...vocab, fimPadTokenId: 4 })).toEqual([2, 3, 4]);
  });

  it('drops <|end|> for harmony-style vocabularies (gpt-oss), and </s> next to <|tool_response>', () => {
    const harmony = vocabOf([['<|return|>', control], ['<|call|>', control], ['<|end|>', control], ['<|endoftext|>', control]]);
    expect(llamaCppEndOfGenerationIds(harmony)).toEqual([0, 1, 3]);
    const phi = vocabOf([['<|end|>', control], ['<|endoftext|>', control]]);
    expect(llamaCppEndOfGenerationIds(phi)).toEqual([0, 1]);
    const gemma4 = vocabOf([['</s>', control], ['<|tool_response>', control], ['<turn|>', control]]);
    expect(llamaCppEndOfGenerationIds(gemma4)).toEqual([1, 2]);
  });
});

describe('the chat format adds the token it ends turns with', () => {
  it("adds Llama 4's <|eot|>, which llama.cpp's text list lacks", () => {
    const vocab = vocabOf(['a', ['<|begin_of_text|>', control], ['<|end_of_text|>', control], ['<|eot|>', control], ['<|header_start|>', control], ['<|header_end|>', control]], {
      model: 'gpt2',
      bosTokenId: 1,
      eosTokenId: 2,
    });
    const eog = endOfGenerationTokens(vocab, builtin('llama4'));
    expect(eog.llamaCppIds).toEqual([2]);
    expect(eog.fromTemplate).toBe(3);
    expect(eog.ids).toEqual([2, 3]);
    expect(eog.turnSuffix).toBe('<|eot|>');
    expect(stopStrings(vocab, eog)).toEqual(['<|end_of_text|>', '<|eot|>']);
  });

  it("adds EXAONE's [|endofturn|] (a user-defined token), after the newline-free suffix", () => {
    const vocab = vocabOf(['x', ['[|endofturn|]', userDefined], ['[|assistant|]', userDefined], ['</s>', control]], { eosTokenId: 3, model: 'gpt2' });
    const eog = endOfGenerationTokens(vocab, builtin('exaone3'));
    expect(eog.turnSuffix).toBe('[|endofturn|]\n');
    expect(eog.fromTemplate).toBe(1);
    expect(eog.ids).toEqual([1, 3]);
  });

  it("does not add gpt-oss's <|end|> back when a template ends a message with it", () => {
    const vocab = vocabOf([['<|return|>', control], ['<|call|>', control], ['<|end|>', control], ['<|start|>', control], ['<|message|>', control]]);
    // A format that closes assistant turns with <|end|> (as gpt-oss does for earlier messages).
    const format = chooseChatFormat({ chatTemplate: "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}" }).format;
    const eog = endOfGenerationTokens(vocab, format);
    expect(eog.ids).toEqual([0, 1]);
    expect(eog.fromTemplate).toBeUndefined();
    expect(eog.turnEndToken).toBeUndefined();
    expect(eog.turnEndText).toBeUndefined();
    expect(stopStrings(vocab, eog)).not.toContain('<|end|>');
  });

  it('ignores a normal token that merely starts the suffix', () => {
    const vocab = vocabOf(['\n', 'User', ['</s>', control]], { eosTokenId: 2, model: 'gpt2' });
    const eog = endOfGenerationTokens(vocab, builtin('rwkv-world'));
    expect(eog.turnSuffix).toBe('\n\n');
    expect(eog.turnEndToken).toBeUndefined();
    expect(eog.turnEndText).toBeUndefined();
    expect(eog.ids).toEqual([2]);
  });

  it("stops on the default ChatML's <|im_end|> as text when the vocabulary lacks the token", () => {
    const vocab = vocabOf(['a', ['<s>', control], ['</s>', control]], { model: 'llama', bosTokenId: 1, eosTokenId: 2 });
    const choice = chooseChatFormat({});
    const eog = endOfGenerationTokens(vocab, choice.format);
    expect(eog.ids).toEqual([2]);
    expect(eog.turnEndToken).toBeUndefined();
    expect(eog.turnEndText).toBe('<|im_end|>');
    expect(stopStrings(vocab, eog)).toEqual(['<|im_end|>', '</s>']);
  });

  it("passes the vocabulary's BOS and EOS texts to the template", () => {
    // Mistral's templates write eos_token after each reply.
    const template = readFileSync(join(llamaCppSourceDir(), 'models', 'templates', 'mistralai-Mistral-Nemo-Instruct-2407.jinja'), 'utf8');
    const vocab = vocabOf(['<unk>', ['<s>', control], ['</s>', control], ['[INST]', control], ['[/INST]', control]], {
      model: 'llama',
      bosTokenId: 1,
      eosTokenId: 2,
    });
    const eog = endOfGenerationTokens(vocab, chooseChatFormat({ chatTemplate: template }).format);
    expect(eog.turnSuffix).toBe('</s>');
    expect(eog.turnEndToken).toBe(2);
    expect(eog.fromTemplate).toBeUndefined();
  });

  it('finds no turn end when the template cannot format a plain exchange', () => {
    const vocab = vocabOf([['<|eot_id|>', control]]);
    const format = chooseChatFormat({ chatTemplate: "{{ raise_exception('needs a system message') }}" }).format;
    const eog = endOfGenerationTokens(vocab, format);
    expect(eog.turnSuffix).toBeUndefined();
    expect(eog.ids).toEqual([0]);
  });

  it('reads the vocabulary keys from a metadata map', () => {
    const metadata = new Map<string, unknown>([
      ['tokenizer.ggml.tokens', ['a', '<|eot_id|>', 'b']],
      ['tokenizer.ggml.token_type', new Int32Array([normal, control, normal])],
      ['tokenizer.ggml.model', 'gpt2'],
      ['tokenizer.ggml.eos_token_id', 2n],
      ['tokenizer.ggml.eot_token_id', 'oops'],
    ]);
    const vocab = stopVocab(metadata)!;
    expect(vocab.eosTokenId).toBe(2);
    expect(vocab.eotTokenId).toBeUndefined();
    expect(Array.from(vocab.tokenTypes!)).toEqual([normal, control, normal]);
    expect(llamaCppEndOfGenerationIds(vocab)).toEqual([1, 2]);
    expect(stopVocab(new Map())).toBeUndefined();
  });
});
