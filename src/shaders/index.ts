/**
 * Every WGSL file, by file name, for the preprocessor's includes. Imported with Vite's `?raw`
 * (the CLI registers a Node hook that does the same), so the shaders stay plain .wgsl files.
 */
import matmul from './matmul.wgsl?raw';
import matvec from './matvec.wgsl?raw';
import quantCommon from './quant_common.wgsl?raw';
import reduceSum from './reduce_sum.wgsl?raw';
import weightsBf16 from './weights_bf16.wgsl?raw';
import weightsF16 from './weights_f16.wgsl?raw';
import weightsF32 from './weights_f32.wgsl?raw';
import weightsQ8_0 from './weights_q8_0.wgsl?raw';

export const SHADERS: Readonly<Record<string, string>> = {
  'matmul.wgsl': matmul,
  'matvec.wgsl': matvec,
  'quant_common.wgsl': quantCommon,
  'reduce_sum.wgsl': reduceSum,
  'weights_bf16.wgsl': weightsBf16,
  'weights_f16.wgsl': weightsF16,
  'weights_f32.wgsl': weightsF32,
  'weights_q8_0.wgsl': weightsQ8_0,
};
