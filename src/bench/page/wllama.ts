/**
 * Peer runner in the page: wllama (llama.cpp compiled to wasm, with llama-server's API), the same
 * GGUF over HTTP, the same thread count. Its API takes text, so the prompts are the words that
 * tokenize one word to one token (models.ts `benchPrompt`); each prompt starts with a different
 * word, so llama-server's prompt cache never skips work. Prefill is timed on the wall clock as for
 * ours; decode is llama-server's own count of generated tokens over their time.
 */
import { Wllama } from '@wllama/wllama';
import { describeSample } from '../describe.ts';
import { benchPrompt } from '../prompt.ts';
import type { RunSample, Workload } from '../types.ts';

export interface WllamaPageResult {
  version: string;
  multithread: boolean;
  threads: number;
  samples: RunSample[];
}

export async function runWllama(url: string, wasmUrl: string, workload: Workload, runs: number, gpu: boolean): Promise<WllamaPageResult> {
  const contexts = [...workload.contexts].sort((a, b) => a - b);
  const longest = Math.max(workload.promptTokens, ...contexts) + workload.decodeTokens + 16;
  const samples: RunSample[] = [];
  let multithread = false;
  let threads = 1;
  for (let run = 0; run < runs; run++) {
    const t0 = performance.now();
    const wllama = new Wllama({ default: wasmUrl }, { suppressNativeLog: true });
    await wllama.loadModelFromUrl(url, {
      n_ctx: Math.ceil(longest / 256) * 256,
      n_batch: 512,
      n_threads: workload.threads,
      n_gpu_layers: gpu ? 999 : 0,
      useCache: false,
    });
    const loadMs = performance.now() - t0;
    multithread = wllama.isMultithread();
    threads = wllama.getNumThreads();
    try {
      const complete = (text: string, maxTokens: number) =>
        wllama.createCompletion({ prompt: text, max_tokens: maxTokens, temp: 0, top_k: 1, ignore_eos: true, stream: false });
      const w0 = performance.now();
      await complete(benchPrompt(16, run + 1).text, 2);
      const warmupMs = performance.now() - w0;

      const p0 = performance.now();
      const first = await complete(benchPrompt(workload.promptTokens, run).text, 1);
      const ttftMs = performance.now() - p0;
      if (first.usage.prompt_tokens !== workload.promptTokens) {
        console.log(`    wllama: the prompt was ${first.usage.prompt_tokens} tokens, not ${workload.promptTokens}`);
      }
      const decodeTps: Record<string, number> = {};
      for (const [i, ctx] of contexts.entries()) {
        const r = await complete(benchPrompt(ctx, 13 + run + i).text, workload.decodeTokens + 1);
        const t = r.timings;
        // llama-server's count: generated tokens over the time after the prompt was evaluated.
        if (t && t.predicted_n > 0) decodeTps[String(ctx)] = t.predicted_per_second;
      }
      const sample: RunSample = { loadMs, warmupMs, ttftMs, prefillTps: workload.promptTokens / (ttftMs / 1000), decodeTps };
      console.log(`    run ${run + 1}: ${describeSample(sample)}`);
      samples.push(sample);
    } finally {
      await wllama.exit();
    }
  }
  return { version: Wllama.getLibllamaVersion(), multithread, threads, samples };
}
