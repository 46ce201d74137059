/** Sampling settings and preferences, kept in localStorage (small, synchronous, per origin). */
import { useCallback, useState } from 'react';

export interface SamplingSettings {
  temperature: number;
  top_p: number;
  top_k: number;
  min_p: number;
  repetition_penalty: number;
  max_tokens: number;
  /** Empty: a new random seed per reply. */
  seed: string;
}

export const DEFAULT_SAMPLING: SamplingSettings = {
  temperature: 0.7,
  top_p: 0.95,
  top_k: 40,
  min_p: 0.05,
  repetition_penalty: 1.1,
  max_tokens: 512,
  seed: '',
};

export type Theme = 'system' | 'light' | 'dark';

export interface Preferences {
  sampling: SamplingSettings;
  /** System prompt for new conversations. */
  systemPrompt: string;
  theme: Theme;
  /** JSON mode: chat replies are constrained to one JSON object (response_format json_object). */
  jsonMode: boolean;
}

export const DEFAULT_PREFERENCES: Preferences = { sampling: DEFAULT_SAMPLING, systemPrompt: 'You are a helpful assistant.', theme: 'system', jsonMode: false };

const KEY = 'hearth.preferences';

function load(): Preferences {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Partial<Preferences> | null;
    if (!raw) return DEFAULT_PREFERENCES;
    return {
      sampling: { ...DEFAULT_SAMPLING, ...(raw.sampling ?? {}) },
      systemPrompt: typeof raw.systemPrompt === 'string' ? raw.systemPrompt : DEFAULT_PREFERENCES.systemPrompt,
      theme: raw.theme === 'light' || raw.theme === 'dark' ? raw.theme : 'system',
      jsonMode: raw.jsonMode === true,
    };
  } catch {
    return DEFAULT_PREFERENCES;
  }
}

export function usePreferences(): [Preferences, (update: Partial<Preferences>) => void] {
  const [prefs, setPrefs] = useState(load);
  const update = useCallback((patch: Partial<Preferences>) => {
    setPrefs((old) => {
      const next = { ...old, ...patch };
      localStorage.setItem(KEY, JSON.stringify(next));
      return next;
    });
  }, []);
  return [prefs, update];
}

/** What goes into the request: numbers clamped to sane ranges, seed only when set. */
export function samplingRequest(s: SamplingSettings): Record<string, number> {
  const clamp = (v: number, lo: number, hi: number, d: number) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : d);
  const out: Record<string, number> = {
    temperature: clamp(s.temperature, 0, 2, DEFAULT_SAMPLING.temperature),
    top_p: clamp(s.top_p, 0, 1, DEFAULT_SAMPLING.top_p),
    top_k: Math.round(clamp(s.top_k, 0, 1000, DEFAULT_SAMPLING.top_k)),
    min_p: clamp(s.min_p, 0, 1, DEFAULT_SAMPLING.min_p),
    repetition_penalty: clamp(s.repetition_penalty, 0.5, 2, DEFAULT_SAMPLING.repetition_penalty),
    max_tokens: Math.round(clamp(s.max_tokens, 1, 32768, DEFAULT_SAMPLING.max_tokens)),
  };
  const seed = Number.parseInt(s.seed, 10);
  if (s.seed.trim() !== '' && Number.isFinite(seed)) out.seed = seed;
  return out;
}

/** Sampling fields outside OpenAI's API (llama.cpp's and Hearth's extensions). */
const EXTENSIONS = ['top_k', 'min_p', 'repetition_penalty'] as const;

/**
 * The sampling fields for a remote server: OpenAI's (temperature, top_p, max_tokens, seed) always,
 * the extensions only when the user changed them from the defaults, since a strict server (OpenAI's
 * own) refuses fields it does not know, while llama-server and hearth serve take them.
 */
export function remoteSamplingRequest(s: SamplingSettings): Record<string, number> {
  const out = samplingRequest(s);
  for (const field of EXTENSIONS) if (out[field] === DEFAULT_SAMPLING[field]) delete out[field];
  return out;
}
