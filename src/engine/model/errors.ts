/**
 * Errors raised while turning a GGUF file into a model we can run. Both carry a stable `name` (they
 * cross the worker boundary) and a message that says what is wrong with the file and what we accept.
 */
import { HearthError } from '../errors.ts';

/**
 * The file is a well-formed GGUF of something we do not run: another architecture, or a tensor type
 * without a decoder. `detail.supported` lists what we do run.
 */
export class UnsupportedModelError extends HearthError {
  override name = 'UnsupportedModelError';
}

/**
 * The file claims a supported architecture but its hyperparameters or tensors do not add up
 * (a missing key, heads that do not divide, a tensor with the wrong shape or missing).
 * `detail.key` or `detail.tensors` names the culprit.
 */
export class ModelConfigError extends HearthError {
  override name = 'ModelConfigError';
}
