/**
 * The training op interface, from the backends' layer (backend/train-ops.ts, where the WebGPU
 * implementation can see it); re-exported here for the training code and its tests.
 */
export type { AttentionShape, FrozenMatrix, LoraPair, RopeTable, TrainOps, Vec } from '../backend/train-ops.ts';
