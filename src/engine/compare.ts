/**
 * The engine's compression jobs, for the app's Compare page: a quantized copy of a model written
 * into the store (compress/quantize.ts, streamed from the source's ranged reader into the store's
 * chunk writer), and the measurements of several versions of a model on one text
 * (compress/perplexity.ts: llama-perplexity's windows, KL and top-1 against the first version,
 * and prefill and decode speed), as `hearth eval` measures a file.
 */
import type { CachedModel, EvaluateProgress, EvaluateRequest, Evaluation, ModelEvaluation, QuantizeModelProgress, QuantizeModelRequest } from './api.ts';
import { EvalTotals, perplexityWindows } from './compress/perplexity.ts';
import { planQuantize, quantizeChunks } from './compress/quantize.ts';
import { isQuantMix } from './compress/tensor-types.ts';
import { readGguf } from './gguf/reader.ts';
import type { RangedSource } from './gguf/source.ts';
import { InvalidRequestError } from './generate/validate-request.ts';
import type { Model } from './model/model.ts';
import type { ModelStore } from './store/index.ts';
import type { Tokenizer } from './tokenizer/index.ts';

/** Checks a quantize request's fields by name (the source is the engine's to open). */
export function validateQuantizeRequest(request: QuantizeModelRequest): void {
  if (!request || typeof request !== 'object') throw new InvalidRequestError('Invalid request: a quantize request must be an object.', { param: 'request' });
  if (typeof request.type !== 'string' || !isQuantMix(request.type)) {
    throw new InvalidRequestError(`Invalid request: 'type' must be one of Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, got ${JSON.stringify(request.type)}.`, { param: 'type', value: request.type });
  }
  for (const param of ['id', 'name'] as const) {
    const value = request[param];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > 256)) {
      throw new InvalidRequestError(`Invalid request: '${param}' must be a non-empty string of at most 256 characters.`, { param });
    }
  }
  const kind = (request.source as { kind?: unknown } | undefined)?.kind;
  if (kind !== 'cached' && kind !== 'file') throw new InvalidRequestError("Invalid request: 'source' must be a stored model ('cached') or a local file ('file').", { param: 'source' });
}

/**
 * Quantizes `source` (one GGUF file) into the store as model `id`: the header and each tensor's
 * rows go from the reader through the quantizer to the store's chunk writer, a slab at a time.
 */
export async function quantizeIntoStore(
  store: ModelStore,
  source: RangedSource,
  target: { id: string; name: string; fileName: string; type: QuantizeModelRequest['type'] },
  signal: AbortSignal,
  onProgress?: (progress: QuantizeModelProgress) => void,
): Promise<CachedModel> {
  const file = await readGguf(source);
  const plan = planQuantize(file, target.type);
  const chunks = quantizeChunks(source, file, plan, {
    signal,
    // 16 MiB slabs: the worker holds a slab, its float32 copy and its output at once.
    slabBytes: 16 * 1024 * 1024,
    onProgress: (p) => onProgress?.({ id: target.id, tensor: p.tensor, index: p.index, count: p.count, bytes: p.bytesDone, total: p.bytesTotal }),
  });
  return store.storeGenerated({ id: target.id, name: target.name, fileName: target.fileName, size: plan.layout.fileSize, quantization: target.type }, chunks, { signal });
}

/** A version opened for measuring: its model, file size and names. */
export interface OpenedVersion {
  model: Model;
  tokenizer: Tokenizer;
  bytes: number;
  name: string;
  quantization: string | undefined;
  backend: 'webgpu' | 'cpu';
  close(): void;
}

function positiveInt(value: unknown, param: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min) {
    throw new InvalidRequestError(`Invalid request: '${param}' must be an integer of at least ${min}, got ${JSON.stringify(value)}.`, { param, value });
  }
  return value as number;
}

export interface ValidEvaluateRequest {
  ids: string[];
  text: string;
  nCtx: number;
  maxWindows: number;
  decodeTokens: number;
}

export function validateEvaluateRequest(request: EvaluateRequest): ValidEvaluateRequest {
  if (!request || typeof request !== 'object') throw new InvalidRequestError('Invalid request: an evaluation request must be an object.', { param: 'request' });
  const known = new Set(['ids', 'text', 'context_length', 'max_windows', 'decode_tokens', 'request_id']);
  for (const key of Object.keys(request)) if (!known.has(key)) throw new InvalidRequestError(`Invalid request: unknown field '${key}'.`, { param: key });
  if (!Array.isArray(request.ids) || request.ids.length === 0 || !request.ids.every((id) => typeof id === 'string' && id.length > 0)) {
    throw new InvalidRequestError("Invalid request: 'ids' must be a non-empty array of stored model ids.", { param: 'ids' });
  }
  if (typeof request.text !== 'string' || request.text.length === 0) throw new InvalidRequestError("Invalid request: 'text' must be a non-empty string.", { param: 'text' });
  if (request.request_id !== undefined && typeof request.request_id !== 'string') throw new InvalidRequestError("Invalid request: 'request_id' must be a string.", { param: 'request_id' });
  return {
    ids: request.ids,
    text: request.text,
    nCtx: positiveInt(request.context_length, 'context_length', 4, 128),
    maxWindows: positiveInt(request.max_windows, 'max_windows', 1, 16),
    decodeTokens: positiveInt(request.decode_tokens, 'decode_tokens', 1, 32),
  };
}

/**
 * Measures every version on the same windows of the text. The reference (the first) goes first
 * and its logits of the scored rows are kept, so only one version is loaded at a time besides the
 * model in use. `aborted` is checked between windows.
 */
export async function evaluateVersions(
  request: ValidEvaluateRequest,
  open: (id: string, contextLength: number) => Promise<OpenedVersion>,
  aborted: () => boolean,
  onProgress?: (progress: EvaluateProgress) => void,
): Promise<Evaluation> {
  const { ids, text, nCtx, maxWindows, decodeTokens } = request;
  const contextLength = Math.ceil((nCtx + 64) / 256) * 256;
  const stop = () => {
    if (aborted()) throw new DOMException('The evaluation was cancelled.', 'AbortError');
  };
  let tokens: number[] | undefined;
  let windows: ReturnType<typeof perplexityWindows> = [];
  let reference: Float32Array[] = [];
  let referenceBytes = 0;
  let scored = 0;
  const models: ModelEvaluation[] = [];
  for (let m = 0; m < ids.length; m++) {
    stop();
    const version = await open(ids[m]!, contextLength);
    try {
      if (!tokens) {
        const tokenizer = version.tokenizer;
        tokens = tokenizer.encode(new TextEncoder().encode(text), { addSpecial: true });
        const bos = tokenizer.vocab.flags.addBos ? (tokenizer.vocab.special.bos ?? undefined) : undefined;
        windows = perplexityWindows(tokens, nCtx, bos).slice(0, maxWindows);
        referenceBytes = version.bytes;
      }
      const nVocab = version.model.config.nVocab;
      const totals = new EvalTotals();
      let prefillMs = 0;
      for (let w = 0; w < windows.length; w++) {
        stop();
        version.model.reset();
        const t0 = performance.now();
        const logits = await version.model.eval(windows[w]!.tokens, { logits: 'all' });
        prefillMs += performance.now() - t0;
        if (m === 0) {
          reference.push(EvalTotals.scoredRows(logits, nCtx, nVocab));
          totals.addWindow(windows[w]!, logits, nVocab);
        } else totals.addWindow(windows[w]!, logits, nVocab, reference[w]);
        onProgress?.({ model: m, window: w + 1, windows: windows.length });
      }
      // Decode: one token at a time after a short prompt, as generation runs.
      stop();
      const first = windows[0]!.tokens;
      const prompt = Math.min(8, nCtx - 1);
      version.model.reset();
      await version.model.eval(first.slice(0, prompt));
      const steps = Math.min(decodeTokens, contextLength - prompt);
      const t0 = performance.now();
      for (let k = 0; k < steps; k++) await version.model.eval([first[prompt + (k % (nCtx - prompt))]!]);
      const decodeMs = performance.now() - t0;
      scored = totals.count;
      models.push({
        id: ids[m]!,
        name: version.name,
        quantization: version.quantization,
        bytes: version.bytes,
        compression: referenceBytes / version.bytes,
        perplexity: totals.perplexity,
        kl: m === 0 ? 0 : totals.meanKl,
        top1: m === 0 ? 1 : totals.top1Agreement,
        prefill_tokens_per_second: (windows.length * nCtx) / (prefillMs / 1000),
        decode_tokens_per_second: steps / (decodeMs / 1000),
        backend: version.backend,
      });
    } finally {
      version.close();
    }
  }
  reference = [];
  return { tokens: tokens!.length, context_length: nCtx, windows: windows.length, scored, models };
}
