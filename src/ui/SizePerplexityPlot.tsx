/**
 * Size against perplexity, one point per version: an inline SVG with axes, ticks and labels, and
 * a title and description for screen readers (the table beside it has the same numbers). Sizes
 * are plotted in MiB so the ticks fall on round values of the unit shown.
 */
import { formatBytes } from '../engine/format-bytes.ts';
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
      <g className="plot-grid" aria-hidden="true">
        {g.yTicks.map((t) => (
          <g key={`y${t}`}>
            <line x1={g.left} x2={g.right} y1={g.sy(t)} y2={g.sy(t)} />
            <text x={g.left - 6} y={g.sy(t)} textAnchor="end" dominantBaseline="middle">
              {Number(t.toPrecision(4))}
            </text>
          </g>
        ))}
        {g.xTicks.map((t) => (
          <g key={`x${t}`}>
            <line x1={g.sx(t)} x2={g.sx(t)} y1={g.top} y2={g.bottom} />
            <text x={g.sx(t)} y={g.bottom + 16} textAnchor="middle">
              {Number(t.toPrecision(4))}
            </text>
          </g>
        ))}
      </g>
      <g className="plot-axes" aria-hidden="true">
        <line x1={g.left} x2={g.right} y1={g.bottom} y2={g.bottom} />
        <line x1={g.left} x2={g.left} y1={g.top} y2={g.bottom} />
        <text x={(g.left + g.right) / 2} y={g.height - 6} textAnchor="middle">
          File size (MiB)
        </text>
        <text transform={`translate(14 ${(g.top + g.bottom) / 2}) rotate(-90)`} textAnchor="middle">
          Perplexity (lower is better)
        </text>
      </g>
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
