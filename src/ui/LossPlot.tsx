/**
 * Train and held-out loss against the step, live as a run trains: an inline SVG in the house style
 * of SizePerplexityPlot (same geometry, grid and axes), the train loss as a line, the held-out loss
 * as a dashed line with its points marked, a legend, and a title and description for screen readers.
 */
import { PlotAxes } from './PlotAxes.tsx';
import { plotGeometry } from './compare-results.ts';
import { lossSeries, type LossPoint } from './personalize.ts';

export function LossPlot({ history, steps }: { history: readonly LossPoint[]; steps: number }) {
  const { train, heldOut } = lossSeries(history);
  const all = [...train, ...heldOut];
  // The x axis spans the whole run from the start, so the curve grows across it.
  const g = plotGeometry([...all.map((p) => ({ ...p, label: '' })), { x: steps, y: all[0]?.y ?? 1, label: '' }]);
  const path = (points: Array<{ x: number; y: number }>) => points.map((p, i) => `${i === 0 ? 'M' : 'L'}${g.sx(p.x).toFixed(1)},${g.sy(p.y).toFixed(1)}`).join(' ');
  const last = (s: Array<{ x: number; y: number }>) => s[s.length - 1];
  const lastTrain = last(train);
  const lastHeld = last(heldOut);
  const desc =
    all.length === 0
      ? 'No step yet.'
      : `${train.length} steps plotted${lastTrain ? `; train loss at step ${lastTrain.x}: ${lastTrain.y.toFixed(3)}` : ''}${lastHeld ? `; held-out loss at step ${lastHeld.x}: ${lastHeld.y.toFixed(3)}` : ''}.`;
  return (
    <svg className="plot loss-plot" viewBox={`0 0 ${g.width} ${g.height}`} role="img" aria-labelledby="loss-plot-title loss-plot-desc" data-testid="loss-plot">
      <title id="loss-plot-title">Training loss by step</title>
      <desc id="loss-plot-desc">{desc}</desc>
      <PlotAxes g={g} xLabel="Step" yLabel="Loss (lower is better)" />
      {train.length > 0 && <path className="loss-train" d={path(train)} data-testid="loss-train" data-points={train.length} />}
      {heldOut.length > 0 && (
        <g className="loss-held-out" data-testid="loss-held-out" data-points={heldOut.length}>
          <path d={path(heldOut)} />
          {heldOut.map((p) => (
            <circle key={p.x} cx={g.sx(p.x)} cy={g.sy(p.y)} r={4}>
              <title>{`step ${p.x}: held-out loss ${p.y.toFixed(3)}`}</title>
            </circle>
          ))}
        </g>
      )}
      <g className="loss-legend" aria-hidden="true" transform={`translate(${g.right - 150} ${g.top + 8})`}>
        <line className="loss-train" x1={0} x2={20} y1={0} y2={0} />
        <text x={26} y={0} dominantBaseline="middle">
          train
        </text>
        <line className="loss-held-out-key" x1={70} x2={90} y1={0} y2={0} />
        <text x={96} y={0} dominantBaseline="middle">
          held-out
        </text>
      </g>
    </svg>
  );
}
