/**
 * Our port of llama.cpp's built-in chat formats (src/engine/chat/builtin.ts) against llama.cpp's
 * own goldens: every case of its tests/test-chat-template.cpp, read from the pinned source, must be
 * detected and formatted to exactly its `expected_output`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_TEMPLATE_NAMES,
  applyBuiltinTemplate,
  detectBuiltinTemplate,
  isBuiltinTemplateName,
} from '../../src/engine/chat/builtin.ts';
import { LLAMA_CPP_TEST_CONVERSATION, readLlamaCppChatCases } from './llama-cpp-chat-cases.ts';
import { llamaCppSourceDir as llamaCppSource } from '../../src/testing/llama-ref.ts';

const cases = readLlamaCppChatCases();

describe("llama.cpp's built-in chat formats", () => {
  it("reads llama.cpp's test table", () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(cases[0]!.name).toBe('teknium/OpenHermes-2.5-Mistral-7B');
    expect(cases.filter((c) => c.extraConversation.length > 0).length).toBeGreaterThan(0);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: detected and formatted as llama.cpp expects', (_name, c) => {
    const name = detectBuiltinTemplate(c.template);
    expect(name).toBeDefined();
    const output = applyBuiltinTemplate(name!, [...LLAMA_CPP_TEST_CONVERSATION, ...c.extraConversation], true);
    expect(output).toBe(c.expectedOutput);
  });

  it('recognises every built-in name, and nothing in an unrelated text', () => {
    for (const name of BUILTIN_TEMPLATE_NAMES) {
      expect(isBuiltinTemplateName(name)).toBe(true);
      expect(detectBuiltinTemplate(name)).toBe(name);
    }
    expect(detectBuiltinTemplate('INVALID TEMPLATE')).toBeUndefined();
    expect(isBuiltinTemplateName('constructor')).toBe(false);
  });

  it('every built-in format writes every message of a conversation', () => {
    const conversation = [
      { role: 'system', content: 'SYS-text' },
      { role: 'user', content: 'USER-text' },
      { role: 'assistant', content: 'ASSISTANT-text' },
      { role: 'user', content: 'LAST-text' },
    ];
    // Formats that drop the system prompt: gigachat keeps it, yandex has no system role.
    const noSystem = new Set(['yandex']);
    for (const name of [...BUILTIN_TEMPLATE_NAMES, 'dots1' as const]) {
      const text = applyBuiltinTemplate(name, conversation, true);
      for (const m of conversation) {
        if (m.role === 'system' && noSystem.has(name)) continue;
        expect(text, `${name} lost ${m.content}`).toContain(m.content);
      }
      expect(text.indexOf('USER-text'), name).toBeLessThan(text.indexOf('LAST-text'));
    }
  });

  it('adds the assistant header only when asked', () => {
    const chat = [{ role: 'user', content: 'Hi' }];
    expect(applyBuiltinTemplate('chatml', chat, true)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(applyBuiltinTemplate('chatml', chat, false)).toBe('<|im_start|>user\nHi<|im_end|>\n');
    expect(applyBuiltinTemplate('llama3', chat, true)).toBe(
      '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    // Gemma merges the system prompt into the first user turn and calls the assistant "model".
    expect(applyBuiltinTemplate('gemma', [{ role: 'system', content: ' Be brief. ' }, ...chat, { role: 'assistant', content: 'Yo' }], false)).toBe(
      '<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n',
    );
  });

  it("trims with C's isspace, not Unicode whitespace", () => {
    // llama3 trims content; a no-break space (U+00A0) is not ASCII whitespace and must stay.
    expect(applyBuiltinTemplate('llama3', [{ role: 'user', content: '\u00a0x \n' }], false)).toBe(
      '<|start_header_id|>user<|end_header_id|>\n\n\u00a0x<|eot_id|>',
    );
  });

  it('recognises the families of real model templates', () => {
    const dir = join(llamaCppSource(), 'models', 'templates');
    const expected: Record<string, string | undefined> = {
      'Qwen-Qwen2.5-7B-Instruct.jinja': 'chatml',
      'Qwen-Qwen3-0.6B.jinja': 'chatml',
      'meta-llama-Llama-3.1-8B-Instruct.jinja': 'llama3',
      'meta-llama-Llama-3.2-3B-Instruct.jinja': 'llama3',
      'google-gemma-2-2b-it.jinja': 'gemma',
      'microsoft-Phi-3.5-mini-instruct.jinja': 'phi3',
      'mistralai-Mistral-Nemo-Instruct-2407.jinja': 'mistral-v3-tekken',
      'Mistral-Small-3.2-24B-Instruct-2506.jinja': 'mistral-v7',
      'ibm-granite-granite-3.3-2B-Instruct.jinja': 'granite',
      'ibm-granite-granite-4.0.jinja': 'granite-4.0',
      'openai-gpt-oss-120b.jinja': 'gpt-oss',
      'deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja': 'deepseek3',
      'CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja': 'command-r',
      'google-gemma-4-31B-it.jinja': undefined,
    };
    for (const [file, family] of Object.entries(expected)) {
      expect(detectBuiltinTemplate(readFileSync(join(dir, file), 'utf8')), file).toBe(family);
    }
  });
});
