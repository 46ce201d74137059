/**
 * The frame every plot of the app draws the same way (SizePerplexityPlot, LossPlot): grid lines
 * at the geometry's ticks with their values, the two axes and their labels. Hidden from screen
 * readers: each plot's title and description say what it shows.
 */
import type { PlotGeometry } from './compare-results.ts';

export function PlotAxes({ g, xLabel, yLabel }: { g: PlotGeometry; xLabel: string; yLabel: string }) {
  return (
    <>
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
          {xLabel}
        </text>
        <text transform={`translate(14 ${(g.top + g.bottom) / 2}) rotate(-90)`} textAnchor="middle">
          {yLabel}
        </text>
      </g>
    </>
  );
}
