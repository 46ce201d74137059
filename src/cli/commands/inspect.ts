/**
 * `hearth inspect FILE [--json]`: what a GGUF model is, from its header only (a multi-gigabyte file
 * or an HTTP URL with Range support is inspected without reading its weights). The first part of a
 * split model (`*-00001-of-0000N.gguf`) opens all parts.
 */
import { dirname, join, basename } from 'node:path';
import { ggmlTypeName } from '../../engine/gguf/ggml-types.ts';
import { ggufMetadataToJson, ggufValueToJson } from '../../engine/gguf/json.ts';
import { findInteger, findString } from '../../engine/gguf/metadata.ts';
import { httpRangeSource, type RangedSource } from '../../engine/gguf/source.ts';
import { openGgufModel, splitFileNames, type GgufModel } from '../../engine/gguf/split.ts';
import type { GgufTypeInfo, GgufValue } from '../../engine/gguf/types.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { UsageError, parseFlags, type CliCommand } from '../command.ts';

function isUrl(name: string): boolean {
  return /^https?:\/\//i.test(name);
}

async function openSource(name: string): Promise<RangedSource> {
  return isUrl(name) ? httpRangeSource(name) : nodeFileSource(name);
}

/** Opens a model, and all its parts when `name` is a part of a split model. */
async function openModel(name: string): Promise<GgufModel> {
  const first = await openSource(name);
  const sources = [first];
  try {
    const model = await openGgufModel([first]).catch(async (error: unknown) => {
      const names = splitFileNames(isUrl(name) ? name : basename(name));
      if (!names) throw error;
      // A split part alone fails the part-count check: open its siblings too.
      for (const part of names) {
        const full = isUrl(name) ? part : join(dirname(name), part);
        if (part !== (isUrl(name) ? name : basename(name))) sources.push(await openSource(full));
      }
      return openGgufModel(sources);
    });
    return model;
  } finally {
    await Promise.all(sources.map((s) => s.close?.()));
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
  return String(n);
}

/** One line per metadata value; arrays are summarized by length and element type. */
function shortValue(value: GgufValue, type: GgufTypeInfo | undefined): string {
  const elementType = type?.elementType;
  if (typeof value === 'string') {
    const oneLine = JSON.stringify(value);
    return oneLine.length > 80 ? `${oneLine.slice(0, 77)}..." (${value.length} chars)` : oneLine;
  }
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const items = value as ArrayLike<unknown>;
    const names: Record<number, string> = { 0: 'u8', 1: 'i8', 2: 'u16', 3: 'i16', 4: 'u32', 5: 'i32', 6: 'f32', 7: 'bool', 8: 'str', 9: 'arr', 10: 'u64', 11: 'i64', 12: 'f64' };
    const head = JSON.stringify(ggufValueToJson(Array.prototype.slice.call(items, 0, 4) as GgufValue, type));
    return `[${items.length} x ${names[elementType ?? -1] ?? '?'}] ${head.slice(0, 60)}${items.length > 4 ? '...' : ''}`;
  }
  return String(ggufValueToJson(value, type));
}

function human(model: GgufModel, name: string): string {
  const lines: string[] = [];
  const arch = findString(model, 'general.architecture');
  const params = model.tensors.reduce((n, t) => n + t.elementCount, 0);
  const weightBytes = model.tensors.reduce((n, t) => n + t.byteSize, 0);
  const template = findString(model, 'tokenizer.chat_template');
  const tokens = model.metadata.get('tokenizer.ggml.tokens');
  const ctx = arch ? findInteger(model, `${arch}.context_length`) : undefined;

  lines.push(`${name}`);
  lines.push(`  format:         GGUF v${model.version}, ${model.parts.length} file${model.parts.length > 1 ? 's' : ''}, ${formatBytes(model.fileSize)} (${model.fileSize} bytes)`);
  lines.push(`  architecture:   ${arch ?? '(none)'}`);
  const modelName = findString(model, 'general.name');
  if (modelName) lines.push(`  name:           ${modelName}`);
  lines.push(`  parameters:     ${formatCount(params)} (${params}) in ${model.tensors.length} tensors, ${formatBytes(weightBytes)}`);
  if (params > 0) lines.push(`  bits/weight:    ${((weightBytes * 8) / params).toFixed(2)}`);
  lines.push(`  context length: ${ctx ?? '(not set)'}`);
  lines.push(`  chat template:  ${template ? `present (${template.length} chars)` : 'absent'}`);
  const tokModel = findString(model, 'tokenizer.ggml.model');
  if (tokModel !== undefined || Array.isArray(tokens)) {
    const pre = findString(model, 'tokenizer.ggml.pre');
    lines.push(`  tokenizer:      ${tokModel ?? '?'}${pre ? ` (pre: ${pre})` : ''}, ${Array.isArray(tokens) ? tokens.length : 0} tokens`);
  }

  if (model.tensors.length > 0) {
    const mix = new Map<string, { count: number; bytes: number; params: number }>();
    for (const t of model.tensors) {
      const entry = mix.get(ggmlTypeName(t.type)) ?? { count: 0, bytes: 0, params: 0 };
      entry.count++;
      entry.bytes += t.byteSize;
      entry.params += t.elementCount;
      mix.set(ggmlTypeName(t.type), entry);
    }
    lines.push('', 'quantization mix:');
    for (const [type, m] of [...mix].sort((a, b) => b[1].bytes - a[1].bytes)) {
      lines.push(`  ${type.padEnd(8)} ${String(m.count).padStart(5)} tensors ${formatBytes(m.bytes).padStart(11)}  ${formatCount(m.params).padStart(9)} params`);
    }
  }

  lines.push('', `metadata (${model.metadata.size} keys):`);
  for (const [key, value] of model.metadata) {
    lines.push(`  ${key} = ${shortValue(value, model.metadataTypes.get(key))}`);
  }

  if (model.tensors.length > 0) {
    const width = Math.max(4, ...model.tensors.map((t) => t.name.length));
    const multi = model.parts.length > 1;
    lines.push('', 'tensors:');
    lines.push(`  ${'name'.padEnd(width)}  ${'type'.padEnd(7)} ${'shape'.padEnd(24)} ${multi ? 'part ' : ''}${'offset'.padStart(12)} ${'size'.padStart(11)}`);
    for (const t of model.tensors) {
      lines.push(
        `  ${t.name.padEnd(width)}  ${ggmlTypeName(t.type).padEnd(7)} ${`[${t.shape.join(', ')}]`.padEnd(24)} ${multi ? String(t.part + 1).padEnd(5) : ''}${String(t.offset).padStart(12)} ${formatBytes(t.byteSize).padStart(11)}`,
      );
    }
  }
  return lines.join('\n');
}

export const inspectCommand: CliCommand = {
  usage: 'inspect FILE [--json]    a GGUF file or URL: architecture, size, quantization mix, metadata, tensors',
  needsGpu: false,
  async run(args) {
    const { positional, switches } = parseFlags(args, { switches: ['--json'] });
    if (positional.length !== 1) throw new UsageError('inspect needs exactly one FILE (a .gguf path or an http(s) URL)');
    const name = positional[0]!;
    // `hearth inspect x --json | head` closes the pipe early: that is not an error.
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
    const model = await openModel(name);
    if (switches.has('--json')) {
      // Tensor offsets are relative to the data section of the part holding the tensor.
      const json = {
        version: model.version,
        architecture: findString(model, 'general.architecture') ?? null,
        metadata: ggufMetadataToJson(model.metadata, model.metadataTypes),
        tensors: model.tensors.map((t) => ({ name: t.name, type: ggmlTypeName(t.type), shape: t.shape, offset: t.offset })),
      };
      process.stdout.write(JSON.stringify(json) + '\n');
    } else {
      process.stdout.write(human(model, name) + '\n');
    }
    return 0;
  },
};
