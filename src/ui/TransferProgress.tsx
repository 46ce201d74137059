/**
 * The one progress line for every long wait (a download, a local file copied into the browser, a
 * model loaded into the backend): a bar, bytes done of total, the rate, the time left, and a
 * button that stops it. Nothing over a second happens without one.
 */
import { formatBytes, formatDuration } from '../engine/format-bytes.ts';

export interface TransferFigures {
  done: number;
  /** Undefined or 0 while unknown: the bar is then indeterminate. */
  total: number | undefined;
  /** Bytes per second; 0 or undefined while unknown. */
  rate?: number | undefined;
  /** Seconds left; undefined while unknown. */
  eta?: number | undefined;
}

/** "45% · 26.0 MiB of 58.0 MiB · 12.3 MiB/s · 3 s left" */
export function transferText({ done, total, rate, eta }: TransferFigures): string {
  const parts: string[] = [];
  if (total) parts.push(`${Math.floor((done / total) * 100)}%`, `${formatBytes(done)} of ${formatBytes(total)}`);
  else parts.push(formatBytes(done));
  if (rate && rate > 0) parts.push(`${formatBytes(rate)}/s`);
  if (eta !== undefined && Number.isFinite(eta) && total && done < total) parts.push(`${formatDuration(eta)} left`);
  return parts.join(' · ');
}

export function TransferProgress({
  label,
  figures,
  status,
  onCancel,
  cancelText = 'Cancel',
  testId,
}: {
  /** What is happening, for the bar's accessible name: "Copying model.gguf". */
  label: string;
  figures: TransferFigures;
  /** A word before the numbers: "Verifying…", "Retrying (…)…". */
  status?: string | undefined;
  onCancel?: (() => void) | undefined;
  cancelText?: string;
  testId?: string;
}) {
  const { done, total } = figures;
  return (
    <div className="download" data-testid={testId ?? 'transfer-progress'}>
      <progress max={total || 1} value={total ? done : undefined} aria-label={label} />
      <span className="small muted row wrap">
        <span data-testid="transfer-figures">
          {status ? `${status} ` : ''}
          {transferText(figures)}
        </span>
        {onCancel && (
          <button type="button" className="ghost small" onClick={onCancel} data-testid="transfer-cancel">
            {cancelText}
          </button>
        )}
      </span>
    </div>
  );
}
