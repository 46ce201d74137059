/**
 * Tokenizer benchmark (not a test): MB/s on 1 MB of mixed text, ours beside llama.cpp's on the
 * same bytes and vocab, and whether the ids agree.
 *
 *   npx tsx src/bench/tokenizer.ts [vocab.gguf ...]
 *
 * Without arguments it uses llama.cpp's Llama 3 (BPE), Qwen2 (BPE), Gemma 4 (BPE on UTF-8) and
 * Llama 2 (SPM) vocab files. llama.cpp's time is that of `llama-ref tokenize` on the file minus
 * the same command on a one-byte text (process start and vocab load), best of three each.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '../engine/gguf/reader.ts';
import { nodeFileSource } from '../node/file-source.ts';
import { llamaCppSourceDir, llamaRefTokenize } from '../testing/llama-ref.ts';
import { Tokenizer } from '../engine/tokenizer/tokenizer.ts';

/** ~1 MB of text mixing prose in several scripts, code, numbers, whitespace and emoji; seeded. */
export function mixedText(bytes = 1 << 20, seed = 1): string {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const syllables: Record<string, string[]> = {
    latin: ['ka', 'ro', 'ten', 'mi', 'sa', 'lo', 'qu', 'ent', 'ion', 'th', 'er', 'an', 'st', 'ly', 'ing', 'pre', 'con'],
    cyrillic: ['ка', 'ро', 'ни', 'ст', 'ов', 'ать', 'при', 'ен', 'ла'],
    greek: ['κα', 'λη', 'μέ', 'ρα', 'το', 'ση', 'νο'],
    cjk: ['的', '是', '我', '们', '在', '天', '气', '很', '好', '学', '习', '中', '国'],
    kana: ['こ', 'ん', 'に', 'ち', 'は', 'カ', 'タ', 'ナ', 'す', 'る'],
    hangul: ['안', '녕', '하', '세', '요', '한', '국', '어'],
    arabic: ['مر', 'حب', 'ا', 'بال', 'عا', 'لم', 'كت', 'اب'],
    devanagari: ['न', 'म', 'स्', 'ते', 'दु', 'नि', 'या', 'कि'],
    thai: ['สวั', 'สดี', 'ชา', 'วโ', 'ลก', 'ไท', 'ย'],
  };
  const scripts = Object.keys(syllables);
  const word = (script: string) => {
    let w = '';
    const n = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < n; i++) w += pick(syllables[script]!);
    return rand() < 0.1 ? w[0]!.toUpperCase() + w.slice(1) : w;
  };
  const code = ['if (x != null) {\n', '  return f(a, b);\n', '}\n', 'for i in range(10):\n', '    print(i * 2)\n', '\tconst y = [1, 2, 3];\n'];
  const extras = [', ', '. ', '! ', '? ', ' - ', '\n', '\n\n', ' (', ') ', '"', "'s ", ' 😀 ', ' 👩🏽‍💻 ', ' 🇯🇵 ', '\t', '   '];
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const r = rand();
    let piece: string;
    if (r < 0.08) piece = pick(code);
    else if (r < 0.14) piece = ` ${Math.floor(rand() * 10 ** (1 + Math.floor(rand() * 8)))}`;
    else if (r < 0.25) piece = pick(extras);
    else {
      const script = rand() < 0.5 ? 'latin' : pick(scripts);
      piece = (script === 'cjk' || script === 'kana' || script === 'thai' ? '' : ' ') + word(script);
    }
    parts.push(piece);
    size += new TextEncoder().encode(piece).length;
  }
  return parts.join('');
}

/** Runs fn `runs` times; the fastest run (by its own `ms` when it reports one, else wall time). */
function best<T>(runs: number, fn: () => T): { ms: number; value: T } {
  let ms = Infinity;
  let value!: T;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const v = fn();
    const own = (v as { ms?: unknown }).ms;
    const took = typeof own === 'number' ? own : performance.now() - t0;
    if (took < ms) {
      ms = took;
      value = v;
    }
  }
  return { ms, value };
}

async function main(): Promise<void> {
  const models = process.argv.slice(2);
  if (models.length === 0) {
    const dir = join(llamaCppSourceDir(), 'models');
    for (const name of ['llama-bpe', 'qwen2', 'gemma-4', 'llama-spm']) models.push(join(dir, `ggml-vocab-${name}.gguf`));
  }
  const text = mixedText();
  const bytes = new TextEncoder().encode(text);
  const mb = bytes.length / 1e6;
  const tmp = mkdtempSync(join(tmpdir(), 'hearth-tok-bench-'));
  try {
    process.stdout.write(`text: ${bytes.length} bytes, ${text.length} UTF-16 units\n\n`);
    process.stdout.write('vocab          type  build ms   tokens    ours ms (MB/s)   llama.cpp ms (MB/s)   ours/llama.cpp  ids\n');
    const file = join(tmp, 'text.txt');
    writeFileSync(file, bytes);
    for (const model of models) {
      const source = await nodeFileSource(model);
      const metadata = (await readGguf(source)).metadata;
      await source.close();
      let buildMs = Infinity;
      let tok!: Tokenizer;
      // Each run: a fresh tokenizer, so its word caches start empty (the text is new to it).
      const ours = best(3, () => {
        const t0 = performance.now();
        tok = Tokenizer.fromGgufMetadata(metadata);
        buildMs = Math.min(buildMs, performance.now() - t0);
        const t1 = performance.now();
        const ids = tok.encode(text);
        return { ids, ms: performance.now() - t1 };
      });
      const oursMs = ours.ms;
      const full = best(3, () => llamaRefTokenize(model, bytes));
      const empty = best(3, () => llamaRefTokenize(model, 'a'));
      const refMs = Math.max(full.ms - empty.ms, 0.001);
      const same = JSON.stringify(full.value) === JSON.stringify(ours.value.ids);
      const name = model.split('/').pop()!.replace(/^ggml-vocab-|\.gguf$/g, '');
      process.stdout.write(
        `${name.padEnd(14)} ${tok.type.padEnd(5)} ${buildMs.toFixed(0).padStart(8)}   ${String(ours.value.ids.length).padEnd(8)} ` +
          `${oursMs.toFixed(0).padStart(7)} (${(mb / (oursMs / 1000)).toFixed(1).padStart(5)})  ` +
          `${refMs.toFixed(0).padStart(12)} (${(mb / (refMs / 1000)).toFixed(1).padStart(5)})  ${(oursMs / refMs).toFixed(2).padStart(14)}  ${same ? 'same' : 'DIFFER'}\n`,
      );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('tokenizer.ts')) await main();
