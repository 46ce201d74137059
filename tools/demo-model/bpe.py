"""A byte-level BPE trainer (GPT-2 style), written for the demo model.

Text is split by the GPT-2 pre-tokenizer pattern (what llama.cpp applies for
`tokenizer.ggml.pre = "gpt-2"`), each piece becomes bytes mapped to printable characters with
GPT-2's byte-to-unicode table, and the most frequent adjacent pair is merged until the
vocabulary is full. Incremental pair counts keep it to seconds on a few MB of text.
"""
import collections
import re

# GPT-2's pattern with \p{L} / \p{N} spelt for Python's `re` (the corpus is English; for ASCII
# these classes are exact).
PRETOKENIZE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


BYTE_TO_CHAR = bytes_to_unicode()


def pieces(text):
    return PRETOKENIZE.findall(text)


def train_bpe(texts, vocab_size, special_tokens):
    """Returns (tokens, merges): tokens in id order (bytes first, then merges, then specials)."""
    words = collections.Counter()
    for text in texts:
        for piece in pieces(text):
            words[tuple(BYTE_TO_CHAR[b] for b in piece.encode("utf-8"))] += 1
    words = [[list(w), n] for w, n in words.items()]
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)
    for index, (symbols, n) in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += n
            where[pair].add(index)

    tokens = [BYTE_TO_CHAR[b] for b in range(256)]
    merges = []
    n_merges = vocab_size - len(tokens) - len(special_tokens)
    for _ in range(n_merges):
        if not pair_counts:
            break
        # Most frequent pair; ties broken by the pair itself so training is deterministic.
        best = max(pair_counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pair_counts[best] < 2:
            break
        merged = best[0] + best[1]
        merges.append(best)
        tokens.append(merged)
        for index in list(where[best]):
            symbols, n = words[index]
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] -= n
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
            i = 0
            out = []
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == best[0] and symbols[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            words[index][0] = out
            for pair in zip(out, out[1:]):
                pair_counts[pair] += n
                where[pair].add(index)
        del where[best]
    return tokens + list(special_tokens), [f"{a} {b}" for a, b in merges]


class Encoder:
    """Applies learned merges (lowest rank first), for building the training token stream."""

    def __init__(self, tokens, merges, special_tokens):
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.special = {t: self.ids[t] for t in special_tokens}
        self.cache = {}

    def encode_piece(self, piece):
        cached = self.cache.get(piece)
        if cached is not None:
            return cached
        symbols = [BYTE_TO_CHAR[b] for b in piece.encode("utf-8")]
        while len(symbols) > 1:
            ranked = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(ranked)
            if rank == 1 << 30:
                break
            symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2 :]
        ids = [self.ids[s] for s in symbols]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        out = []
        for piece in pieces(text):
            out.extend(self.encode_piece(piece))
        return out
