/**
 * The vocabulary as llama.cpp loads it from GGUF metadata (llama_vocab::impl::load): token texts,
 * scores and attributes, special token ids, the per-vocab-type defaults, the per-pre-tokenizer
 * flags, and the fix-ups llama.cpp applies by token text (end-of-generation tokens, FIM tokens,
 * "unused" tokens, Phi-3's rstrip, ...). Everything here is data; tokenizer.ts does the work.
 */
import { TokenizerLoadError } from './errors.ts';

/** Token attribute bits (llama.h `enum llama_token_attr`). */
export const ATTR = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

/** `tokenizer.ggml.token_type` values (llama.h `enum llama_token_type`). */
const TOKEN_TYPE_TO_ATTR: Readonly<Record<number, number>> = {
  0: ATTR.UNDEFINED,
  1: ATTR.NORMAL,
  2: ATTR.UNKNOWN,
  3: ATTR.CONTROL,
  4: ATTR.USER_DEFINED,
  5: ATTR.UNUSED,
  6: ATTR.BYTE,
};

/** SentencePiece BPE-like ('llama'), byte-level BPE ('gpt2', 'gemma4'), SentencePiece unigram ('t5'). */
export type VocabType = 'spm' | 'bpe' | 'ugm';

/** Special token ids; null where the vocab has none. */
export interface SpecialTokens {
  bos: number | null;
  eos: number | null;
  eot: number | null;
  eom: number | null;
  unk: number | null;
  sep: number | null;
  pad: number | null;
  mask: number | null;
  fimPre: number | null;
  fimSuf: number | null;
  fimMid: number | null;
  fimPad: number | null;
  fimRep: number | null;
  fimSep: number | null;
}

export interface VocabFlags {
  addSpacePrefix: boolean;
  addBos: boolean;
  addEos: boolean;
  addSep: boolean;
  ignoreMerges: boolean;
  /** clean_up_tokenization_spaces: detokenize drops the space in " ?", " 's" and the like. */
  cleanSpaces: boolean;
  removeExtraWhitespaces: boolean;
  /** Spaces are written as U+2581 in token texts (SentencePiece, Gemma 4's BPE). */
  escapeWhitespaces: boolean;
}

export interface Vocab {
  type: VocabType;
  /** `tokenizer.ggml.model` as stored. */
  model: string;
  /** `tokenizer.ggml.pre` as stored, or 'default' when absent (BPE). */
  pre: string;
  /** Pre-tokenizer kind (a key of PRE_TOKENIZER_REGEXES); BPE only. */
  preKind: string;
  tokens: string[];
  /** Token text -> id; where texts repeat (llama.cpp refuses such vocabs), the last id. */
  tokenToId: Map<string, number>;
  scores: Float32Array;
  attrs: Uint16Array;
  merges: readonly string[];
  /** UGM: SentencePiece's precompiled normalization map (tokenizer.ggml.precompiled_charsmap), if any. */
  precompiledCharsmap: Uint8Array | undefined;
  special: SpecialTokens;
  flags: VocabFlags;
  eog: Set<number>;
  /** What llama.cpp would have logged as a warning while loading this vocab. */
  warnings: string[];
}

/** tokenizer.ggml.pre name -> pre-tokenizer kind and the flags llama.cpp sets for it. */
interface PreEntry {
  kind: string;
  cleanSpaces?: boolean;
  ignoreMerges?: boolean;
  addBos?: boolean;
  escapeWhitespaces?: boolean;
  addSep?: boolean;
  noBos?: boolean;
}

const PRE_NAMES: ReadonlyMap<string, PreEntry> = (() => {
  const map = new Map<string, PreEntry>();
  const add = (names: string[], entry: PreEntry) => names.forEach((name) => map.set(name, entry));
  const noClean = (kind: string): PreEntry => ({ kind, cleanSpaces: false });
  add(['default'], { kind: 'default' });
  add(['minicpm5'], { kind: 'minicpm5', ignoreMerges: true });
  add(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'], {
    kind: 'llama3',
    ignoreMerges: true,
    addBos: true,
  });
  add(['deepseek-llm'], noClean('deepseek-llm'));
  add(['deepseek-coder'], noClean('deepseek-coder'));
  add(['deepseek-v3'], noClean('deepseek3-llm'));
  add(['youtu'], { kind: 'youtu', cleanSpaces: false, ignoreMerges: true });
  add(['falcon'], { kind: 'falcon' });
  add(['mpt'], { kind: 'mpt' });
  add(['starcoder'], { kind: 'starcoder' });
  add(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert'], {
    kind: 'gpt2',
  });
  add(['jais-2'], { kind: 'jais2' });
  add(['gemma4', 'granite-embed-multi-311m'], { kind: 'gemma4', escapeWhitespaces: true });
  add(['sarvam-moe'], { kind: 'sarvam-moe', escapeWhitespaces: true, cleanSpaces: false });
  add(['jina-v1-en', 'jina-v2-code', 'roberta-bpe'], { kind: 'gpt2', addSep: true });
  add(['whitespace'], { kind: 'whitespace' });
  add(['refact'], { kind: 'refact' });
  add(['command-r'], noClean('command-r'));
  add(['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2'], noClean('qwen2'));
  add(['qwen35'], noClean('qwen35'));
  add(['stablelm2'], { kind: 'stablelm2' });
  add(['olmo'], { kind: 'olmo' });
  add(['dbrx'], { kind: 'dbrx' });
  add(['smaug-bpe'], { kind: 'smaug' });
  add(['poro-chat'], noClean('poro'));
  add(['glm4', 'chatglm-bpe'], { kind: 'chatglm4', noBos: true });
  add(['viking'], noClean('viking'));
  add(['jais'], { kind: 'jais' });
  add(['tekken'], { kind: 'tekken', cleanSpaces: false, ignoreMerges: true, addBos: true });
  add(['smollm'], noClean('smollm'));
  add(['codeshell'], { kind: 'codeshell' });
  add(['bloom'], { kind: 'bloom' });
  add(['gpt3-finnish'], { kind: 'gpt3-finnish' });
  add(['exaone'], { kind: 'exaone' });
  add(['exaone4'], { kind: 'gpt2' });
  add(['exaone-moe'], { kind: 'exaone-moe' });
  add(['chameleon'], { kind: 'chameleon', addBos: true, cleanSpaces: false });
  add(['minerva-7b'], { kind: 'minerva' });
  add(['megrez'], { kind: 'qwen2' });
  add(['gpt-4o', 'llama4', 'kanana2', 'talkie'], noClean('gpt4o'));
  add(['granite-embed-multi-97m'], { kind: 'granite-emb-multi', cleanSpaces: false, ignoreMerges: true });
  add(['tiny_aya', 'cohere2moe'], noClean('tiny-aya'));
  add(['superbpe'], noClean('superbpe'));
  add(['trillion'], noClean('trillion'));
  add(['granite-docling'], noClean('granite-docling'));
  add(['bailingmoe', 'bailingmoe2', 'llada-moe'], noClean('bailingmoe'));
  add(['seed-coder'], noClean('seed-coder'));
  add(['hunyuan'], noClean('hunyuan'));
  add(['hunyuan-dense'], noClean('hunyuan-dense'));
  add(['joyai-llm'], noClean('joyai-llm'));
  add(['kimi-k2'], noClean('kimi-k2'));
  add(['grok-2'], noClean('grok-2'));
  add(['afmoe'], noClean('afmoe'));
  add(['laguna'], noClean('laguna'));
  add(['minimax-m2'], noClean('minimax-m2'));
  add(['solar-open'], noClean('solar-open'));
  add(['mellum2'], { kind: 'mellum2' });
  return map;
})();

/** Every `tokenizer.ggml.pre` name this engine knows, as llama.cpp spells them. */
export const KNOWN_PRE_TOKENIZERS: readonly string[] = [...PRE_NAMES.keys()];

/** The metadata a tokenizer is built from: GGUF keys to decoded values (see gguf/types.ts). */
export type TokenizerMetadata = ReadonlyMap<string, unknown>;

function getString(md: TokenizerMetadata, key: string): string | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new TokenizerLoadError(`${key} should be a string`, { key });
  return v;
}

function getBool(md: TokenizerMetadata, key: string): boolean | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new TokenizerLoadError(`${key} should be a bool`, { key });
  return v;
}

/** u32 keys: llama.cpp's get_key(…, uint32_t&) also accepts the other integer types. */
function getUint(md: TokenizerMetadata, key: string): number | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new TokenizerLoadError(`${key} should be an integer`, { key });
}

function getNumbers(md: TokenizerMetadata, key: string): ArrayLike<number> | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) {
    return v as unknown as ArrayLike<number>;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  throw new TokenizerLoadError(`${key} should be a numeric array`, { key });
}

/** tokenizer.ggml.precompiled_charsmap: an INT8 or UINT8 array (llama.cpp refuses other types). */
function readCharsmap(md: TokenizerMetadata): Uint8Array | undefined {
  const key = 'tokenizer.ggml.precompiled_charsmap';
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array || v instanceof Int8Array)) throw new TokenizerLoadError(`invalid gguf type for ${key}`, { key });
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function getStrings(md: TokenizerMetadata, key: string): string[] | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new TokenizerLoadError(`${key} should be an array of strings`, { key });
  }
  return v as string[];
}

const SPECIAL_KEYS: ReadonlyArray<[keyof SpecialTokens, string]> = [
  ['bos', 'tokenizer.ggml.bos_token_id'],
  ['eos', 'tokenizer.ggml.eos_token_id'],
  ['eot', 'tokenizer.ggml.eot_token_id'],
  ['eom', 'tokenizer.ggml.eom_token_id'],
  ['unk', 'tokenizer.ggml.unknown_token_id'],
  ['sep', 'tokenizer.ggml.seperator_token_id'], // sic: the key is spelled this way
  ['pad', 'tokenizer.ggml.padding_token_id'],
  ['mask', 'tokenizer.ggml.mask_token_id'],
  ['fimPre', 'tokenizer.ggml.fim_pre_token_id'],
  ['fimSuf', 'tokenizer.ggml.fim_suf_token_id'],
  ['fimMid', 'tokenizer.ggml.fim_mid_token_id'],
  ['fimPad', 'tokenizer.ggml.fim_pad_token_id'],
  ['fimRep', 'tokenizer.ggml.fim_rep_token_id'],
  ['fimSep', 'tokenizer.ggml.fim_sep_token_id'],
  // deprecated spellings, read after the new ones as llama.cpp does
  ['fimPre', 'tokenizer.ggml.prefix_token_id'],
  ['fimSuf', 'tokenizer.ggml.suffix_token_id'],
  ['fimMid', 'tokenizer.ggml.middle_token_id'],
];

// Texts llama.cpp recognizes special tokens by (see its load()), as one table of roles so that the
// loader looks each token up once.
const ROLE = { EOT: 1, EOM: 2, EOG: 4, ALWAYS_RENDERED: 8, FIM: 16 } as const;
const FIM_FIELDS = ['fimPre', 'fimSuf', 'fimMid', 'fimPad', 'fimRep', 'fimSep'] as const;
interface RoleEntry {
  roles: number;
  fim?: (typeof FIM_FIELDS)[number];
  /** Position in llama.cpp's list of texts for the role (EOT or FIM): earlier wins. */
  rank: number;
}
const ROLES: ReadonlyMap<string, RoleEntry> = (() => {
  const map = new Map<string, RoleEntry>();
  const add = (texts: string[], roles: number, fim?: (typeof FIM_FIELDS)[number]) => {
    texts.forEach((text, rank) => {
      const entry = map.get(text) ?? { roles: 0, rank };
      entry.roles |= roles;
      if (roles & (ROLE.EOT | ROLE.FIM)) entry.rank = rank;
      if (fim) entry.fim = fim;
      map.set(text, entry);
    });
  };
  // U+FF5C and U+2581 are written as escapes so that no editor's normalization can change them.
  const EOS_DEEPSEEK = '<\uff5cend\u2581of\u2581sentence\uff5c>';
  add(['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', EOS_DEEPSEEK, '<end_of_utterance>'], ROLE.EOT);
  add(['<|eom_id|>'], ROLE.EOM);
  add(['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<\uff5cfim\u2581begin\uff5c>', '<PRE>', '\u2581<PRE>', '<|code_prefix|>', '<|prefix|>'], ROLE.FIM, 'fimPre');
  add(['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<\uff5cfim\u2581hole\uff5c>', '<SUF>', '\u2581<SUF>', '<|code_suffix|>', '<|suffix|>'], ROLE.FIM, 'fimSuf');
  add(['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<\uff5cfim\u2581end\uff5c>', '<MID>', '\u2581<MID>', '<|code_middle|>', '<|middle|>'], ROLE.FIM, 'fimMid');
  add(['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'], ROLE.FIM, 'fimPad');
  add(['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'], ROLE.FIM, 'fimRep');
  add(['<|file_sep|>'], ROLE.FIM, 'fimSep');
  add(
    [
      '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>', '<|endoftext|>',
      '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>', '<eos>', '<turn|>',
      '<|tool_response>', EOS_DEEPSEEK, '[e~[',
    ],
    ROLE.EOG,
  );
  add(['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>'], ROLE.ALWAYS_RENDERED);
  return map;
})();

/**
 * Builds the vocabulary from GGUF metadata, following llama.cpp's loader step by step. Throws
 * {@link TokenizerLoadError} for what llama.cpp refuses to load and for vocab types this engine
 * does not implement (WPM/BERT, RWKV, PLaMo-2).
 */
export function loadVocab(md: TokenizerMetadata): Vocab {
  const warnings: string[] = [];
  const model = getString(md, 'tokenizer.ggml.model');
  if (model === undefined) throw new TokenizerLoadError('the model has no tokenizer (tokenizer.ggml.model is missing)', { key: 'tokenizer.ggml.model' });
  let pre = getString(md, 'tokenizer.ggml.pre') ?? '';

  const special: SpecialTokens = {
    bos: 1, eos: 2, eot: null, eom: null, unk: 0, sep: null, pad: null, mask: null,
    fimPre: null, fimSuf: null, fimMid: null, fimPad: null, fimRep: null, fimSep: null,
  };
  const flags: VocabFlags = {
    addSpacePrefix: false, addBos: false, addEos: false, addSep: false, ignoreMerges: false,
    cleanSpaces: false, removeExtraWhitespaces: false, escapeWhitespaces: true,
  };
  let type: VocabType;
  let merges: string[] = [];
  let preKind = 'default';
  let precompiledCharsmap: Uint8Array | undefined;

  const unsupported: Record<string, string> = {
    bert: 'WPM (BERT)', rwkv: 'RWKV', plamo2: 'PLaMo-2', no_vocab: 'no vocabulary', none: 'no vocabulary',
    hybriddna: 'HybridDNA', whitespace: 'whitespace-split BPE',
  };
  if (model === 'llama') {
    type = 'spm';
    Object.assign(special, { bos: 1, eos: 2, unk: 0 });
  } else if (model === 'gpt2' || model === 'gemma4') {
    type = 'bpe';
    const m = getStrings(md, 'tokenizer.ggml.merges');
    if (m === undefined) throw new TokenizerLoadError('cannot find tokenizer merges in model file', { key: 'tokenizer.ggml.merges' });
    merges = m;
    if (model === 'gpt2') Object.assign(special, { bos: 11, eos: 11, unk: null });
    else Object.assign(special, { bos: null, eos: null, unk: null });
    if (model === 'gemma4') pre = 'gemma4';
  } else if (model === 't5') {
    type = 'ugm';
    Object.assign(special, { bos: null, eos: 1, unk: 2, pad: 0 });
    precompiledCharsmap = readCharsmap(md);
  } else if (model in unsupported) {
    throw new TokenizerLoadError(`${unsupported[model]} tokenizers (tokenizer.ggml.model = '${model}') are not supported`, { key: 'tokenizer.ggml.model', model });
  } else {
    throw new TokenizerLoadError(`unknown tokenizer: '${model}'`, { key: 'tokenizer.ggml.model', model });
  }

  if (type === 'bpe') {
    flags.addSpacePrefix = false;
    flags.escapeWhitespaces = false;
    flags.cleanSpaces = true;
    if (pre === '') {
      warnings.push("missing pre-tokenizer type, using: 'default' (llama.cpp: GENERATION QUALITY WILL BE DEGRADED)");
      pre = 'default';
    }
    const entry = PRE_NAMES.get(pre);
    if (!entry) {
      throw new TokenizerLoadError(`unknown pre-tokenizer type: '${pre}'`, { key: 'tokenizer.ggml.pre', pre });
    }
    preKind = entry.kind;
    if (entry.cleanSpaces !== undefined) flags.cleanSpaces = entry.cleanSpaces;
    if (entry.ignoreMerges) flags.ignoreMerges = true;
    if (entry.addBos) flags.addBos = true;
    if (entry.escapeWhitespaces) flags.escapeWhitespaces = true;
    if (entry.addSep) flags.addSep = true;
    if (entry.noBos) special.bos = null;
  } else if (type === 'spm') {
    flags.addSpacePrefix = true;
    flags.cleanSpaces = false;
    flags.addBos = true;
    flags.addEos = false;
  } else {
    // UGM: llama.cpp leaves add_space_prefix off unless the file says otherwise (T5's files do).
    flags.addBos = false;
    flags.addEos = true;
  }
  flags.addSpacePrefix = getBool(md, 'tokenizer.ggml.add_space_prefix') ?? flags.addSpacePrefix;
  flags.removeExtraWhitespaces = getBool(md, 'tokenizer.ggml.remove_extra_whitespaces') ?? flags.removeExtraWhitespaces;

  const rawTokens = getStrings(md, 'tokenizer.ggml.tokens');
  if (rawTokens === undefined) throw new TokenizerLoadError('cannot find tokenizer vocab in model file', { key: 'tokenizer.ggml.tokens' });
  const n = rawTokens.length;
  // Nothing can be encoded or decoded with no tokens; said here rather than as a crash later.
  if (n === 0) throw new TokenizerLoadError('the vocabulary is empty (tokenizer.ggml.tokens has no tokens)', { key: 'tokenizer.ggml.tokens' });
  const scoresIn = getNumbers(md, 'tokenizer.ggml.scores');
  if (scoresIn && scoresIn.length < n) {
    throw new TokenizerLoadError(`Index out of array bounds for scores (${scoresIn.length} < ${n})`, { key: 'tokenizer.ggml.scores' });
  }
  const typesIn = getNumbers(md, 'tokenizer.ggml.token_type');
  if (typesIn && typesIn.length < n) {
    throw new TokenizerLoadError(`Index out of array bounds for toktypes (${typesIn.length} < ${n})`, { key: 'tokenizer.ggml.token_type' });
  }

  const tokens = new Array<string>(n);
  const scores = new Float32Array(n);
  const attrs = new Uint16Array(n);
  const tokenToId = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    let text = rawTokens[i]!;
    if (text === '') {
      warnings.push(`empty token at index ${i}`);
      text = `[EMPTY_${i}]`;
    }
    tokenToId.set(text, i);
    tokens[i] = text;
    if (scoresIn) scores[i] = scoresIn[i]!;
    attrs[i] = typesIn ? (TOKEN_TYPE_TO_ATTR[typesIn[i]!] ?? ATTR.UNDEFINED) : ATTR.NORMAL;
  }
  const unique = tokenToId.size === n;
  if (!unique) warnings.push(`${n - tokenToId.size} token texts repeat (llama.cpp refuses such a vocab); the last id of each wins`);
  const idOf = (text: string) => tokenToId.get(text);
  /** True for the id llama.cpp's token_to_id holds for this token's text. */
  const isMapped = (id: number) => unique || tokenToId.get(tokens[id]!) === id;

  // Special ids: defaults out of range are disabled; a key out of range keeps the default.
  for (const [field, key] of SPECIAL_KEYS) {
    const def = special[field];
    if (def !== null && def >= n) {
      warnings.push(`default special token '${key}' = ${def} out of vocab range, disabling`);
      special[field] = null;
    }
    const value = getUint(md, key);
    if (value === undefined) continue;
    if (value >= n || value < 0) warnings.push(`bad special token: '${key}' = ${value}, using default id ${special[field]}`);
    else special[field] = value;
  }

  flags.addBos = getBool(md, 'tokenizer.ggml.add_bos_token') ?? flags.addBos;
  flags.addEos = getBool(md, 'tokenizer.ggml.add_eos_token') ?? flags.addEos;
  flags.addSep = getBool(md, 'tokenizer.ggml.add_sep_token') ?? flags.addSep;
  if (preKind === 'gemma4' && !flags.addBos) {
    flags.addBos = true;
    warnings.push("override 'tokenizer.ggml.add_bos_token' to 'true' for Gemma4");
  }

  // Auto-detected special tokens. llama.cpp walks its hash table of texts and takes the first
  // candidate it meets, so with several candidates (Llama 3 has <|eot_id|> and <|end_of_text|>) its
  // pick depends on hash order. We take the earliest in llama.cpp's list of texts, which is the
  // turn-ending one and agrees with llama.cpp on every vocab in its test suites.
  const makeControl = (id: number) => {
    if ((attrs[id]! & ATTR.CONTROL) === 0) {
      warnings.push(`control-looking token: ${id} '${tokens[id]}' was not control-type; its type will be overridden`);
      attrs[id] = attrs[id]! | ATTR.CONTROL;
    }
  };
  const withRoles: Array<[number, RoleEntry]> = [];
  for (let id = 0; id < n; id++) {
    const entry = ROLES.get(tokens[id]!);
    if (entry && isMapped(id)) withRoles.push([id, entry]);
  }
  const pick = (field: 'eot' | 'eom' | (typeof FIM_FIELDS)[number], matches: (e: RoleEntry) => boolean) => {
    if (special[field] !== null) return;
    let best: [number, RoleEntry] | undefined;
    for (const candidate of withRoles) if (matches(candidate[1]) && (!best || candidate[1].rank < best[1].rank)) best = candidate;
    if (best) {
      special[field] = best[0];
      makeControl(best[0]);
    }
  };
  pick('eot', (e) => (e.roles & ROLE.EOT) !== 0);
  pick('eom', (e) => (e.roles & ROLE.EOM) !== 0);
  for (const field of FIM_FIELDS) pick(field, (e) => e.fim === field);
  for (let id = 0; id < n; id++) {
    if (attrs[id]! & ATTR.CONTROL && tokens[id]!.includes('unused')) attrs[id] = attrs[id]! | ATTR.UNUSED;
  }

  const eog = new Set<number>();
  for (const id of [special.fimPad, special.fimRep, special.fimSep]) if (id !== null) eog.add(id);
  for (const [id, { roles }] of withRoles) {
    if (roles & ROLE.EOG) {
      eog.add(id);
      makeControl(id);
    }
  }
  for (const [id, { roles }] of withRoles) if (roles & ROLE.ALWAYS_RENDERED) attrs[id] = ATTR.USER_DEFINED;
  for (const [id, what] of [[special.eos, 'eos'], [special.eot, 'eot'], [special.eom, 'eom']] as const) {
    if (id !== null && !eog.has(id)) {
      eog.add(id);
      warnings.push(`special_${what}_id is not in special_eog_ids - the tokenizer config may be incorrect`);
    }
  }
  {
    // gpt-oss / solar-open: "<|end|>" ends a message, not the generation.
    const textsOf = (ids: Iterable<number>) => [...ids].filter((id) => id >= 0 && id < n).map((id) => [id, tokens[id]!] as const);
    const eogTexts = textsOf(eog);
    const has = (t: string) => eogTexts.some(([, text]) => text === t);
    const end = eogTexts.find(([, text]) => text === '<|end|>');
    const hasCall = has('<|call|>') || has('<|calls|>');
    if (end && ((has('<|return|>') && hasCall) || (hasCall && has('<|flush|>')))) {
      eog.delete(end[0]);
      attrs[end[0]] = ATTR.USER_DEFINED;
    }
    // Gemma 4 and PaddleOCR: "</s>" is not end-of-generation there.
    const s = eogTexts.find(([, text]) => text === '</s>');
    if (s && has('<|tool_response>')) {
      eog.delete(s[0]);
      attrs[s[0]] = ATTR.NORMAL;
    }
  }

  // Per-model attributes, keyed by names as llama.cpp does.
  const name = (getString(md, 'general.name') ?? '').toLowerCase();
  const preName = getString(md, 'tokenizer.ggml.pre') ?? '';
  const arch = getString(md, 'general.architecture') ?? '';
  const setAttr = (text: string, bit: number, on: boolean) => {
    const id = idOf(text);
    if (id === undefined) throw new TokenizerLoadError(`token '${text}' is missing from the vocab (llama.cpp fails to load this model too)`, { token: text });
    attrs[id] = on ? attrs[id]! | bit : attrs[id]! & ~bit;
  };
  const containsAny = (s: string, parts: string[]) => parts.some((p) => s.includes(p));
  if (containsAny(preName, ['jina-v2-de', 'jina-v2-es', 'jina-v2-code']) || containsAny(arch, ['nomic-bert-moe', 'jina-bert-v3'])) {
    if (idOf('<mask>') === undefined) warnings.push('Mask token is missing in vocab, please reconvert model!');
    else setAttr('<mask>', ATTR.LSTRIP, true);
  } else if (containsAny(name, ['phi-3', 'phi3'])) {
    for (let id = 0; id < n; id++) {
      if (attrs[id]! & (ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN)) attrs[id] = attrs[id]! | ATTR.RSTRIP;
    }
    setAttr('</s>', ATTR.RSTRIP, true);
    for (const t of ['<unk>', '<s>', '<|endoftext|>']) setAttr(t, ATTR.RSTRIP, false);
  } else if (containsAny(name, ['modern-bert'])) {
    if (idOf('[MASK]') === undefined) warnings.push('Mask token missing in vocab!');
    else setAttr('[MASK]', ATTR.LSTRIP, true);
  }

  return { type, model, pre, preKind, tokens, tokenToId, scores, attrs, merges, precompiledCharsmap, special, flags, eog, warnings };
}
