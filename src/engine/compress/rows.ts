/**
 * Rows of float32 values to a ggml type, as ggml_quantize_chunk (what llama-quantize calls) does:
 * without importance weights, the reference quantizers; with them, the weighted searches.
 */
import { GgmlType, ggmlTypeName } from '../gguf/ggml-types.ts';
import { quantFormat } from '../gguf/quants/index.ts';
import { hasWeightedQuantizer, quantizeWeighted } from '../gguf/quants/weighted.ts';
import { QuantizeError } from './errors.ts';

/** Types whose chunk quantizer ignores importance weights (Q8_0 and the float types). */
const WEIGHTS_IGNORED = new Set<GgmlType>([GgmlType.Q8_0, GgmlType.F16, GgmlType.BF16, GgmlType.F32]);

export function quantizeRows(type: GgmlType, values: Float32Array, nPerRow: number, nRows: number, weights?: Float32Array): Uint8Array {
  const fmt = quantFormat(type);
  if (!fmt?.quantize) throw new QuantizeError(`cannot quantize to ${ggmlTypeName(type)}`, { type });
  if (weights && !WEIGHTS_IGNORED.has(type)) {
    if (!hasWeightedQuantizer(type)) {
      throw new QuantizeError(`quantizing to ${ggmlTypeName(type)} with an importance matrix is not supported`, { type });
    }
    return quantizeWeighted(type, values, nPerRow, nRows, weights);
  }
  return fmt.quantize(values, nPerRow * nRows);
}
