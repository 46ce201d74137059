/**
 * Engine errors as a person reads them. Errors keep their stable `name` across the worker (see
 * src/engine/rpc/errors.ts); this turns each into what happened and what to do next.
 */
export interface FriendlyError {
  title: string;
  message: string;
  name: string;
}

const ADVICE: Record<string, { title: string; action: string }> = {
  NoModelLoadedError: { title: 'No model loaded', action: 'Open Models and load one (the built-in demo, a download, or a file).' },
  ContextWindowExceededError: { title: 'The conversation is too long', action: "Start a new chat, or delete or shorten earlier messages to fit the model's context window." },
  WebGPUUnavailableError: { title: 'WebGPU is not available', action: 'The Device page says why and what to try.' },
  DeviceLostError: { title: 'The GPU was reset', action: 'Send again: the model reloads automatically. If it keeps happening, try a smaller model.' },
  GgufFormatError: { title: 'Not a usable GGUF file', action: 'Check that the file is a complete .gguf model (a partial download is not).' },
  UnsupportedModelError: { title: 'This model is not supported', action: 'Pick a model from the catalog; it lists the architectures Hearth runs.' },
  ModelTooLargeError: { title: 'The model is too large for this device', action: 'Pick a smaller model or a smaller quantization (Q4_K_M).' },
  CpuMemoryError: { title: 'Not enough memory for this model on the CPU', action: 'Close other tabs, or pick a smaller model or quantization (Q4_K_M); WebGPU, where available, may hold it.' },
  StorageQuotaError: { title: 'Not enough storage', action: 'Delete models you no longer use in Models, or free space on the device.' },
  IntegrityError: { title: 'The download is damaged', action: 'Delete it in Models and download it again.' },
  // The store's message says whether anything was kept, so this promises no resume.
  DownloadError: { title: 'The download failed', action: 'Check the connection and try again.' },
  ModelNotFoundError: { title: 'Model not found', action: 'It may have been deleted; pick another in Models.' },
  DownloadInProgressError: { title: 'Already downloading', action: 'Wait for the running download to finish.' },
  EngineMovedError: { title: 'The engine moved to another tab', action: 'The tab that ran the model was closed; the model reloads in another tab. Send again once it is ready.' },
  ModelKindError: { title: 'Not what this model does', action: 'Encoder-decoder models (T5) transform text; chat models chat. Load the kind of model the task needs.' },
  T5InputTooLongError: { title: 'The text is too long for this model', action: 'Shorten the text, or split it and transform the parts.' },
  ImportFormatError: { title: 'Could not import', action: 'Choose a JSON file exported by Hearth.' },
  AdapterFormatError: { title: 'Not a LoRA adapter we can use', action: 'Choose a LoRA adapter in GGUF form (llama.cpp convert_lora_to_gguf.py).' },
  AdapterMismatchError: { title: 'The adapter is for another model', action: 'Choose an adapter made for the model in use.' },
  UnsupportedAdapterError: { title: 'Adapter not supported', action: 'Hearth applies adapters to attention, feed-forward, output and embedding weights.' },
  // A server's errors (src/engine/rpc/openai-server.ts) say what to do themselves.
  ServerUrlError: { title: 'Not a server address the app can use', action: '' },
  ServerUnreachableError: { title: 'The server is not reachable', action: '' },
  ServerCorsError: { title: 'The server does not allow this page (CORS)', action: '' },
  ServerAuthError: { title: 'The server refused the API key', action: '' },
  ServerModelNotFoundError: { title: 'The server no longer has this model', action: '' },
  ServerStreamError: { title: 'The reply broke off', action: '' },
  ServerResponseError: { title: 'The server refused', action: '' },
};

export function describeError(error: unknown): FriendlyError {
  const e = error as { name?: unknown; message?: unknown; detail?: { cause?: unknown } } | undefined;
  let name = typeof e?.name === 'string' ? e.name : 'Error';
  // The store reports a file that does not parse as an IntegrityError caused by the parser.
  if (name === 'IntegrityError' && e?.detail?.cause === 'GgufFormatError') name = 'GgufFormatError';
  const raw = typeof e?.message === 'string' ? e.message : String(error);
  const advice = ADVICE[name];
  if (!advice) return { name, title: 'Something went wrong', message: raw };
  return { name, title: advice.title, message: raw.includes(advice.action) ? raw : `${raw} ${advice.action}` };
}

export function errorText(error: unknown): string {
  const f = describeError(error);
  return `${f.title}: ${f.message}`;
}
