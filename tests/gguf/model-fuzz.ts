/**
 * Bounded fuzzing of the whole load path a model file takes before any weight is uploaded: the
 * GGUF reader, the model configuration and tensor checks, the memory plan, the tokenizer, the
 * chat template and the first prompt. Each case is a mutation of a small generated model, grouped
 * in attack classes; a case passes when the file loads and formats a prompt, or fails with one of
 * the engine's named errors. A TypeError, a RangeError ("Invalid array length", "Maximum call stack
 * size exceeded") or any other unnamed error is a failure. Cases are bounded by size (small files,
 * the reader's and config's limits), never by timing.
 *
 * Shared by tests/gguf/model-fuzz.test.ts and the report script that prints the table per class.
 */
import { GgufValueType } from '../../src/engine/gguf/types.ts';
import { openGgufModel } from '../../src/engine/gguf/split.ts';
import { bytesSource } from '../../src/engine/gguf/source.ts';
import { readGguf } from '../../src/engine/gguf/reader.ts';
import type { GgufInputValue } from '../../src/engine/gguf/writer.ts';
import { ChatSession } from '../../src/engine/generate/chat-session.ts';
import { planLoad, type PlanTarget } from '../../src/engine/model/loader.ts';
import { Tokenizer } from '../../src/engine/tokenizer/index.ts';
import { editedTestModel, type ModelEdit } from '../../src/testing/edit-model.ts';
import { syntheticVocab, type TestModelOptions } from '../../src/testing/make-model.ts';
import { mulberry32 } from '../../src/testing/random.ts';

/** The engine's named errors a hostile file may end in. */
export const NAMED_ERRORS = new Set([
  'GgufFormatError',
  'GgufMetadataError',
  'ModelConfigError',
  'UnsupportedModelError',
  'ModelTooLargeError',
  'TokenizerLoadError',
  'TokenizeError',
  'ChatTemplateError',
  'ContextWindowExceededError',
]);

export const ATTACK_CLASSES = ['bit flips', 'truncations', 'huge counts and lengths', 'hyperparameters', 'vocabularies', 'nested arrays', 'chat templates'] as const;
export type AttackClass = (typeof ATTACK_CLASSES)[number];

export interface FuzzCase {
  attack: AttackClass;
  what: string;
  bytes: () => Uint8Array;
}

export interface FuzzResult {
  attack: AttackClass;
  what: string;
  /** 'ok', a named error's name, or 'unnamed' for a failure. */
  outcome: string;
  /** For an unnamed failure: the error's name and message. */
  error?: string;
}

const BASE: TestModelOptions = { arch: 'llama', embd: 32, layers: 2, heads: 2, ff: 48, ctx: 512, seed: 7, vocab: syntheticVocab(32), name: 'fuzz' };
const CPU_TARGET: PlanTarget = { kind: 'cpu', limits: { maxBufferBytes: 2 ** 30, memoryBudgetBytes: 2 ** 32 }, supportsWeight: () => true };

/** Loads everything but the weights and formats a first prompt. */
export async function loadUpToPrompt(bytes: Uint8Array): Promise<void> {
  const model = await openGgufModel([bytesSource(bytes)]);
  const tokenizer = Tokenizer.fromGgufMetadata(model.metadata as ReadonlyMap<string, unknown>);
  const { plan } = planLoad(model, CPU_TARGET);
  const stub = { contextLength: plan.contextLength, position: 0, next: async () => 0, truncate: (n: number) => n };
  const session = new ChatSession(stub, tokenizer, model.metadata as ReadonlyMap<string, unknown>, { modelName: 'fuzz' });
  session.fitMessages([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there, fuzz!' }], 'drop-oldest-turns');
}

export async function runCase(c: FuzzCase): Promise<FuzzResult> {
  try {
    await loadUpToPrompt(c.bytes());
    return { attack: c.attack, what: c.what, outcome: 'ok' };
  } catch (error) {
    const e = error as Error;
    if (NAMED_ERRORS.has(e?.name)) return { attack: c.attack, what: c.what, outcome: e.name };
    return { attack: c.attack, what: c.what, outcome: 'unnamed', error: `${e?.name}: ${String(e?.message).slice(0, 200)}` };
  }
}

const HUGE_U64 = [2n ** 64n - 1n, 2n ** 63n, 2n ** 53n, 2n ** 40n, 2n ** 32n - 1n, 2n ** 31n, 1n << 24n, 1000000n, 65536n];
const EXTREME_INTS = [0, 1, 2, 3, 5, 7, 513, 65536, 1_000_000, 2 ** 31 - 1, 2 ** 32 - 1];
const EXTREME_FLOATS = [0, -1, 1e-30, 1e30, Number.NaN, Number.POSITIVE_INFINITY, -0.5];
const HYPERPARAMETERS = [
  'block_count', 'context_length', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
  'attention.key_length', 'attention.value_length', 'rope.dimension_count', 'vocab_size', 'expert_count',
  'rope.scaling.original_context_length',
];
const FLOAT_HYPERPARAMETERS = ['rope.freq_base', 'rope.scaling.factor', 'attention.layer_norm_rms_epsilon', 'rope.scaling.attn_factor'];

function nested(depth: number, count: number): GgufInputValue {
  if (depth === 0) return Int32Array.from({ length: count % 7 }, (_, i) => i);
  return Array.from({ length: count }, () => nested(depth - 1, depth > 1 ? 2 : count)) as GgufInputValue;
}

/** A header with one key whose array claims `count` elements of `inner` arrays but holds none. */
function lyingNestedCount(count: bigint, innerType: GgufValueType): Uint8Array {
  const key = new TextEncoder().encode('fuzz.nested');
  const out = new Uint8Array(24 + 8 + key.length + 4 + 4 + 8 + 64);
  const v = new DataView(out.buffer);
  let p = 0;
  v.setUint32(p, 0x46554747, true);
  v.setUint32((p += 4), 3, true);
  v.setBigUint64((p += 4), 0n, true);
  v.setBigUint64((p += 8), 1n, true);
  v.setBigUint64((p += 8), BigInt(key.length), true);
  out.set(key, (p += 8));
  v.setInt32((p += key.length), GgufValueType.ARRAY, true);
  v.setInt32((p += 4), innerType, true);
  v.setBigUint64((p += 4), count, true);
  return out;
}

/**
 * The fixed set of cases: `perClass` mutations of each random class (bit flips, truncations, huge
 * fields), and the listed cases of the others. Same seed, same cases.
 */
export async function fuzzCases(perClass = 80, seed = 28): Promise<FuzzCase[]> {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  const base = editedTestModel(BASE);
  // Mutations of the raw bytes aim at the header: changes to tensor data are always valid.
  const headerBytes = (await readGguf(bytesSource(base))).dataOffset;
  const cases: FuzzCase[] = [];
  const edited = (attack: AttackClass, what: string, edit: ModelEdit) => cases.push({ attack, what, bytes: () => editedTestModel(BASE, edit) });
  for (let i = 0; i < perClass; i++) {
    const flips = Array.from({ length: 1 + int(4) }, () => [int(headerBytes), int(8)] as const);
    cases.push({
      attack: 'bit flips',
      what: flips.map(([at, bit]) => `${at}:${bit}`).join(' '),
      bytes: () => {
        const b = base.slice();
        for (const [at, bit] of flips) b[at]! ^= 1 << bit;
        return b;
      },
    });
  }
  for (let i = 0; i < perClass; i++) {
    const n = i < perClass / 2 ? int(headerBytes + 1) : int(base.length);
    cases.push({ attack: 'truncations', what: `first ${n} bytes`, bytes: () => base.slice(0, n) });
  }
  for (let i = 0; i < perClass; i++) {
    const at = int(headerBytes - 8);
    const wide = i % 2 === 0;
    const value = wide ? HUGE_U64[int(HUGE_U64.length)]! : BigInt(int(2 ** 32));
    cases.push({
      attack: 'huge counts and lengths',
      what: `${wide ? 'u64' : 'u32'} ${value} at ${at}`,
      bytes: () => {
        const b = base.slice();
        const view = new DataView(b.buffer);
        if (wide) view.setBigUint64(at, value, true);
        else view.setUint32(at, Number(value), true);
        return b;
      },
    });
  }
  for (const key of HYPERPARAMETERS) {
    for (const value of EXTREME_INTS) edited('hyperparameters', `${key} = ${value}`, { set: [[`llama.${key}`, value, GgufValueType.UINT32]] });
    edited('hyperparameters', `${key} = -1`, { set: [[`llama.${key}`, -1, GgufValueType.INT32]] });
    edited('hyperparameters', `${key} = 2^63`, { put: [[`llama.${key}`, 2n ** 63n]] });
    edited('hyperparameters', `${key} = 1.5`, { set: [[`llama.${key}`, 1.5, GgufValueType.FLOAT32]] });
    edited('hyperparameters', `${key} = 'x'`, { set: [[`llama.${key}`, 'x', GgufValueType.STRING]] });
    edited('hyperparameters', `${key} = [1e6 per layer]`, { put: [[`llama.${key}`, Uint32Array.of(1_000_000, 1_000_000)]] });
    edited('hyperparameters', `${key} removed`, { remove: [`llama.${key}`] });
  }
  for (const key of FLOAT_HYPERPARAMETERS) {
    for (const value of EXTREME_FLOATS) edited('hyperparameters', `${key} = ${value}`, { set: [[`llama.${key}`, value, GgufValueType.FLOAT32]] });
  }
  const tokens = syntheticVocab(32).metadata.get('tokenizer.ggml.tokens') as string[];
  const vocabEdits: Array<[string, ModelEdit]> = [
    ['no tokens', { put: [['tokenizer.ggml.tokens', [] as string[]], ['tokenizer.ggml.scores', new Float32Array(0)], ['tokenizer.ggml.token_type', new Int32Array(0)]] }],
    ['no tokens, no scores or types', { put: [['tokenizer.ggml.tokens', [] as string[]]], remove: ['tokenizer.ggml.scores', 'tokenizer.ggml.token_type'] }],
    ['one token', { put: [['tokenizer.ggml.tokens', ['a']]] }],
    ['tokens are numbers', { put: [['tokenizer.ggml.tokens', Uint32Array.from(tokens, (_, i) => i)]] }],
    ['tokens missing', { remove: ['tokenizer.ggml.tokens'] }],
    ['every token the same', { put: [['tokenizer.ggml.tokens', tokens.map(() => 'a')]] }],
    ['empty token texts', { put: [['tokenizer.ggml.tokens', tokens.map(() => '')]] }],
    ['a 64 KiB token', { put: [['tokenizer.ggml.tokens', tokens.map((t, i) => (i === 300 ? 'x'.repeat(65536) : t))]] }],
    ['scores too short', { put: [['tokenizer.ggml.scores', new Float32Array(3)]] }],
    ['scores are strings', { put: [['tokenizer.ggml.scores', tokens]] }],
    ['token types out of range', { put: [['tokenizer.ggml.token_type', Int32Array.from(tokens, (_, i) => (i % 2 ? 99 : -1))]] }],
    ['bos id past the vocabulary', { set: [['tokenizer.ggml.bos_token_id', 2 ** 32 - 1, GgufValueType.UINT32]] }],
    ['eos id negative', { set: [['tokenizer.ggml.eos_token_id', -5, GgufValueType.INT32]] }],
    ['unknown tokenizer model', { set: [['tokenizer.ggml.model', 'mystery', GgufValueType.STRING]] }],
    ['gpt2 without merges', { set: [['tokenizer.ggml.model', 'gpt2', GgufValueType.STRING]] }],
    ['gpt2 with broken merges', { set: [['tokenizer.ggml.model', 'gpt2', GgufValueType.STRING]], put: [['tokenizer.ggml.merges', ['a', ' ', 'a b c', '']]] }],
    ['unknown pre-tokenizer', { set: [['tokenizer.ggml.model', 'gpt2', GgufValueType.STRING], ['tokenizer.ggml.pre', 'mystery', GgufValueType.STRING]], put: [['tokenizer.ggml.merges', ['a b']]] }],
    ['vocab_size disagrees', { set: [['llama.vocab_size', 5, GgufValueType.UINT32]] }],
  ];
  for (const [what, edit] of vocabEdits) edited('vocabularies', what, edit);
  for (const depth of [1, 2, 3, 4, 5, 6]) {
    for (const count of [0, 1, 100, 5000]) {
      if (depth > 3 && count > 100) continue;
      edited('nested arrays', `fuzz.nested depth ${depth} x ${count}`, { put: [['fuzz.nested', nested(depth, count)]] });
    }
  }
  for (const key of ['tokenizer.ggml.tokens', 'llama.feed_forward_length', 'llama.attention.head_count', 'general.architecture', 'tokenizer.chat_template']) {
    edited('nested arrays', `${key} as nested arrays`, { put: [[key, nested(2, 3)]] });
  }
  for (const count of [2n ** 21n, 2n ** 32n, 2n ** 62n]) {
    for (const inner of [GgufValueType.ARRAY, GgufValueType.STRING, GgufValueType.UINT8]) {
      cases.push({ attack: 'nested arrays', what: `array claiming ${count} elements of type ${inner}`, bytes: () => lyingNestedCount(count, inner) });
    }
  }
  // Templates that stop on a size limit at once; one that runs into the step or time limit (nested
  // loops) takes seconds per render and is tested in tests/chat/template-limits.test.ts.
  const templates: Array<[string, string]> = [
    ['range(1e8)', '{% for i in range(100000000) %}x{% endfor %}'],
    ['string times 1e9', "{{ 'x' * 1000000000 }}"],
    ['syntax error', '{% for m in messages %}{{ m.content '],
    ['raise_exception', "{{ raise_exception('no') }}"],
    ['unknown filter', '{{ messages | nosuchfilter }}'],
    ['index far past the end', '{{ messages[1000000000].content }}'],
    ['recursive macro', '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}'],
    ['doubling string', "{% set s = namespace(v='x') %}{% for i in range(64) %}{% set s.v = s.v + s.v %}{% endfor %}{{ s.v }}"],
    ['empty template', ''],
  ];
  for (const [what, template] of templates) edited('chat templates', what, { set: [['tokenizer.chat_template', template, GgufValueType.STRING]] });
  return cases;
}

/** Runs every case; returns the results and a per-class summary. */
export async function runFuzz(perClass?: number, seed?: number): Promise<{ results: FuzzResult[]; summary: Map<AttackClass, { tried: number; failed: number }> }> {
  const results: FuzzResult[] = [];
  for (const c of await fuzzCases(perClass, seed)) results.push(await runCase(c));
  const summary = new Map(ATTACK_CLASSES.map((a) => [a, { tried: 0, failed: 0 }]));
  for (const r of results) {
    const s = summary.get(r.attack)!;
    s.tried++;
    if (r.outcome === 'unnamed') s.failed++;
  }
  return { results, summary };
}
