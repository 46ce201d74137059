/**
 * The Python-jinja2 behaviours src/engine/chat/jinja-runtime.ts adds to @huggingface/jinja, one
 * snippet each, checked against Python's jinja2 (tests/chat/jinja2_render.py) and against the
 * literal text we expect, so a change in either the library or the corrections shows up here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplate, ChatTemplateError } from '../../src/engine/chat/template.ts';
import { renderWithPython, type PythonCase, type PythonResult } from './python-jinja2.ts';

interface Snippet {
  name: string;
  template: string;
  context?: Record<string, unknown>;
  /** Local date and time for strftime_now. */
  now?: PythonCase['now'];
  /** What both must print; or 'raises' / 'fails' for a template that must fail in both. */
  expected: string | { raises: string } | 'fails';
}

const SNIPPETS: Snippet[] = [
  {
    name: 'printing uses Python str(): True, None, dicts, lists, tuples',
    template: "{{ true }}|{{ none }}|{{ {'a': 1, 'b': [1, 'it\\'s', none, false]} }}|{{ (1, 'a') }}|{{ 2.0 }}",
    expected: "True|None|{'a': 1, 'b': [1, \"it's\", None, False]}|(1, 'a')|2.0",
  },
  {
    name: '|string on containers and booleans',
    template: "{{ {'k': 'v'}|string }}|{{ ['x', 1]|string }}|{{ false|string }}",
    expected: "{'k': 'v'}|['x', 1]|False",
  },
  {
    name: '~ joins str() of both sides',
    template: "{{ 'a' ~ none ~ 1 ~ true ~ [1] }}",
    expected: 'aNone1True[1]',
  },
  {
    name: 'an undefined value iterates as empty and has length 0',
    template: '{% for x in nothing %}x{% else %}empty{% endfor %}|{{ nothing|length }}|{{ nothing|list }}|{{ nothing|selectattr("a")|list }}',
    expected: 'empty|0|[]|[]',
  },
  {
    name: 'none | selectattr is empty',
    template: "{{ none|selectattr('type', 'equalto', 'x')|list|length }}",
    expected: '0',
  },
  {
    name: 'a string iterates by characters',
    template: "{% for c in 'abc' %}{{ c }}-{% endfor %}",
    expected: 'a-b-c-',
  },
  {
    name: 'for a, b unpacks tuples',
    template: '{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }},{% endfor %}',
    expected: '3,7,',
  },
  {
    name: '|safe makes Markup, and Markup + str escapes the str',
    template: "{{ 'x'|safe + '<a href=\"q\">&' }}|{{ '<' + 'y'|safe }}|{{ ('a'|safe + '\"') + 'b'|safe }}",
    expected: 'x&lt;a href=&#34;q&#34;&gt;&amp;|&lt;y|a&#34;b',
  },
  {
    name: 'str.format',
    template: "{{ '{}-{}'.format('a', 1) }}|{{ '{0}{1}{0}'.format('x', 'y') }}|{{ '{k}!'.format(k=none) }}|{{ '{{}}'.format() }}",
    expected: 'a-1|xyx|None!|{}',
  },
  {
    name: 'dicts with integer keys',
    template:
      "{% set d = {2: 'b', 1: 'a'} %}{% for k, v in d|dictsort %}{{ k + 1 }}={{ v }};{% endfor %}" +
      '{{ d[2] }}|{{ 1 in d }}|{{ 5 in d }}|{{ d|length }}|{{ d }}|{% for k in d %}{{ k }}{% endfor %}',
    expected: "2=a;3=b;b|True|False|2|{2: 'b', 1: 'a'}|21",
  },
  {
    name: 'select, reject and map with a filter name',
    template:
      "{{ [1, 2, 3, 4]|select('odd')|list }}|{{ ['a', 'b']|reject('equalto', 'a')|list }}|" +
      "{{ ['a', 'b']|map('upper')|list }}|{{ [0, 1, '', 'x']|select|list }}",
    expected: "[1, 3]|['b']|['A', 'B']|[1, 'x']",
  },
  {
    name: 'min, max, sum',
    template: "{{ [3, 1, 2]|min }}{{ [3, 1, 2]|max }}|{{ [1, 2.5]|sum }}|{{ [1, 2]|sum }}|{{ ['b', 'A', 'c']|min }}",
    expected: '13|3.5|3|A',
  },
  {
    name: '== compares as Python: by value, and a string is not a number',
    template:
      "{{ [1, [2]] == [1, [2]] }}|{{ {'a': [1]} == {'a': [1]} }}|{{ '1' == 1 }}|{{ 1 == 1.0 }}|{{ true == 1 }}|" +
      '{{ none == none }}|{{ none != nothing }}|{{ [1] != [2] }}',
    expected: 'True|True|False|True|True|True|True|True',
  },
  {
    name: 'str + dict is an error, as in Python',
    template: "{{ 'a' + {'b': 1} }}",
    expected: 'fails',
  },
  {
    name: 'raise_exception carries the template message',
    template: "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
    context: { messages: [{ role: 'system', content: 'x' }] },
    expected: { raises: 'System role not supported' },
  },
  {
    name: 'strftime_now, morning and single-digit day',
    template: "{{ strftime_now('%a %A %b %B %d %e %H %I %j %m %M %p %S %y %Y %% %-d %F %T %D %c') }}",
    now: [2024, 2, 5, 9, 7, 3],
    expected: 'Mon Monday Feb February 05  5 09 09 036 02 07 AM 03 24 2024 % 5 2024-02-05 09:07:03 02/05/24 Mon Feb  5 09:07:03 2024',
  },
  {
    name: 'strftime_now, afternoon, the formats real templates use',
    template: "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %d, %Y') }}|{{ strftime_now('%Y-%m-%d') }}|{{ strftime_now('%I %p') }}",
    now: [2025, 12, 31, 23, 59, 59],
    expected: '31 Dec 2025|December 31, 2025|2025-12-31|11 PM',
  },
  {
    name: 'tojson: no ASCII escaping, indent and sort_keys',
    template: "{{ {'b': 'é\"', 'a': [1, 2]}|tojson }}|{{ {'b': 1, 'a': 2}|tojson(indent=2, sort_keys=true) }}",
    expected: '{"b": "é\\"", "a": [1, 2]}|{\n  "a": 2,\n  "b": 1\n}',
  },
  {
    name: 'loop controls, namespace, loop variables',
    template:
      '{% set ns = namespace(n=0) %}{% for i in range(6) %}{% if i == 4 %}{% break %}{% endif %}' +
      '{% if i == 1 %}{% continue %}{% endif %}{% set ns.n = ns.n + i %}{{ loop.index }}{% endfor %}={{ ns.n }}',
    expected: '134=5',
  },
  {
    name: 'trim_blocks and lstrip_blocks',
    template: '  {% if true %}\nX\n  {% endif %}\nY {{- " Z" }}\n',
    expected: 'X\nY Z',
  },
];

const DEFAULT_NOW: PythonCase['now'] = [2024, 7, 26, 9, 5, 7];

function localDate([y, mo, d, h, mi, s]: PythonCase['now']): Date {
  return new Date(y, mo - 1, d, h, mi, s);
}

describe('jinja semantics match Python jinja2', () => {
  let python: PythonResult[] = [];
  beforeAll(() => {
    python = renderWithPython(
      SNIPPETS.map((s) => ({ template: s.template, context: s.context ?? {}, now: s.now ?? DEFAULT_NOW })),
    );
  }, 60_000);

  it.each(SNIPPETS.map((s, i) => [s.name, i] as const))('%s', (_name, index) => {
    const snippet = SNIPPETS[index]!;
    const py = python[index]!;
    // Render through the same entry point the engine uses; `extra` carries the snippet's variables
    // and replaces the standard ones it does not set.
    const render = () =>
      new ChatTemplate(snippet.template).render((snippet.context?.messages ?? []) as never, {
        addGenerationPrompt: false,
        bosToken: '',
        eosToken: '',
        now: localDate(snippet.now ?? DEFAULT_NOW),
        extra: snippet.context,
      });
    if (snippet.expected === 'fails') {
      expect(py.ok).toBe(false);
      expect(render).toThrow(ChatTemplateError);
    } else if (typeof snippet.expected === 'object') {
      expect(py).toMatchObject({ ok: false, raised: true, message: snippet.expected.raises });
      let error: unknown;
      try {
        render();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ChatTemplateError);
      expect(error).toMatchObject({ name: 'ChatTemplateError', kind: 'raised', templateMessage: snippet.expected.raises });
    } else {
      expect(py).toEqual({ ok: true, text: snippet.expected });
      expect(render()).toBe(snippet.expected);
    }
  });
});
