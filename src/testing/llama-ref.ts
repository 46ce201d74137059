/**
 * llama.cpp as a test oracle: a typed wrapper around tools/llama-ref, a small C++ program linked
 * against the prebuilt llama.cpp/ggml libraries that node-llama-cpp installs (built on first use by
 * scripts/build-llama-ref.sh, cached in .cache/llama-ref). Node-only; tests import it, the engine
 * never does.
 *
 * Every call runs the binary synchronously with a timeout and passes data through temp files under
 * os.tmpdir() that are removed afterwards. Failures throw LlamaRefError with llama-ref's stderr
 * (which carries llama.cpp's own warnings and errors).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** A failure of the reference tool: build, bad input, or an error inside llama.cpp. */
export class LlamaRefError extends Error {
  override name = 'LlamaRefError';
}

const DEFAULT_TIMEOUT_MS = 120_000;
const BUILD_TIMEOUT_MS = 600_000;
const MAX_OUTPUT_BYTES = 1 << 30;

interface RunResult {
  stdout: Buffer;
  stderr: string;
}

function run(file: string, args: readonly string[], what: string, timeoutMs: number): RunResult {
  const r = spawnSync(file, args, { cwd: repoRoot, timeout: timeoutMs, maxBuffer: MAX_OUTPUT_BYTES, killSignal: 'SIGKILL' });
  const stderr = r.stderr?.toString('utf8') ?? '';
  const tail = stderr.length > 8000 ? `...${stderr.slice(-8000)}` : stderr;
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const why = code === 'ETIMEDOUT' ? `timed out after ${timeoutMs} ms` : r.error.message;
    throw new LlamaRefError(`${what}: ${why}\n${tail}`);
  }
  if (r.signal) throw new LlamaRefError(`${what}: killed by ${r.signal} (a ggml assertion aborts)\n${tail}`);
  if (r.status !== 0) throw new LlamaRefError(`${what}: exit status ${r.status}\n${tail}`);
  return { stdout: r.stdout, stderr };
}

let sourceDir: string | undefined;

/**
 * llama.cpp's source, extracted from node-llama-cpp's git bundle: headers, the tokenizer suites
 * (models/ggml-vocab-*.gguf with .inp/.out) and chat templates (models/templates/).
 */
export function llamaCppSourceDir(): string {
  if (sourceDir) return sourceDir;
  // Serialized with builds of llama-ref (same lock), which also extract the source.
  const args = ['-c', 'mkdir -p .cache && exec flock -w 600 .cache/llama-ref.lock bash scripts/llama-cpp-source.sh'];
  const hasFlock = spawnSync('sh', ['-c', 'command -v flock'], { cwd: repoRoot }).status === 0;
  const r = hasFlock
    ? run('bash', args, 'scripts/llama-cpp-source.sh', BUILD_TIMEOUT_MS)
    : run('bash', ['scripts/llama-cpp-source.sh'], 'scripts/llama-cpp-source.sh', BUILD_TIMEOUT_MS);
  sourceDir = lastLine(r.stdout);
  return sourceDir;
}

let binary: string | undefined;

/** Builds tools/llama-ref if its sources or the prebuilt libraries changed; returns the binary path. */
export function ensureLlamaRef(): string {
  if (binary) return binary;
  const r = run('bash', ['scripts/build-llama-ref.sh'], 'building llama-ref (scripts/build-llama-ref.sh)', BUILD_TIMEOUT_MS);
  binary = lastLine(r.stdout);
  return binary;
}

function lastLine(out: Buffer): string {
  const lines = out.toString('utf8').trim().split('\n');
  const last = lines[lines.length - 1];
  if (!last) throw new LlamaRefError('expected a path on stdout, got nothing');
  return last;
}

/** Runs one llama-ref command with a private temp directory. */
function withTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'llama-ref-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CommonOptions {
  /** Child process limit (default 120 s). */
  timeoutMs?: number;
  /** Force a CPU backend variant (libggml-cpu-NAME.so), e.g. "x64", "haswell"; default: best for this CPU. */
  cpuVariant?: string;
}

function refRun(args: string[], opts: CommonOptions = {}): Buffer {
  const bin = ensureLlamaRef();
  const all = opts.cpuVariant ? [...args, '--cpu-variant', opts.cpuVariant] : args;
  return run(bin, all, `llama-ref ${args[0]}`, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS).stdout;
}

function parseJson<T>(out: Buffer, what: string): T {
  try {
    return JSON.parse(out.toString('utf8')) as T;
  } catch (e) {
    throw new LlamaRefError(`${what}: bad JSON from llama-ref: ${(e as Error).message}`);
  }
}

function bytesOf(text: string | Uint8Array): Uint8Array {
  return typeof text === 'string' ? new TextEncoder().encode(text) : text;
}

function checkIds(ids: readonly number[]): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new LlamaRefError(`bad token id ${id}`);
  }
}

// ---------------------------------------------------------------- tokenizer

export interface TokenizeOptions extends CommonOptions {
  /** Add BOS/EOS as the vocabulary says (llama_tokenize add_special). */
  addSpecial?: boolean;
  /** Recognize special-token text such as "<|eot_id|>" (llama_tokenize parse_special). */
  parseSpecial?: boolean;
}

function tokenizeFlags(opts: TokenizeOptions): string[] {
  return [...(opts.addSpecial ? ['--add-special'] : []), ...(opts.parseSpecial ? ['--parse-special'] : [])];
}

/** llama_tokenize of one text (a string is encoded as UTF-8; bytes pass as they are). */
export function llamaRefTokenize(model: string, text: string | Uint8Array, opts: TokenizeOptions = {}): number[] {
  return withTemp((dir) => {
    const f = join(dir, 'text');
    writeFileSync(f, bytesOf(text));
    return parseJson<number[]>(refRun(['tokenize', model, '--text-file', f, ...tokenizeFlags(opts)], opts), 'tokenize');
  });
}

/** llama_tokenize of many texts in one process (loading a large vocabulary costs more than a line). */
export function llamaRefTokenizeMany(model: string, texts: readonly (string | Uint8Array)[], opts: TokenizeOptions = {}): number[][] {
  return withTemp((dir) => {
    const parts: Uint8Array[] = [];
    for (const t of texts) {
      const b = bytesOf(t);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, b.length, true);
      parts.push(len, b);
    }
    const f = join(dir, 'texts');
    writeFileSync(f, Buffer.concat(parts));
    const res = parseJson<number[][]>(refRun(['tokenize', model, '--texts-file', f, ...tokenizeFlags(opts)], opts), 'tokenize');
    if (res.length !== texts.length) throw new LlamaRefError(`tokenize: ${res.length} results for ${texts.length} texts`);
    return res;
  });
}

export interface DetokenizeOptions extends CommonOptions {
  /** Drop BOS/EOS the vocabulary adds (llama_detokenize remove_special). */
  removeSpecial?: boolean;
  /** Render special tokens as their text (llama_detokenize unparse_special). */
  unparseSpecial?: boolean;
}

/** llama_detokenize, the raw bytes (may end inside a UTF-8 character). */
export function llamaRefDetokenizeBytes(model: string, ids: readonly number[], opts: DetokenizeOptions = {}): Uint8Array {
  checkIds(ids);
  return withTemp((dir) => {
    const f = join(dir, 'ids.json');
    writeFileSync(f, JSON.stringify(ids));
    const flags = [...(opts.removeSpecial ? ['--remove-special'] : []), ...(opts.unparseSpecial ? ['--unparse-special'] : [])];
    return new Uint8Array(refRun(['detokenize', model, '--ids-file', f, ...flags], opts));
  });
}

/** llama_detokenize decoded as UTF-8 (invalid sequences become U+FFFD). */
export function llamaRefDetokenize(model: string, ids: readonly number[], opts: DetokenizeOptions = {}): string {
  return new TextDecoder().decode(llamaRefDetokenizeBytes(model, ids, opts));
}

export interface PieceOptions extends CommonOptions {
  /** Render special tokens (llama_token_to_piece special). */
  special?: boolean;
  /** Leading spaces to strip (llama_token_to_piece lstrip). */
  lstrip?: number;
}

/** llama_token_to_piece of each token: the bytes a streaming detokenizer appends. */
export function llamaRefPieces(model: string, ids: readonly number[], opts: PieceOptions = {}): Uint8Array[] {
  checkIds(ids);
  return withTemp((dir) => {
    const f = join(dir, 'ids.json');
    writeFileSync(f, JSON.stringify(ids));
    const flags = [...(opts.special ? ['--special'] : []), ...(opts.lstrip ? ['--lstrip', String(opts.lstrip)] : [])];
    const b64 = parseJson<string[]>(refRun(['piece', model, '--ids-file', f, ...flags], opts), 'piece');
    return b64.map((s) => new Uint8Array(Buffer.from(s, 'base64')));
  });
}

export interface LlamaRefVocabInfo {
  nTokens: number;
  /** llama_vocab_type: 1 SPM, 2 BPE, 3 WPM, 4 UGM, 5 RWKV, 6 PLAMO2. */
  type: number;
  /** Special token ids; -1 when the vocabulary has none. */
  bos: number;
  eos: number;
  eot: number;
  sep: number;
  nl: number;
  pad: number;
  addBos: boolean;
  addEos: boolean;
  /** Every end-of-generation token id (llama_vocab_is_eog). */
  eog: number[];
}

export function llamaRefVocabInfo(model: string, opts: CommonOptions = {}): LlamaRefVocabInfo {
  return parseJson<LlamaRefVocabInfo>(refRun(['vocab-info', model], opts), 'vocab-info');
}

// ---------------------------------------------------------------- logits

export interface LogitsOptions extends CommonOptions {
  /** Context size (default: the number of tokens; llama.cpp may round it up). */
  nCtx?: number;
  /** CPU threads (default 1). */
  threads?: number;
  /** Tokens per llama_decode call (default min(n, 512)). */
  batch?: number;
  /** Physical micro-batch (default = batch). */
  ubatch?: number;
  /** KV cache type, e.g. "f16" (llama.cpp's default, and ours here) or "f32". */
  kvType?: string;
  /** Disable CPU weight repacking (extra buffer types). */
  noRepack?: boolean;
  /** LoRA adapter files at their scales (llama.cpp's --lora-scaled), set on the context. */
  loras?: readonly { path: string; scale: number }[];
}

export interface LlamaRefLogits {
  nTokens: number;
  nVocab: number;
  /** Row-major [nTokens][nVocab]: row i is the distribution after tokens 0..i. */
  logits: Float32Array;
}

/**
 * llama.cpp's CPU logits for every position of `ids` as one sequence from position 0 (no GPU
 * offload, flash attention off).
 */
export function llamaRefLogits(model: string, ids: readonly number[], opts: LogitsOptions = {}): LlamaRefLogits {
  checkIds(ids);
  if (ids.length === 0) throw new LlamaRefError('llamaRefLogits: no tokens');
  return withTemp((dir) => {
    const tf = join(dir, 'tokens.json');
    const of = join(dir, 'logits.f32');
    writeFileSync(tf, JSON.stringify(ids));
    const args = ['logits', model, '--tokens-file', tf, '--out', of];
    if (opts.nCtx !== undefined) args.push('--n-ctx', String(opts.nCtx));
    if (opts.threads !== undefined) args.push('--threads', String(opts.threads));
    if (opts.batch !== undefined) args.push('--batch', String(opts.batch));
    if (opts.ubatch !== undefined) args.push('--ubatch', String(opts.ubatch));
    if (opts.kvType !== undefined) args.push('--kv-type', opts.kvType);
    if (opts.noRepack) args.push('--no-repack');
    if (opts.loras?.length) {
      for (const l of opts.loras) {
        if (l.path.includes(',')) throw new LlamaRefError(`llamaRefLogits: an adapter path with a comma: ${l.path}`);
      }
      args.push('--lora', opts.loras.map((l) => `${l.path}:${l.scale}`).join(','));
    }
    refRun(args, { ...opts, timeoutMs: opts.timeoutMs ?? 600_000 });
    const logits = readF32(of);
    const nVocab = logits.length / ids.length;
    if (!Number.isInteger(nVocab)) throw new LlamaRefError(`logits: ${logits.length} values for ${ids.length} tokens`);
    return { nTokens: ids.length, nVocab, logits };
  });
}

export interface EncDecOptions extends CommonOptions {
  /** CPU threads (default 1). */
  threads?: number;
  /** Decoder tokens per llama_decode call (default all at once). */
  decoderBatch?: number;
  /** KV cache type of the decoder's self-attention, e.g. "f16" (llama.cpp's default) or "f32". */
  kvType?: string;
}

export interface LlamaRefEncDecLogits extends LlamaRefLogits {
  /** The model's decoder_start_token_id as llama.cpp read it (llama_model_decoder_start_token). */
  decoderStart: number;
}

/**
 * llama.cpp's CPU logits of an encoder-decoder model (T5): llama_encode over `input`, then
 * llama_decode of `decoder` (the caller starts it with the decoder start token) from position 0;
 * row i of the result is the distribution after decoder tokens 0..i. No flash attention.
 */
export function llamaRefEncDecLogits(model: string, input: readonly number[], decoder: readonly number[], opts: EncDecOptions = {}): LlamaRefEncDecLogits {
  checkIds(input);
  checkIds(decoder);
  if (input.length === 0 || decoder.length === 0) throw new LlamaRefError('llamaRefEncDecLogits: needs input and decoder tokens');
  return withTemp((dir) => {
    const inf = join(dir, 'input.json');
    const df = join(dir, 'decoder.json');
    const of = join(dir, 'logits.f32');
    writeFileSync(inf, JSON.stringify(input));
    writeFileSync(df, JSON.stringify(decoder));
    const args = ['encdec', model, '--input-file', inf, '--decoder-file', df, '--out', of];
    if (opts.threads !== undefined) args.push('--threads', String(opts.threads));
    if (opts.decoderBatch !== undefined) args.push('--decoder-batch', String(opts.decoderBatch));
    if (opts.kvType !== undefined) args.push('--kv-type', opts.kvType);
    const info = parseJson<{ nVocab: number; decoderStart: number }>(refRun(args, { ...opts, timeoutMs: opts.timeoutMs ?? 600_000 }), 'encdec');
    const logits = readF32(of);
    if (logits.length !== info.nVocab * decoder.length) throw new LlamaRefError(`encdec: ${logits.length} values for ${decoder.length} decoder tokens of ${info.nVocab}`);
    return { nTokens: decoder.length, nVocab: info.nVocab, logits, decoderStart: info.decoderStart };
  });
}

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  if (b.length % 4 !== 0) throw new LlamaRefError(`${path}: ${b.length} bytes is not whole float32s`);
  // Copy into a fresh, aligned buffer (Node's pooled Buffers may not be 4-byte aligned).
  const out = new Float32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

// ---------------------------------------------------------------- quantization

export interface QuantizeOptions extends CommonOptions {
  /**
   * Use ggml_quantize_chunk (what llama-quantize runs) instead of the type's reference quantizer
   * (quantize_row_X_ref). They agree for most types; IQ types and imatrix runs differ.
   */
  chunk?: boolean;
  /** Importance matrix, nPerRow weights (chunk only; required for iq2_xxs, iq2_xs, iq1_s). */
  imatrix?: Float32Array;
  /** Rows (default data.length / nPerRow). */
  nrows?: number;
}

/** ggml's quantization of `data` (rows of nPerRow values) to `typeName` (e.g. "q4_K", case-insensitive). */
export function llamaRefQuantize(typeName: string, data: Float32Array, nPerRow: number, opts: QuantizeOptions = {}): Uint8Array {
  return withTemp((dir) => {
    const inf = join(dir, 'in.f32');
    const outf = join(dir, 'out.bin');
    writeFileSync(inf, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const args = [opts.chunk ? 'quantize-chunk' : 'quantize', typeName, '--in', inf, '--out', outf, '--n-per-row', String(nPerRow)];
    if (opts.nrows !== undefined) args.push('--nrows', String(opts.nrows));
    if (opts.imatrix) {
      if (!opts.chunk) throw new LlamaRefError('imatrix needs chunk: true');
      const imf = join(dir, 'imatrix.f32');
      writeFileSync(imf, new Uint8Array(opts.imatrix.buffer, opts.imatrix.byteOffset, opts.imatrix.byteLength));
      args.push('--imatrix', imf);
    }
    refRun(args, opts);
    return new Uint8Array(readFileSync(outf));
  });
}

/** ggml's dequantization (type traits to_float) of n values of `typeName`. */
export function llamaRefDequantize(typeName: string, bytes: Uint8Array, n: number, opts: CommonOptions = {}): Float32Array {
  return withTemp((dir) => {
    const inf = join(dir, 'in.bin');
    const outf = join(dir, 'out.f32');
    writeFileSync(inf, bytes);
    refRun(['dequantize', typeName, '--in', inf, '--out', outf, '--n', String(n)], opts);
    return readF32(outf);
  });
}

export interface LlamaRefTypeInfo {
  id: number;
  /** ggml's name, e.g. "q4_K". */
  name: string;
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
  isQuantized: boolean;
  /** Usable with llamaRefQuantize without chunk. */
  hasRefQuantizer: boolean;
  hasDequantizer: boolean;
  /** Usable with llamaRefQuantize({chunk: true}). */
  chunkQuantizer: boolean;
  requiresImatrix: boolean;
}

/** Every ggml type the libraries know, with block geometry. */
export function llamaRefTypes(opts: CommonOptions = {}): LlamaRefTypeInfo[] {
  return parseJson<LlamaRefTypeInfo[]>(refRun(['types'], opts), 'types');
}

// ---------------------------------------------------------------- GGUF metadata

/**
 * A metadata value as JSON: numbers; u64/i64 beyond 2^53 - 1 as decimal strings; f32/f64 NaN and
 * infinities as "NaN" / "Infinity" / "-Infinity"; strings that are not valid UTF-8 (or any string
 * with a NUL, cut at the NUL by ggml's API) as {bytesBase64}.
 */
export type LlamaRefScalar = number | string | boolean | { bytesBase64: string };

export interface LlamaRefKv {
  key: string;
  /** gguf_type_name: u8 i8 u16 i16 u32 i32 f32 bool str arr u64 i64 f64. */
  type: string;
  /** Element type when type is "arr". */
  arrayType?: string;
  value: LlamaRefScalar | LlamaRefScalar[];
}

export interface LlamaRefTensorInfo {
  name: string;
  /** ggml type name, e.g. "q8_0". */
  type: string;
  typeId: number;
  /** Always 4 entries, ne[0] fastest; dimensions past the file's n_dims are 1. */
  ne: number[];
  /** As ggml_n_dims: trailing 1s are not counted (the file's own n_dims is not exposed by ggml). */
  nDims: number;
  /** Offset of the data from the start of the data section. */
  offset: number;
  /** Bytes of data. */
  size: number;
}

export interface LlamaRefMeta {
  version: number;
  alignment: number;
  /** Absolute file offset of the data section. */
  dataOffset: number;
  /** In file order. */
  kv: LlamaRefKv[];
  /** In file order. */
  tensors: LlamaRefTensorInfo[];
}

/** The GGUF header as ggml's gguf reader (gguf_init_from_file, no_alloc) sees it. Throws if ggml rejects the file. */
export function llamaRefMeta(model: string, opts: CommonOptions = {}): LlamaRefMeta {
  return parseJson<LlamaRefMeta>(refRun(['meta', model], opts), 'meta');
}

// ---------------------------------------------------------------- environment and fixtures

export interface LlamaRefInfo {
  /** Directory of the prebuilt libraries. */
  libDir: string;
  /** The libggml-cpu-*.so variant that ggml picked for this CPU (or cpuVariant). */
  cpuVariant: string;
  backends: { name: string; features: Record<string, string> }[];
  systemInfo: string;
}

export function llamaRefInfo(opts: CommonOptions = {}): LlamaRefInfo {
  return parseJson<LlamaRefInfo>(refRun(['info'], opts), 'info');
}

export interface TinyModelOptions extends CommonOptions {
  layers?: number;
  dim?: number;
  heads?: number;
  kvHeads?: number;
  ff?: number;
  ctx?: number;
  /** ggml type of the 2-D weights (norms stay f32); default "f32". */
  type?: string;
  seed?: number;
}

/**
 * Writes a random-weight llama-architecture GGUF with the vocabulary of `vocabFile` (a
 * models/ggml-vocab-*.gguf). For llama-ref's own tests; parity fixtures come from the project's
 * generator.
 */
export function llamaRefTinyModel(vocabFile: string, outFile: string, opts: TinyModelOptions = {}): void {
  const args = ['tiny-model', '--vocab', vocabFile, '--out', outFile];
  const num: [keyof TinyModelOptions, string][] = [
    ['layers', '--layers'], ['dim', '--dim'], ['heads', '--heads'], ['kvHeads', '--kv-heads'],
    ['ff', '--ff'], ['ctx', '--ctx'], ['seed', '--seed'],
  ];
  for (const [k, flag] of num) {
    const v = opts[k];
    if (v !== undefined) args.push(flag, String(v));
  }
  if (opts.type !== undefined) args.push('--type', opts.type);
  refRun(args, opts);
}

export interface ModelQuantizeOptions extends CommonOptions {
  /** Per-tensor importance weights, passed to llama_model_quantize as they are. */
  imatrix?: ReadonlyMap<string, Float32Array>;
  /** Allow sources that are already quantized (llama-quantize --allow-requantize). */
  allowRequantize?: boolean;
  threads?: number;
}

/**
 * llama-quantize itself: `llama_model_quantize` with its default parameters, `input` to `output`
 * (paths) in the mix `fileType` ("Q4_K_M", "Q8_0", ...).
 */
export function llamaRefQuantizeModel(input: string, output: string, fileType: string, opts: ModelQuantizeOptions = {}): void {
  withTemp((dir) => {
    const args = ['quantize-model', input, output, fileType];
    if (opts.imatrix) {
      const parts: Uint8Array[] = [];
      const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
      parts.push(u32(opts.imatrix.size));
      for (const [name, values] of opts.imatrix) {
        const nameBytes = new TextEncoder().encode(name);
        parts.push(u32(nameBytes.length), nameBytes, u32(values.length), new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      }
      const imf = join(dir, 'imatrix.bin');
      writeFileSync(imf, Buffer.concat(parts));
      args.push('--imatrix', imf);
    }
    if (opts.allowRequantize) args.push('--allow-requantize');
    if (opts.threads !== undefined) args.push('--threads', String(opts.threads));
    refRun(args, opts);
  });
}
