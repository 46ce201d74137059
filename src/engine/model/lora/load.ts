/**
 * An adapter file to its float values, for one base model: header checked against the base
 * (adapter-file.ts), then the tensors decoded (adapter-data.ts). Nothing is uploaded here.
 */
import { readGguf } from '../../gguf/reader.ts';
import type { RangedSource } from '../../gguf/source.ts';
import type { ModelConfig } from '../config.ts';
import { readLoraFile } from './adapter-file.ts';
import { readLoraData, type LoraAdapterData } from './adapter-data.ts';

export async function readLoraAdapter(source: RangedSource, base: ModelConfig): Promise<LoraAdapterData> {
  const file = await readGguf(source);
  return readLoraData(readLoraFile(file, base), source);
}
