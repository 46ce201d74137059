/**
 * Every WGSL file, by file name, for the preprocessor's includes. Imported with Vite's `?raw`
 * (the CLI registers a Node hook that does the same), so the shaders stay plain .wgsl files.
 */
import logitMask from './logit_mask.wgsl?raw';
import logitPenalty from './logit_penalty.wgsl?raw';
import logitPenaltyHistory from './logit_penalty_history.wgsl?raw';
import penaltyCommon from './penalty_common.wgsl?raw';
import matmul from './matmul.wgsl?raw';
import matmulRows from './matmul_rows.wgsl?raw';
import matmulIo from './matmul_io.wgsl?raw';
import matmulRowsTile from './matmul_rows_tile.wgsl?raw';
import matmulGrouped from './matmul_grouped.wgsl?raw';
import xF32 from './x_f32.wgsl?raw';
import xVec4 from './x_vec4.wgsl?raw';
import matvec from './matvec.wgsl?raw';
import matvecCommon from './matvec_common.wgsl?raw';
import matvecIndexed from './matvec_indexed.wgsl?raw';
import matvecRowDot from './matvec_row_dot.wgsl?raw';
import moeRoute from './moe_route.wgsl?raw';
import moeCombine from './moe_combine.wgsl?raw';
import moeSort from './moe_sort.wgsl?raw';
import dotGeneric from './dot_generic.wgsl?raw';
import dotQ4_0 from './dot_q4_0.wgsl?raw';
import dotQ4K from './dot_q4_k.wgsl?raw';
import dotQ5K from './dot_q5_k.wgsl?raw';
import dotQ6K from './dot_q6_k.wgsl?raw';
import dotQ8_0 from './dot_q8_0.wgsl?raw';
import quantCommon from './quant_common.wgsl?raw';
import reduceSum from './reduce_sum.wgsl?raw';
import topkSelectWgsl from './topk_select.wgsl?raw';
import sampleFinishWgsl from './sample_finish.wgsl?raw';
import sampleCandidatesWgsl from './sample_candidates.wgsl?raw';
import attentionPrefillWgsl from './attention_prefill.wgsl?raw';
import attentionChunksWgsl from './attention_chunks.wgsl?raw';
import attentionCombineWgsl from './attention_combine.wgsl?raw';
import attentionDecodeWgsl from './attention_decode.wgsl?raw';
import attentionBiasNoneWgsl from './attention_bias_none.wgsl?raw';
import attentionBiasRelativeWgsl from './attention_bias_relative.wgsl?raw';
import kvWriteWgsl from './kv_write.wgsl?raw';
import kvF16Wgsl from './kv_f16.wgsl?raw';
import kvF32Wgsl from './kv_f32.wgsl?raw';
import ropeWgsl from './rope.wgsl?raw';
import softcapWgsl from './softcap.wgsl?raw';
import softmaxWgsl from './softmax.wgsl?raw';
import gluWgsl from './glu.wgsl?raw';
import elementwiseWgsl from './elementwise.wgsl?raw';
import ioInPlaceWgsl from './io_in_place.wgsl?raw';
import ioSeparateWgsl from './io_separate.wgsl?raw';
import normWgsl from './norm.wgsl?raw';
import addNormWgsl from './add_norm.wgsl?raw';
import ropeKvWriteWgsl from './rope_kv_write.wgsl?raw';
import ropeCommonWgsl from './rope_common.wgsl?raw';
import gluCommonWgsl from './glu_common.wgsl?raw';
import workgroupSumWgsl from './workgroup_sum.wgsl?raw';
import ropeQkvSeparateWgsl from './rope_qkv_separate.wgsl?raw';
import ropeQkvSharedWgsl from './rope_qkv_shared.wgsl?raw';
import weightsBf16 from './weights_bf16.wgsl?raw';
import weightsF16 from './weights_f16.wgsl?raw';
import weightsF32 from './weights_f32.wgsl?raw';
import weightsQ8_0 from './weights_q8_0.wgsl?raw';
import embed from './embed.wgsl?raw';
import matvecSubgroup from './matvec_subgroup.wgsl?raw';
import quantHalf from './quant_half.wgsl?raw';
import quantIq4Common from './quant_iq4_common.wgsl?raw';
import quantKCommon from './quant_k_common.wgsl?raw';
import weightsIq4Nl from './weights_iq4_nl.wgsl?raw';
import weightsIq4Xs from './weights_iq4_xs.wgsl?raw';
import weightsQ2K from './weights_q2_k.wgsl?raw';
import weightsQ3K from './weights_q3_k.wgsl?raw';
import weightsQ4_0 from './weights_q4_0.wgsl?raw';
import weightsQ4_1 from './weights_q4_1.wgsl?raw';
import weightsQ4K from './weights_q4_k.wgsl?raw';
import weightsQ5_0 from './weights_q5_0.wgsl?raw';
import weightsQ5_1 from './weights_q5_1.wgsl?raw';
import weightsQ5K from './weights_q5_k.wgsl?raw';
import weightsQ6K from './weights_q6_k.wgsl?raw';
import ssmConvWgsl from './ssm_conv.wgsl?raw';
import ssmScanWgsl from './ssm_scan.wgsl?raw';
import ssmInputsSharedWgsl from './ssm_inputs_shared.wgsl?raw';
import ssmInputsSeparateWgsl from './ssm_inputs_separate.wgsl?raw';
import gatedNormWgsl from './gated_norm.wgsl?raw';
import zSeparateWgsl from './z_separate.wgsl?raw';
import zInYWgsl from './z_in_y.wgsl?raw';
import regionWgsl from './region.wgsl?raw';
import bSeparateWgsl from './b_separate.wgsl?raw';
import bInDstWgsl from './b_in_dst.wgsl?raw';
import ssmScanChunkedWgsl from './ssm_scan_chunked.wgsl?raw';
import ssmScanCommonWgsl from './ssm_scan_common.wgsl?raw';
import trainAttentionDscoresWgsl from './train_attention_dscores.wgsl?raw';
import trainAttentionMixWgsl from './train_attention_mix.wgsl?raw';
import trainAttentionMixTWgsl from './train_attention_mix_t.wgsl?raw';
import trainAttentionProbsWgsl from './train_attention_probs.wgsl?raw';
import trainCrossEntropyWgsl from './train_cross_entropy.wgsl?raw';
import trainDequantWgsl from './train_dequant.wgsl?raw';
import trainGemmWgsl from './train_gemm.wgsl?raw';
import trainRmsNormWgsl from './train_rms_norm.wgsl?raw';
import trainRmsNormBackwardWgsl from './train_rms_norm_backward.wgsl?raw';
import trainRopeWgsl from './train_rope.wgsl?raw';
import trainSwigluWgsl from './train_swiglu.wgsl?raw';
import trainSwigluBackwardWgsl from './train_swiglu_backward.wgsl?raw';

export const SHADERS: Readonly<Record<string, string>> = {
  'ssm_scan_common.wgsl': ssmScanCommonWgsl,
  'ssm_scan_chunked.wgsl': ssmScanChunkedWgsl,
  'b_separate.wgsl': bSeparateWgsl,
  'b_in_dst.wgsl': bInDstWgsl,
  'ssm_conv.wgsl': ssmConvWgsl,
  'ssm_scan.wgsl': ssmScanWgsl,
  'ssm_inputs_shared.wgsl': ssmInputsSharedWgsl,
  'ssm_inputs_separate.wgsl': ssmInputsSeparateWgsl,
  'gated_norm.wgsl': gatedNormWgsl,
  'z_separate.wgsl': zSeparateWgsl,
  'z_in_y.wgsl': zInYWgsl,
  'region.wgsl': regionWgsl,
  'logit_mask.wgsl': logitMask,
  'logit_penalty.wgsl': logitPenalty,
  'logit_penalty_history.wgsl': logitPenaltyHistory,
  'penalty_common.wgsl': penaltyCommon,
  'matmul.wgsl': matmul,
  'matmul_rows.wgsl': matmulRows,
  'matmul_io.wgsl': matmulIo,
  'matmul_rows_tile.wgsl': matmulRowsTile,
  'matmul_grouped.wgsl': matmulGrouped,
  'x_f32.wgsl': xF32,
  'x_vec4.wgsl': xVec4,
  'matvec.wgsl': matvec,
  'matvec_common.wgsl': matvecCommon,
  'matvec_indexed.wgsl': matvecIndexed,
  'matvec_row_dot.wgsl': matvecRowDot,
  'moe_route.wgsl': moeRoute,
  'moe_combine.wgsl': moeCombine,
  'moe_sort.wgsl': moeSort,
  'dot_generic.wgsl': dotGeneric,
  'dot_q4_0.wgsl': dotQ4_0,
  'dot_q4_k.wgsl': dotQ4K,
  'dot_q5_k.wgsl': dotQ5K,
  'dot_q6_k.wgsl': dotQ6K,
  'dot_q8_0.wgsl': dotQ8_0,
  'quant_common.wgsl': quantCommon,
  'reduce_sum.wgsl': reduceSum,
  'topk_select.wgsl': topkSelectWgsl,
  'sample_finish.wgsl': sampleFinishWgsl,
  'sample_candidates.wgsl': sampleCandidatesWgsl,
  'attention_prefill.wgsl': attentionPrefillWgsl,
  'attention_chunks.wgsl': attentionChunksWgsl,
  'attention_combine.wgsl': attentionCombineWgsl,
  'attention_decode.wgsl': attentionDecodeWgsl,
  'attention_bias_none.wgsl': attentionBiasNoneWgsl,
  'attention_bias_relative.wgsl': attentionBiasRelativeWgsl,
  'kv_write.wgsl': kvWriteWgsl,
  'kv_f16.wgsl': kvF16Wgsl,
  'kv_f32.wgsl': kvF32Wgsl,
  'rope.wgsl': ropeWgsl,
  'softcap.wgsl': softcapWgsl,
  'softmax.wgsl': softmaxWgsl,
  'glu.wgsl': gluWgsl,
  'elementwise.wgsl': elementwiseWgsl,
  'io_in_place.wgsl': ioInPlaceWgsl,
  'io_separate.wgsl': ioSeparateWgsl,
  'norm.wgsl': normWgsl,
  'add_norm.wgsl': addNormWgsl,
  'rope_kv_write.wgsl': ropeKvWriteWgsl,
  'rope_common.wgsl': ropeCommonWgsl,
  'glu_common.wgsl': gluCommonWgsl,
  'workgroup_sum.wgsl': workgroupSumWgsl,
  'rope_qkv_separate.wgsl': ropeQkvSeparateWgsl,
  'rope_qkv_shared.wgsl': ropeQkvSharedWgsl,
  'weights_bf16.wgsl': weightsBf16,
  'weights_f16.wgsl': weightsF16,
  'weights_f32.wgsl': weightsF32,
  'weights_q8_0.wgsl': weightsQ8_0,
  'embed.wgsl': embed,
  'matvec_subgroup.wgsl': matvecSubgroup,
  'quant_half.wgsl': quantHalf,
  'quant_iq4_common.wgsl': quantIq4Common,
  'quant_k_common.wgsl': quantKCommon,
  'weights_iq4_nl.wgsl': weightsIq4Nl,
  'weights_iq4_xs.wgsl': weightsIq4Xs,
  'weights_q2_k.wgsl': weightsQ2K,
  'weights_q3_k.wgsl': weightsQ3K,
  'weights_q4_0.wgsl': weightsQ4_0,
  'weights_q4_1.wgsl': weightsQ4_1,
  'weights_q4_k.wgsl': weightsQ4K,
  'weights_q5_0.wgsl': weightsQ5_0,
  'weights_q5_1.wgsl': weightsQ5_1,
  'weights_q5_k.wgsl': weightsQ5K,
  'weights_q6_k.wgsl': weightsQ6K,
  'train_attention_dscores.wgsl': trainAttentionDscoresWgsl,
  'train_attention_mix.wgsl': trainAttentionMixWgsl,
  'train_attention_mix_t.wgsl': trainAttentionMixTWgsl,
  'train_attention_probs.wgsl': trainAttentionProbsWgsl,
  'train_cross_entropy.wgsl': trainCrossEntropyWgsl,
  'train_dequant.wgsl': trainDequantWgsl,
  'train_gemm.wgsl': trainGemmWgsl,
  'train_rms_norm.wgsl': trainRmsNormWgsl,
  'train_rms_norm_backward.wgsl': trainRmsNormBackwardWgsl,
  'train_rope.wgsl': trainRopeWgsl,
  'train_swiglu.wgsl': trainSwigluWgsl,
  'train_swiglu_backward.wgsl': trainSwigluBackwardWgsl,
};
