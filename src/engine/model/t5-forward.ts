/**
 * The encoder-decoder forward pass (llama.cpp's `t5`: T5, Flan-T5) over the backend ops, beside the
 * decoder-only forward.ts. As llama.cpp's graphs (src/models/t5.cpp) and the float64 reference
 * (src/testing/reference-t5.ts) compute it:
 *   encode(input): x = token_embd[input]; per encoder block: x += attn_o · attention(rms_norm(x) ·
 *     attn_norm) over every input token (not causal) with the block's relative position bias
 *     (layer 0's when it has none) and unscaled scores; x += ffn_down · f(rms_norm(x) · ffn_norm)
 *     with f = GELU(gate) ⊙ up (Flan-T5) or ReLU(up) (T5); then e = rms_norm(x) · enc.output_norm,
 *     and every decoder block's cross-attention keys and values of e are stored once.
 *   decode(tokens): per decoder block: causal self-attention with its bias (past buckets only),
 *     cross-attention (q from rms_norm(x) · cross_attn_norm, the stored keys, no bias, no mask), the
 *     FFN; then rms_norm(x) · dec.output_norm and output (token_embd when tied, unscaled).
 * One sequence at a time: `encode` starts it over.
 */
import { HearthError } from '../errors.ts';
import { readGguf } from '../gguf/reader.ts';
import type { RangedSource } from '../gguf/source.ts';
import { assembleGgufModel, type GgufModel } from '../gguf/split.ts';
import type { GgufFile } from '../gguf/types.ts';
import type { Activation, Backend, IdBuffer, KvStorage, RelativeBias, Rows, Vector, Weight } from '../backend/ops.ts';
import { UnsupportedModelError } from './errors.ts';
import { KvCache } from './kv-cache.ts';
import { readT5Config, relativePositionBucket, t5Tensors, type T5ModelConfig } from './t5-config.ts';
import { planT5Load, type PlannedT5Load, type T5LoadOptions } from './t5-plan.ts';
import { tensorUploader } from './tensor-upload.ts';

/** The encoder input is longer than the input capacity the model was loaded with. */
export class T5InputTooLongError extends HearthError {
  override name = 'T5InputTooLongError';
}

export type { T5LoadOptions } from './t5-plan.ts';

interface Block {
  relB: Vector;
  attnNorm: Vector;
  q: Weight;
  k: Weight;
  v: Weight;
  o: Weight;
  ffnNorm: Vector;
  up: Weight;
  gate?: Weight | undefined;
  down: Weight;
  cross?: { norm: Vector; q: Weight; k: Weight; v: Weight; o: Weight } | undefined;
}

interface T5Scratch {
  x: Activation;
  cur: Activation;
  q: Activation;
  k: Activation;
  v: Activation;
  attn: Activation;
  gate: Activation;
  up: Activation;
  /** The FFN's hidden values: GELU(gate) ⊙ up. */
  ffh: Activation;
  logits: Activation;
  tokens: IdBuffer;
  positions: IdBuffer;
  encBuckets: IdBuffer;
  decBuckets: IdBuffer;
}

/** The model a load reads: one file as a one-part model, an opened model, or a planned one's. */
async function asT5File(source: RangedSource | GgufModel | PlannedT5Load, header: GgufFile | undefined): Promise<GgufModel> {
  if ('plan' in source) return source.file;
  if ('tensorsByName' in source) return source;
  return assembleGgufModel([{ file: header ?? (await readGguf(source)), source }]);
}

/** Row views of the scratch: [tokens][width] each. */
type Views = Record<'x' | 'cur' | 'q' | 'k' | 'v' | 'attn' | 'gate' | 'up' | 'ffh', Rows>;

function views(c: T5ModelConfig, s: T5Scratch): Views {
  const E = c.nEmbd;
  const A = c.nHead * c.headDim;
  const F = c.nFf;
  const r = (t: Activation, stride: number): Rows => ({ t, stride });
  return { x: r(s.x, E), cur: r(s.cur, E), q: r(s.q, A), k: r(s.k, A), v: r(s.v, A), attn: r(s.attn, A), gate: r(s.gate, F), up: r(s.up, F), ffh: r(s.ffh, F) };
}

export class T5Model {
  /** Input tokens encoded; 0 before the first `encode`. */
  private inputLength = 0;
  private readonly r: Views;

  private constructor(
    readonly backend: Backend,
    readonly config: T5ModelConfig,
    readonly inputCapacity: number,
    readonly decoderBatch: number,
    private readonly tokenEmbd: Weight,
    private readonly output: Weight,
    private readonly encNorm: Vector,
    private readonly decNorm: Vector,
    private readonly enc: Block[],
    private readonly dec: Block[],
    private readonly s: T5Scratch,
    /** One layer: the encoder's keys and values, rewritten by each block. */
    private readonly encKv: KvStorage,
    /** Per decoder block: the cross-attention keys and values of the encoder output. */
    private readonly crossKv: KvStorage,
    /** The decoder's self-attention cache; its length is the next decoder position. */
    readonly kv: KvCache,
  ) {
    this.r = views(config, s);
  }

  /**
   * Loads a t5 GGUF into `backend` (checked whole first: keys, tensors, memory). `source` is one
   * file (`header`: its header when read already), a model opened with `openGgufModel` (a split
   * model's parts), or one planned for this backend with {@link planT5Load} (its plan fixes the
   * capacities).
   */
  static async load(backend: Backend, source: RangedSource | GgufModel | PlannedT5Load, options: T5LoadOptions = {}, header?: GgufFile): Promise<T5Model> {
    const file = await asT5File(source, header);
    const c = readT5Config(file);
    if (!backend.relativeAttention) throw new UnsupportedModelError(`t5 (encoder-decoder) models do not run on the ${backend.kind} backend yet`, { architecture: 't5', backend: backend.kind });
    if (!c.gatedGelu && !backend.relu) throw new UnsupportedModelError(`t5 with a ReLU FFN does not run on the ${backend.kind} backend yet`, { architecture: 't5', backend: backend.kind });

    const { plan } = 'plan' in source ? source : planT5Load(file, backend, options);
    const { inputCapacity: inCap, outputCapacity: outCap, decoderBatch: batch } = plan;
    const specs = t5Tensors(c);
    const total = specs.reduce((sum, spec) => sum + (file.tensorsByName.get(spec.name)?.byteSize ?? 0), 0);
    const { matrix, vector } = tensorUploader(backend, file.tensorsByName, options.onProgress, total);
    const has = (name: string) => file.tensorsByName.has(name);
    const blocks = async (stack: 'enc' | 'dec', n: number): Promise<Block[]> => {
      const out: Block[] = [];
      for (let il = 0; il < n; il++) {
        const b = `${stack}.blk.${il}.`;
        const rel = has(`${b}attn_rel_b.weight`) ? await vector(`${b}attn_rel_b.weight`) : out[0]!.relB;
        out.push({
          relB: rel,
          attnNorm: await vector(`${b}attn_norm.weight`),
          q: await matrix(`${b}attn_q.weight`),
          k: await matrix(`${b}attn_k.weight`),
          v: await matrix(`${b}attn_v.weight`),
          o: await matrix(`${b}attn_o.weight`),
          ffnNorm: await vector(`${b}ffn_norm.weight`),
          up: await matrix(`${b}ffn_up.weight`),
          gate: c.gatedGelu ? await matrix(`${b}ffn_gate.weight`) : undefined,
          down: await matrix(`${b}ffn_down.weight`),
          cross:
            stack === 'dec'
              ? {
                  norm: await vector(`${b}cross_attn_norm.weight`),
                  q: await matrix(`${b}cross_attn_q.weight`),
                  k: await matrix(`${b}cross_attn_k.weight`),
                  v: await matrix(`${b}cross_attn_v.weight`),
                  o: await matrix(`${b}cross_attn_o.weight`),
                }
              : undefined,
        });
      }
      return out;
    };
    const enc = await blocks('enc', c.nEncLayer);
    const dec = await blocks('dec', c.nDecLayer);
    const tokenEmbd = await matrix('token_embd.weight');
    const output = c.tiedEmbeddings ? tokenEmbd : await matrix('output.weight');
    const encNorm = await vector('enc.output_norm.weight');
    const decNorm = await vector('dec.output_norm.weight');

    const A = c.nHead * c.headDim;
    const rows = Math.max(inCap, batch);
    const act = (name: string, width: number) => backend.activation(`t5.${name}`, rows * width);
    const s: T5Scratch = {
      x: act('x', c.nEmbd),
      cur: act('cur', c.nEmbd),
      q: act('q', A),
      k: act('k', A),
      v: act('v', A),
      attn: act('attn', A),
      gate: act('gate', c.nFf),
      up: act('up', c.nFf),
      ffh: act('ffh', c.nFf),
      logits: backend.activation('t5.logits', batch * c.nVocab),
      tokens: backend.ids('t5.tokens', rows),
      positions: backend.ids('t5.positions', rows),
      encBuckets: backend.ids('t5.encBuckets', 2 * inCap - 1),
      decBuckets: backend.ids('t5.decBuckets', outCap),
    };
    // Buckets of every relative position a query can meet: key - query in (-inCap, inCap) in the
    // encoder (index + inCap - 1), (-outCap, 0] in the decoder (index + outCap - 1).
    backend.begin();
    backend.writeIds(s.encBuckets, Uint32Array.from({ length: 2 * inCap - 1 }, (_, i) => relativePositionBucket(i - (inCap - 1), 0, c.buckets, true)));
    backend.writeIds(s.decBuckets, Uint32Array.from({ length: outCap }, (_, i) => relativePositionBucket(i - (outCap - 1), 0, c.buckets, false)));
    backend.submit();
    const layout = (layers: number, cap: number) => ({ layers, capacity: cap, kvHeads: c.nHead, headDim: c.headDim });
    const encKv = backend.kvStorage(layout(1, inCap));
    const crossKv = backend.kvStorage(layout(c.nDecLayer, inCap));
    const kv = new KvCache(backend.kvStorage(layout(c.nDecLayer, outCap)));
    return new T5Model(backend, c, inCap, batch, tokenEmbd, output, encNorm, decNorm, enc, dec, s, encKv, crossKv, kv);
  }

  /** Decoder positions the model was loaded for (its self-attention cache). */
  get outputCapacity(): number {
    return this.kv.capacity;
  }

  /** Frees the backend the model was loaded into (GPU buffers, or CPU workers and memory): it owns it. */
  destroy(): void {
    this.backend.destroy();
  }

  private checkTokens(tokens: readonly number[]): void {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.config.nVocab) throw new RangeError(`token ${t} outside the vocabulary of ${this.config.nVocab}`);
    }
  }

  /** The input's encoder pass; the decoder starts over (its first token is usually config.decoderStart). */
  async encode(input: readonly number[]): Promise<void> {
    const n = input.length;
    if (n < 1) throw new RangeError('t5: the encoder needs at least one input token');
    if (n > this.inputCapacity) {
      throw new T5InputTooLongError(`the input has ${n} tokens; this t5 model was loaded for at most ${this.inputCapacity}`, { tokens: n, capacity: this.inputCapacity });
    }
    this.checkTokens(input);
    const { backend: b, config: c, s } = this;
    const { x, cur, k, v } = this.r;
    b.begin();
    b.writeIds(s.tokens, Uint32Array.from(input));
    b.writeIds(s.positions, Uint32Array.from({ length: n }, (_, i) => i));
    b.embed(this.tokenEmbd, s.tokens, x, n, 1);
    const bias = (table: Vector): RelativeBias => ({ table, bucketIds: s.encBuckets, offset: this.inputCapacity - 1 });
    for (const blk of this.enc) {
      this.selfAttention(blk, this.encKv, 0, n, n, { causal: false, bias: bias(blk.relB) });
      this.ffn(blk, n);
    }
    b.norm('rms', x, cur, c.nEmbd, n, c.normEps, this.encNorm);
    // The cross-attention keys and values of every decoder block, once per input.
    this.dec.forEach((blk, il) => {
      b.matmul(blk.cross!.k, cur, k, n);
      b.matmul(blk.cross!.v, cur, v, n);
      b.kvWrite(this.crossKv, il, k, v, s.positions, n);
    });
    b.submit();
    this.inputLength = n;
    this.kv.reset();
  }

  /** The encoder's normalized output of the last `encode`, [input][nEmbd] (until the next decode step). */
  async encoded(): Promise<Float32Array> {
    return this.backend.read(this.s.cur, this.inputLength * this.config.nEmbd);
  }

  /**
   * Appends decoder tokens at the next positions and returns the logits of rows `logitsFrom ..<`
   * tokens.length, [rows][nVocab]. Steps of up to `decoderBatch` tokens.
   */
  async decode(tokens: readonly number[], logitsFrom = 0): Promise<Float32Array> {
    if (this.inputLength === 0) throw new RangeError('t5: encode an input before decoding');
    if (!Number.isInteger(logitsFrom) || logitsFrom < 0 || logitsFrom > tokens.length) throw new RangeError(`logitsFrom ${logitsFrom} outside 0..${tokens.length}`);
    this.checkTokens(tokens);
    this.kv.checkRoom(tokens.length);
    const V = this.config.nVocab;
    const out = new Float32Array((tokens.length - logitsFrom) * V);
    for (let at = 0; at < tokens.length; at += this.decoderBatch) {
      const chunk = tokens.slice(at, at + this.decoderBatch);
      const from = Math.max(0, logitsFrom - at);
      const rows = await this.decodeStep(chunk, from);
      if (rows > 0) out.set(await this.backend.read(this.s.logits, rows * V), (at + from - logitsFrom) * V);
    }
    return out;
  }

  private async decodeStep(tokens: readonly number[], logitsFrom: number): Promise<number> {
    const { backend: b, config: c, s } = this;
    const n = tokens.length;
    const E = c.nEmbd;
    const start = this.kv.length;
    const { x, cur, q, attn } = this.r;
    b.begin();
    b.writeIds(s.tokens, Uint32Array.from(tokens));
    b.writeIds(s.positions, Uint32Array.from({ length: n }, (_, i) => start + i));
    b.embed(this.tokenEmbd, s.tokens, x, n, 1);
    const bias = (table: Vector): RelativeBias => ({ table, bucketIds: s.decBuckets, offset: this.kv.capacity - 1 });
    this.dec.forEach((blk, il) => {
      this.selfAttention(blk, this.kv.storage, il, n, start + n, { causal: true, bias: bias(blk.relB) });
      const cross = blk.cross!;
      b.norm('rms', x, cur, E, n, c.normEps, cross.norm);
      b.matmul(cross.q, cur, q, n);
      b.attention(this.crossKv, il, q, attn, s.positions, n, c.nHead, this.inputLength, { scale: 1, softcap: 0, window: 0, causal: false });
      b.matmul(cross.o, attn, cur, n);
      b.add(x, cur, x, E, n);
      this.ffn(blk, n);
    });
    const rows = n - logitsFrom;
    if (rows > 0) {
      b.norm('rms', { t: s.x, stride: E, offset: logitsFrom * E }, cur, E, rows, c.normEps, this.decNorm);
      b.matmul(this.output, cur, { t: s.logits, stride: c.nVocab }, rows);
    }
    b.submit();
    this.kv.advance(n);
    return rows;
  }

  /** x += attn_o · attention(rms_norm(x) · attn_norm), its keys and values stored in `cache` layer `layer` at s.positions. */
  private selfAttention(blk: Block, cache: KvStorage, layer: number, n: number, kvLength: number, op: { causal: boolean; bias: RelativeBias }): void {
    const { backend: b, config: c, s } = this;
    const E = c.nEmbd;
    const { x, cur, q, k, v, attn } = this.r;
    b.norm('rms', x, cur, E, n, c.normEps, blk.attnNorm);
    b.matmul(blk.q, cur, q, n);
    b.matmul(blk.k, cur, k, n);
    b.matmul(blk.v, cur, v, n);
    b.kvWrite(cache, layer, k, v, s.positions, n);
    // T5 folds 1/sqrt(head_dim) into its weights: unscaled scores.
    b.attention(cache, layer, q, attn, s.positions, n, c.nHead, kvLength, { scale: 1, softcap: 0, window: 0, ...op });
    b.matmul(blk.o, attn, cur, n);
    b.add(x, cur, x, E, n);
  }

  /** x += ffn_down · (GELU(gate) ⊙ up, or ReLU(up)) of rms_norm(x) · ffn_norm. */
  private ffn(blk: Block, n: number): void {
    const { backend: b, config: c } = this;
    const E = c.nEmbd;
    const F = c.nFf;
    const { x, cur, up, gate, ffh } = this.r;
    b.norm('rms', x, cur, E, n, c.normEps, blk.ffnNorm);
    b.matmul(blk.up, cur, up, n);
    if (blk.gate) {
      b.matmul(blk.gate, cur, gate, n);
      b.glu('gelu', gate, up, ffh, F, n);
      b.matmul(blk.down, ffh, cur, n);
    } else {
      b.relu!(up, up, F, n);
      b.matmul(blk.down, up, cur, n);
    }
    b.add(x, cur, x, E, n);
  }
}
