/**
 * The backend's `moeFfn` op for one block of a mixture-of-experts model: its weights, routing rules
 * (moe-config.ts) and the scratch the loader sized for it (layer-tensors.ts names which buffers).
 */
import type { MoeFfnOp } from '../backend/ops.ts';
import type { LayerWeights } from './layer-tensors.ts';
import type { Scratch } from './loader.ts';
import type { MoeConfig } from './moe-config.ts';

export function moeFfnOp(moe: MoeConfig, activation: 'silu' | 'gelu', lw: LayerWeights, s: Scratch): MoeFfnOp {
  const shared = lw.ffnGateShexp && lw.ffnUpShexp && lw.ffnDownShexp
    ? { gate: lw.ffnGateShexp, up: lw.ffnUpShexp, down: lw.ffnDownShexp, nFf: moe.nFfShexp, gateInp: lw.ffnGateInpShexp }
    : undefined;
  return {
    router: lw.ffnGateInp!,
    gate: lw.ffnGateExps!,
    up: lw.ffnUpExps!,
    down: lw.ffnDownExps!,
    nExpert: moe.nExpert,
    used: moe.nExpertUsed,
    nFf: moe.nFfExp,
    gating: moe.gating,
    normalize: moe.normalize,
    weightsScale: moe.weightsScale,
    activation,
    shared,
    scratch: { logits: s.moeLogits!, x: s.moeX!, gate: s.moeGate!, up: s.moeUp!, h: s.moeH!, y: s.moeY! },
  };
}
