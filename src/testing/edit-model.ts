/**
 * Generated test models with edits the generator has no option for: metadata renamed, set or
 * removed, and extra F32 tensors (gemma3 is written as an edit of the generator's gemma2). Shared
 * by the float64 reference tests and the GPU forward tests so both check the same files.
 */
import { GgmlType } from '../engine/gguf/ggml-types.ts';
import { GgufValueType } from '../engine/gguf/types.ts';
import { writeGguf, type GgufInputValue } from '../engine/gguf/writer.ts';
import { planTestModel, type TestModelOptions } from './make-model.ts';

/** Changes to a generated model before it is written: metadata edits and extra F32 tensors. */
export interface ModelEdit {
  /** Replaces `from.` with `to.` in every key and sets general.architecture (gemma3 from gemma2). */
  renameArch?: { from: string; to: string };
  set?: Array<[string, number | string | boolean, GgufValueType]>;
  /** Values of any shape (arrays, nested arrays, bigints), stored with the types the writer infers. */
  put?: Array<[string, GgufInputValue]>;
  remove?: string[];
  /** Extra F32 tensors, appended after the generated ones. */
  addTensors?: Array<{ name: string; shape: number[]; values: (n: number) => Float32Array }>;
}

const elements = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The GGUF bytes of the generator's model for `options`, with `edit` applied. */
export function editedTestModel(options: TestModelOptions, edit: ModelEdit = {}): Uint8Array {
  const plan = planTestModel(options);
  const metadata = new Map(plan.spec.metadata instanceof Map ? plan.spec.metadata : Object.entries(plan.spec.metadata));
  const types = new Map(plan.spec.metadataTypes instanceof Map ? plan.spec.metadataTypes : Object.entries(plan.spec.metadataTypes ?? {}));
  const { renameArch } = edit;
  const rename = (key: string) => (renameArch && key.startsWith(`${renameArch.from}.`) ? `${renameArch.to}.${key.slice(renameArch.from.length + 1)}` : key);
  const md = new Map([...metadata].map(([k, v]) => [rename(k), v] as const));
  const ty = new Map([...types].map(([k, v]) => [rename(k), v] as const));
  if (renameArch) md.set('general.architecture', renameArch.to);
  for (const key of edit.remove ?? []) {
    md.delete(key);
    ty.delete(key);
  }
  for (const [key, value, type] of edit.set ?? []) {
    md.set(key, type === GgufValueType.BOOL ? Boolean(value) : value);
    ty.set(key, { type });
  }
  for (const [key, value] of edit.put ?? []) {
    md.set(key, value);
    ty.delete(key);
  }
  const tensors = plan.spec.tensors.map((t, i) => {
    const info = { ...t, offset: 0, fileOffset: 0, byteSize: 0, elementCount: elements(t.shape) };
    return { ...t, data: plan.data(info, i) as Uint8Array };
  });
  for (const extra of edit.addTensors ?? []) {
    const v = extra.values(elements(extra.shape));
    tensors.push({ name: extra.name, type: GgmlType.F32, shape: extra.shape, data: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) });
  }
  return writeGguf({ metadata: md, metadataTypes: ty, tensors });
}

/**
 * gemma3 from the generator's gemma2 (which has the same layout): per-head q/k norms, no attention
 * softcap, sliding window `window` on all but every third layer, global rope base 1e6 scaled x8.
 */
export function gemma3Edit(layers: number, headDim: number, window: number): ModelEdit {
  return {
    renameArch: { from: 'gemma2', to: 'gemma3' },
    remove: ['gemma3.attn_logit_softcapping', 'gemma3.final_logit_softcapping'],
    set: [
      ['gemma3.attention.sliding_window', window, GgufValueType.UINT32],
      ['gemma3.attention.sliding_window_pattern', 3, GgufValueType.UINT32],
      ['gemma3.rope.freq_base', 1e6, GgufValueType.FLOAT32],
      ['gemma3.rope.scaling.type', 'linear', GgufValueType.STRING],
      ['gemma3.rope.scaling.factor', 8, GgufValueType.FLOAT32],
    ],
    addTensors: Array.from({ length: layers }, (_, il) =>
      ['attn_q_norm', 'attn_k_norm'].map((base, j) => ({
        name: `blk.${il}.${base}.weight`,
        shape: [headDim],
        values: (n: number) => Float32Array.from({ length: n }, (_, i) => 1 + 0.3 * Math.sin(1 + i * (j + 2) + il)),
      })),
    ).flat(),
  };
}
