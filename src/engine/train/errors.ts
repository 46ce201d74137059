/** Errors of LoRA training, named so they survive the worker boundary. */
import { HearthError } from '../errors.ts';

/**
 * The model or adapter asks for something this trainer does not differentiate: an architecture
 * other than llama, qwen2 and qwen3 (mixture of experts, recurrent layers, softcaps, post-norms,
 * sliding windows, YaRN or long/short rope factors), or an adapter on the embeddings or a tensor
 * the model does not have. `detail` names the feature or tensor.
 */
export class UnsupportedTrainingError extends HearthError {
  override name = 'UnsupportedTrainingError';
}

/** Training input that cannot be used: no text, a window too short, a bad option. `detail` says which. */
export class TrainingDataError extends HearthError {
  override name = 'TrainingDataError';
}

/** A checkpoint's bytes are not a checkpoint of this adapter's shape. */
export class CheckpointFormatError extends HearthError {
  override name = 'CheckpointFormatError';
}
