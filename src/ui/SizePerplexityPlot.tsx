/**
 * Size against perplexity, one point per version: an inline SVG with axes, ticks and labels, and
 * a title and description for screen readers (the table beside it has the same numbers). Sizes
 * are plotted in MiB so the ticks fall on round values of the unit shown.
 */
import { formatBytes } from '../engine/format-bytes.ts';
import { PlotAxes } from './PlotAxes.tsx';
import { plotGeometry, type PlotPoint } from './compare-results.ts';

const MIB = 1024 * 1024;

export function SizePerplexityPlot({ points: inBytes }: { points: PlotPoint[] }) {
  const points = inBytes.map((p) => ({ ...p, x: p.x / MIB }));
  const g = plotGeometry(points);
  const shown = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const desc = shown.map((p) => `${p.label}: ${formatBytes(p.x * MIB)}, perplexity ${p.y.toFixed(3)}`).join('; ');
  return (
    <svg className="plot" viewBox={`0 0 ${g.width} ${g.height}`} role="img" aria-labelledby="plot-title plot-desc" data-testid="compare-plot">
      <title id="plot-title">File size against perplexity</title>
      <desc id="plot-desc">{desc || 'No version measured yet.'}</desc>
      <PlotAxes g={g} xLabel="File size (MiB)" yLabel="Perplexity (lower is better)" />
      <g className="plot-points">
        {shown.map((p) => (
          <g key={p.label} data-testid="plot-point">
            <circle cx={g.sx(p.x)} cy={g.sy(p.y)} r={5}>
              <title>{`${p.label}: ${formatBytes(p.x * MIB)}, perplexity ${p.y.toFixed(3)}`}</title>
            </circle>
            <text x={g.sx(p.x) + (g.sx(p.x) > (g.left + g.right) / 2 ? -8 : 8)} y={g.sy(p.y) - 8} textAnchor={g.sx(p.x) > (g.left + g.right) / 2 ? 'end' : 'start'} aria-hidden="true">
              {p.label}
            </text>
          </g>
        ))}
      </g>
    </svg>
  );
}
