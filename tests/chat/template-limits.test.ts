/**
 * Chat templates come inside model files: untrusted code. Hostile ones must end in a named
 * ChatTemplateError (kind 'limit') within the render budget, not freeze or crash the engine.
 */
import { describe, expect, it } from 'vitest';
import { ChatTemplateError, renderChat } from '../../src/engine/chat/template.ts';
import { TEMPLATE_LIMITS } from '../../src/engine/chat/jinja-runtime.ts';
import { chooseChatFormat } from '../../src/engine/chat/format.ts';

const MESSAGES = [{ role: 'user' as const, content: 'Hi' }];
const OPTIONS = { addGenerationPrompt: true, bosToken: '<s>', eosToken: '</s>' };

function limitError(template: string): ChatTemplateError {
  try {
    renderChat(template, MESSAGES, OPTIONS);
  } catch (error) {
    expect(error).toBeInstanceOf(ChatTemplateError);
    return error as ChatTemplateError;
  }
  throw new Error('rendered');
}

describe('chat template limits', () => {
  it.each([
    ['a huge range', '{% for i in range(100000000) %}x{% endfor %}', /range\(\) of 100000000 items/],
    ['nested loops', '{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}', /more than \d+ steps|longer than 5 s/],
    ['a string doubled in a loop', "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", /string of \d+ characters/],
    ['string repetition', "{{ 'abc' * 1000000000 }}", /string of 3000000000 characters/],
    ['list repetition', '{{ ([1, 2] * 1000000000) | length }}', /list of 2000000000 items/],
  ])('stops %s with a named limit error', { timeout: 30_000 }, (_, template, message) => {
    const error = limitError(template);
    expect(error.kind).toBe('limit');
    expect(error.name).toBe('ChatTemplateError');
    expect(error.message).toMatch(message);
  });

  it('leaves real templates far inside the limits', () => {
    const chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    const long = Array.from({ length: 2000 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `turn ${i}` }));
    const text = renderChat(chatml, long, OPTIONS);
    expect(text.split('<|im_start|>').length).toBe(2002);
    expect(text.length).toBeLessThan(TEMPLATE_LIMITS.chars);
    expect(renderChat('{% for i in range(100000) %}{% endfor %}ok', MESSAGES, OPTIONS)).toBe('ok');
  });

  it('runs a template that is over its limits for one "Hello" only once, at load', { timeout: 30_000 }, () => {
    const loops = '{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}';
    // A family llama.cpp recognises: its built-in format replaces the template, and says why.
    const chatml = chooseChatFormat({ chatTemplate: `${loops}<|im_start|>{{ messages[0].content }}<|im_end|>` });
    expect(chatml.format).toEqual({ kind: 'builtin', name: 'chatml' });
    expect(chatml.notice).toMatch(/went past the rendering limits/);
    // No family to fall back to: the template stays, and every later render fails at once with
    // the error found at load, instead of spending the render budget on each chat.
    const unknown = chooseChatFormat({ chatTemplate: `${loops}{{ messages[0].content }}` });
    expect(unknown.format.kind).toBe('jinja');
    if (unknown.format.kind !== 'jinja') return;
    const first = (() => { try { unknown.format.template.render(MESSAGES, OPTIONS); } catch (e) { return e; } })();
    const second = (() => { try { unknown.format.template.render(MESSAGES, OPTIONS); } catch (e) { return e; } })();
    expect(first).toBeInstanceOf(ChatTemplateError);
    expect((first as ChatTemplateError).kind).toBe('limit');
    expect(second).toBe(first);
  });
});
