import 'katex/dist/katex.min.css';
import './markdown.css';
import { memo, useEffect, useLayoutEffect, useRef, type MouseEvent } from 'react';
import { renderMarkdown } from './markdown.ts';

/**
 * Model output, rendered as sanitized markdown. The HTML is assigned through a ref only after
 * `renderMarkdown` sanitized it; code blocks' copy buttons work by event delegation.
 *
 * While a reply streams in, its text changes with every token and each change renders the whole
 * message again. The first text is shown at once; after that a new render waits at least twice as
 * long as the last one took, so a long reply spends at most a third of the main thread on
 * rendering itself, and the page stays responsive. Once the reply is no longer `streaming`, its
 * final text renders at once (the reply's statistics must never show beside a stale text).
 */
export const Markdown = memo(function Markdown({ text, streaming = false }: { text: string; streaming?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const latest = useRef(text);
  const shown = useRef<string | undefined>(undefined);
  const lastCostMs = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  latest.current = text;

  // A layout effect: the HTML is in place in the same commit as the text it shows (and the stats).
  useLayoutEffect(() => {
    const paint = () => {
      timer.current = undefined;
      if (!ref.current || shown.current === latest.current) return;
      const start = performance.now();
      ref.current.innerHTML = renderMarkdown(latest.current);
      shown.current = latest.current;
      lastCostMs.current = performance.now() - start;
    };
    if (shown.current === undefined || !streaming) {
      clearTimeout(timer.current);
      paint();
    } else timer.current ??= setTimeout(paint, Math.max(16, 2 * lastCostMs.current));
  }, [text, streaming]);
  useEffect(
    () => () => {
      clearTimeout(timer.current);
      timer.current = undefined;
    },
    [],
  );

  const onClick = (event: MouseEvent<HTMLDivElement>) => {
    const button = (event.target as HTMLElement).closest<HTMLButtonElement>('button[data-copy-code]');
    if (!button) return;
    const code = button.closest('.code-block')?.querySelector('code')?.textContent ?? '';
    const done = (label: string) => {
      button.textContent = label;
      setTimeout(() => (button.textContent = 'Copy'), 1500);
    };
    navigator.clipboard?.writeText(code).then(() => done('Copied'), () => done('Copy failed'));
  };

  return <div ref={ref} className="markdown" data-testid="markdown" onClick={onClick} />;
});
