/**
 * TeX math in model output, rendered by KaTeX, as models write it: `$...$` and `\(...\)` inline,
 * `$$...$$` and `\[...\]` displayed (Qwen and Llama write `\( \)` and `\[ \]` more often than
 * dollars). Our own markdown-it rules rather than `@vscode/markdown-it-katex`, which knows neither
 * `\( \)` nor `\[ \]`, takes a `$` before a space as an opener and exposes no KaTeX limits.
 *
 * The TeX is untrusted: KaTeX runs with `trust: false` (so `\href`, `\url`, `\includegraphics`,
 * `\htmlClass`, `\htmlId`, `\htmlStyle`, `\htmlData` render as plain red command names and link or
 * load nothing), `maxSize` and `maxExpand` bound what a formula can draw and how far macros expand,
 * and a formula KaTeX cannot parse is shown as its source text. The HTML still goes through the
 * sanitizer in markdown.ts.
 */
import katex from 'katex';
import type { MarkdownIt, StateBlock, StateInline } from 'markdown-it';

export const MATH_LIMITS = {
  /** Longer formulas are shown as source: KaTeX's time grows with the formula. */
  texChars: 4000,
  /** Formulas rendered per message; the rest are shown as source (a reply of 100k `$x$`). */
  formulas: 1000,
  /** Lines a displayed formula may span; an unclosed `$$` looks no further. */
  displayLines: 60,
} as const;

/** The KaTeX settings for untrusted TeX. */
export const KATEX_OPTIONS = {
  throwOnError: true, // caught below: a formula that does not parse is shown as its source
  trust: false,
  strict: 'ignore',
  maxSize: 20, // em: no \rule or \kern the size of the page
  maxExpand: 200, // macro expansions: `\def\a{\a\a}` stops here
  output: 'htmlAndMathml', // MathML for screen readers, HTML for the eye
} as const satisfies katex.KatexOptions;

/** Per-render count of formulas, carried in markdown-it's `env`. */
export type MathEnv = { formulas?: number };

const DELIMITERS: Record<string, [open: string, close: string, display: boolean]> = {
  $: ['$', '$', false],
  $$: ['$$', '$$', true],
  '\\(': ['\\(', '\\)', false],
  '\\[': ['\\[', '\\]', true],
};

/** Text as HTML text or attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** A formula as KaTeX HTML, or as its source text (with the reason in a tooltip) when it cannot be. */
export function renderTex(tex: string, markup: string, env: MathEnv): string {
  const [open, close, display] = DELIMITERS[markup] ?? DELIMITERS.$!;
  env.formulas = (env.formulas ?? 0) + 1;
  const source = (why: string) =>
    `<code class="math-source" title="${escapeHtml(why)}">${escapeHtml(open + tex + close)}</code>`;
  if (tex.length > MATH_LIMITS.texChars) return source(`Formula too long to render (${tex.length} characters)`);
  if (env.formulas > MATH_LIMITS.formulas) return source(`More than ${MATH_LIMITS.formulas} formulas: the rest are shown as source`);
  try {
    return katex.renderToString(tex, { ...KATEX_OPTIONS, displayMode: display });
  } catch (error) {
    return source(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Where `close` next occurs at or after `from` in `src`, remembering the last answer per
 * delimiter: a paragraph of 50k unclosed `\(` would otherwise search to its end 50k times.
 */
const scans = new WeakMap<object, Map<string, { from: number; at: number }>>();
function findClose(state: StateInline, close: string, from: number): number {
  let memo = scans.get(state);
  if (!memo) scans.set(state, (memo = new Map()));
  const last = memo.get(close);
  if (last && from >= last.from && (last.at === -1 || from <= last.at)) return last.at;
  const at = state.src.indexOf(close, from);
  memo.set(close, { from, at });
  return at;
}

const isSpace = (ch: string | undefined) => ch !== undefined && /\s/.test(ch);

/**
 * The end of `$...$` opened at `pos`, or -1. Pandoc's rule, so prices stay prose ("costs $5 and
 * $10"): no space after the opening `$`, none before the closing one, and no digit right after it.
 * The closer is the next unescaped `$`; if that one does not qualify, this `$` opens nothing.
 */
function singleDollarEnd(src: string, pos: number): number {
  if (src[pos + 1] === undefined || isSpace(src[pos + 1])) return -1;
  let end = pos + 1;
  for (;;) {
    end = src.indexOf('$', end);
    if (end === -1) return -1;
    if (src[end - 1] !== '\\') break;
    end += 1;
  }
  if (isSpace(src[end - 1]) || /[0-9]/.test(src[end + 1] ?? '')) return -1;
  return end;
}

function mathInline(state: StateInline, silent: boolean): boolean {
  const { src, pos } = state;
  let markup: string;
  let end: number;
  if (src.startsWith('\\(', pos) || src.startsWith('\\[', pos)) {
    markup = src.slice(pos, pos + 2);
    end = findClose(state, DELIMITERS[markup]![1], pos + 2);
  } else if (src.startsWith('$$', pos)) {
    markup = '$$';
    end = findClose(state, '$$', pos + 2);
  } else if (src[pos] === '$') {
    markup = '$';
    end = singleDollarEnd(src, pos);
  } else {
    return false;
  }
  const start = pos + markup.length;
  if (end === -1 || src.slice(start, end).trim() === '') return false;
  if (!silent) {
    const token = state.push('math_inline', 'math', 0);
    token.markup = markup;
    token.content = src.slice(start, end);
  }
  state.pos = end + DELIMITERS[markup]![1].length;
  return true;
}

/**
 * A displayed formula starting a line: `$$` or `\[`, closed by `$$` or `\]` that ends the same or a
 * later line. A blank line ends the search (TeX allows none in display math), as does
 * `MATH_LIMITS.displayLines`; unclosed, the line is left to the paragraph rule.
 */
function mathBlock(state: StateBlock, startLine: number, endLine: number, silent: boolean): boolean {
  if (state.sCount[startLine]! - state.blkIndent >= 4) return false;
  const begin = state.bMarks[startLine]! + state.tShift[startLine]!;
  const markup = state.src.startsWith('$$', begin) ? '$$' : state.src.startsWith('\\[', begin) ? '\\[' : undefined;
  if (!markup) return false;
  const close = DELIMITERS[markup]![1];
  let line = startLine;
  let end = -1;
  for (; line < endLine && line - startLine < MATH_LIMITS.displayLines; line++) {
    const from = line === startLine ? begin + markup.length : state.bMarks[line]! + state.tShift[line]!;
    const lineEnd = state.eMarks[line]!;
    if (line > startLine && (from >= lineEnd || state.sCount[line]! < state.blkIndent)) return false;
    const at = state.src.indexOf(close, from);
    if (at !== -1 && at + close.length <= lineEnd) {
      if (state.src.slice(at + close.length, lineEnd).trim() !== '') return false; // `$$a$$ and more`: inline
      end = at;
      break;
    }
  }
  if (end === -1) return false;
  if (silent) return true;
  const token = state.push('math_block', 'math', 0);
  token.block = true;
  token.markup = markup;
  token.content = state.src.slice(begin + markup.length, end);
  token.map = [startLine, line + 1];
  state.line = line + 1;
  return true;
}

/** Adds the math rules to `md`; `env` (a `MathEnv`) counts formulas per render. */
export function mathPlugin(md: MarkdownIt): void {
  // Before `escape`, which would turn `\(` into `(`.
  md.inline.ruler.before('escape', 'math_inline', mathInline);
  md.block.ruler.before('paragraph', 'math_block', mathBlock, { alt: ['paragraph', 'reference', 'blockquote', 'list'] });
  md.renderer.rules.math_inline = (tokens, idx, _options, env) => renderTex(tokens[idx]!.content, tokens[idx]!.markup, env as MathEnv);
  md.renderer.rules.math_block = (tokens, idx, _options, env) =>
    `<div class="math-display">${renderTex(tokens[idx]!.content, tokens[idx]!.markup, env as MathEnv)}</div>\n`;
}
