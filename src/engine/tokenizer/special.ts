/**
 * Special-token partitioning (llama.cpp's tokenizer_st_partition): before the tokenizer proper
 * runs, occurrences of special tokens' texts are cut out of the input and become those tokens.
 * Tokens are tried longest text first; each splits every remaining text fragment at all its
 * occurrences, left to right. Control and unknown tokens take part only with parse_special; user-
 * defined tokens always do (as in Hugging Face tokenizers). A token with the LSTRIP attribute eats
 * the whitespace before it, RSTRIP the whitespace after it.
 *
 * llama.cpp scans the whole text once per special token, which is slow for vocabs with thousands
 * of them (Gemma's <unusedN>, Llama 3's reserved tokens). The result only depends on the tokens
 * that occur in the text at all, so we find those first with one pass over a trie, then run the
 * same algorithm with just them.
 */
import { ATTR } from './vocab.ts';

/** A run of raw text [start, end) of the input byte string, or a token id. */
export type Fragment = { start: number; end: number; id?: undefined } | { id: number; start?: undefined; end?: undefined };

export interface SpecialToken {
  id: number;
  /** UTF-8 byte string of the token text. */
  text: string;
  attr: number;
}

interface TrieNode {
  children: Map<number, TrieNode>;
  /** Index into the special list of the token ending here, or -1. */
  token: number;
}

/** C isspace() in the "C" locale, which llama.cpp applies to bytes for lstrip/rstrip. */
function isCSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

export class SpecialPartitioner {
  private readonly trie: TrieNode = { children: new Map(), token: -1 };
  private readonly firstBytes = new Uint8Array(256);

  /**
   * @param tokens the special tokens in llama.cpp's order: text length (bytes) descending. It
   *   sorts with std::sort, which leaves equal lengths in no particular order; ours keeps ids
   *   ascending there. The order only matters for two equal-length tokens overlapping in the text.
   */
  constructor(private readonly tokens: readonly SpecialToken[]) {
    tokens.forEach((token, index) => {
      let node = this.trie;
      for (let i = 0; i < token.text.length; i++) {
        const b = token.text.charCodeAt(i);
        let child = node.children.get(b);
        if (!child) {
          child = { children: new Map(), token: -1 };
          node.children.set(b, child);
        }
        node = child;
      }
      if (node.token < 0) node.token = index;
      this.firstBytes[token.text.charCodeAt(0)] = 1;
    });
  }

  get size(): number {
    return this.tokens.length;
  }

  /** Indices (into the token list) of every token whose text occurs somewhere in `text`, sorted. */
  private occurring(text: string, parseSpecial: boolean): number[] {
    const found = new Set<number>();
    const { firstBytes } = this;
    for (let i = 0; i < text.length; i++) {
      if (!firstBytes[text.charCodeAt(i)]) continue;
      let node: TrieNode | undefined = this.trie;
      for (let j = i; j < text.length; j++) {
        node = node.children.get(text.charCodeAt(j));
        if (!node) break;
        if (node.token >= 0) found.add(node.token);
      }
    }
    return [...found]
      .filter((index) => parseSpecial || !(this.tokens[index]!.attr & (ATTR.CONTROL | ATTR.UNKNOWN)))
      .sort((a, b) => a - b);
  }

  /** Splits a byte string into raw-text fragments and special tokens. */
  partition(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = [{ start: 0, end: text.length }];
    if (text.length === 0) return [];
    for (const index of this.occurring(text, parseSpecial)) {
      const { id, text: needle, attr } = this.tokens[index]!;
      const next: Fragment[] = [];
      for (const fragment of fragments) {
        if (fragment.id !== undefined) {
          next.push(fragment);
          continue;
        }
        let { start } = fragment;
        const { end } = fragment;
        for (;;) {
          const match = text.indexOf(needle, start);
          if (match < 0 || match + needle.length > end) {
            if (end > start) next.push({ start, end });
            break;
          }
          let leftEnd = match;
          if (attr & ATTR.LSTRIP) while (leftEnd > start && isCSpace(text.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > start) next.push({ start, end: leftEnd });
          next.push({ id });
          start = match + needle.length;
          if (attr & ATTR.RSTRIP) while (start < end && isCSpace(text.charCodeAt(start))) start++;
        }
      }
      fragments = next;
    }
    return fragments;
  }
}
