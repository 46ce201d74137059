/**
 * Errors raised while reading a LoRA adapter file or attaching it to a base model. Both carry a
 * stable `name` (they cross the worker boundary) and say which key or tensor is wrong.
 */
import { HearthError } from '../../errors.ts';

/**
 * The file is not a LoRA adapter we can read: `general.type` is not `adapter`, `adapter.type` is
 * not `lora`, an `.lora_a` has no `.lora_b` (or the reverse), a tensor has another suffix, a rank
 * or alpha is not sane, a tensor type has no decoder. `detail.key` or `detail.tensor` names it.
 */
export class AdapterFormatError extends HearthError {
  override name = 'AdapterFormatError';
}

/**
 * A well-formed adapter made for another base: another architecture, a target tensor the base
 * does not have, or one whose shape does not match the base's. `detail.tensor` names it.
 */
export class AdapterMismatchError extends HearthError {
  override name = 'AdapterMismatchError';
}

/**
 * The adapter targets a base tensor llama.cpp accepts but we do not apply (a MoE router, a norm
 * that ships as a matrix), or token embeddings of a model whose output reuses them.
 */
export class UnsupportedAdapterError extends HearthError {
  override name = 'UnsupportedAdapterError';
}

/**
 * The adapter does not fit: its A and B (as F32) and its scratch need more than the backend has
 * left after the model (`detail.needBytes`, `detail.leftBytes`), or one of its tensors is larger
 * than the device's largest buffer. Nothing was uploaded.
 */
export class AdapterTooLargeError extends HearthError {
  override name = 'AdapterTooLargeError';
}
