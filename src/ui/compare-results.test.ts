import { describe, expect, it } from 'vitest';
import { EMPTY_COMPARE, loadCompareState, niceTicks, plotGeometry, saveCompareState } from './compare-results.ts';

function memoryStorage() {
  const map = new Map<string, string>();
  return { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) };
}

describe('compare results', () => {
  it('round ticks that cover the range', () => {
    expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    const t = niceTicks(11.3, 14.9);
    expect(t[0]).toBeLessThanOrEqual(11.3);
    expect(t.at(-1)).toBeGreaterThanOrEqual(14.9);
    expect(t.length).toBeGreaterThanOrEqual(3);
    // One value: a range around it, not a division by zero.
    const one = niceTicks(5, 5);
    expect(one[0]).toBeLessThan(5);
    expect(one.at(-1)).toBeGreaterThan(5);
    expect(niceTicks(NaN, 1)).toEqual([]);
  });

  it('maps points inside the plotting area, smaller perplexity lower on the page', () => {
    const points = [
      { x: 6e6, y: 12.5, label: 'Q8_0' },
      { x: 3.4e6, y: 13.9, label: 'Q4_0' },
      { x: 11e6, y: 12.4, label: 'F16' },
    ];
    const g = plotGeometry(points);
    for (const p of points) {
      expect(g.sx(p.x)).toBeGreaterThanOrEqual(g.left);
      expect(g.sx(p.x)).toBeLessThanOrEqual(g.right);
      expect(g.sy(p.y)).toBeGreaterThanOrEqual(g.top);
      expect(g.sy(p.y)).toBeLessThanOrEqual(g.bottom);
    }
    expect(g.sy(13.9)).toBeLessThan(g.sy(12.4));
    expect(g.sx(3.4e6)).toBeLessThan(g.sx(6e6));
  });

  it('keeps the state across pages, and ignores a damaged save', () => {
    const storage = memoryStorage();
    const evaluation = { tokens: 300, context_length: 64, windows: 4, scored: 124, models: [] };
    saveCompareState({ sourceId: 'demo', text: 'In the beginning', contextLength: 32, evaluation }, storage);
    expect(loadCompareState(storage)).toEqual({ sourceId: 'demo', text: 'In the beginning', contextLength: 32, evaluation });
    storage.setItem('hearth-compare', '{not json');
    expect(loadCompareState(storage)).toEqual(EMPTY_COMPARE);
  });
});
