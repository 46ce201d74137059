/** A loaded model as the UI shows it: name, size, quantization, context. */
import type { ModelInfo } from './api.ts';
import type { GgufFile, GgufTensorInfo } from './gguf/types.ts';
import { modelQuantization } from './model/quantization.ts';

/** `file` is one file's header or a split model (`GgufModel`), whose `fileSize` is all parts together. */
export function describeModel(
  file: Pick<GgufFile, 'metadata' | 'tensors' | 'fileSize'>,
  details: { fileName: string; contextLength: number; trainedContextLength: number; hasChatTemplate: boolean; templateFallback: string | undefined;
    backend: ModelInfo['backend'];
    backendNotice?: string | undefined;
    threads?: number | undefined;
  },
): ModelInfo {
  const name = file.metadata.get('general.name');
  return {
    name: typeof name === 'string' && name.trim() ? name : details.fileName,
    architecture: String(file.metadata.get('general.architecture') ?? 'unknown'),
    parameterCount: file.tensors.reduce((sum, t) => sum + t.elementCount, 0),
    quantization: modelQuantization(file),
    fileSize: file.fileSize,
    contextLength: details.contextLength,
    trainedContextLength: details.trainedContextLength,
    hasChatTemplate: details.hasChatTemplate,
    templateFallback: details.templateFallback,
    backend: details.backend,
    ...(details.backendNotice !== undefined ? { backendNotice: details.backendNotice } : {}),
    ...(details.threads !== undefined ? { threads: details.threads } : {}),
    kind: 'decoder-only',
  };
}
