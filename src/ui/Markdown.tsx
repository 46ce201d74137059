import { memo, useEffect, useRef, type MouseEvent } from 'react';
import 'katex/dist/katex.min.css';
import './markdown.css';
import { renderMarkdown } from './markdown.ts';

/**
 * Model output, rendered as sanitized markdown. The HTML is assigned through a ref only after
 * `renderMarkdown` sanitized it; code blocks' copy buttons work by event delegation.
 */
export const Markdown = memo(function Markdown({ text }: { text: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (ref.current) ref.current.innerHTML = renderMarkdown(text);
  }, [text]);

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
