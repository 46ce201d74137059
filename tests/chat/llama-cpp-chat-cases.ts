/**
 * The test cases of llama.cpp's tests/test-chat-template.cpp, read from the C++ source: for each,
 * a real model's Jinja template, the text llama.cpp's built-in format produces for the test
 * conversation (`expected_output`), and the BOS/EOS tokens. Reading them from the pinned source
 * keeps our port of src/llama-chat.cpp checked against the same goldens llama.cpp checks itself with.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { llamaCppSourceDir as llamaCppSource } from '../../src/testing/llama-ref.ts';

export interface LlamaCppChatCase {
  name: string;
  template: string;
  expectedOutput: string;
  expectedOutputJinja: string;
  bosToken: string;
  eosToken: string;
  supportedWithJinja: boolean;
  extraConversation: { role: string; content: string }[];
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", '0': '\0' };

/** One value of the C++ aggregate initializer: a string, a bool, or a braced list. */
type Item = string | boolean | Item[];

/**
 * A reader for the C++ aggregate initializer of the test table. The struct is initialized by
 * position (the comments naming the fields are only comments), so this reads values in order:
 * adjacent string literals (`"a" "b"`, `u8"..."`, `U8C("...")`), `true`/`false`, `{...}`.
 */
class InitializerReader {
  private i: number;

  constructor(private readonly src: string, start: number) {
    this.i = start;
  }

  private skip(): void {
    for (;;) {
      while (/\s/.test(this.src[this.i] ?? '')) this.i++;
      if (this.src.startsWith('//', this.i)) this.i = this.src.indexOf('\n', this.i);
      else if (this.src.startsWith('/*', this.i)) this.i = this.src.indexOf('*/', this.i) + 2;
      else return;
    }
  }

  private literal(): string {
    let value = '';
    this.i++; // opening quote
    while (this.src[this.i] !== '"') {
      if (this.i >= this.src.length) throw new Error('unterminated string literal');
      if (this.src[this.i] === '\\') {
        const e = this.src[this.i + 1]!;
        if (!(e in ESCAPES)) throw new Error(`unsupported escape \\${e} at ${this.i}`);
        value += ESCAPES[e];
        this.i += 2;
      } else {
        value += this.src[this.i++];
      }
    }
    this.i++;
    return value;
  }

  item(): Item {
    this.skip();
    if (this.src[this.i] === '{') {
      this.i++;
      const list: Item[] = [];
      for (;;) {
        this.skip();
        if (this.src[this.i] === '}') {
          this.i++;
          return list;
        }
        list.push(this.item());
        this.skip();
        if (this.src[this.i] === ',') this.i++;
      }
    }
    for (const word of ['true', 'false'] as const) {
      if (this.src.startsWith(word, this.i)) {
        this.i += word.length;
        return word === 'true';
      }
    }
    let value = '';
    let found = false;
    for (;;) {
      this.skip();
      if (this.src.startsWith('U8C(', this.i)) {
        this.i += 4;
        value += this.item() as string;
        this.skip();
        if (this.src[this.i] !== ')') throw new Error(`expected ) at ${this.i}`);
        this.i++;
      } else if (this.src.startsWith('u8"', this.i)) {
        this.i += 2;
        value += this.literal();
      } else if (this.src[this.i] === '"') {
        value += this.literal();
      } else {
        break;
      }
      found = true;
    }
    if (!found) throw new Error(`unexpected input at ${this.i}: ${this.src.slice(this.i, this.i + 40)}`);
    return value;
  }
}

function str(item: Item | undefined, fallback = ''): string {
  if (item === undefined) return fallback;
  if (typeof item !== 'string') throw new Error(`expected a string, got ${JSON.stringify(item)}`);
  return item;
}

export function readLlamaCppChatCases(): LlamaCppChatCase[] {
  const src = readFileSync(join(llamaCppSource(), 'tests', 'test-chat-template.cpp'), 'utf8');
  const marker = 'std::vector<TestCase> test_cases';
  const start = src.indexOf(marker);
  if (start < 0) throw new Error('test-chat-template.cpp: test case table not found');
  const table = new InitializerReader(src, start + marker.length).item();
  if (!Array.isArray(table)) throw new Error('test-chat-template.cpp: test case table is not a list');
  return table.map((entry) => {
    if (!Array.isArray(entry)) throw new Error('test case is not a list');
    // Field order of struct TestCase.
    const [name, template, expected, expectedJinja, bos, eos, supported, extra] = entry;
    const extraConversation = (Array.isArray(extra) ? extra : []).map((pair) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw new Error('extra_conversation: expected {role, content}');
      return { role: str(pair[0]), content: str(pair[1]) };
    });
    return {
      name: str(name),
      template: str(template),
      expectedOutput: str(expected),
      expectedOutputJinja: str(expectedJinja),
      bosToken: str(bos),
      eosToken: str(eos),
      supportedWithJinja: supported === undefined ? true : supported === true,
      extraConversation,
    };
  });
}

/** The conversation every case formats (main_automated_tests in test-chat-template.cpp). */
export const LLAMA_CPP_TEST_CONVERSATION = [
  { role: 'system', content: 'You are a helpful assistant' },
  { role: 'user', content: 'Hello' },
  { role: 'assistant', content: 'Hi there' },
  { role: 'user', content: 'Who are you' },
  { role: 'assistant', content: '   I am an assistant   ' },
  { role: 'user', content: 'Another question' },
];
