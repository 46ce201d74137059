/**
 * Writes the trained demo model (tools/demo-model/train.py's checkpoint) as GGUF files with the
 * project's own writer and quantizers: Q8_0 (the one the app ships as its default) and F16 (the
 * reference). Run: npx tsx tools/demo-model/export.ts [--in .cache/demo-model] [--out public/models]
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GgmlType } from '../../src/engine/gguf/ggml-types.ts';
import { requireQuantFormat } from '../../src/engine/gguf/quants/index.ts';
import { GgufValueType } from '../../src/engine/gguf/types.ts';
import type { GgufTensorSpec } from '../../src/engine/gguf/writer.ts';
import { writeGgufFile } from '../../src/node/gguf-file.ts';
import { readNpz } from './npz.ts';

/** The chat format the model was trained on (train.py's chat_transcript). */
export const DEMO_CHAT_TEMPLATE =
  "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}" +
  '{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

const FILE_TYPE = { [GgmlType.Q8_0]: 7, [GgmlType.F16]: 1 } as const;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

async function exportModel(inDir: string, outPath: string, matrixType: GgmlType.Q8_0 | GgmlType.F16): Promise<void> {
  const weights = readNpz(join(inDir, 'weights.npz'));
  const tokenizer = JSON.parse(readFileSync(join(inDir, 'tokenizer.json'), 'utf8')) as { tokens: string[]; merges: string[]; special: string[] };
  const config = JSON.parse(readFileSync(join(inDir, 'config.json'), 'utf8')) as Record<string, number | string>;
  const report = JSON.parse(readFileSync(join(inDir, 'report.json'), 'utf8')) as Record<string, unknown>;
  const id = (token: string) => {
    const index = tokenizer.tokens.indexOf(token);
    if (index < 0) throw new Error(`token ${token} missing`);
    return index;
  };
  const special = new Set(tokenizer.special);
  const metadata: Record<string, unknown> = {
    'general.architecture': 'llama',
    'general.name': 'Hearth tiny demo (KJV)',
    'general.description':
      `A ${Math.round(Number(report.parameters) / 1e5) / 10}M-parameter demo model trained by the Hearth project on the King James Bible. ` +
      'It writes KJV-style English; it is not an assistant and knows nothing else.',
    'general.license': 'MIT',
    'general.file_type': FILE_TYPE[matrixType],
    'general.quantization_version': 2,
    'llama.context_length': config.context,
    'llama.embedding_length': config.dim,
    'llama.block_count': config.n_layers,
    'llama.feed_forward_length': config.ffn_dim,
    'llama.attention.head_count': config.n_heads,
    'llama.attention.head_count_kv': config.n_kv_heads,
    'llama.rope.dimension_count': Number(config.dim) / Number(config.n_heads),
    'llama.rope.freq_base': config.rope_base,
    'llama.attention.layer_norm_rms_epsilon': config.norm_eps,
    'llama.vocab_size': config.vocab_size,
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': 'gpt-2',
    'tokenizer.ggml.tokens': tokenizer.tokens,
    'tokenizer.ggml.token_type': Int32Array.from(tokenizer.tokens, (t) => (special.has(t) ? 3 : 1)),
    'tokenizer.ggml.merges': tokenizer.merges,
    'tokenizer.ggml.bos_token_id': id('<|endoftext|>'),
    'tokenizer.ggml.eos_token_id': id('<|endoftext|>'),
    'tokenizer.ggml.eot_token_id': id('<|end|>'),
    'tokenizer.ggml.padding_token_id': id('<|endoftext|>'),
    'tokenizer.ggml.add_bos_token': true,
    'tokenizer.ggml.add_eos_token': false,
    'tokenizer.chat_template': DEMO_CHAT_TEMPLATE,
  };
  const metadataTypes: Record<string, GgufValueType> = {
    'llama.rope.freq_base': GgufValueType.FLOAT32,
    'llama.attention.layer_norm_rms_epsilon': GgufValueType.FLOAT32,
  };

  const tensors: Array<GgufTensorSpec & { data: Float32Array }> = [];
  const add = (name: string) => {
    const array = weights.get(name);
    if (!array) throw new Error(`checkpoint lacks ${name}`);
    const shape = [...array.shape].reverse(); // numpy [rows, cols] -> GGUF [cols(ne0), rows]
    tensors.push({ name, type: shape.length === 1 ? GgmlType.F32 : matrixType, shape, data: array.data });
  };
  add('token_embd.weight');
  for (let i = 0; i < Number(config.n_layers); i++) {
    for (const part of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down']) {
      add(`blk.${i}.${part}.weight`);
    }
  }
  add('output_norm.weight');

  await writeGgufFile(
    outPath,
    { metadata: metadata as never, metadataTypes, tensors: tensors.map(({ name, type, shape }) => ({ name, type, shape })) },
    (_info, index) => {
      const tensor = tensors[index]!;
      return requireQuantFormat(tensor.type).quantize!(tensor.data, tensor.data.length);
    },
  );
  console.log(`wrote ${outPath}`);
}

const inDir = arg('--in', '.cache/demo-model');
const outDir = arg('--out', 'public/models');
mkdirSync(outDir, { recursive: true });
await exportModel(inDir, join(outDir, 'hearth-demo-kjv-q8_0.gguf'), GgmlType.Q8_0);
await exportModel(inDir, join(outDir, 'hearth-demo-kjv-f16.gguf'), GgmlType.F16);
