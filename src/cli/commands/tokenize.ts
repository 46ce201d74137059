/**
 * `hearth tokenize FILE.gguf --text-file PATH [--add-special] [--parse-special] --json`: the token
 * ids of a text file's bytes, as llama.cpp's llama_tokenize gives them for the same model. Without
 * --add-special no BOS/EOS is added; without --parse-special special-token text is plain text.
 */
import { readFile } from 'node:fs/promises';
import { readGguf } from '../../engine/gguf/reader.ts';
import { Tokenizer } from '../../engine/tokenizer/index.ts';
import { nodeFileSource } from '../../node/file-source.ts';
import { UsageError, parseFlags, type CliCommand } from '../command.ts';

export const tokenizeCommand: CliCommand = {
  usage:
    'tokenize FILE.gguf --text-file PATH [--add-special] [--parse-special] --json\n' +
    '                           token ids of the file\'s bytes, as llama.cpp\'s llama_tokenize gives them',
  needsGpu: false,
  async run(args) {
    const { positional, values, switches } = parseFlags(args, {
      values: ['--text-file'],
      switches: ['--add-special', '--parse-special', '--json'],
    });
    if (positional.length !== 1) throw new UsageError('tokenize takes one model file');
    const textFile = values.get('--text-file');
    if (textFile === undefined) throw new UsageError('tokenize needs --text-file PATH');
    if (!switches.has('--json')) throw new UsageError('tokenize prints JSON only: pass --json');

    const source = await nodeFileSource(positional[0]!);
    let tokenizer: Tokenizer;
    try {
      tokenizer = Tokenizer.fromGgufMetadata((await readGguf(source)).metadata);
    } finally {
      await source.close();
    }
    // The file's bytes as they are: invalid UTF-8 is tokenized the way llama.cpp tokenizes it.
    const text = new Uint8Array(await readFile(textFile));
    const ids = tokenizer.encode(text, { addSpecial: switches.has('--add-special'), parseSpecial: switches.has('--parse-special') });
    process.stdout.write(JSON.stringify(ids) + '\n');
    return 0;
  },
};
