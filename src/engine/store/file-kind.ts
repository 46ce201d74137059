/**
 * What a stored GGUF file is, read from its header at fill or import time: a model, or a LoRA
 * adapter (`general.type = adapter`, llama.cpp's convert_lora_to_gguf.py) for a base architecture.
 * The store keeps both alike; the app lists adapters apart and never offers one as a model.
 */
import type { GgufModel } from '../gguf/split.ts';
import { modelQuantization } from '../model/quantization.ts';
import type { StoredAdapter } from './types.ts';

export interface FileKind {
  kind: 'model' | 'adapter';
  /** `general.architecture`: the model's, or the base an adapter is made for. */
  architecture: string | undefined;
  quantization: string;
  /** Adapters only. */
  adapter: StoredAdapter | undefined;
}

function stringKey(model: GgufModel, key: string): string | undefined {
  const value = model.metadata.get(key);
  return typeof value === 'string' ? value : undefined;
}

export function fileKind(model: GgufModel): FileKind {
  const architecture = stringKey(model, 'general.architecture');
  const quantization = modelQuantization(model);
  if (stringKey(model, 'general.type') !== 'adapter') return { kind: 'model', architecture, quantization, adapter: undefined };
  // lora_b is [rank, nOut] for every target (projections and embeddings alike): its first side is the rank.
  let rank = 0;
  let targets = 0;
  for (const t of model.tensors) {
    if (!t.name.endsWith('.lora_b')) continue;
    targets++;
    rank = Math.max(rank, t.shape[0] ?? 0);
  }
  const alpha = model.metadata.get('adapter.lora.alpha');
  return {
    kind: 'adapter',
    architecture,
    quantization,
    adapter: {
      type: stringKey(model, 'adapter.type') ?? 'unknown',
      rank,
      alpha: typeof alpha === 'number' ? alpha : 0,
      targets,
    },
  };
}
