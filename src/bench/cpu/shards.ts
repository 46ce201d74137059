/**
 * What spreading the weights over several WebAssembly memories costs (../../engine/backend/cpu/shards.ts):
 * one generated Q4_K_M llama (sampled blocks, ~70 MiB) in one memory and in memories of
 * `--shard-mib` (default 24: five of them), decode and a 64-token prefill, tokens per second by
 * process CPU time (a busy shared machine disturbs it far less than the wall clock) and by wall.
 *   npx tsx src/bench/cpu/shards.ts [--threads N] [--shard-mib M] [--reps R]
 */
import { parseArgs } from 'node:util';
import { CPU_PLAN_TARGET, CpuBackend, cpuWeightBytes } from '../../engine/backend/cpu/backend.ts';
import { cpuLayout } from '../../engine/backend/cpu/shards.ts';
import { bytesSource } from '../../engine/gguf/source.ts';
import { openGgufModel } from '../../engine/gguf/split.ts';
import { planLoad } from '../../engine/model/loader.ts';
import { Model } from '../../engine/model/model.ts';
import { makeTestModel } from '../../testing/make-model.ts';
import { tokensFor } from '../../testing/random.ts';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, 'shard-mib': { type: 'string', default: '24' }, reps: { type: 'string', default: '3' } } });
const threads = Number(values.threads);
const shardMiB = Number(values['shard-mib']);
const bytes = makeTestModel({ arch: 'llama', embd: 1024, layers: 8, heads: 16, kvHeads: 4, ff: 4096, quant: 'q4_k_m', seed: 2, sampledBlocks: true });
console.log(`model ${(bytes.length / 2 ** 20).toFixed(1)} MiB, ${threads} thread(s)`);

async function timed(f: () => Promise<unknown>): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1e6, wall: (performance.now() - w0) / 1000 };
}

for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const shards of [false, true]) {
    const p = planLoad(await openGgufModel([bytesSource(bytes)]), CPU_PLAN_TARGET, { contextLength: 256, batch: 64 });
    const layout = cpuLayout(p.file.tensors, p.plan.totalBytes, cpuWeightBytes);
    const backend = await CpuBackend.create({ relaxed: false, threads, ...(shards ? { layout, shardBytes: shardMiB << 20 } : {}) });
    const model = await Model.load(backend, p);
    const prompt = tokensFor(64, p.config.nVocab, rep + 1);
    const prefill = await timed(() => model.eval(prompt));
    const N = 24;
    const decode = await timed(async () => {
      for (let i = 0; i < N; i++) await model.eval([prompt[i]!]);
    });
    // CPU time counts every thread's: per thread, it is the wall time of a perfectly parallel run.
    const rate = (n: number, t: { cpu: number; wall: number }) => `${((n * threads) / t.cpu).toFixed(1)} (cpu) ${(n / t.wall).toFixed(1)} (wall)`;
    console.log(`rep ${rep} memories ${backend.shardCount}: prefill 64 ${rate(64, prefill)} tok/s; decode ${rate(N, decode)} tok/s`);
    model.destroy();
  }
}
