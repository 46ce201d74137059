/**
 * Model output as markdown, made inert. Model text is untrusted (a prompt can make a model write
 * anything), so three layers stand between it and the DOM:
 *
 * 1. markdown-it with `html: false`: raw HTML in the text stays text (`<script>` is shown, not run).
 * 2. Our rules: links only to http(s) and mailto (no `javascript:`, `data:`, `file:`); images are
 *    never loaded, only shown as a link to their URL, so rendering a reply fetches nothing.
 * 3. DOMPurify over the result, allowing a short list of tags and attributes, in case a bug in
 *    layers 1-2 lets something through.
 *
 * `renderMarkdownHtml` (layers 1-2) is pure and runs in Node tests; `renderMarkdown` adds layer 3
 * and needs a DOM.
 */
import MarkdownIt from 'markdown-it';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

// Registered one by one: the full highlight.js bundle is ~1 MB, these are what chats mostly hold.
const LANGUAGES = { bash, c, cpp, css, go, java, javascript, json, markdown, python, rust, sql, typescript, xml, yaml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);
hljs.registerAliases(['sh', 'shell', 'zsh', 'console'], { languageName: 'bash' });
hljs.registerAliases(['js', 'jsx', 'mjs'], { languageName: 'javascript' });
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.registerAliases(['rs'], { languageName: 'rust' });
hljs.registerAliases(['yml'], { languageName: 'yaml' });
hljs.registerAliases(['c++', 'hpp', 'cc'], { languageName: 'cpp' });

const SAFE_LINK = /^(https?:|mailto:)/i;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

const md = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });

// Links: markdown-it's own validateLink already refuses javascript:/vbscript:/file:/data:; ours is
// stricter (an allow-list), and a refused link stays visible as its text.
md.validateLink = (url: string) => SAFE_LINK.test(url.trim());

md.renderer.rules.link_open = (tokens, idx, options, _env, self) => {
  const token = tokens[idx]!;
  token.attrSet('target', '_blank');
  token.attrSet('rel', 'noopener noreferrer nofollow');
  return self.renderToken(tokens, idx, options);
};

// Images are never loaded: a remote image would tell its server that this chat happened.
md.renderer.rules.image = (tokens, idx) => {
  const token = tokens[idx]!;
  const src = String(token.attrGet('src') ?? '');
  const alt = token.content || 'image';
  const label = `[image: ${escapeHtml(alt)}]`;
  if (!SAFE_LINK.test(src)) return `<span class="md-image">${label}</span>`;
  return `<a class="md-image" href="${escapeHtml(src)}" target="_blank" rel="noopener noreferrer nofollow" title="Image not loaded: ${escapeHtml(src)}">${label}</a>`;
};

md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx]!;
  const lang = token.info.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const known = lang !== '' && hljs.getLanguage(lang) !== undefined;
  const body = known ? hljs.highlight(token.content, { language: lang, ignoreIllegals: true }).value : escapeHtml(token.content);
  const label = lang ? escapeHtml(lang) : 'text';
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
    `<button type="button" class="copy-code" data-copy-code aria-label="Copy ${label} code">Copy</button></div>` +
    `<pre><code class="hljs${known ? ` language-${escapeHtml(lang)}` : ''}">${body}</code></pre></div>\n`
  );
};

/** Markdown to HTML with raw HTML escaped, links allow-listed and images not loaded (no DOM needed). */
export function renderMarkdownHtml(text: string): string {
  return md.render(text);
}

const ALLOWED_TAGS = [
  'a', 'b', 'blockquote', 'br', 'button', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i',
  'li', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul',
];
const ALLOWED_ATTR = ['href', 'title', 'class', 'target', 'rel', 'type', 'aria-label', 'data-copy-code', 'start', 'align', 'colspan', 'rowspan'];

let hooked = false;

/** Markdown to sanitized HTML, safe to assign to `innerHTML`. */
export function renderMarkdown(text: string): string {
  if (!hooked) {
    hooked = true;
    // Second line of defense for links: drop any href DOMPurify would allow that we do not.
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.hasAttribute('href') && !SAFE_LINK.test(node.getAttribute('href') ?? '')) node.removeAttribute('href');
    });
  }
  return DOMPurify.sanitize(renderMarkdownHtml(text), {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  });
}
