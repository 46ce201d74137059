/**
 * The Compare page's state that outlives the page: the model compared, the calibration text and
 * the last evaluation, kept in localStorage so switching pages (or reloading) keeps the results.
 * Also the plot's geometry: "nice" axis ticks and the mapping of (size, perplexity) to the SVG.
 */
import type { Evaluation } from '../engine/api.ts';

export interface CompareState {
  sourceId: string | undefined;
  text: string;
  contextLength: number;
  evaluation: Evaluation | undefined;
}

const KEY = 'hearth-compare';
/** Texts longer than this are not kept (localStorage holds a few MB per origin). */
const MAX_KEPT_TEXT = 200_000;

export const EMPTY_COMPARE: CompareState = { sourceId: undefined, text: '', contextLength: 64, evaluation: undefined };

export function loadCompareState(storage: Pick<Storage, 'getItem'> = localStorage): CompareState {
  try {
    const saved = JSON.parse(storage.getItem(KEY) ?? 'null') as Partial<CompareState> | null;
    if (!saved || typeof saved !== 'object') return EMPTY_COMPARE;
    return {
      sourceId: typeof saved.sourceId === 'string' ? saved.sourceId : undefined,
      text: typeof saved.text === 'string' ? saved.text : '',
      contextLength: Number.isInteger(saved.contextLength) ? saved.contextLength! : EMPTY_COMPARE.contextLength,
      evaluation: saved.evaluation && Array.isArray(saved.evaluation.models) ? saved.evaluation : undefined,
    };
  } catch {
    return EMPTY_COMPARE;
  }
}

export function saveCompareState(state: CompareState, storage: Pick<Storage, 'setItem'> = localStorage): void {
  const kept = state.text.length > MAX_KEPT_TEXT ? { ...state, text: '' } : state;
  try {
    storage.setItem(KEY, JSON.stringify(kept));
  } catch {
    // A full localStorage loses the saved results, never the page.
  }
}

/** About `count` round tick values covering [min, max] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max <= min) {
    const pad = Math.abs(min) * 0.1 || 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

export interface PlotPoint {
  x: number;
  y: number;
  label: string;
}

export interface PlotGeometry {
  width: number;
  height: number;
  /** The plotting area inside the margins. */
  left: number;
  right: number;
  top: number;
  bottom: number;
  xTicks: number[];
  yTicks: number[];
  sx(x: number): number;
  sy(y: number): number;
}

/** Axes that cover every finite point, with ticks at their ends; y grows upwards. */
export function plotGeometry(points: PlotPoint[], width = 560, height = 320): PlotGeometry {
  const finite = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = finite.map((p) => p.x);
  const ys = finite.map((p) => p.y);
  // A margin of 8% of the range on every side, so no point sits on an axis or under the edge.
  const xMax = Math.max(...xs, 1);
  const xTicks = niceTicks(0, xMax * 1.08);
  const [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  const pad = (yMax - yMin) * 0.08;
  const yTicks = niceTicks(yMin - pad, yMax + pad);
  const [left, right, top, bottom] = [64, width - 24, 16, height - 48];
  const [x0, x1] = [xTicks[0] ?? 0, xTicks[xTicks.length - 1] ?? 1];
  const [y0, y1] = [yTicks[0] ?? 0, yTicks[yTicks.length - 1] ?? 1];
  return {
    width,
    height,
    left,
    right,
    top,
    bottom,
    xTicks,
    yTicks,
    sx: (x) => left + ((x - x0) / (x1 - x0 || 1)) * (right - left),
    sy: (y) => bottom - ((y - y0) / (y1 - y0 || 1)) * (bottom - top),
  };
}
