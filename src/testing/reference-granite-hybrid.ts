/**
 * A float64 reference forward for llama.cpp's `granitehybrid` architecture (IBM's Granite 4.0-H,
 * dense FFN): Mamba2 layers and attention layers (head_count_kv 0 marks a Mamba2 layer), granite's
 * scales; checked against llama.cpp in tests/model/reference-recurrent.test.ts. As llama.cpp's
 * llama_model_granite_hybrid graph (src/models/granite-hybrid.cpp):
 *   x = token_embd[id] * embedding_scale
 *   per layer: h = rms_norm(x) * attn_norm; m = mamba2Mixer(h) or attention(h) (no RoPE when
 *     rope.scaling.finetuned is false, q·k scaled by attention.scale);
 *     f = x + m * residual_scale;  x = f + ffn(rms_norm(f) * ffn_norm) * residual_scale
 *   logits = output · (rms_norm(x) * output_norm) / logit_scale
 * The mixer and the attention step are reference-mamba2.ts's and reference-lfm2.ts's, the experts
 * (Granite 4.0-H Tiny/Small) reference-moe.ts's. Not covered: RoPE-enabled files (Bamba).
 */
import { findBoolean, findNumber, getInteger } from '../engine/gguf/metadata.ts';
import type { RangedSource } from '../engine/gguf/source.ts';
import type { GgufFile } from '../engine/gguf/types.ts';
import type { MoeConfig } from '../engine/model/moe-config.ts';
import { attentionStep } from './reference-lfm2.ts';
import { referenceMoeFfn } from './reference-moe.ts';
import { mamba2LayerState, mamba2Mixer, type Mamba2Sizes } from './reference-mamba2.ts';
import { RecurrentReferenceError, evalTokens, loadGgufWeights, perLayerKvHeads, readCommonConfig, type RecurrentReferenceModel, rmsNormInPlace, silu, swigluFfn, tensor } from './reference-recurrent.ts';

export interface GraniteHybridConfig extends Mamba2Sizes {
  nLayer: number;
  nVocab: number;
  nFf: number;
  nHead: number;
  /** Per layer; 0 marks a Mamba2 layer. */
  nHeadKv: number[];
  /** The attention head size. */
  attnHeadDim: number;
  embeddingScale: number;
  residualScale: number;
  logitScale: number;
  attentionScale: number;
  /** Granite 4.0-H Tiny/Small: experts in every layer's FFN (softmax routing, normalized weights, an ungated shared expert). */
  moe: MoeConfig | undefined;
}

export type GraniteHybridReferenceModel = RecurrentReferenceModel<GraniteHybridConfig>;

export function readGraniteHybridConfig(file: GgufFile): GraniteHybridConfig {
  const { key: k, nLayer, nEmbd, nVocab, rmsEps } = readCommonConfig(file, 'granitehybrid');
  if (findBoolean(file, k('rope.scaling.finetuned')) !== false) throw new RecurrentReferenceError('granitehybrid with RoPE (rope.scaling.finetuned not false) is not covered by this reference');
  const nHead = getInteger(file, k('attention.head_count'));
  const nHeadKv = perLayerKvHeads(file, k('attention.head_count_kv'), nLayer);
  const inner = getInteger(file, k('ssm.inner_size'));
  const heads = getInteger(file, k('ssm.time_step_rank'));
  const attnHeadDim = findNumber(file, k('attention.key_length')) ?? nEmbd / nHead;
  const config: GraniteHybridConfig = {
    nEmbd,
    nLayer,
    nVocab,
    nFf: getInteger(file, k('feed_forward_length')),
    nHead,
    nHeadKv,
    attnHeadDim,
    inner,
    state: getInteger(file, k('ssm.state_size')),
    heads,
    headDim: inner / heads,
    groups: getInteger(file, k('ssm.group_count')),
    convKernel: getInteger(file, k('ssm.conv_kernel')),
    rmsEps,
    // llama.cpp: 0 or absent means no scaling.
    embeddingScale: findNumber(file, k('embedding_scale')) || 1,
    residualScale: findNumber(file, k('residual_scale')) || 1,
    logitScale: findNumber(file, k('logit_scale')) || 1,
    attentionScale: findNumber(file, k('attention.scale')) || 1 / Math.sqrt(attnHeadDim),
    moe: undefined,
  };
  const nExpert = findNumber(file, k('expert_count')) ?? 0;
  if (nExpert > 0) {
    // As llama_model_granite_hybrid's build_moe_ffn call: softmax gating, norm_w true, experts
    // feed_forward_length wide, the shared expert added without a gate.
    config.moe = {
      nExpert,
      nExpertUsed: getInteger(file, k('expert_used_count')),
      nFfExp: config.nFf,
      nFfShexp: findNumber(file, k('expert_shared_feed_forward_length')) ?? 0,
      sharedGate: false,
      gating: 'softmax',
      normalize: true,
      weightsScale: findNumber(file, k('expert_weights_scale')) ?? 0,
    };
  }
  if (!Number.isInteger(config.headDim) || heads % config.groups !== 0 || !Number.isInteger(attnHeadDim) || nHeadKv.some((h) => h !== 0 && nHead % h !== 0)) {
    throw new RecurrentReferenceError(`inconsistent granitehybrid sizes: inner ${inner}, SSM heads ${heads}, groups ${config.groups}, heads ${nHead}, kv heads ${nHeadKv.join(',')}`);
  }
  return config;
}

/** Reads a granitehybrid GGUF (a path or a ranged source) and dequantizes every tensor. */
export async function loadGraniteHybridReference(source: RangedSource | string): Promise<GraniteHybridReferenceModel> {
  return loadGgufWeights(source, readGraniteHybridConfig);
}

/** One sequence: the Mamba2 layers' conv and scan states, the attention layers' keys and values. */
export class GraniteHybridReferenceSession {
  readonly config: GraniteHybridConfig;
  private readonly model: GraniteHybridReferenceModel;
  private readonly ssm: Array<{ conv: Float64Array; ssm: Float64Array } | undefined>;
  private readonly keys: Float64Array[][];
  private readonly values: Float64Array[][];
  private nPast = 0;

  constructor(model: GraniteHybridReferenceModel) {
    this.model = model;
    const c = (this.config = model.config);
    this.ssm = c.nHeadKv.map((kv) => (kv === 0 ? mamba2LayerState(c) : undefined));
    this.keys = c.nHeadKv.map(() => []);
    this.values = c.nHeadKv.map(() => []);
  }

  /** An independent copy of this session's state (a turn-boundary snapshot to continue from). */
  clone(): GraniteHybridReferenceSession {
    const copy = new GraniteHybridReferenceSession(this.model);
    this.ssm.forEach((st, i) => {
      if (!st) return;
      copy.ssm[i]!.conv.set(st.conv);
      copy.ssm[i]!.ssm.set(st.ssm);
    });
    // Cached keys and values are never written after they are pushed: sharing them is safe.
    this.keys.forEach((k, i) => copy.keys[i]!.push(...k));
    this.values.forEach((v, i) => copy.values[i]!.push(...v));
    copy.nPast = this.nPast;
    return copy;
  }

  /** Feeds `tokens` after everything fed before; returns their logits, [tokens][nVocab]. */
  eval(tokens: readonly number[]): Float64Array {
    const c = this.config;
    const opts = { outputNorm: 'output_norm.weight', embeddingScale: c.embeddingScale, logitScale: c.logitScale };
    return evalTokens(this.model.weights, c, tokens, opts, (il, x) => this.layer(il, x), () => this.nPast++);
  }

  private layer(il: number, x: Float64Array): void {
    const c = this.config;
    const E = c.nEmbd;
    const b = `blk.${il}.`;
    const w = (name: string) => tensor(this.model.weights, name);
    const h = x.slice();
    rmsNormInPlace(h, 0, E, c.rmsEps, w(`${b}attn_norm.weight`));
    const st = this.ssm[il];
    const mixed = st
      ? mamba2Mixer(this.model.weights, c, il, h, st.conv, st.ssm)
      : attentionStep(this.model.weights, { nEmbd: E, nHead: c.nHead, nHeadKv: c.nHeadKv[il]!, headDim: c.attnHeadDim, rmsEps: c.rmsEps, ropeBase: undefined, qkNorm: false, scale: c.attentionScale }, il, h, this.keys[il]!, this.values[il]!, this.nPast);
    for (let i = 0; i < E; i++) x[i] = x[i]! + mixed[i]! * c.residualScale;

    const n = x.slice();
    rmsNormInPlace(n, 0, E, c.rmsEps, w(`${b}ffn_norm.weight`));
    const weights = this.model.weights;
    const down = c.moe ? referenceMoeFfn(c.moe, E, (name) => tensor(weights, name), (name) => weights.get(name), il, n, silu).out : swigluFfn(weights, il, n, E, c.nFf);
    for (let i = 0; i < E; i++) x[i] = x[i]! + down[i]! * c.residualScale;
  }
}
