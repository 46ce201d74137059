/**
 * Every real chat template in llama.cpp's models/templates (and the templates inlined in its
 * tests/test-chat-template.cpp), rendered by our renderer
 * (@huggingface/jinja plus src/engine/chat/jinja-runtime.ts) and by Python's jinja2 set up as
 * Hugging Face transformers sets it up (tests/chat/jinja2_render.py), must give the same bytes, for
 * conversations with and without a system prompt, one turn and several, with tools, tool calls and
 * reasoning, with add_generation_prompt on and off, and with the template variables some templates
 * read (enable_thinking, reasoning_effort, ...).
 *
 * A conversation that a template cannot format must fail in both: with the same message when the
 * template calls raise_exception, with a ChatTemplateError otherwise. The one place where we knowingly
 * differ is listed in KNOWN_DIFFERENCES, and the test checks that it still differs as described.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplate, ChatTemplateError, type RenderChatOptions } from '../../src/engine/chat/template.ts';
import { conversations, weatherTool, type Conversation } from './conversations.ts';
import { LLAMA_CPP_TEST_CONVERSATION, readLlamaCppChatCases } from './llama-cpp-chat-cases.ts';
import { llamaCppSourceDir as llamaCppSource } from '../../src/testing/llama-ref.ts';
import { renderWithPython, type PythonCase, type PythonResult } from './python-jinja2.ts';

const NOW = new Date(2024, 6, 26, 9, 5, 7);
const NOW_FIELDS: PythonCase['now'] = [2024, 7, 26, 9, 5, 7];

/** Template variables beyond the standard ones, tried on the templates whose text contains `variable`. */
const VARIANTS: { name: string; variable: string; extra: Record<string, unknown> }[] = [
  { name: 'thinking off', variable: 'enable_thinking', extra: { enable_thinking: false } },
  { name: 'thinking on', variable: 'enable_thinking', extra: { enable_thinking: true } },
  { name: 'reasoning effort high', variable: 'reasoning_effort', extra: { reasoning_effort: 'high' } },
  { name: 'builtin tools', variable: 'builtin_tools', extra: { builtin_tools: ['brave_search', 'wolfram_alpha'] } },
  { name: 'date string', variable: 'date_string', extra: { date_string: '01 Feb 2025' } },
  { name: 'documents', variable: 'documents', extra: { documents: [{ title: 'Note', text: 'The sky is blue.' }] } },
  // Firefunction v2 takes its tools as a JSON string in `functions`, and the date in `datetime`.
  {
    name: 'functions and datetime',
    variable: '+ functions',
    extra: { functions: JSON.stringify([weatherTool.function]), datetime: '2024-07-26' },
  },
];

interface KnownDifference {
  template: string;
  conversations: string[];
  why: string;
  /** What our rendering must contain, to show it is the sensible one. */
  ourOutputContains: (conversation: Conversation) => string;
}

/**
 * Python's jinja2 fails where we render. Each entry is checked: Python must still fail on these
 * cases (else the entry is stale) and ours must render the expected text.
 */
const KNOWN_DIFFERENCES: KnownDifference[] = [
  {
    template: 'llama-cpp-deepseek-r1.jinja',
    conversations: ['tools offered', 'tool call and result', 'tool call, JSON-string arguments', 'tool round trip, no system'],
    why:
      "`tools | map(attribute='function') | tojson`: jinja2's map() returns a generator, which json.dumps " +
      'rejects; @huggingface/jinja (like llama.cpp, whose template this is) makes a list and prints it',
    ourOutputContains: () => JSON.stringify([weatherTool.function], null, 2),
  },
];

interface Case {
  template: string;
  label: string;
  conversation: Conversation;
  options: RenderChatOptions;
}

type Outcome = { ok: true; text: string } | { ok: false; error: ChatTemplateError };

function renderOurs(template: ChatTemplate | ChatTemplateError, c: Case): Outcome {
  if (template instanceof ChatTemplateError) return { ok: false, error: template };
  try {
    return { ok: true, text: template.render(c.conversation.messages, c.options) };
  } catch (error) {
    if (error instanceof ChatTemplateError) return { ok: false, error };
    throw error;
  }
}

const templateDir = join(llamaCppSource(), 'models', 'templates');
const templateFiles = readdirSync(templateDir).filter((f) => f.endsWith('.jinja')).sort();
const sources = new Map(templateFiles.map((f) => [f, readFileSync(join(templateDir, f), 'utf8')]));

const cases: Case[] = [];
for (const file of templateFiles) {
  const source = sources.get(file)!;
  const base = { bosToken: '<s>', eosToken: '</s>', now: NOW };
  for (const conversation of conversations) {
    for (const addGenerationPrompt of [true, false]) {
      cases.push({
        template: file,
        label: `${conversation.name}, add_generation_prompt=${addGenerationPrompt}`,
        conversation,
        options: { ...base, addGenerationPrompt, tools: conversation.tools },
      });
    }
  }
  for (const variant of VARIANTS.filter((v) => source.includes(v.variable))) {
    for (const name of ['multi-turn with reasoning', 'tool call and result']) {
      const conversation = conversations.find((c) => c.name === name)!;
      cases.push({
        template: file,
        label: `${name}, ${variant.name}`,
        conversation,
        options: { ...base, addGenerationPrompt: true, tools: conversation.tools, extra: variant.extra },
      });
    }
  }
}

// llama.cpp's own test table: templates of older models (Llama 2, Zephyr, Orion, ...), with its
// conversation and BOS/EOS tokens.
const inlineTemplates: string[] = [];
for (const llamaCase of readLlamaCppChatCases()) {
  const id = `test-chat-template.cpp: ${llamaCase.name}`;
  inlineTemplates.push(id);
  sources.set(id, llamaCase.template);
  const messages = [...LLAMA_CPP_TEST_CONVERSATION, ...llamaCase.extraConversation];
  const variants: Conversation[] = [
    { name: 'llama.cpp test conversation', messages },
    // Several of these templates reject a system message.
    { name: 'llama.cpp test conversation without system', messages: messages.filter((m) => m.role !== 'system') },
  ];
  for (const conversation of variants) {
    for (const addGenerationPrompt of [true, false]) {
      cases.push({
        template: id,
        label: `${conversation.name}, add_generation_prompt=${addGenerationPrompt}`,
        conversation,
        options: {
          addGenerationPrompt,
          bosToken: llamaCase.bosToken,
          eosToken: llamaCase.eosToken,
          now: NOW,
          // GigaChat reads transformers' `additional_special_tokens` (its role and message separators).
          extra: llamaCase.template.includes('additional_special_tokens')
            ? { additional_special_tokens: ['<|role_sep|>', '<|message_sep|>', '[', ']'] }
            : undefined,
        },
      });
    }
  }
}

function pythonCase(c: Case, source: string): PythonCase {
  // The same context our renderer builds, as JSON (what transformers would pass as keyword arguments).
  const context = JSON.parse(JSON.stringify(ChatTemplate.context(c.conversation.messages, c.options))) as Record<string, unknown>;
  return { template: source, context, now: NOW_FIELDS };
}

function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `at ${i}:\n  python: ${JSON.stringify(a.slice(Math.max(0, i - 60), i + 80))}\n  ours:   ${JSON.stringify(b.slice(Math.max(0, i - 60), i + 80))}`;
}

describe('chat templates render as in Python jinja2 (transformers)', () => {
  // One Python process renders all cases: a few seconds, more on a busy machine.
  let python: PythonResult[] = [];
  beforeAll(() => {
    python = renderWithPython(cases.map((c) => pythonCase(c, sources.get(c.template)!)));
  }, 120_000);

  it('finds llama.cpp templates to test', () => {
    expect(templateFiles.length).toBeGreaterThan(50);
    expect(inlineTemplates.length).toBeGreaterThan(30);
    expect(cases.length).toBeGreaterThan(templateFiles.length * conversations.length * 2);
  });

  it.each([...templateFiles, ...inlineTemplates])('%s', (file) => {
    const results = python;
    let template: ChatTemplate | ChatTemplateError;
    try {
      template = new ChatTemplate(sources.get(file)!);
    } catch (error) {
      if (!(error instanceof ChatTemplateError)) throw error;
      template = error;
    }
    const known = KNOWN_DIFFERENCES.find((k) => k.template === file);
    const problems: string[] = [];
    let rendered = 0;
    cases.forEach((c, index) => {
      if (c.template !== file) return;
      const py = results[index]!;
      const ours = renderOurs(template, c);
      const where = `${file} [${c.label}]`;
      if (known?.conversations.includes(c.conversation.name) && c.options.extra === undefined) {
        if (py.ok) problems.push(`${where}: listed as a known difference but Python renders it now`);
        else if (!ours.ok) problems.push(`${where}: known difference, but ours failed: ${ours.error.message}`);
        else if (!ours.text.includes(known.ourOutputContains(c.conversation))) problems.push(`${where}: known difference, unexpected output`);
        return;
      }
      if (py.ok && ours.ok) {
        if (py.text !== ours.text) problems.push(`${where}: output differs ${firstDifference(py.text, ours.text)}`);
        else rendered++;
      } else if (py.ok && !ours.ok) {
        problems.push(`${where}: Python renders, ours fails: ${ours.error.message}`);
      } else if (!py.ok && ours.ok) {
        problems.push(`${where}: Python fails (${py.message}), ours renders`);
      } else if (!py.ok && !ours.ok) {
        if (py.raised && (ours.error.kind !== 'raised' || ours.error.templateMessage !== py.message)) {
          problems.push(`${where}: template raised "${py.message}" in Python, ours: ${ours.error.kind} "${ours.error.templateMessage}"`);
        }
        if (!py.raised && ours.error.kind === 'raised') {
          problems.push(`${where}: Python failed (${py.message}), ours raised "${ours.error.templateMessage}"`);
        }
      }
    });
    expect(problems).toEqual([]);
    // A template that renders nothing at all would make the comparison vacuous.
    expect(rendered).toBeGreaterThan(0);
  });
});
