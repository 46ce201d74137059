import { describe, expect, it } from 'vitest';
import { renderMarkdownHtml } from './markdown.ts';

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
