/**
 * Mixture-of-experts hyperparameters: how many experts a block has, how many each token uses, their
 * FFN width, the shared expert, and how the router turns its logits into expert weights. Read from
 * GGUF keys and per-architecture rules that are llama.cpp's (src/llama-model.cpp `load_hparams`,
 * src/models/{llama,granite,qwen2moe,qwen3moe}.cpp `load_arch_hparams` / `load_arch_tensors` and
 * the arguments each graph passes to `build_moe_ffn` in src/llama-graph.cpp).
 *
 * Routing, for every architecture here: probabilities = softmax (or sigmoid) of the router logits
 * over all experts; the `used` largest are chosen; their probabilities are the weights, divided by
 * their sum when `normalize` (clamped below at 2^-14 as llama.cpp does), times `weightsScale` when
 * that is neither 0 nor 1. The chosen experts' GLU FFNs run on the token and are summed with those
 * weights; a shared expert (qwen2moe always, granitemoe when keyed) runs on every token and is
 * added, times sigmoid(x · ffn_gate_inp_shexp) for qwen2moe.
 */
import { ModelConfigError } from './errors.ts';

export type ExpertGating = 'softmax' | 'sigmoid';

export interface MoeConfig {
  /** Experts per block (`expert_count`). */
  nExpert: number;
  /** Experts each token uses (`expert_used_count`, top-k). */
  nExpertUsed: number;
  /** Hidden width of one routed expert. */
  nFfExp: number;
  /** Hidden width of the shared expert; 0 when there is none. */
  nFfShexp: number;
  /** The shared expert's output is scaled by sigmoid(x · ffn_gate_inp_shexp) (qwen2moe). */
  sharedGate: boolean;
  gating: ExpertGating;
  /** Divide the chosen experts' weights by their sum. */
  normalize: boolean;
  /** Multiplier of the chosen experts' weights; 1 when none. */
  weightsScale: number;
}

/** The per-architecture MoE rules that are not in the file. */
export interface MoeRules {
  /** `build_moe_ffn`'s norm_w argument in the architecture's graph. */
  normalize: boolean;
  /**
   * Routed expert width: `'ff'` is feed_forward_length (llama, granite); `'keyed-or-ff-per-used'`
   * is expert_feed_forward_length, else feed_forward_length / expert_used_count (qwen2moe, qwen3moe).
   */
  expertFf: 'ff' | 'keyed-or-ff-per-used';
  /**
   * `'none'`; `'keyed'`: a shared expert when expert_shared_feed_forward_length > 0 (granite);
   * `'gated'`: always one, of that width or feed_forward_length, with its sigmoid gate (qwen2moe).
   */
  shared: 'none' | 'keyed' | 'gated';
  /** Files of the architecture must have experts (qwen2moe, qwen3moe, granitemoe). */
  required: boolean;
}

/** What readMoeConfig needs of config.ts's key reader (GGUF key names are `{arch}.` + these). */
export interface MoeKeys {
  key(name: 'expertCount' | 'expertUsedCount' | 'expertFeedForwardLength' | 'expertSharedFeedForwardLength'): string;
  int(name: 'expertCount' | 'expertSharedFeedForwardLength'): number | undefined;
  perLayer(name: 'expertUsedCount' | 'expertFeedForwardLength', nLayer: number): number[] | undefined;
}

/** Largest expert count we accept (llama.cpp's LLAMA_MAX_EXPERTS). */
export const MAX_EXPERTS = 512;

function fail(message: string, detail: Record<string, unknown>): never {
  throw new ModelConfigError(message, detail);
}

function uniformOf(keys: MoeKeys, name: 'expertUsedCount' | 'expertFeedForwardLength', values: number[]): number {
  const first = values[0]!;
  if (values.some((v) => v !== first)) fail(`GGUF key '${keys.key(name)}' varies by layer (${values.join(', ')}); only uniform values are supported`, { key: keys.key(name) });
  return first;
}

/**
 * The MoE config of a file, or undefined for a dense one (no or zero `expert_count`). `nFf` is the
 * per-layer feed_forward_length (uniform for MoE files).
 */
export function readMoeConfig(arch: string, rules: MoeRules, keys: MoeKeys, nLayer: number, nFf: number[]): MoeConfig | undefined {
  const nExpert = keys.int('expertCount') ?? 0;
  if (!Number.isSafeInteger(nExpert) || nExpert < 0) fail(`GGUF key '${keys.key('expertCount')}' = ${nExpert} must not be negative`, { key: keys.key('expertCount'), value: nExpert });
  if (nExpert === 0) {
    if (rules.required) fail(`${arch}: '${keys.key('expertCount')}' must be positive for a mixture-of-experts architecture`, { key: keys.key('expertCount') });
    return undefined;
  }
  if (nExpert > MAX_EXPERTS) fail(`GGUF key '${keys.key('expertCount')}' = ${nExpert} is over the limit of ${MAX_EXPERTS}`, { key: keys.key('expertCount'), value: nExpert });
  const used = keys.perLayer('expertUsedCount', nLayer);
  const nExpertUsed = used ? uniformOf(keys, 'expertUsedCount', used) : 0;
  if (!Number.isSafeInteger(nExpertUsed) || nExpertUsed < 1 || nExpertUsed > nExpert) {
    fail(`${arch}: '${keys.key('expertUsedCount')}' = ${nExpertUsed} must be between 1 and the expert count ${nExpert}`, { key: keys.key('expertUsedCount'), value: nExpertUsed, nExpert });
  }
  const ff = nFf[0]!;
  if (nFf.some((v) => v !== ff)) fail(`${arch}: feed_forward_length varies by layer in a mixture-of-experts model; not supported`, { nFf });
  let nFfExp = ff;
  if (rules.expertFf === 'keyed-or-ff-per-used') {
    const keyed = keys.perLayer('expertFeedForwardLength', nLayer);
    nFfExp = keyed ? uniformOf(keys, 'expertFeedForwardLength', keyed) : 0;
    if (nFfExp === 0) nFfExp = Math.floor(ff / nExpertUsed);
  }
  if (!Number.isSafeInteger(nFfExp) || nFfExp < 1) fail(`${arch}: expert feed-forward length ${nFfExp} must be a positive integer`, { key: keys.key('expertFeedForwardLength'), value: nFfExp });
  let nFfShexp = 0;
  if (rules.shared !== 'none') {
    const keyed = keys.int('expertSharedFeedForwardLength') ?? 0;
    if (!Number.isSafeInteger(keyed) || keyed < 0) fail(`GGUF key '${keys.key('expertSharedFeedForwardLength')}' = ${keyed} must not be negative`, { key: keys.key('expertSharedFeedForwardLength') });
    nFfShexp = rules.shared === 'gated' && keyed === 0 ? ff : keyed;
  }
  return {
    nExpert,
    nExpertUsed,
    nFfExp,
    nFfShexp,
    sharedGate: rules.shared === 'gated',
    // Every architecture here passes LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX and never reads
    // expert_gating_func or expert_weights_scale (hparams.expert_weights_scale stays 0: no scaling).
    gating: 'softmax',
    normalize: rules.normalize,
    weightsScale: 1,
  };
}
