/**
 * Peer runner: native llama.cpp through node-llama-cpp, on the same GGUF file, prompt and thread
 * count: its prebuilt CPU build, or (`gpu`) its prebuilt CUDA or Vulkan build with every layer on
 * the GPU, the peer our WebGPU figures are compared with on a GPU machine. Both ship in the npm
 * package, so a machine without network runs them. The same procedure as ours: time the prompt to the first sampled
 * token, then fill the cache to each context and time single-token decode steps.
 */
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { describeSample } from './describe.ts';
import { benchPrompt } from './prompt.ts';
import type { RunSample, Workload } from './types.ts';

export interface LlamaCppResult {
  /** The llama.cpp release node-llama-cpp bundles. */
  version: string;
  /** The build that ran: 'cpu', or 'cuda', 'vulkan' or 'metal' with the GPU's name. */
  build: string;
  samples: RunSample[];
}

export async function runLlamaCpp(path: string, workload: Workload, runs: number, log: (line: string) => void, gpu = false): Promise<LlamaCppResult> {
  const llama = await getLlama({ gpu: gpu ? 'auto' : false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: workload.threads });
  // A GPU build can start and still see no GPU (its Vulkan build skips software drivers such as
  // SwiftShader and then runs every layer on the CPU): that is not a GPU figure.
  const gpuNames = gpu && llama.gpu !== false ? await llama.getGpuDeviceNames() : [];
  if (gpu && gpuNames.length === 0) {
    const build = llama.gpu;
    await llama.dispose();
    throw new Error(build === false ? 'node-llama-cpp found no GPU build (CUDA, Vulkan, Metal) that starts on this machine' : `llama.cpp's ${build} build sees no GPU device on this machine`);
  }
  const contexts = [...workload.contexts].sort((a, b) => a - b);
  const longest = Math.max(workload.promptTokens, ...contexts) + workload.decodeTokens + 1;
  const samples: RunSample[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const t0 = performance.now();
      const model = await llama.loadModel({ modelPath: path, gpuLayers: gpu ? 'max' : 0 });
      const context = await model.createContext({
        contextSize: Math.ceil(longest / 256) * 256,
        batchSize: 512,
        threads: { ideal: workload.threads, min: workload.threads },
        flashAttention: false,
      });
      const loadMs = performance.now() - t0;
      try {
        const sequence = context.getSequence();
        // Warm-up, as for ours: the first evaluation allocates compute buffers.
        const w0 = performance.now();
        await sequence.evaluateWithoutGeneratingNewTokens(tokens(benchPrompt(16, run + 1).ids));
        const warmupMs = performance.now() - w0;
        await sequence.clearHistory();

        const p0 = performance.now();
        const first = await firstToken(sequence.evaluate(tokens(benchPrompt(workload.promptTokens, run).ids), { temperature: 0 }));
        const ttftMs = performance.now() - p0;
        let token = first;
        const decodeTps: Record<string, number> = {};
        for (const ctx of contexts) {
          if (sequence.nextTokenIndex > ctx) await sequence.clearHistory();
          const fill = ctx - sequence.nextTokenIndex;
          if (fill > 0) await sequence.evaluateWithoutGeneratingNewTokens(tokens(benchPrompt(fill + 1, run).ids.slice(1)));
          const d0 = performance.now();
          let n = 0;
          for await (const t of sequence.evaluate(tokens([token]), { temperature: 0 })) {
            token = t;
            if (++n >= workload.decodeTokens) break;
          }
          decodeTps[String(ctx)] = workload.decodeTokens / ((performance.now() - d0) / 1000);
        }
        const sample: RunSample = { loadMs, warmupMs, ttftMs, prefillTps: workload.promptTokens / (ttftMs / 1000), decodeTps };
        log(`    run ${run + 1}: ${describeSample(sample)}`);
        samples.push(sample);
      } finally {
        await context.dispose();
        await model.dispose();
      }
    }
  } finally {
    await llama.dispose();
  }
  return { version: llama.llamaCppRelease.release, build: gpu ? `${llama.gpu} (${gpuNames.join(', ')})` : 'cpu', samples };
}

/** node-llama-cpp brands token ids; ours are plain numbers of the same vocabulary. */
function tokens(ids: readonly number[]): Token[] {
  return ids as Token[];
}

async function firstToken(generated: AsyncGenerator<Token, void, unknown>): Promise<Token> {
  for await (const t of generated) {
    await generated.return();
    return t;
  }
  throw new Error('llama.cpp generated no token');
}
