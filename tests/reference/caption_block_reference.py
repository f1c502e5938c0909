#!/usr/bin/env python3
"""Reference fixture for minisora's text-conditioned DiT block (`src/dit/block.rs` with the
caption branch of `src/dit/caption_branch.rs`): a PyTorch module written from the math —
PixArt-alpha's block structure — not from minisora's code or another library's.

The block, for tokens x (B, T, D), conditioning c (B, D), caption context y (B, L, D) and its
key padding mask (B, L) (True on words):

    m = adaLN_modulation.1(silu(c))            (B, 6D), chunks in the order
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
    x = x + gate_msa * attn(modulate(ln(x), shift_msa, scale_msa))
    x = x + cross_attn(x, y, mask)             no norm, no modulation, no gate
    x = x + gate_mlp * mlp(modulate(ln(x), shift_mlp, scale_mlp))

with ln a LayerNorm without affine parameters (eps 1e-6, biased variance), modulate(h, s, k)
= h * (1 + k) + s per sample, attn multi-head self-attention over the sample's T tokens
(fused `qkv` D -> 3D read as (B, T, 3, h, d), scores q k^T / sqrt(d), `proj`), cross_attn
multi-head attention with queries `q` (D -> D) from x, keys and values from the fused `kv`
(D -> 2D, read as (B, L, 2, h, d): keys are the first D columns) of y, padded keys scoring
-inf, and `proj` (D -> D); mlp = fc2(gelu_tanh(fc1(.))). Every Linear has a bias. The names
are minisora's: `attn.qkv.*`, `attn.proj.*`, `cross_attn.q.*`, `cross_attn.kv.*`,
`cross_attn.proj.*`, `mlp.fc1.*`, `mlp.fc2.*`, `adaLN_modulation.1.*`.

Every parameter is random and non-zero (the cross-attention's `proj` and the modulation too,
which PixArt initialises at zero). The loss is L = sum(output * dy) for a fixed random dy.
The computation runs in float64 on the float32-rounded values; results are rounded to float32
and saved to `tests/fixtures/caption_block_tiny.safetensors`:

  <name>                  every parameter under its name
  input.x                 (B, T, D) tokens
  input.c                 (B, D) conditioning
  input.context           (B, L, D) the caption context
  input.mask              (B, L) 1 on words, 0 on padding, as f32
  dy                      (B, T, D) the output gradient
  output                  (B, T, D)
  grad.input.x, grad.input.c, grad.input.context   dL/d of each input (zero on padded rows)
  grad.<name>             dL/d<name> for every parameter

with the config in the metadata (`config.*`). `tests/caption_block_reference.rs` loads it and
compares minisora's forward (1e-4) and hand-written backward (1e-3), each relative to the
tensor's largest magnitude. Run by hand (never by CI), from the repository root:

    /work/.torchenv/bin/python tests/reference/caption_block_reference.py

Written and run with torch (CPU) and safetensors from PyPI.
"""

import math
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

SEED = 0
CONFIG = {"dim": 8, "heads": 2, "mlp_hidden": 16, "tokens": 6, "batch": 2}
LENGTHS = [5, 2]  # words per caption; L = 5
OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "caption_block_tiny.safetensors")


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-6)


def modulate(h, shift, scale):
    return h * (1.0 + scale[:, None, :]) + shift[:, None, :]


def attention(q, k, v, heads, mask=None):
    """q (B, T, D), k and v (B, S, D), mask (B, S) bool -> (B, T, D)."""
    b, t, d = q.shape
    s, hd = k.shape[1], d // heads
    q = q.reshape(b, t, heads, hd).transpose(1, 2)  # (B, h, T, hd)
    k = k.reshape(b, s, heads, hd).transpose(1, 2)
    v = v.reshape(b, s, heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)  # (B, h, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, d)


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        d = x.shape[-1]
        qkv = self.qkv(x)  # (B, T, 3D): q, k, v blocks of D columns
        return self.proj(attention(qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:], self.heads))


class CrossAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, y, mask):
        d = x.shape[-1]
        kv = self.kv(y)  # (B, L, 2D): keys, then values
        return self.proj(attention(self.q(x), kv[..., :d], kv[..., d:], self.heads, mask))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(gelu_tanh(self.fc1(x)))


class CaptionDiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_hidden):
        super().__init__()
        self.attn = SelfAttention(dim, heads)
        self.cross_attn = CrossAttention(dim, heads)
        self.mlp = Mlp(dim, mlp_hidden)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c, y, mask):
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1[:, None, :] * self.attn(modulate(layer_norm(x), sh1, sc1))
        x = x + self.cross_attn(x, y, mask)
        return x + g2[:, None, :] * self.mlp(modulate(layer_norm(x), sh2, sc2))


def main():
    torch.manual_seed(SEED)
    cfg = CONFIG
    d, b, t, l = cfg["dim"], cfg["batch"], cfg["tokens"], max(LENGTHS)
    block = CaptionDiTBlock(d, cfg["heads"], cfg["mlp_hidden"])
    with torch.no_grad():
        for _, p in block.named_parameters():
            p.copy_(0.3 * torch.randn(p.shape))
    # tokens with a ramp along each row, so no LayerNorm sees a nearly constant row
    ramp = torch.linspace(-3.0, 3.0, d)
    x = torch.randn(b, t, d) + ramp
    c = torch.randn(b, d)
    y = torch.randn(b, l, d)
    mask = torch.tensor([[j < n for j in range(l)] for n in LENGTHS])
    dy = torch.randn(b, t, d)
    saved = {k: v.detach().clone().contiguous() for k, v in block.state_dict().items()}

    block = block.double()
    inputs = {"x": x, "c": c, "context": y}
    leaves = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    out = block(leaves["x"], leaves["c"], leaves["context"], mask)
    (out * dy.double()).sum().backward()

    tensors = dict(saved)
    for k, v in inputs.items():
        tensors["input." + k] = v.contiguous()
        tensors["grad.input." + k] = leaves[k].grad.float().contiguous()
    tensors["input.mask"] = mask.float()
    tensors["dy"] = dy
    tensors["output"] = out.detach().float().contiguous()
    for name, p in block.named_parameters():
        tensors["grad." + name] = p.grad.float().contiguous()
    assert tensors["grad.input.context"][~mask].abs().max() == 0  # pads get no gradient
    meta = {f"config.{k}": str(v) for k, v in cfg.items()}
    meta.update({
        "config.max_len": str(l),
        "loss": "sum(output * dy)",
        "seed": str(SEED),
        "torch_version": torch.__version__,
        "source": "tests/reference/caption_block_reference.py",
    })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes), torch {torch.__version__}")
    for name in sorted(tensors):
        v = tensors[name]
        print(f"  {name:40s} {str(tuple(v.shape)):14s} max|.| {v.abs().max().item():.4g}")


if __name__ == "__main__":
    main()
