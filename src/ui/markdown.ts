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
 *
 * Rendering is bounded (`RENDER_LIMITS`): a message is rendered on the main thread, and an imported
 * file or a prompted model can make it anything. Math is in markdown-math.ts.
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
import { escapeHtml, mathPlugin, type MathEnv } from './markdown-math.ts';

/**
 * What one message may cost. Measured (Node, before these limits): highlight.js's markdown
 * grammar on one line of `[a](` repeated takes 12.7 s for 10 KB and 128 s for 20 KB (cubic in the
 * line's length); other grammars are quadratic on long lines. Rendering without highlighting is
 * linear, so the limits bound what gets highlighted, not what gets shown.
 */
export const RENDER_LIMITS = {
  /** Longer messages are shown as plain text: no markdown, links, highlighting or math. */
  richChars: 256 * 1024,
  /** Code blocks larger than this are shown without highlighting. */
  highlightChars: 32 * 1024,
  /** ...as are code blocks with a line longer than this (where highlight.js is superlinear). */
  highlightLineChars: 400,
  /** Characters highlighted per message, all code blocks together. */
  highlightTotalChars: 128 * 1024,
  /** Wider tables are shown as their source text: a 2000-column table took 22.6 s to show. */
  tableColumns: 64,
} as const;

/** Per-render budgets, carried in markdown-it's `env`. */
type RenderEnv = MathEnv & { highlighted?: number };

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

const md = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });
md.use(mathPlugin);

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

function longestLine(text: string): number {
  let longest = 0;
  for (let start = 0; start <= text.length; ) {
    const end = text.indexOf('\n', start);
    const stop = end === -1 ? text.length : end;
    longest = Math.max(longest, stop - start);
    start = stop + 1;
  }
  return longest;
}

/**
 * Whether a code block gets highlighted: a language it names (never auto-detection, which runs
 * every grammar over the code), within the size, line and per-message limits.
 */
function shouldHighlight(code: string, lang: string, env: RenderEnv): boolean {
  if (lang === '' || hljs.getLanguage(lang) === undefined) return false;
  if (code.length > RENDER_LIMITS.highlightChars) return false;
  if ((env.highlighted ?? 0) + code.length > RENDER_LIMITS.highlightTotalChars) return false;
  if (longestLine(code) > RENDER_LIMITS.highlightLineChars) return false;
  env.highlighted = (env.highlighted ?? 0) + code.length;
  return true;
}

md.renderer.rules.fence = (tokens, idx, _options, env) => {
  const token = tokens[idx]!;
  const lang = token.info.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const known = shouldHighlight(token.content, lang, env as RenderEnv);
  const body = known ? hljs.highlight(token.content, { language: lang, ignoreIllegals: true }).value : escapeHtml(token.content);
  const label = lang ? escapeHtml(lang) : 'text';
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
    `<button type="button" class="copy-code" data-copy-code aria-label="Copy ${label} code">Copy</button></div>` +
    `<pre><code class="hljs${known ? ` language-${escapeHtml(lang)}` : ''}">${body}</code></pre></div>\n`
  );
};

/**
 * Tables wider than `RENDER_LIMITS.tableColumns` become their source lines in a `wide_table`
 * token. Runs after block parsing and before inline parsing, so the cells are never parsed.
 */
md.core.ruler.after('block', 'wide_tables', (state) => {
  const tokens = state.tokens;
  let lines: string[] | undefined;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i]!.type !== 'table_open') continue;
    // Columns: the header row's cells (markdown tables do not nest).
    let columns = 0;
    let close = i + 1;
    let headerDone = false;
    for (; close < tokens.length && tokens[close]!.type !== 'table_close'; close++) {
      if (tokens[close]!.type === 'tr_close') headerDone = true;
      else if (!headerDone && tokens[close]!.type === 'th_open') columns++;
    }
    if (columns <= RENDER_LIMITS.tableColumns) continue;
    const [from, to] = tokens[i]!.map ?? [0, 0];
    lines ??= state.src.split('\n');
    const text = new state.Token('wide_table', 'pre', 0);
    text.block = true;
    text.content = lines.slice(from, to).join('\n');
    text.meta = { columns };
    tokens.splice(i, close - i + 1, text);
  }
});

md.renderer.rules.wide_table = (tokens, idx) => {
  const token = tokens[idx]!;
  return (
    `<div class="wide-table"><p class="muted">A table of ${Number((token.meta as { columns: number }).columns)} columns, shown as text.</p>` +
    `<pre><code>${escapeHtml(token.content)}</code></pre></div>\n`
  );
};

/**
 * Markdown to HTML with raw HTML escaped, links allow-listed, images not loaded and math rendered
 * by KaTeX (no DOM needed), within `RENDER_LIMITS`.
 */
export function renderMarkdownHtml(text: string): string {
  if (text.length > RENDER_LIMITS.richChars) {
    return (
      `<p class="muted">A long message (${text.length} characters), shown as plain text.</p>` +
      `<pre class="plain-text">${escapeHtml(text)}</pre>\n`
    );
  }
  const env: RenderEnv = {};
  return md.render(text, env);
}

const ALLOWED_TAGS = [
  'a', 'b', 'blockquote', 'br', 'button', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i',
  'li', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul',
  // KaTeX: its HTML is spans; stretchy symbols are inline SVG paths (never <image> or <use>, which load).
  'svg', 'path', 'line',
  // KaTeX's MathML, for screen readers.
  'math', 'semantics', 'annotation', 'mrow', 'mi', 'mn', 'mo', 'ms', 'mtext', 'mspace', 'msup', 'msub', 'msubsup',
  'mfrac', 'msqrt', 'mroot', 'mover', 'munder', 'munderover', 'mtable', 'mtr', 'mtd', 'mlabeledtr', 'mstyle',
  'mpadded', 'mphantom', 'menclose',
];
const ALLOWED_ATTR = [
  'href', 'title', 'class', 'target', 'rel', 'type', 'aria-label', 'data-copy-code', 'start', 'align', 'colspan', 'rowspan',
  // KaTeX: sizes and offsets as inline styles (checked by `isSafeStyle`), SVG geometry, MathML layout.
  'style', 'aria-hidden', 'xmlns', 'width', 'height', 'viewbox', 'preserveaspectratio', 'd', 'x1', 'y1', 'x2', 'y2',
  'stroke-width', 'display', 'encoding', 'mathvariant', 'mathcolor', 'stretchy', 'fence', 'separator', 'lspace',
  'rspace', 'accent', 'accentunder', 'columnalign', 'rowalign', 'rowspacing', 'columnspacing', 'columnlines', 'rowlines',
  'scriptlevel', 'displaystyle', 'linethickness', 'notation', 'minsize', 'maxsize', 'movablelimits', 'voffset', 'depth',
  'symmetric', 'frame',
];

/**
 * KaTeX writes lengths, colors (validated by KaTeX as `#hex` or a name) and `calc()` into `style`.
 * Anything else a style could do (`url()` fetches, `image-set()`, `expression()`, `@import`,
 * escapes, quotes) is refused: only these characters, and `calc` as the only function.
 */
export function isSafeStyle(style: string): boolean {
  if (!/^[a-z0-9\s:;.,%#()+*/-]*$/i.test(style)) return false;
  return [...style.matchAll(/([a-z-]*)\s*\(/gi)].every((m) => m[1]!.toLowerCase() === 'calc');
}

const URI_SAFE_ATTR = ALLOWED_ATTR.filter((name) => name !== 'href');

let hooked = false;

function sanitize(html: string): string {
  if (!hooked) {
    hooked = true;
    // Second line of defense for links: drop any href DOMPurify would allow that we do not.
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.hasAttribute('href') && !SAFE_LINK.test(node.getAttribute('href') ?? '')) node.removeAttribute('href');
      if (node.hasAttribute('style') && !isSafeStyle(node.getAttribute('style') ?? '')) node.removeAttribute('style');
    });
  }
  return DOMPurify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
    // DOMPurify holds every attribute that is not "URI-safe" to ALLOWED_URI_REGEXP, which dropped
    // target="_blank", rel, type and KaTeX's SVG paths and sizes: only href is a URL here.
    ADD_URI_SAFE_ATTR: URI_SAFE_ATTR,
  });
}

/**
 * Rendered messages by their text, least recently used first, so a finished message is rendered
 * once per page load: switching chats, or React mounting a message again, reuses it.
 */
export class RenderCache {
  private readonly entries = new Map<string, string>();
  private chars = 0;
  constructor(private readonly maxChars: number) {}

  get(text: string, render: (text: string) => string): string {
    const hit = this.entries.get(text);
    if (hit !== undefined) {
      this.entries.delete(text); // re-inserted below: now the most recently used
      this.entries.set(text, hit);
      return hit;
    }
    const html = render(text);
    this.entries.set(text, html);
    this.chars += text.length + html.length;
    for (const [key, value] of this.entries) {
      if (this.chars <= this.maxChars) break;
      this.entries.delete(key);
      this.chars -= key.length + value.length;
    }
    return html;
  }
}

const rendered = new RenderCache(16 * 1024 * 1024);

/** Markdown to sanitized HTML, safe to assign to `innerHTML`. */
export function renderMarkdown(text: string): string {
  return rendered.get(text, (t) => sanitize(renderMarkdownHtml(t)));
}
