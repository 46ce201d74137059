import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from './stop-strings.ts';

function run(stops: string[], pieces: string[]): { text: string; stopped: boolean } {
  const matcher = new StopStringMatcher(stops);
  let text = '';
  for (const piece of pieces) {
    const { emit, stopped } = matcher.push(piece);
    text += emit;
    if (stopped) return { text, stopped };
  }
  return { text: text + matcher.flush(), stopped: false };
}

describe('stop strings over streamed text', () => {
  it('stops on a stop string split across pieces and drops it', () => {
    expect(run(['<|im_end|>'], ['Hello', ' wor', 'ld<|im', '_end', '|>more'])).toEqual({ text: 'Hello world', stopped: true });
  });

  it('releases held text that turns out not to be a stop string', () => {
    const matcher = new StopStringMatcher(['STOP']);
    expect(matcher.push('a ST')).toEqual({ emit: 'a ', stopped: false });
    expect(matcher.push('AR')).toEqual({ emit: 'STAR', stopped: false });
  });

  it('picks the earliest of several stop strings', () => {
    expect(run(['\n\nUser:', 'END'], ['x END \n\nUser:'])).toEqual({ text: 'x ', stopped: true });
  });

  it('flushes held text when generation ends without a stop', () => {
    expect(run(['</s>'], ['abc</'])).toEqual({ text: 'abc</', stopped: false });
  });

  it('passes everything through without stop strings', () => {
    expect(run([], ['a', 'b'])).toEqual({ text: 'ab', stopped: false });
  });

  it('matches what a whole-text search finds, for random splits', () => {
    const stops = ['<|end|>', 'ab', 'xyz'];
    for (let trial = 0; trial < 500; trial++) {
      const alphabet = ['a', 'b', 'x', 'y', 'z', '<|end|>', '<|', 'q', ' '];
      let whole = '';
      for (let i = 0; i < 12; i++) whole += alphabet[Math.floor(Math.random() * alphabet.length)];
      const cuts: string[] = [];
      for (let at = 0; at < whole.length; ) {
        const len = 1 + Math.floor(Math.random() * 4);
        cuts.push(whole.slice(at, at + len));
        at += len;
      }
      const firsts = stops.map((s) => whole.indexOf(s)).filter((i) => i >= 0);
      const expected = firsts.length ? { text: whole.slice(0, Math.min(...firsts)), stopped: true } : { text: whole, stopped: false };
      expect(run(stops, cuts)).toEqual(expected);
    }
  });
});
