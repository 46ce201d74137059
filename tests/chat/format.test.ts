/**
 * Choosing a model's chat format from its metadata (src/engine/chat/format.ts): its own template, a
 * built-in format it names, or the reported default, and formatting with the choice.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyBuiltinTemplate } from '../../src/engine/chat/builtin.ts';
import { CHATML_TEMPLATE, chatFormatLabel, chooseChatFormat, formatChat } from '../../src/engine/chat/format.ts';
import { chatTemplateMetadata } from '../../src/engine/chat/metadata.ts';
import { ChatTemplateError, type ChatMessage } from '../../src/engine/chat/template.ts';
import { llamaCppSourceDir } from '../../src/testing/llama-ref.ts';

const chat: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Bye' },
];
const tokens = { bosToken: '<s>', eosToken: '</s>' };

function template(file: string): string {
  return readFileSync(join(llamaCppSourceDir(), 'models', 'templates', file), 'utf8');
}

describe('chooseChatFormat', () => {
  it("uses the model's Jinja template and names its family", () => {
    const choice = chooseChatFormat({ chatTemplate: template('meta-llama-Llama-3.2-3B-Instruct.jinja') });
    expect(choice.source).toBe('template');
    expect(choice.format.kind).toBe('jinja');
    expect(choice.family).toBe('llama3');
    expect(chatFormatLabel(choice.family!)).toBe('Llama 3');
    expect(choice.notice).toBeUndefined();
    const text = formatChat(choice.format, chat, { ...tokens, addGenerationPrompt: true, now: new Date(2024, 6, 26) });
    expect(text.startsWith('<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>')).toBe(true);
    expect(text.endsWith('<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
  });

  it('falls back to ChatML, as llama.cpp does, and says so', () => {
    for (const chatTemplate of [undefined, '']) {
      const choice = chooseChatFormat({ chatTemplate });
      expect(choice.source).toBe('default');
      expect(choice.family).toBe('chatml');
      expect(choice.notice).toMatch(/no chat template; using ChatML/);
      const text = formatChat(choice.format, chat, { ...tokens, addGenerationPrompt: true });
      // llama.cpp's Jinja default (CHATML_TEMPLATE_SRC) and its built-in "chatml" agree.
      expect(text).toBe(applyBuiltinTemplate('chatml', chat, true));
      expect(text).toBe(
        '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n' +
          '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
      );
    }
  });

  it("prefers the tool_use template when the default one is missing, as llama.cpp does", () => {
    const toolUse = template('NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja');
    const choice = chooseChatFormat({ toolUseTemplate: toolUse });
    expect(choice.source).toBe('template');
    expect(choice.format.kind === 'jinja' && choice.format.template.source).toBe(toolUse);
    expect(chooseChatFormat({ chatTemplate: 'chatml', toolUseTemplate: toolUse }).source).toBe('template');
  });

  it('uses a built-in format the metadata names', () => {
    const choice = chooseChatFormat({ chatTemplate: 'gemma' });
    expect(choice).toMatchObject({ source: 'named', family: 'gemma', notice: undefined, format: { kind: 'builtin', name: 'gemma' } });
    expect(formatChat(choice.format, chat.slice(0, 2), { ...tokens, addGenerationPrompt: true })).toBe(
      '<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n',
    );
    expect(chooseChatFormat({ chatTemplate: 'chatml' })).toMatchObject({ source: 'named', format: { kind: 'builtin', name: 'chatml' } });
  });

  it("applies llama.cpp's one default exception: Mistral Small 2503 (tekken, 40 layers)", () => {
    expect(chooseChatFormat({ tokenizerPre: 'tekken', layerCount: 40 })).toMatchObject({
      source: 'default',
      format: { kind: 'builtin', name: 'mistral-v7-tekken' },
    });
    expect(chooseChatFormat({ tokenizerPre: 'tekken', layerCount: 32 }).family).toBe('chatml');
  });

  it('falls back to the detected family when the Jinja cannot be parsed, and reports it', () => {
    const broken = "{% for message in messages %}<|start_header_id|>{{ message['role'] <|end_header_id|>{% endfor %}";
    const choice = chooseChatFormat({ chatTemplate: broken });
    expect(choice).toMatchObject({ source: 'unparsable', family: 'llama3', format: { kind: 'builtin', name: 'llama3' } });
    expect(choice.notice).toMatch(/could not be read .*Llama 3/);
  });

  it('falls back to the detected family when the template fails to render a plain exchange', () => {
    // Firefunction v2 needs a `functions` variable that llama.cpp and we do not provide.
    const choice = chooseChatFormat({ chatTemplate: template('fireworks-ai-llama-3-firefunction-v2.jinja') });
    expect(choice).toMatchObject({ source: 'unrenderable', family: 'llama3', format: { kind: 'builtin', name: 'llama3' } });
    expect(choice.notice).toMatch(/could not be rendered/);
    // A template that rejects a conversation on purpose is working as written: kept.
    expect(chooseChatFormat({ chatTemplate: template('google-gemma-2-2b-it.jinja') }).source).toBe('template');
    const strict = "{% if messages[0].role != 'system' %}{{ raise_exception('system first') }}{% endif %}<|im_start|>";
    expect(chooseChatFormat({ chatTemplate: strict }).source).toBe('template');
  });

  it('refuses a broken template of an unknown family instead of guessing', () => {
    let error: unknown;
    try {
      chooseChatFormat({ chatTemplate: '{% if %}' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error).toMatchObject({ name: 'ChatTemplateError', kind: 'syntax' });
  });

  it('reads the keys from a metadata map', () => {
    const metadata = new Map<string, unknown>([
      ['general.architecture', 'llama'],
      ['llama.block_count', 40n],
      ['tokenizer.ggml.pre', 'tekken'],
      ['tokenizer.chat_template', 7], // wrong type: ignored, as llama.cpp's optional get_key
    ]);
    expect(chatTemplateMetadata(metadata)).toEqual({ chatTemplate: undefined, toolUseTemplate: undefined, tokenizerPre: 'tekken', layerCount: 40 });
    expect(chooseChatFormat(chatTemplateMetadata(metadata)).family).toBe('mistral-v7-tekken');
  });
});

describe('formatChat', () => {
  it("drops the template's BOS when the tokenizer adds one, like llama.cpp", () => {
    const choice = chooseChatFormat({ chatTemplate: template('meta-llama-Llama-3.2-3B-Instruct.jinja') });
    const options = { ...tokens, addGenerationPrompt: false, now: new Date(2024, 0, 1) };
    const withBos = formatChat(choice.format, chat, options);
    const without = formatChat(choice.format, chat, { ...options, tokenizerAddsBos: true });
    expect(withBos.startsWith('<s>')).toBe(true);
    expect(without).toBe(withBos.slice('<s>'.length));
  });

  it("drops a trailing EOS when the tokenizer adds one", () => {
    const choice = chooseChatFormat({ chatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}" });
    expect(formatChat(choice.format, chat.slice(1, 2), { ...tokens, addGenerationPrompt: false, tokenizerAddsEos: true })).toBe('Hi');
    expect(formatChat(choice.format, chat.slice(1, 2), { ...tokens, addGenerationPrompt: false })).toBe('Hi</s>');
  });

  it('passes a rejection by the template on as a ChatTemplateError', () => {
    const choice = chooseChatFormat({ chatTemplate: template('google-gemma-2-2b-it.jinja') });
    const twoUsers: ChatMessage[] = [{ role: 'user', content: 'Hi' }, { role: 'user', content: 'Again' }];
    expect(() => formatChat(choice.format, twoUsers, { ...tokens, addGenerationPrompt: true })).toThrow(/Conversation roles must alternate/);
  });

  it("merges the system prompt into the next message for a template without a system role (Gemma), as llama.cpp does", () => {
    // Gemma 1.1's and Gemma 2's template (the same text) raises on a system message; llama.cpp
    // probes that and writes the system prompt, a newline, then the first user message instead.
    const gemma = chooseChatFormat({ chatTemplate: template('google-gemma-2-2b-it.jinja') });
    expect(gemma.format).toMatchObject({ kind: 'jinja', systemRole: false });
    expect(formatChat(gemma.format, chat, { bosToken: '<bos>', eosToken: '<eos>', addGenerationPrompt: true })).toBe(
      '<bos><start_of_turn>user\nBe brief.\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n' +
        '<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n',
    );
    // A system prompt alone is dropped; without one nothing changes.
    expect(formatChat(gemma.format, chat.slice(0, 1), { bosToken: '<bos>', eosToken: '<eos>', addGenerationPrompt: true })).toBe('<bos><start_of_turn>model\n');
    expect(formatChat(gemma.format, chat.slice(1, 2), { bosToken: '<bos>', eosToken: '<eos>', addGenerationPrompt: false })).toBe(
      '<bos><start_of_turn>user\nHi<end_of_turn>\n',
    );
    // A template that silently skips system messages gets the merge too; ones that write it do not.
    const skips = chooseChatFormat({ chatTemplate: "{% for m in messages %}{% if m.role != 'system' %}[{{ m.role }}]{{ m.content }}{% endif %}{% endfor %}" });
    expect(formatChat(skips.format, chat.slice(0, 2), { ...tokens, addGenerationPrompt: false })).toBe('[user]Be brief.\nHi');
    for (const file of ['meta-llama-Llama-3.2-3B-Instruct.jinja', 'Qwen-Qwen2.5-7B-Instruct.jinja', 'microsoft-Phi-3.5-mini-instruct.jinja']) {
      expect(chooseChatFormat({ chatTemplate: template(file) }).format, file).toMatchObject({ kind: 'jinja', systemRole: true });
    }
  });

  it('renders the ChatML default template source exactly as llama.cpp writes it', () => {
    expect(CHATML_TEMPLATE).toContain("'<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n'");
  });
});
