"""Trains Hearth's built-in demo model. Reproducible: fixed seed, fixed step count.

Prerequisites (Debian): apt-get install python3-torch python3-numpy bible-kjv libopenblas0-pthread
(without OpenBLAS, Debian's torch uses the reference BLAS and trains ~20x slower).
Run: /usr/bin/python3 tools/demo-model/train.py [--out .cache/demo-model] [--steps N]
Then: npx tsx tools/demo-model/export.ts   (writes the GGUF files into public/models/)

Training data: chapters of the King James Bible as prose, and a share of chapters as chat
transcripts (the user says a verse, the model answers with the next one), so the chat
template's turn structure and its end-of-turn token are learned. Outputs: weights (.npz, GGUF
tensor names), tokenizer and config (.json), held-out perplexity against a unigram baseline,
and samples.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import corpus  # noqa: E402
import model  # noqa: E402

SEED = 1611
SPECIAL = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
SYSTEM_PROMPT = "You are a tiny demo model trained on the King James Bible."
CHAT_SHARE = 0.35


def chat_transcript(verses, rng, with_system):
    parts = []
    if with_system:
        parts.append(f"<|system|>\n{SYSTEM_PROMPT}<|end|>\n")
    for i, verse in enumerate(verses):
        role = "user" if i % 2 == 0 else "assistant"
        parts.append(f"<|{role}|>\n{verse}<|end|>\n")
    return "".join(parts)


def encode_document(enc, text):
    """Encodes text that may contain special-token markers (parsed as the special token)."""
    ids = []
    pos = 0
    while pos < len(text):
        nxt = min(((text.find(s, pos), s) for s in SPECIAL if text.find(s, pos) >= 0), default=None)
        if nxt is None:
            ids.extend(enc.encode(text[pos:]))
            break
        start, special = nxt
        if start > pos:
            ids.extend(enc.encode(text[pos:start]))
        ids.append(enc.special[special])
        pos = start + len(special)
    return ids


def build_stream(chapters, enc, rng, chat_share):
    bos = enc.special["<|endoftext|>"]
    stream = []
    for _, verses in chapters:
        stream.append(bos)
        stream.extend(enc.encode(" ".join(verses)))
        if rng.random() < chat_share:
            start = rng.randrange(0, max(1, len(verses) - 2))
            count = rng.randint(2, 8)
            stream.append(bos)
            stream.extend(encode_document(enc, chat_transcript(verses[start : start + count], rng, rng.random() < 0.5)))
    return np.array(stream, dtype=np.int64)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(m, stream, context, max_windows=64):
    m.eval()
    losses = []
    for start in range(0, min(len(stream) - 1, max_windows * context), context):
        chunk = torch.from_numpy(stream[start : start + context + 1])[None]
        if chunk.shape[1] < 2:
            break
        logits = m(chunk[:, :-1])
        losses.append((F.cross_entropy(logits[0], chunk[0, 1:], reduction="sum").item(), chunk.shape[1] - 1))
    m.train()
    total = sum(l for l, _ in losses)
    count = sum(n for _, n in losses)
    return total / count, count


@torch.no_grad()
def sample(m, enc, tokens, prompt_ids, n, temperature, rng_torch, stop_id):
    m.eval()
    ids = list(prompt_ids)
    for _ in range(n):
        logits = m(torch.tensor([ids[-m.cfg.context :]]))[0, -1]
        if temperature == 0:
            nxt = int(logits.argmax())
        else:
            nxt = int(torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=rng_torch))
        if nxt == stop_id:
            break
        ids.append(nxt)
    m.train()
    text = "".join(tokens[i] for i in ids[len(prompt_ids) :])
    return bytes(bpe_char_to_byte(c) for c in text).decode("utf-8", errors="replace")


_CHAR_TO_BYTE = {c: b for b, c in bpe.BYTE_TO_CHAR.items()}


def bpe_char_to_byte(c):
    return _CHAR_TO_BYTE[c]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".cache/demo-model")
    ap.add_argument("--steps", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)

    train_chapters, held_out = corpus.split_chapters()
    cfg = model.Config()
    tokens, merges = bpe.train_bpe([" ".join(v) for _, v in train_chapters], cfg.vocab_size, SPECIAL)
    enc = bpe.Encoder(tokens, merges, SPECIAL)
    train_stream = build_stream(train_chapters, enc, rng, CHAT_SHARE)
    held_stream = build_stream(held_out, enc, random.Random(SEED + 1), 0.0)
    print(f"train tokens {len(train_stream)}, held-out tokens {len(held_stream)}", flush=True)

    m = model.Transformer(cfg)
    print(f"parameters {m.num_params()}", flush=True)
    decay = [p for n, p in m.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in m.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(SEED)
    started = time.time()
    for step in range(args.steps):
        starts = torch.randint(0, len(train_stream) - cfg.context - 1, (args.batch,), generator=gen)
        batch = torch.stack([torch.from_numpy(train_stream[s : s + cfg.context + 1]) for s in starts.tolist()])
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, 40)
        logits = m(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if step % 20 == 0 or step == args.steps - 1:
            rate = (step + 1) * args.batch * cfg.context / (time.time() - started)
            print(f"step {step} loss {loss.item():.3f} {rate:.0f} tok/s {time.time() - started:.0f}s", flush=True)

    held_loss, held_count = evaluate(m, held_stream, cfg.context)
    counts = np.bincount(train_stream, minlength=cfg.vocab_size).astype(np.float64) + 1
    unigram = -np.log(counts / counts.sum())
    held_targets = held_stream[1 : held_count + 1]
    unigram_loss = float(unigram[held_targets].mean())
    report = {
        "steps": args.steps,
        "train_seconds": round(time.time() - started),
        "parameters": m.num_params(),
        "train_tokens": int(len(train_stream)),
        "held_out_tokens": int(held_count),
        "held_out_perplexity": math.exp(held_loss),
        "unigram_perplexity": math.exp(unigram_loss),
    }
    gen_sample = torch.Generator().manual_seed(SEED)
    stop = enc.special["<|end|>"]
    report["samples"] = []
    for prompt in ["In the beginning", "And the LORD said unto Moses,", "Blessed are the"]:
        ids = [enc.special["<|endoftext|>"]] + enc.encode(prompt)
        report["samples"].append({"prompt": prompt, "greedy": sample(m, enc, tokens, ids, 48, 0, gen_sample, stop)})
    chat = encode_document(enc, "<|user|>\nThe LORD is my shepherd; I shall not want.<|end|>\n<|assistant|>\n")
    report["samples"].append({"chat_user": "The LORD is my shepherd; I shall not want.", "reply": sample(m, enc, tokens, [enc.special["<|endoftext|>"]] + chat, 64, 0.7, gen_sample, stop)})
    print(json.dumps(report, indent=2), flush=True)

    weights = {"token_embd.weight": m.embed.weight, "output_norm.weight": m.norm.weight}
    for i, blk in enumerate(m.blocks):
        weights.update(
            {
                f"blk.{i}.attn_norm.weight": blk.attn_norm.weight,
                f"blk.{i}.attn_q.weight": blk.wq.weight,
                f"blk.{i}.attn_k.weight": blk.wk.weight,
                f"blk.{i}.attn_v.weight": blk.wv.weight,
                f"blk.{i}.attn_output.weight": blk.wo.weight,
                f"blk.{i}.ffn_norm.weight": blk.ffn_norm.weight,
                f"blk.{i}.ffn_gate.weight": blk.w_gate.weight,
                f"blk.{i}.ffn_up.weight": blk.w_up.weight,
                f"blk.{i}.ffn_down.weight": blk.w_down.weight,
            }
        )
    np.savez(os.path.join(args.out, "weights.npz"), **{k: v.detach().float().numpy() for k, v in weights.items()})
    with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
        json.dump({"tokens": tokens, "merges": merges, "special": SPECIAL}, f)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({**cfg.__dict__, "system_prompt": SYSTEM_PROMPT}, f, indent=2)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
