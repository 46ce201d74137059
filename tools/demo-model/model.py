"""The demo model: a small Llama-architecture transformer, written so that its weights mean
exactly what llama.cpp's `llama` architecture expects: RMSNorm, RoPE on adjacent pairs
(llama.cpp's "normal" rope, so no q/k permutation is needed at export), grouped-query
attention, SwiGLU feed-forward, no biases, output tied to the token embedding.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 4096
    dim: int = 256
    n_layers: int = 6
    n_heads: int = 8
    n_kv_heads: int = 4
    ffn_dim: int = 704
    context: int = 256
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_heads


def rope_tables(cfg, device=None):
    half = cfg.head_dim // 2
    inv_freq = cfg.rope_base ** (-torch.arange(half, dtype=torch.float64) * 2 / cfg.head_dim)
    angles = torch.arange(cfg.context, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(angles).float().to(device), torch.sin(angles).float().to(device)


def apply_rope(x, cos, sin):
    """x: [batch, time, heads, head_dim]; rotates pairs (2i, 2i+1) like ggml's rope mode 0."""
    t = x.shape[1]
    x_even, x_odd = x[..., 0::2], x[..., 1::2]
    c, s = cos[:t, None, :], sin[:t, None, :]
    out = torch.empty_like(x)
    out[..., 0::2] = x_even * c - x_odd * s
    out[..., 1::2] = x_even * s + x_odd * c
    return out


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.w_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin):
        cfg = self.cfg
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = apply_rope(self.wq(h).view(b, t, cfg.n_heads, cfg.head_dim), cos, sin)
        k = apply_rope(self.wk(h).view(b, t, cfg.n_kv_heads, cfg.head_dim), cos, sin)
        v = self.wv(h).view(b, t, cfg.n_kv_heads, cfg.head_dim)
        groups = cfg.n_heads // cfg.n_kv_heads
        k = k.repeat_interleave(groups, dim=2)
        v = v.repeat_interleave(groups, dim=2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(cfg.head_dim)
        mask = torch.full((t, t), float("-inf"), device=x.device).triu(1)
        att = F.softmax(scores + mask, dim=-1) @ v
        x = x + self.wo(att.transpose(1, 2).reshape(b, t, -1))
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        cos, sin = rope_tables(cfg)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        nn.init.normal_(self.embed.weight, std=0.02)
        for name, p in self.named_parameters():
            if p.dim() == 2 and name != "embed.weight":
                nn.init.normal_(p, std=0.02 / (math.sqrt(2 * cfg.n_layers) if name.endswith(("wo.weight", "w_down.weight")) else 1))

    def forward(self, ids):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, self.cos, self.sin)
        return self.norm(x) @ self.embed.weight.T  # tied output

    def num_params(self):
        return sum(p.numel() for p in self.parameters())
