/**
 * `hearth make-model`: writes a random-weight GGUF test model (src/testing/make-model.ts), streamed
 * to disk one tensor at a time.
 */
import { readGguf } from '../../engine/gguf/reader.ts';
import { ggmlTypeName } from '../../engine/gguf/ggml-types.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { writeGgufFile } from '../../node/gguf-file.ts';
import { TEST_ARCHS, planTestModel, type TestArch, type TestModelOptions, type VocabSource } from '../../testing/make-model.ts';
import { T5_FFNS, type T5Ffn } from '../../testing/make-model-t5.ts';
import { UsageError, nonNegativeIntFlag, parseFlags, type CliCommand } from '../command.ts';
import { formatBytes, formatCount } from './inspect.ts';

const HELP = `make-model --arch ARCH --out FILE [options]
  --arch        ${TEST_ARCHS.join(' | ')}
  --vocab FILE  copy the tokenizer.* keys of a GGUF (e.g. .cache/llama.cpp/models/ggml-vocab-llama-spm.gguf);
                default: a 323-token SentencePiece-style vocabulary
  --embd N --layers N --heads N --kv-heads N --head-dim N --ff N --ctx N   (default 256, 2, 4, heads, embd/heads, 512)
  --quant SPEC  f32 (default), f16, bf16, q8_0, q4_0, q4_k, q6_k, ..., q4_k_m; then role overrides:
                q4_k_m,output=q8_0,token_embd=f16 (roles: token_embd output attn_q attn_k attn_v attn_qkv
                attn_output ffn_gate ffn_up ffn_down vector)
  --seed N      (default 1)    --output-scale X  std of the logits (default 6)
  --sliding-window N  (mistral, gemma2)   --tied  no output.weight (always so for gemma, gemma2)
  --sampled-blocks  quantized matrices from blocks sampled out of 64 quantized random rows per
                matrix: same sizes and types, ~100x faster for big files (an 8B-shaped Q4_K_M), not for parity
  --biases   --rope-freqs (llama)   --long-rope (phi3)  --chat-template TEXT  --name TEXT
  --experts N --experts-used N --expert-ff N --shared-ff N   (MoE archs and granitehybrid: default 8, 2, ff, none; qwen2moe: shared ff)
  --ssm-inner N --ssm-state N --ssm-groups N --ssm-conv N   (mamba2: default 2*embd, 16, 1, 4; --heads is its
                SSM head count, ssm.time_step_rank)
  --attn-layers I,J,...  --short-conv N   (lfm2, granitehybrid: the attention layers, default the odd ones;
                the others are short-convolution blocks of width N, default 3, or Mamba2 blocks)
  --ssm-heads N (granitehybrid: SSM heads, default --heads; d_inner is 2*embd)
  --t5-ffn gated-gelu|relu --dec-layers N --rel-buckets N --decoder-start ID   (t5: Flan-T5's FFN (default) or
                original T5's, decoder blocks (default --layers), relative position buckets (default 32), the
                decoder's first token (default 0); the default vocabulary is a SentencePiece unigram one)`;

function intList(v: string, flag: string): number[] {
  const parts = v === '' ? [] : v.split(',');
  return parts.map((p) => {
    const n = Number(p.trim());
    if (p.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} needs comma-separated non-negative integers, got '${v}'`);
    return n;
  });
}

function t5Ffn(v: string): T5Ffn {
  if (!(T5_FFNS as readonly string[]).includes(v)) throw new UsageError(`--t5-ffn must be one of ${T5_FFNS.join(', ')}, got '${v}'`);
  return v as T5Ffn;
}

export const makeModelCommand: CliCommand = {
  usage: 'make-model --arch A --out F write a random-weight GGUF test model (make-model --help for options)',
  needsGpu: false,
  async run(args) {
    if (args.includes('--help')) {
      process.stdout.write(`hearth ${HELP}\n`);
      return 0;
    }
    const { positional, values, switches } = parseFlags(args, {
      values: [
        '--arch', '--out', '--vocab', '--embd', '--layers', '--heads', '--kv-heads', '--head-dim', '--ff', '--ctx', '--quant',
        '--seed', '--output-scale', '--sliding-window', '--chat-template', '--name', '--experts', '--experts-used', '--expert-ff', '--shared-ff',
        '--ssm-inner', '--ssm-state', '--ssm-groups', '--ssm-conv', '--attn-layers', '--short-conv', '--ssm-heads',
        '--t5-ffn', '--dec-layers', '--rel-buckets', '--decoder-start',
      ],
      switches: ['--tied', '--biases', '--rope-freqs', '--long-rope', '--sampled-blocks'],
    });
    if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}'`);
    const arch = values.get('--arch') as TestArch | undefined;
    const out = values.get('--out');
    if (!arch || !TEST_ARCHS.includes(arch)) throw new UsageError(`--arch must be one of ${TEST_ARCHS.join(', ')}`);
    if (!out) throw new UsageError('--out FILE is required');

    let vocab: VocabSource | undefined;
    const vocabPath = values.get('--vocab');
    if (vocabPath) {
      const source = await nodeFileSource(vocabPath);
      vocab = await readGguf(source).finally(() => source.close());
    }
    const outputScale = values.has('--output-scale') ? Number(values.get('--output-scale')) : undefined;
    if (outputScale !== undefined && !(outputScale > 0)) throw new UsageError('--output-scale needs a positive number');
    const embd = nonNegativeIntFlag(values, '--embd', 256);
    const heads = nonNegativeIntFlag(values, '--heads', 4);
    const options: TestModelOptions = {
      arch,
      embd,
      layers: nonNegativeIntFlag(values, '--layers', 2),
      heads,
      ff: nonNegativeIntFlag(values, '--ff', 512),
      ...(values.has('--kv-heads') ? { kvHeads: nonNegativeIntFlag(values, '--kv-heads', undefined)! } : {}),
      ...(values.has('--head-dim') ? { headDim: nonNegativeIntFlag(values, '--head-dim', undefined)! } : {}),
      ...(values.has('--ctx') ? { ctx: nonNegativeIntFlag(values, '--ctx', undefined)! } : {}),
      ...(values.has('--seed') ? { seed: nonNegativeIntFlag(values, '--seed', undefined)! } : {}),
      ...(values.has('--sliding-window') ? { slidingWindow: nonNegativeIntFlag(values, '--sliding-window', undefined)! } : {}),
      ...(vocab ? { vocab } : {}),
      ...(outputScale !== undefined ? { outputScale } : {}),
      ...(values.has('--quant') ? { quant: values.get('--quant')! } : {}),
      ...(values.has('--chat-template') ? { chatTemplate: values.get('--chat-template')! } : {}),
      ...(values.has('--name') ? { name: values.get('--name')! } : {}),
      ...(values.has('--experts') ? { experts: nonNegativeIntFlag(values, '--experts', undefined)! } : {}),
      ...(values.has('--experts-used') ? { expertsUsed: nonNegativeIntFlag(values, '--experts-used', undefined)! } : {}),
      ...(values.has('--expert-ff') ? { expertFf: nonNegativeIntFlag(values, '--expert-ff', undefined)! } : {}),
      ...(values.has('--shared-ff') ? { sharedFf: nonNegativeIntFlag(values, '--shared-ff', undefined)! } : {}),
      ...(values.has('--ssm-inner') ? { ssmInner: nonNegativeIntFlag(values, '--ssm-inner', undefined)! } : {}),
      ...(values.has('--ssm-state') ? { ssmState: nonNegativeIntFlag(values, '--ssm-state', undefined)! } : {}),
      ...(values.has('--ssm-groups') ? { ssmGroups: nonNegativeIntFlag(values, '--ssm-groups', undefined)! } : {}),
      ...(values.has('--ssm-conv') ? { ssmConv: nonNegativeIntFlag(values, '--ssm-conv', undefined)! } : {}),
      ...(values.has('--attn-layers') ? { attnLayers: intList(values.get('--attn-layers')!, '--attn-layers') } : {}),
      ...(values.has('--short-conv') ? { shortConv: nonNegativeIntFlag(values, '--short-conv', undefined)! } : {}),
      ...(values.has('--ssm-heads') ? { ssmHeads: nonNegativeIntFlag(values, '--ssm-heads', undefined)! } : {}),
      ...(values.has('--t5-ffn') ? { t5Ffn: t5Ffn(values.get('--t5-ffn')!) } : {}),
      ...(values.has('--dec-layers') ? { decoderLayers: nonNegativeIntFlag(values, '--dec-layers', undefined)! } : {}),
      ...(values.has('--rel-buckets') ? { relBuckets: nonNegativeIntFlag(values, '--rel-buckets', undefined)! } : {}),
      ...(values.has('--decoder-start') ? { decoderStartToken: nonNegativeIntFlag(values, '--decoder-start', undefined)! } : {}),
      tiedEmbeddings: switches.has('--tied'),
      ropeFreqs: switches.has('--rope-freqs'),
      longRope: switches.has('--long-rope'),
      ...(switches.has('--biases') ? { biases: true } : {}),
      ...(switches.has('--sampled-blocks') ? { sampledBlocks: true } : {}),
    };
    let plan;
    try {
      plan = planTestModel(options);
    } catch (error) {
      if (error instanceof RangeError) throw new UsageError(error.message);
      throw error;
    }
    const layout = await writeGgufFile(out, plan.spec, plan.data);
    const params = layout.tensors.reduce((n, t) => n + t.elementCount, 0);
    const mix = new Map<string, number>();
    for (const t of layout.tensors) mix.set(ggmlTypeName(t.type), (mix.get(ggmlTypeName(t.type)) ?? 0) + 1);
    process.stdout.write(
      `${out}: ${arch}, ${formatCount(params)} parameters, ${layout.tensors.length} tensors (${[...mix].map(([t, n]) => `${n} ${t}`).join(', ')}), ` +
        `vocab ${plan.dims.V}, ${formatBytes(layout.fileSize)}\n`,
    );
    return 0;
  },
};
