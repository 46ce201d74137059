import { describe, expect, it } from 'vitest';
import { benchVocab, MODEL_SHAPES, modelOptions, modelShape, paramCount } from './models.ts';
import { benchPrompt } from './prompt.ts';
import { analyze, formatHostTable, formatTable, type BenchReport, type ModelResult } from './report.ts';
import { decodeFloor, ratio, stat, weightBytesPerToken } from './stats.ts';
import { planTestModel } from '../testing/make-model.ts';

describe('stats', () => {
  it('median and spread', () => {
    expect(stat([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: 3 });
    expect(stat([4, 1, 2, 3])?.median).toBe(2.5);
    expect(stat([])).toBeUndefined();
  });

  it('ratio of medians', () => {
    expect(ratio(stat([10]), stat([20]))).toBe(0.5);
    expect(ratio(stat([10]), undefined)).toBeUndefined();
  });

  it('decode floor: bandwidth over bytes per token', () => {
    const f = decodeFloor(500e6, 10e9, 5);
    expect(f.ceilingTps).toBeCloseTo(20);
    expect(f.floorMsPerToken).toBeCloseTo(50);
    expect(f.fraction).toBeCloseTo(0.25);
  });

  it('weight bytes per token count a tied embedding once, an untied one not at all', () => {
    const t = (name: string, byteSize: number, shape = [4, 4]) => ({ name, shape, byteSize });
    expect(weightBytesPerToken([t('token_embd.weight', 100), t('blk.0.ffn_up.weight', 10), t('output_norm.weight', 1, [4])])).toBe(110);
    expect(weightBytesPerToken([t('token_embd.weight', 100), t('blk.0.ffn_up.weight', 10), t('output.weight', 50)])).toBe(60);
    // Experts: a step reads the used ones' share of a 3-D expert tensor; without the count, all of it.
    const moe = [t('token_embd.weight', 100), t('blk.0.ffn_gate_inp.weight', 4), t('blk.0.ffn_up_exps.weight', 400, [4, 4, 40]), t('output.weight', 50)];
    expect(weightBytesPerToken(moe, 8)).toBe(4 + 80 + 50);
    expect(weightBytesPerToken(moe)).toBe(4 + 400 + 50);
  });
});

describe('model shapes', () => {
  it('match the published parameter counts', () => {
    const billions = Object.fromEntries(MODEL_SHAPES.map((m) => [m.id, paramCount(m) / 1e9]));
    expect(billions['qwen2.5-0.5b']).toBeCloseTo(0.494, 3);
    expect(billions['llama-3.2-1b']).toBeCloseTo(1.236, 2);
    expect(billions['qwen2.5-1.5b']).toBeCloseTo(1.544, 2);
    expect(billions['phi-3.5-mini']).toBeCloseTo(3.821, 2);
    expect(billions['llama-3.1-8b']).toBeCloseTo(8.03, 2);
    // IBM: 3.3B parameters in all, 800M active.
    expect(billions['granite-3b-a800m']).toBeCloseTo(3.3, 1);
    // LiquidAI: 1.17B.
    expect(billions['lfm2-1.2b']).toBeCloseTo(1.17, 2);
  });

  it('agree with the generator (same tensors, same element count)', () => {
    for (const m of MODEL_SHAPES) {
      const plan = planTestModel(modelOptions(m, 'f16', benchVocab(m.vocab)));
      const elements = plan.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      expect(elements, m.id).toBe(paramCount(m));
      expect(plan.dims.V).toBe(m.vocab);
    }
  });

  it('vocabulary tokens are distinct and prompts are one token per word', () => {
    const vocab = benchVocab(modelShape('phi-3.5-mini').vocab);
    const tokens = vocab.metadata.get('tokenizer.ggml.tokens') as string[];
    expect(new Set(tokens).size).toBe(tokens.length);
    const p = benchPrompt(10, 3);
    expect(p.ids).toHaveLength(10);
    expect(p.text.split(' ')).toHaveLength(9);
    p.ids.slice(1).forEach((id, i) => expect(tokens[id]).toBe(`▁${p.text.split(' ')[i]}`));
  });
});

describe('report', () => {
  it('ratios to peers, floor and table', () => {
    const sample = (prefill: number, decode: number) => ({ loadMs: 1000, ttftMs: 16000 / prefill, prefillTps: prefill, decodeTps: { '32': decode } });
    const m: ModelResult = {
      model: 'qwen2.5-0.5b',
      quant: 'q8_0',
      file: 'x.gguf',
      fileBytes: 1,
      weightBytesPerToken: 1e9,
      runtimes: [
        { runtime: 'webgpu-node', samples: [sample(10, 2), sample(20, 4), sample(30, 3)], bandwidth: { bytesPerS: 10e9, method: 'test' } },
        { runtime: 'llama.cpp', samples: [sample(40, 6)] },
        { runtime: 'llama.cpp-gpu', samples: [sample(80, 12)] },
        { runtime: 'wllama', samples: [], error: 'Error: boom' },
      ],
    };
    analyze(m);
    const ours = m.runtimes[0]!;
    expect(ours.ratios?.['llama.cpp']?.prefillTps).toBeCloseTo(0.5);
    expect(ours.ratios?.['llama.cpp']?.['decodeTps@32']).toBeCloseTo(0.5);
    expect(ours.ratios?.['llama.cpp-gpu']?.prefillTps).toBeCloseTo(0.25);
    expect(ours.ratios?.['llama.cpp-gpu']?.['decodeTps@32']).toBeCloseTo(0.25);
    expect(m.runtimes[1]!.ratios, 'peers have no ratios').toBeUndefined();
    expect(ours.floor?.ceilingTps).toBeCloseTo(10);
    expect(ours.floor?.fraction['32']).toBeCloseTo(0.3);
    const report: BenchReport = { date: '', host: { platform: '', cpus: 2, cpuModel: '', node: '' }, workload: { promptTokens: 16, contexts: [32], decodeTokens: 4, threads: 1 }, runs: 3, results: [m] };
    const table = formatTable(report);
    expect(table).toContain('3.00 (2.00–4.00)');
    expect(table).toContain('30.0% of 10');
    expect(table).toContain('error: Error: boom');
    expect(table).toContain('0.25x / 0.25x'); // against llama.cpp's GPU build
    expect(table).toMatch(/\| 954 +\|/); // weight MiB per token
    const moe = formatTable({ ...report, results: [{ ...m, weightBytesPerToken: 300 * 2 ** 20, weightBytesAll: 1200 * 2 ** 20 }] });
    expect(moe).toMatch(/\| 300 of 1200 +\|/);
    expect(table).toContain('0.50x / 0.50x');
  });

  it("decode's host costs: per-token figures and the ceiling host time allows, for the runtimes that report them", () => {
    const host = (hostMsPerToken: number, objectsPerToken = 0) => ({ tokens: 16, hostMsPerToken, submitMsPerToken: hostMsPerToken / 2, dispatchesPerToken: 290, submitsPerToken: 1, objectsPerToken });
    const sample = (decodeHost?: ReturnType<typeof host>) => ({ loadMs: 1000, ttftMs: 1000, prefillTps: 16, decodeTps: { '128': 3 }, ...(decodeHost ? { decodeHost } : {}) });
    const m: ModelResult = {
      model: 'llama-3.2-1b',
      quant: 'q4_k_m',
      file: 'x.gguf',
      fileBytes: 1,
      weightBytesPerToken: 1e9,
      runtimes: [
        { runtime: 'webgpu-node', samples: [sample(host(2)), sample(host(4)), sample(host(2.5, 0.5))] },
        { runtime: 'webgpu-chromium', samples: [sample(host(0.8))] },
        { runtime: 'cpu-chromium', samples: [sample()] },
      ],
    };
    analyze(m);
    expect(m.runtimes[0]!.summary?.host?.hostMsPerToken.median).toBe(2.5);
    expect(m.runtimes[0]!.summary?.host?.ceilingTps).toBeCloseTo(400);
    expect(m.runtimes[2]!.summary?.host, 'no host figures without counts').toBeUndefined();
    const report: BenchReport = { date: '', host: { platform: '', cpus: 2, cpuModel: '', node: '' }, workload: { promptTokens: 16, contexts: [128], decodeTokens: 16, threads: 1 }, runs: 3, results: [m] };
    const lines = formatHostTable(report).split('\n');
    expect(lines[0]).toContain('host ceiling tok/s');
    expect(lines).toHaveLength(4); // header, rule, the two WebGPU runtimes
    expect(lines[2]).toMatch(/webgpu-node .*\| 2\.500 \(2\.000–4\.000\) *\| 1\.250 \(1\.000–2\.000\) *\| 400 *\| 290 \(290–290\) *\| 1\.00 \(1\.00–1\.00\) *\| 0\.00 \(0\.00–0\.50\)/);
    expect(lines[3]).toMatch(/webgpu-chromium .*\| 0\.800 *\| 0\.400 *\| 1250 *\|/);
    expect(formatHostTable({ ...report, results: [{ ...m, runtimes: [m.runtimes[2]!] }] })).toBe('');
  });
});
