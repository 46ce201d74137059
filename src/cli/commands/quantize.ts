/**
 * `hearth quantize IN.gguf OUT.gguf TYPE [--imatrix FILE]`: llama-quantize's mixes, streamed one
 * slab of rows at a time (src/engine/compress/quantize.ts).
 */
import { readGguf } from '../../engine/gguf/reader.ts';
import { ggmlTypeName } from '../../engine/gguf/ggml-types.ts';
import { planQuantize, quantizeChunks } from '../../engine/compress/quantize.ts';
import { readImatrix } from '../../engine/compress/imatrix.ts';
import { QUANT_MIXES, parseQuantMix } from '../../engine/compress/tensor-types.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { writeChunksFile } from '../../node/gguf-file.ts';
import { UsageError, parseFlags, type CliCommand } from '../command.ts';
import { formatBytes } from './inspect.ts';

const HELP = `quantize IN.gguf OUT.gguf TYPE [--imatrix FILE] [--quiet]
  TYPE: ${Object.keys(QUANT_MIXES).join(', ')} (llama-quantize's mixes: per-tensor types by its rules)
  --imatrix FILE  importance matrix written by llama-imatrix (GGUF or legacy .dat)`;

export const quantizeCommand: CliCommand = {
  usage: 'quantize IN OUT TYPE  quantize a GGUF model to Q8_0, Q6_K, Q5_K_M, Q4_K_M or Q4_0 (quantize --help)',
  needsGpu: false,
  async run(args) {
    if (args.includes('--help')) {
      process.stdout.write(`hearth ${HELP}\n`);
      return 0;
    }
    const { positional, values, switches } = parseFlags(args, { values: ['--imatrix'], switches: ['--quiet'] });
    if (positional.length !== 3) throw new UsageError(`usage: hearth ${HELP.split('\n')[0]}`);
    const [input, output, typeName] = positional as [string, string, string];
    const mix = parseQuantMix(typeName);
    const source = await nodeFileSource(input);
    try {
      const file = await readGguf(source);
      let imatrix;
      const imatrixPath = values.get('--imatrix');
      if (imatrixPath) {
        const im = await nodeFileSource(imatrixPath);
        try {
          imatrix = await readImatrix(im);
        } finally {
          await im.close();
        }
      }
      const plan = planQuantize(file, mix, { hasImatrix: imatrix !== undefined });
      const quiet = switches.has('--quiet');
      let lastTensor = -1;
      await writeChunksFile(
        output,
        quantizeChunks(source, file, plan, {
          ...(imatrix ? { imatrix } : {}),
          onProgress: (p) => {
            if (quiet || p.index === lastTensor) return;
            lastTensor = p.index;
            const c = plan.choices[p.index]!;
            process.stderr.write(
              `[${p.index + 1}/${p.count}] ${c.tensor.name} [${c.tensor.shape.join(', ')}] ${ggmlTypeName(c.tensor.type)} -> ${ggmlTypeName(c.type)}${c.fellBack ? ' (fallback)' : ''}\n`,
            );
          },
        }),
      );
      const fallbacks = plan.choices.filter((c) => c.fellBack).length;
      process.stdout.write(
        `${output}: ${mix}, ${formatBytes(source.size)} -> ${formatBytes(plan.layout.fileSize)} ` +
          `(${(source.size / plan.layout.fileSize).toFixed(2)}x)${fallbacks ? `, ${fallbacks} tensor(s) fell back to a compatible type` : ''}\n`,
      );
    } finally {
      await source.close();
    }
    return 0;
  },
};
