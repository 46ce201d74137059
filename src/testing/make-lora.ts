/**
 * Random-weight LoRA adapters for any base model (`hearth make-lora`, the adapter tests): both A
 * and B random (a freshly initialised PEFT adapter has B = 0 and changes nothing), sized so the
 * delta is a clear fraction of the base projection's output and the logits move measurably.
 */
import type { ModelConfig } from '../engine/model/config.ts';
import { isLoraTarget, LORA_TARGET_NAMES, type LoraTargetName } from '../engine/model/lora/adapter-file.ts';
import type { LoraAdapterData, LoraTensors } from '../engine/model/lora/adapter-data.ts';
import { modelTensors } from '../engine/model/tensors.ts';
import { mulberry32 } from './random.ts';

export interface RandomLoraOptions {
  rank: number;
  /** Default: rank (s = scale). */
  alpha?: number;
  /** Short names (attn_q, ffn_down, output, token_embd...): every block's tensor of that name the base has. */
  targets: readonly LoraTargetName[];
  seed?: number;
  /** Size of B (A x) relative to x, at scale 1 and alpha = rank (default 0.5). */
  gain?: number;
  name?: string;
}

function gaussian(next: () => number): number {
  const u = Math.max(next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

/** The base tensors a short target name means in this model (none: the model has no such tensor). */
export function loraTargetTensors(config: ModelConfig, target: LoraTargetName): string[] {
  const names = modelTensors(config).map((s) => s.name);
  const whole = target === 'output' || target === 'token_embd';
  return names.filter((n) => isLoraTarget(n) && (whole ? n === `${target}.weight` : new RegExp(`^blk\\.\\d+\\.${target}\\.weight$`).test(n)));
}

export function makeRandomLora(config: ModelConfig, o: RandomLoraOptions): LoraAdapterData {
  for (const t of o.targets) if (!LORA_TARGET_NAMES.includes(t)) throw new RangeError(`unknown LoRA target '${t}'; known: ${LORA_TARGET_NAMES.join(', ')}`);
  const next = mulberry32(o.seed ?? 1);
  const gain = o.gain ?? 0.5;
  const shapes = new Map(modelTensors(config).map((s) => [s.name, s.shape]));
  const targets: LoraTensors[] = [];
  for (const target of o.targets) {
    const names = loraTargetTensors(config, target);
    if (names.length === 0) throw new RangeError(`the ${config.architecture} model has no ${target} tensor to adapt`);
    for (const base of names) {
      const shape = shapes.get(base)!;
      const embedding = base === 'token_embd.weight';
      const [nIn, nOut] = embedding ? [shape[1]!, shape[0]!] : [shape[0]!, shape[1]!];
      const rank = o.rank;
      if (!Number.isInteger(rank) || rank < 1 || rank > Math.min(nIn, nOut)) throw new RangeError(`rank ${rank} must be 1..${Math.min(nIn, nOut)} for ${base}`);
      // Projections: A x has entries of about |x|_rms, B brings them back at `gain`. Embeddings: A
      // is a table of unit entries, B maps a row to about `gain` per output.
      const aStd = embedding ? 1 : 1 / Math.sqrt(nIn);
      const bStd = gain / Math.sqrt(rank);
      const a = Float32Array.from({ length: rank * nIn }, () => aStd * gaussian(next));
      const b = Float32Array.from({ length: nOut * rank }, () => bStd * gaussian(next));
      targets.push({ base, rank, nIn, nOut, embedding, a, b });
    }
  }
  return { architecture: config.architecture, alpha: o.alpha ?? o.rank, name: o.name, targets };
}
