import { HearthError } from '../errors.ts';

/**
 * A quantization cannot be done as asked: an unknown mix, a tensor type we cannot read, a model
 * without the metadata the rules need, an importance matrix that does not fit the model.
 */
export class QuantizeError extends HearthError {
  override name = 'QuantizeError';
}

/** An importance-matrix file is malformed or not one llama.cpp writes. */
export class ImatrixFormatError extends HearthError {
  override name = 'ImatrixFormatError';
}

/**
 * A pruning cannot be done as asked: a layer index outside the model, every layer dropped, a keep
 * ratio outside (0, 1], FFN shrinking on a mixture-of-experts model, a tensor type whose columns we
 * cannot rewrite, or importances that do not fit the model.
 */
export class PruneError extends HearthError {
  override name = 'PruneError';
}
