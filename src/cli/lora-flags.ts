/**
 * The CLI's LoRA flags, as llama.cpp's: `--lora FILE[:SCALE]` and `--lora-scaled FILE SCALE`, each
 * repeatable (the common flag parser takes a flag once, so these are taken out first), and
 * attaching them to a loaded model.
 */
import { basename } from 'node:path';
import type { Model } from '../engine/model/model.ts';
import { nodeFileSource } from '../node/file-source.ts';
import { UsageError } from './command.ts';

export interface LoraFlag {
  path: string;
  scale: number;
}

/** FILE or FILE:SCALE (a number after the last colon; otherwise the colon is part of the name). */
export function parseLoraSpec(spec: string): LoraFlag {
  const colon = spec.lastIndexOf(':');
  if (colon > 0) {
    const tail = spec.slice(colon + 1);
    const scale = Number(tail);
    if (tail.trim() !== '' && Number.isFinite(scale)) return { path: spec.slice(0, colon), scale };
  }
  if (spec === '') throw new UsageError('--lora needs a file');
  return { path: spec, scale: 1 };
}

/** Takes every --lora / --lora-scaled out of `args`; returns the rest and the adapters in order. */
export function takeLoraFlags(args: readonly string[]): { rest: string[]; loras: LoraFlag[] } {
  const rest: string[] = [];
  const loras: LoraFlag[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--lora' || arg.startsWith('--lora=')) {
      const value = arg === '--lora' ? args[++i] : arg.slice('--lora='.length);
      if (value === undefined) throw new UsageError('--lora needs FILE[:SCALE]');
      loras.push(parseLoraSpec(value));
    } else if (arg === '--lora-scaled') {
      const path = args[++i];
      const raw = args[++i];
      const scale = Number(raw);
      if (path === undefined || raw === undefined || raw.trim() === '' || !Number.isFinite(scale)) throw new UsageError('--lora-scaled needs FILE SCALE');
      loras.push({ path, scale });
    } else rest.push(arg);
  }
  return { rest, loras };
}

/** Loads each adapter for `model` and makes them its active set. */
export async function attachLoras(model: Model, loras: readonly LoraFlag[]): Promise<void> {
  const active = [];
  for (const [i, l] of loras.entries()) {
    const source = await nodeFileSource(l.path);
    try {
      active.push({ lora: await model.loadAdapter(source, `${i}:${basename(l.path)}`), scale: l.scale });
    } finally {
      await source.close();
    }
    process.stderr.write(`LoRA ${l.path} at scale ${l.scale}\n`);
  }
  if (active.length) model.setAdapters(active);
}
