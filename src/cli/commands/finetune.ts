/**
 * `hearth finetune BASE.gguf --data FILE... --rank R --steps N --out ADAPTER.gguf`: LoRA training
 * (src/engine/train) on the CPU or, with `--backend webgpu`, on WebGPU, printing train loss, held-out loss and tokens/s, and writing a
 * GGUF LoRA adapter that `hearth generate --lora` and llama.cpp's --lora load. Data files: plain
 * text or Markdown; `.json` / `.jsonl` files hold conversations (arrays of {role, content}),
 * trained on the assistant turns through the model's chat template.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ChatMessage } from '../../engine/chat/index.ts';
import { readGguf } from '../../engine/gguf/reader.ts';
import { writeLoraGguf } from '../../engine/model/lora/adapter-data.ts';
import { Tokenizer } from '../../engine/tokenizer/index.ts';
import { loadTrainingBase } from '../../engine/train/base.ts';
import type { TrainOps } from '../../engine/train/ops.ts';
import { CpuTrainOps } from '../../engine/train/cpu-ops.ts';
import { WasmTrainOps } from '../../engine/backend/cpu/train-ops.ts';
import { splitHeldOut, type TrainingWindow } from '../../engine/train/data.ts';
import { trainingWindows } from '../../engine/train/prepare.ts';
import { LoraTrainer, TRAIN_TARGETS, evaluateLoss, newAdapter, type TrainTarget } from '../../engine/train/trainer.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { UsageError, backendArg, numberFlag, parseFlags, type CliCommand } from '../command.ts';

const HELP = `finetune BASE.gguf --data FILE[,FILE...] --out ADAPTER.gguf [options]
  --rank R        LoRA rank (default 8)
  --alpha A       (default 2 * rank)
  --targets LIST  comma-separated, of ${TRAIN_TARGETS.join(' ')} (default attn_q,attn_k,attn_v,attn_output)
  --steps N       optimizer steps (default 50)
  --lr X          peak learning rate (default 1e-3; warm-up 10% of the steps, then linear decay)
  --window N      tokens per training window (default 64)
  --batch B       windows per step (gradient accumulation, default 1)
  --held-out F    fraction of windows held out for evaluation (default 0.1)
  --weight-decay X (default 0.01)   --clip X  gradient norm (default 1)   --seed N
  --eval-every N  held-out loss every N steps (default: 5 times in the run)
  --no-recompute  keep every layer's activations (faster, more memory)
  --backend B     cpu (default) or webgpu (the base stays quantized on the GPU)
  --threads N     CPU: threads of the base products on the wasm SIMD kernels (default 1)
  --scalar-ops    CPU: every op in plain TypeScript (the products too; slower, for comparison)
Data: text or Markdown files; .json/.jsonl files hold conversations ([{role, content}, ...] each).`;

export const finetuneCommand: CliCommand = {
  usage: 'finetune BASE --data F --out A   train a LoRA adapter, CPU or WebGPU (finetune --help for options)',
  needsGpu: (args) => backendArg(args) === 'webgpu',
  async run(args) {
    if (args.includes('--help')) {
      process.stdout.write(`hearth ${HELP}\n`);
      return 0;
    }
    const { positional, values, switches } = parseFlags(args, {
      values: ['--data', '--out', '--rank', '--alpha', '--targets', '--steps', '--lr', '--window', '--batch', '--held-out', '--weight-decay', '--clip', '--seed', '--eval-every', '--backend', '--threads'],
      switches: ['--no-recompute', '--scalar-ops'],
    });
    if (positional.length < 1) throw new UsageError('finetune takes a base model file (and data files after --data)');
    const out = values.get('--out');
    if (!out) throw new UsageError('--out ADAPTER.gguf is required');
    const dataFiles = [...(values.get('--data') ?? '').split(',').filter(Boolean), ...positional.slice(1)];
    if (dataFiles.length === 0) throw new UsageError('--data FILE is required');
    const num = (flag: string, fallback: number, ok: (n: number) => boolean, what: string) => numberFlag(values, flag, fallback, ok, what);
    const int = (n: number) => Number.isSafeInteger(n) && n >= 1;
    const rank = num('--rank', 8, int, 'a positive integer');
    const alpha = num('--alpha', 2 * rank, (n) => Number.isFinite(n) && n >= 0, 'a number >= 0');
    const steps = num('--steps', 50, int, 'a positive integer');
    const lr = num('--lr', 1e-3, (n) => Number.isFinite(n) && n > 0, 'a positive number');
    const window = num('--window', 64, (n) => int(n) && n >= 2, 'an integer >= 2');
    const batch = num('--batch', 1, int, 'a positive integer');
    const heldOutFraction = num('--held-out', 0.1, (n) => n >= 0 && n < 1, 'a fraction in [0, 1)');
    const weightDecay = num('--weight-decay', 0.01, (n) => Number.isFinite(n) && n >= 0, 'a number >= 0');
    const clip = num('--clip', 1, (n) => Number.isFinite(n) && n > 0, 'a positive number');
    const seed = num('--seed', 1, (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer');
    const evalEvery = num('--eval-every', Math.max(1, Math.round(steps / 5)), int, 'a positive integer');
    const targets = (values.get('--targets') ?? 'attn_q,attn_k,attn_v,attn_output').split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of targets) if (!(TRAIN_TARGETS as readonly string[]).includes(t)) throw new UsageError(`unknown target '${t}'; known: ${TRAIN_TARGETS.join(', ')}`);

    const backend = values.get('--backend') ?? 'cpu';
    if (backend !== 'cpu' && backend !== 'webgpu') throw new UsageError(`--backend must be cpu or webgpu, got '${backend}'`);
    const threads = num('--threads', 1, int, 'a positive integer');
    if (backend === 'webgpu' && (values.has('--threads') || switches.has('--scalar-ops'))) throw new UsageError('--threads and --scalar-ops apply to the CPU backend only');

    const source = await nodeFileSource(positional[0]!);
    let closeOps: (() => void) | undefined;
    try {
      const file = await readGguf(source);
      const base = await loadTrainingBase(source, file);
      const tokenizer = Tokenizer.fromGgufMetadata(file.metadata as ReadonlyMap<string, unknown>);
      const windows: TrainingWindow[] = [];
      for (const path of dataFiles) {
        const text = readFileSync(path, 'utf8');
        const data = /\.jsonl?$/i.test(path) ? { conversations: parseConversations(path, text) } : { texts: [text] };
        windows.push(...trainingWindows(data, file.metadata as ReadonlyMap<string, unknown>, tokenizer, window));
      }
      const { train, heldOut } = splitHeldOut(windows, heldOutFraction);
      const adapter = newAdapter(base, { rank, alpha, targets: targets as TrainTarget[], seed, name: `finetuned ${dataFiles.join(', ')}` });
      let ops: TrainOps<unknown> = new CpuTrainOps('f32');
      let gpuCounters: (() => string) | undefined;
      let gpuCheck: (() => void) | undefined;
      if (backend === 'cpu' && !switches.has('--scalar-ops')) {
        // The base products on the wasm kernels; the scalar ops run the rest (issue 22).
        const wasm = await WasmTrainOps.create(new CpuTrainOps('f32'), { threads, baseBytes: base.bytes });
        ops = wasm as TrainOps<unknown>;
        closeOps = () => wasm.destroy();
      } else if (backend === 'webgpu') {
        const gpu = await webGpuTrainOps();
        ops = gpu.ops as TrainOps<unknown>;
        closeOps = gpu.close;
        gpuCounters = gpu.describe;
        gpuCheck = gpu.check;
      }
      const trainer = new LoraTrainer(ops, base, adapter, { lr, totalSteps: steps, weightDecay, maxGradNorm: clip, recompute: !switches.has('--no-recompute') });
      const params = adapter.targets.reduce((n, t) => n + t.a.length + t.b.length, 0);
      const say = (line: string) => process.stdout.write(line + '\n');
      say(`base ${base.config.architecture}, ${(base.bytes / 2 ** 20).toFixed(1)} MiB; adapter: rank ${rank}, alpha ${alpha}, ${adapter.targets.length} tensors, ${params} parameters`);
      say(`data: ${train.length} train windows, ${heldOut.length} held-out, ${window} tokens each; ${steps} steps of ${batch} window(s)`);
      const evalHeld = async () => (heldOut.length ? await evaluateLoss(ops, base, adapter, heldOut) : undefined);
      const before = await evalHeld();
      if (before) say(`held-out before: loss ${before.loss.toFixed(4)}, perplexity ${before.perplexity.toFixed(2)}`);
      let peakRss = process.memoryUsage().rss;
      let tokens = 0;
      const t0 = performance.now();
      for (let s = 0; s < steps; s++) {
        const b = Array.from({ length: batch }, (_, k) => train[(s * batch + k) % train.length]!);
        const r = await trainer.trainStep(b);
        gpuCheck?.();
        tokens += r.tokens;
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        const elapsed = (performance.now() - t0) / 1000;
        let line = `step ${r.step}/${steps}: loss ${r.loss.toFixed(4)}, grad norm ${r.gradNorm.toFixed(3)}, lr ${r.lr.toExponential(2)}, ${rate(tokens / elapsed)} tokens/s`;
        if (heldOut.length && (r.step % evalEvery === 0 || r.step === steps)) line += `, held-out loss ${(await evalHeld())!.loss.toFixed(4)}`;
        say(line);
      }
      const seconds = (performance.now() - t0) / 1000;
      const after = await evalHeld();
      if (before && after) say(`held-out perplexity: ${before.perplexity.toFixed(2)} -> ${after.perplexity.toFixed(2)} (loss ${before.loss.toFixed(4)} -> ${after.loss.toFixed(4)})`);
      say(`trained ${tokens} tokens in ${seconds.toFixed(1)} s: ${rate(tokens / seconds)} tokens/s; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB${gpuCounters ? `; ${gpuCounters()}` : ''}`);
      writeFileSync(out, writeLoraGguf(adapter));
      say(`${out}: LoRA adapter written`);
      return 0;
    } finally {
      closeOps?.();
      await source.close?.();
    }
  },
};

/** Tokens/s with two significant digits below 10 (a large model on a software GPU trains at 0.016). */
function rate(r: number): string {
  return r >= 10 ? r.toFixed(1) : r.toPrecision(2);
}

/** WebGPU training ops on the Node GPU (Dawn), and a line of what they cost: device memory, dispatches and submits. */
async function webGpuTrainOps(): Promise<{ ops: TrainOps<unknown>; close: () => void; describe: () => string; check: () => void }> {
  const [{ WebGpuTrainOps }, { createGpuContext }, { nodeGpu, nodeProbeOptions }, { adapterName }] = await Promise.all([
    import('../../engine/backend/webgpu/train-ops.ts'),
    import('../../engine/backend/webgpu/device.ts'),
    import('../../node/webgpu.ts'),
    import('../../engine/backend/webgpu/probe.ts'),
  ]);
  // A validation or out-of-memory error would otherwise pass unseen and the run train on garbage.
  const errors: Error[] = [];
  const context = await createGpuContext(nodeGpu(), { ...nodeProbeOptions(), onUncapturedError: (error) => errors.push(error) });
  const ops = new WebGpuTrainOps(context.device);
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  return {
    ops: ops as TrainOps<unknown>,
    close: () => {
      ops.destroy();
      context.destroy();
    },
    check: () => {
      if (errors.length > 0) throw errors[0]!;
    },
    describe: () =>
      `webgpu ${adapterName(context.adapter, true)}: base on device ${mib(ops.frozenBytes)} MiB, peak tensors ${mib(ops.peakTensorBytes)} MiB (+ scratch ${mib(ops.scratchBytes)} MiB); ${ops.counters.dispatches} dispatches, ${ops.counters.submits} submits, ${ops.counters.reads} reads`,
  };
}

function parseConversations(path: string, text: string): ChatMessage[][] {
  const items: unknown[] = [];
  try {
    if (/\.jsonl$/i.test(path)) for (const line of text.split('\n')) if (line.trim()) items.push(JSON.parse(line));
    else {
      const v: unknown = JSON.parse(text);
      items.push(...(Array.isArray(v) && Array.isArray(v[0]) ? v : [v]));
    }
  } catch (e) {
    throw new UsageError(`${path}: not JSON (${(e as Error).message})`);
  }
  return items.map((c, i) => {
    const messages = (c && typeof c === 'object' && 'messages' in c ? (c as { messages: unknown }).messages : c) as unknown;
    if (!Array.isArray(messages) || !messages.every((m) => m && typeof m === 'object' && typeof m.role === 'string' && typeof m.content === 'string')) {
      throw new UsageError(`${path}: conversation ${i} is not an array of {role, content}`);
    }
    return messages as ChatMessage[];
  });
}
