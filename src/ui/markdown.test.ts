import { describe, expect, it } from 'vitest';
import { isSafeStyle, RENDER_LIMITS, RenderCache, renderMarkdownHtml } from './markdown.ts';
import { MATH_LIMITS } from './markdown-math.ts';

describe('renderMarkdownHtml', () => {
  it('keeps raw HTML as text', () => {
    const html = renderMarkdownHtml('hi <img src=x onerror=alert(1)> <script>alert(2)</script>');
    expect(html).not.toMatch(/<img|<script/i);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&lt;script&gt;alert(2)&lt;/script&gt;');
  });

  it('does not link javascript: or data: URLs', () => {
    const html = renderMarkdownHtml('[click](javascript:alert(1)) [d](data:text/html,x) [ok](https://example.org/a)');
    expect(html).not.toMatch(/href="(javascript|data):/i);
    expect(html).toContain('href="https://example.org/a"');
    expect(html).toContain('rel="noopener noreferrer nofollow"');
  });

  it('never emits an image: markdown images become links to their URL', () => {
    const html = renderMarkdownHtml('![cat](https://evil.example/track.png) ![x](javascript:alert(1))');
    expect(html).not.toMatch(/<img/i);
    expect(html).toContain('href="https://evil.example/track.png"');
    expect(html).not.toMatch(/href="javascript/i);
  });

  it('highlights known languages and adds a copy button', () => {
    const html = renderMarkdownHtml('```python\ndef f(x):\n    return x\n```');
    expect(html).toContain('class="hljs language-python"');
    expect(html).toContain('<span class="hljs-keyword">def</span>');
    expect(html).toContain('data-copy-code');
  });

  it('escapes code in unknown languages', () => {
    const html = renderMarkdownHtml('```nope\n<b>x</b>\n```');
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(html).not.toContain('<b>x</b>');
  });

  it('renders tables and lists', () => {
    const html = renderMarkdownHtml('| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n1. x\n2. y');
    expect(html).toContain('<table>');
    expect(html).toContain('<td>2</td>');
    expect(html).toMatch(/<ul>\s*<li>one<\/li>/);
    expect(html).toMatch(/<ol>\s*<li>x<\/li>/);
  });
});

/** The TeX sources of the formulas KaTeX rendered (its MathML keeps each one's source). */
function formulas(html: string): string[] {
  return [...html.matchAll(/<annotation encoding="application\/x-tex">([^<]*)<\/annotation>/g)].map((m) => m[1]!.trim());
}

/** The HTML without KaTeX's MathML annotations, which hold each formula's source as text. */
const withoutSources = (html: string) => html.replace(/<annotation encoding="application\/x-tex">[^<]*<\/annotation>/g, '');

describe('math', () => {
  it('renders $...$ and \\(...\\) inline, $$...$$ and \\[...\\] displayed', () => {
    const html = renderMarkdownHtml('Inline $x^2$ and \\(a+b\\).\n\n$$\nE=mc^2\n$$\n\nThen:\n\\[\n\\frac{a}{b}\n\\]\nand $$y$$ inline.');
    expect(formulas(html)).toEqual(['x^2', 'a+b', 'E=mc^2', '\\frac{a}{b}', 'y']);
    expect(html.match(/class="math-display"/g)).toHaveLength(2);
    expect(html.match(/class="katex-display"/g)).toHaveLength(3);
    expect(html).toContain('<p>Then:</p>');
  });

  it('leaves dollar amounts as prose', () => {
    for (const text of ['It costs $5 and $10.', 'From $5 to $ 10', 'Pay $ 5 or $6', 'a $x $ b', 'Escaped \\$x\\$ stays', 'In code `$x$`']) {
      expect(formulas(renderMarkdownHtml(text)), text).toEqual([]);
    }
    expect(renderMarkdownHtml('It costs $5 and $10.')).toContain('<p>It costs $5 and $10.</p>');
    expect(formulas(renderMarkdownHtml('Prices $5 and $10, but $x$ is math'))).toEqual(['x']);
  });

  it('shows a formula KaTeX cannot parse as its source, not as an error box', () => {
    const html = renderMarkdownHtml('Broken: $\\frac{1}{$ and \\(\\begin{nope}\\).');
    expect(html).toContain('<code class="math-source" title="KaTeX parse error');
    expect(html).toContain('>$\\frac{1}{$</code>');
    expect(html).toContain('>\\(\\begin{nope}\\)</code>');
    expect(html).not.toContain('katex-error');
  });

  it('keeps hostile TeX inert: no links, images, classes, ids, styles or data from the TeX', () => {
    const hostile = [
      '\\href{javascript:alert(1)}{click}', '\\href{https://evil.example/}{x}', '\\url{https://evil.example/}',
      '\\includegraphics{https://evil.example/pixel.png}', '\\htmlClass{evil-class}{x}', '\\htmlId{evil-id}{x}',
      '\\htmlStyle{background:url(https://evil.example/s)}{x}', '\\htmlData{evil=1}{x}',
      '\\color{url(https://evil.example/c)}{x}', '\\textcolor{red;background:url(https://e.x)}{x}',
    ];
    for (const tex of hostile) {
      const html = withoutSources(renderMarkdownHtml(`$${tex}$ and $$${tex}$$`));
      expect(html, tex).toMatch(/class="(katex|math-source)"/);
      expect(html, tex).not.toMatch(/<a\b|<img|href=|src=|evil-class|id="evil|data-evil|style="[^"]*(url|;background)/);
    }
  });

  it('bounds what a formula may draw and expand', () => {
    // A macro that doubles itself stops at maxExpand and is shown as source.
    expect(renderMarkdownHtml('$\\def\\a{\\a\\a}\\a$')).toContain('class="math-source"');
    // A huge rule is clamped to maxSize (20em), not drawn 10000em tall.
    const rule = withoutSources(renderMarkdownHtml('$\\rule{10000em}{10000em}$'));
    expect(rule).not.toMatch(/10000em/);
    expect(rule).toMatch(/20em/);
  });

  it('shows over-long formulas, and formulas past the per-message count, as source', () => {
    const long = `$${'x+'.repeat(MATH_LIMITS.texChars)}x$`;
    expect(formulas(renderMarkdownHtml(long))).toEqual([]);
    const many = renderMarkdownHtml('$x$ '.repeat(MATH_LIMITS.formulas + 5));
    expect(formulas(many)).toHaveLength(MATH_LIMITS.formulas);
    expect(many.match(/class="math-source"/g)).toHaveLength(5);
  });
});

describe('rendering limits', () => {
  /** A python block of about `chars` characters, in lines of about `lineChars`. */
  const python = (chars: number, lineChars = 20) => {
    const line = `x = ${'1 + '.repeat(Math.max(0, Math.ceil((lineChars - 6) / 4)))}1\n`;
    return '```python\n' + line.repeat(Math.ceil(chars / line.length)) + '```';
  };

  it('highlights a code block within the limits', () => {
    expect(renderMarkdownHtml(python(200))).toContain('class="hljs language-python"');
  });

  it('shows a code block over the size limit without highlighting', () => {
    const block = python(RENDER_LIMITS.highlightChars + 100);
    const html = renderMarkdownHtml(block);
    expect(html).toContain('data-copy-code');
    expect(html).not.toContain('hljs-');
    expect(html).not.toContain('language-python');
  });

  it('shows a code block with a line over the line limit without highlighting', () => {
    const html = renderMarkdownHtml(python(1500, RENDER_LIMITS.highlightLineChars + 40));
    expect(html).not.toContain('hljs-');
  });

  it('stops highlighting when a message used its highlighting budget', () => {
    const block = python(RENDER_LIMITS.highlightChars - 200);
    const count = Math.ceil(RENDER_LIMITS.highlightTotalChars / block.length) + 2;
    const html = renderMarkdownHtml(Array(count).fill(block).join('\n\n'));
    const highlighted = html.match(/class="hljs language-python"/g)?.length ?? 0;
    expect(highlighted).toBeGreaterThan(0);
    expect(highlighted).toBeLessThan(count);
  });

  it('shows a 1 MB message, code block included, as plain text', () => {
    const line = '[a](https://example.com/a) https://example.com/b www.example.org\n';
    const html = renderMarkdownHtml('```markdown\n' + line.repeat(Math.ceil(1_000_000 / line.length)) + '```');
    expect(html).toContain('shown as plain text');
    expect(html).not.toMatch(/<a |hljs/);
  });

  it('shows a 2000-column table as its source text, and a narrow table as a table', () => {
    const row = (cols: number, cell: (i: number) => string) => `|${Array.from({ length: cols }, (_, i) => cell(i)).join('|')}|\n`;
    const table = (cols: number) => row(cols, (i) => `h${i}`) + row(cols, () => '---') + row(cols, (i) => `**c${i}**`);
    const wide = renderMarkdownHtml(`Before\n\n${table(2000)}\nAfter`);
    expect(wide).not.toMatch(/<table|<td|<strong>/);
    expect(wide).toContain('A table of 2000 columns, shown as text.');
    expect(wide).toContain('|h0|h1|h2|');
    expect(wide).toContain('<p>After</p>');
    const narrow = renderMarkdownHtml(table(RENDER_LIMITS.tableColumns));
    expect(narrow).toContain('<table>');
    expect(narrow).toContain('<strong>c0</strong>');
  });
});

describe('isSafeStyle', () => {
  it('allows what KaTeX writes and refuses what could fetch', () => {
    for (const ok of ['height:0.6833em;vertical-align:-0.05em;', 'margin-right:0.0278em;color:#cc0000;', 'width:calc(100% - 0.166em);', 'top:-3.2em;']) {
      expect(isSafeStyle(ok), ok).toBe(true);
    }
    for (const bad of ['background:url(https://e.x/a)', 'background:url/**/(x)', 'background-image:image-set(x 1x)', 'width:expression(alert(1))', "font-family:'x'", 'a:b\\75rl(x)', 'color:var(--x)', '@import x']) {
      expect(isSafeStyle(bad), bad).toBe(false);
    }
  });
});

describe('RenderCache', () => {
  it('renders a text once, and forgets the least recently used past its size', () => {
    const calls: string[] = [];
    const render = (text: string) => (calls.push(text), `<p>${text}</p>`);
    const cache = new RenderCache(2 * 17); // two entries: 5 characters of text, 12 of HTML
    for (const text of ['aaaaa', 'bbbbb', 'aaaaa']) expect(cache.get(text, render)).toBe(`<p>${text}</p>`);
    expect(calls).toEqual(['aaaaa', 'bbbbb']);
    cache.get('ccccc', render); // over budget: bbbbb, the least recently used, goes
    cache.get('aaaaa', render);
    cache.get('bbbbb', render);
    expect(calls).toEqual(['aaaaa', 'bbbbb', 'ccccc', 'bbbbb']);
  });
});
