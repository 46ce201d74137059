/**
 * `hearth bench constrained`: decode tokens/s of one model with no constraint, under
 * `response_format: json_object` and under a nested `json_schema`, side by side with the ratio to the
 * unconstrained speed (issue 20 asks that the constraint cost under 10% of decode speed).
 *
 * The model is generated (src/testing/make-model.ts) with Qwen2's real 151,646-token byte-level BPE
 * vocabulary, so the mask is computed over a real-sized vocabulary; its other dimensions are small
 * by default so the run takes seconds, which makes the ratio pessimistic: a larger model spends more
 * of each token in the forward pass, and the mask costs the same.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesSource, readGguf } from '../engine/gguf/index.ts';
import type { ChatCompletionRequest } from '../engine/api.ts';
import { Engine } from '../engine/engine.ts';
import { makeTestModel } from '../testing/make-model.ts';
import { llamaCppSourceDir } from '../testing/llama-ref.ts';
import { Tokenizer, type TokenizerMetadata } from '../engine/tokenizer/index.ts';
import { compiledGrammar, requestGbnf } from '../engine/generate/constraint.ts';
import { GrammarConstraint, maskHas } from '../engine/grammar/index.ts';
import { mulberry32 } from '../testing/random.ts';

/**
 * A nested schema of the kind people send: objects in an array in an object, enums, numbers.
 * `maxLength` makes each character position of a string its own grammar state, so with string
 * lengths nearly every token meets a state whose mask is not cached yet: the costly case.
 */
function nestedSchema(maxLength: (n: number) => { maxLength?: number }) {
  return {
  type: 'object',
  properties: {
    title: { type: 'string', ...maxLength(40) },
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 4,
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', ...maxLength(24) },
          kind: { enum: ['fruit', 'tool', 'place'] },
          count: { type: 'integer' },
          tags: { type: 'array', items: { type: 'string', ...maxLength(12) }, maxItems: 3 },
        },
        required: ['name', 'kind', 'count'],
        additionalProperties: false,
      },
    },
    done: { type: 'boolean' },
  },
  required: ['title', 'items', 'done'],
  additionalProperties: false,
  };
}
export const NESTED_SCHEMA = nestedSchema(() => ({}));
export const NESTED_SCHEMA_WITH_LENGTHS = nestedSchema((n) => ({ maxLength: n }));

export interface ConstrainedBenchOptions {
  backend: 'cpu' | 'webgpu';
  /** The WebGPU entry point, for backend 'webgpu'. */
  gpu?: GPU | undefined;
  threads: number;
  /** Tokens per reply (max_tokens); a constrained reply may finish earlier. */
  decodeTokens: number;
  /** Replies per variant; the median tokens/s is reported. */
  runs: number;
  /** Model dimensions (the vocabulary is always Qwen2's). */
  embd: number;
  layers: number;
  log: (line: string) => void;
}

export interface ConstrainedBenchRow {
  variant: string;
  tokensPerSecond: number;
  /** Mean tokens decoded per reply. */
  tokens: number;
  /** tokens/s of the first reply (the warm-up): a grammar's masks are built then, and reused after. */
  coldTokensPerSecond: number;
  /** tokens/s over the unconstrained tokens/s. */
  ratio: number;
}

const VARIANTS: { variant: string; request: Partial<ChatCompletionRequest> }[] = [
  { variant: 'unconstrained', request: {} },
  { variant: 'json_object', request: { response_format: { type: 'json_object' } } },
  { variant: 'json_schema (nested)', request: { response_format: { type: 'json_schema', json_schema: { name: 'inventory', schema: NESTED_SCHEMA, strict: true } } } },
  { variant: 'same + maxLength', request: { response_format: { type: 'json_schema', json_schema: { name: 'inventory', schema: NESTED_SCHEMA_WITH_LENGTHS, strict: true } } } },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function qwen2Vocab() {
  const bytes = readFileSync(join(llamaCppSourceDir(), 'models', 'ggml-vocab-qwen2.gguf'));
  return readGguf(bytesSource(new Uint8Array(bytes)));
}

export async function benchConstrained(o: ConstrainedBenchOptions): Promise<ConstrainedBenchRow[]> {
  const vocab = await qwen2Vocab();
  const heads = Math.max(1, o.embd / 64);
  const model = makeTestModel({ arch: 'qwen2', embd: o.embd, layers: o.layers, heads, kvHeads: heads, ff: o.embd * 3, ctx: 4096, seed: 1, vocab, name: 'constrained-bench' });
  const engine = new Engine({ gpu: o.backend === 'webgpu' ? o.gpu : undefined, runtime: 'bench' });
  const info = await engine.loadModel({ kind: 'file', file: new Blob([model as Uint8Array<ArrayBuffer>]), name: 'constrained-bench.gguf' }, { backend: o.backend, threads: o.threads });
  o.log(`model: qwen2 embd ${o.embd}, ${o.layers} layers, vocabulary 151,936 (Qwen2's), ${info.backend} backend, ${o.threads} thread(s)`);
  o.log(`workload: ${o.runs} replies per variant of at most ${o.decodeTokens} tokens, temperature 1, interleaved; median decode tokens/s`);
  const speeds = VARIANTS.map(() => [] as number[]);
  const counts = VARIANTS.map(() => [] as number[]);
  const cold = VARIANTS.map(() => 0);
  try {
    // A warm-up reply of each kind (pipelines, the vocabulary's token trie), then the runs
    // interleaved so that a change in the machine's load falls on every variant alike.
    for (let run = -1; run < o.runs; run++) {
      for (const [i, v] of VARIANTS.entries()) {
        const reply = await engine.chatCompletion({
          messages: [{ role: 'user', content: 'List a few things as JSON.' }],
          max_tokens: o.decodeTokens,
          temperature: 1,
          seed: 1000 + run,
          ...v.request,
        });
        if (run < 0) {
          cold[i] = reply.usage.decode_tokens_per_second;
          continue;
        }
        speeds[i]!.push(reply.usage.decode_tokens_per_second);
        counts[i]!.push(reply.usage.completion_tokens);
      }
    }
  } finally {
    await engine.unloadModel();
  }
  const base = median(speeds[0]!);
  const rows = VARIANTS.map((v, i) => ({
    variant: v.variant,
    tokensPerSecond: median(speeds[i]!),
    tokens: counts[i]!.reduce((a, b) => a + b, 0) / counts[i]!.length,
    ratio: median(speeds[i]!) / base,
    coldTokensPerSecond: cold[i]!,
  }));
  o.log('');
  o.log(`${'variant'.padEnd(22)} ${'tok/s'.padStart(8)} ${'tokens'.padStart(7)} ${'vs none'.padStart(8)} ${'ms/token added'.padStart(15)} ${'first reply tok/s'.padStart(18)}`);
  for (const r of rows) {
    // What the constraint adds to each token (mask, matcher, the step-by-step loop): 1/speed - 1/base.
    const added = (1 / r.tokensPerSecond - 1 / base) * 1000;
    const cells = [r.tokensPerSecond.toFixed(1).padStart(8), r.tokens.toFixed(0).padStart(7), `${(r.ratio * 100).toFixed(1)}%`.padStart(8), added.toFixed(2).padStart(15), r.coldTokensPerSecond.toFixed(1).padStart(18)];
    o.log(`${r.variant.padEnd(22)} ${cells.join(' ')}`);
  }
  o.log('');
  maskTimings(vocab.metadata as TokenizerMetadata, o.log);
  return rows;
}

/**
 * The mask alone, without a model: random walks of `tokens` tokens under each constrained variant
 * over Qwen2's vocabulary, timing `allowed()` and `accept()` per token. The first walk of each runs
 * on a freshly compiled grammar (every mask built), the later ones on its cached masks.
 */
export function maskTimings(metadata: TokenizerMetadata, log: (line: string) => void, walks = 4, tokens = 200): void {
  const tokenizer = Tokenizer.fromGgufMetadata(metadata);
  const end = tokenizer.special.eos ?? 0;
  const next = mulberry32(7);
  const closers = Array.from({ length: tokenizer.size }, (_, id) => id === end || /["}\]0-9]/.test(new TextDecoder().decode(tokenizer.tokenToPiece(id))));
  log(`mask time per token, ${walks} random walks of up to ${tokens} tokens (first walk: grammar compiled fresh)`);
  log(`${'variant'.padEnd(22)} ${'first walk ms/token'.padStart(20)} ${'later walks ms/token'.padStart(21)}`);
  for (const v of VARIANTS.slice(1)) {
    const gbnf = requestGbnf(v.request)!;
    const perWalk: number[] = [];
    for (let walk = 0; walk < walks; walk++) {
      const compiled = compiledGrammar(tokenizer, [end], gbnf);
      const constraint = new GrammarConstraint(compiled);
      let ms = 0;
      let steps = 0;
      for (; steps < tokens; steps++) {
        const t0 = performance.now();
        const mask = constraint.allowed();
        ms += performance.now() - t0;
        // A random allowed token, half the time one that closes something, so walks leave strings.
        const allowed: number[] = [];
        for (let id = 0; id < tokenizer.size; id++) if (maskHas(mask, id)) allowed.push(id);
        const leaning = allowed.filter((id) => closers[id]);
        const pool = leaning.length > 0 && next() < 0.5 ? leaning : allowed;
        const token = pool[Math.floor(next() * pool.length)]!;
        if (token === end) break;
        const t1 = performance.now();
        constraint.accept(token);
        ms += performance.now() - t1;
        if (!constraint.canContinue) break;
      }
      perWalk.push(ms / Math.max(1, steps));
    }
    const later = perWalk.slice(1);
    log(`${v.variant.padEnd(22)} ${perWalk[0]!.toFixed(3).padStart(20)} ${(later.reduce((a, b) => a + b, 0) / Math.max(1, later.length)).toFixed(3).padStart(21)}`);
  }
}
