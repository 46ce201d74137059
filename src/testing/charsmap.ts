/**
 * Writes a SentencePiece precompiled charsmap (tokenizer.ggml.precompiled_charsmap) for test
 * vocabularies: a u32 LE size, a double-array trie in the XOR-compressed layout llama.cpp and
 * SentencePiece read (each node a u32: offset to its children in bits 10-30, "has a value child" in
 * bit 8, its own label in bits 0-7; a value node has bit 31 set and the replacement's offset in
 * bits 0-30), then the NUL-terminated replacements. Children of the node at p with offset o sit at
 * p ^ o ^ label, its value at p ^ o (label 0). Real T5 files carry an NFKC map built this way by
 * SentencePiece; tests use a handful of mappings.
 */
import { utf8ByteString } from '../engine/tokenizer/bytes.ts';

interface TrieNode {
  children: Map<number, TrieNode>;
  value: number | undefined;
}

/** A charsmap replacing each key (a prefix of the input, longest first) by its value. */
export function buildCharsmap(mappings: ReadonlyArray<readonly [from: string, to: string]>): Uint8Array {
  const root: TrieNode = { children: new Map(), value: undefined };
  let replacements = '';
  for (const [from, to] of mappings) {
    const key = utf8ByteString(from);
    if (key.length === 0 || key.includes('\0')) throw new RangeError(`charsmap keys must be non-empty and without NUL: ${JSON.stringify(from)}`);
    let node = root;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      let next = node.children.get(c);
      if (!next) node.children.set(c, (next = { children: new Map(), value: undefined }));
      node = next;
    }
    node.value = replacements.length;
    replacements += utf8ByteString(to) + '\0';
  }

  const units: number[] = [0];
  const used = new Set<number>([0]);
  // Breadth first: place each node's children (and its value slot) in a free 256-aligned block.
  const queue: Array<{ node: TrieNode; pos: number; label: number }> = [{ node: root, pos: 0, label: 0 }];
  let nextBlock = 256;
  while (queue.length > 0) {
    const { node, pos, label } = queue.shift()!;
    const labels = [...node.children.keys()];
    const slots = node.value !== undefined ? [0, ...labels] : labels;
    let block = 0;
    if (slots.length > 0) {
      block = nextBlock;
      while (slots.some((l) => used.has(block ^ l))) block += 256;
      if (block === nextBlock) nextBlock += 256;
      for (const l of slots) used.add(block ^ l);
    }
    const offset = pos ^ block;
    if (offset >= 1 << 21) throw new RangeError('charsmap too large for this writer');
    units[pos] = ((offset << 10) | (node.value !== undefined ? 1 << 8 : 0) | label) >>> 0;
    if (node.value !== undefined) units[block] = (0x80000000 | node.value) >>> 0;
    for (const [l, child] of node.children) queue.push({ node: child, pos: block ^ l, label: l });
  }
  // Whole blocks: a lookup of any byte under a placed node (p ^ o ^ c) must stay inside the array.
  const size = (Math.floor(Math.max(...used) / 256) + 1) * 256;
  const out = new Uint8Array(4 + size * 4 + replacements.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, size * 4, true);
  for (let i = 0; i < size; i++) view.setUint32(4 + 4 * i, units[i] ?? 0, true);
  for (let i = 0; i < replacements.length; i++) out[4 + size * 4 + i] = replacements.charCodeAt(i);
  return out;
}
