#!/usr/bin/env python3
"""Reference fixture for minisora's text encoder (`src/text/encoder.rs`): a PyTorch module
written from the math, not from minisora's code or another library's.

The encoder: token ids (B, L) are looked up in `token_embedding` (V, E), the learned
`positional_embedding` (L_max, E) rows 0..L are added, then `depth` pre-LayerNorm blocks

    x = x + attn(ln_1(x), mask)        multi-head self-attention, keys where mask is False
                                       score -inf before the softmax
    x = x + mlp(ln_2(x))               fc1 (E -> 4E), tanh-GELU, fc2 (4E -> E)

then `ln_final`, and the output rows at padded positions are set to zero. The attention's
fused `qkv` Linear (E -> 3E) is read as (B, T, 3, h, d) (queries, keys, values; head j is
columns j*d..(j+1)*d of each), scores are q k^T / sqrt(d), and `proj` (E -> E) mixes the heads.
LayerNorm eps is 1e-5. The `state_dict` names are minisora's: `token_embedding.weight`,
`positional_embedding`, `blocks.{i}.ln_1.*`, `blocks.{i}.attn.qkv.*`, `blocks.{i}.attn.proj.*`,
`blocks.{i}.ln_2.*`, `blocks.{i}.mlp.fc1.*`, `blocks.{i}.mlp.fc2.*`, `ln_final.*`.

Every parameter is set to a random value (LayerNorm gains around 1), the ids of padded
positions are PAD (0) or an id no valid token uses, and the scalar loss is L = sum(output * dy)
for a fixed random dy. The computation runs in float64 on the float32-rounded weights; outputs
and gradients are rounded to float32 and saved to `tests/fixtures/text_encoder_tiny.safetensors`:

  <name>           every parameter under its state_dict name
  input.ids        (B, L) token ids, as f32
  input.mask       (B, L) 1 for a valid token, 0 for padding, as f32
  dy               (B, L, E) the random output gradient
  output           (B, L, E) the encoder's output (zero at padded positions)
  grad.<name>      dL/d<name> for every parameter

with the config in the metadata (`config.*`). `tests/text_reference.rs` loads it and compares
minisora's forward (1e-4) and hand-written backward (1e-3), each relative to the tensor's
largest magnitude. Run by hand (never by CI), from the repository root:

    /work/.torchenv/bin/python tests/reference/text_reference.py

Written and run with torch 2.15.0 (CPU), numpy and safetensors from PyPI.
"""

import math
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

SEED = 0
CONFIG = {"vocab": 11, "max_len": 7, "width": 12, "depth": 2, "heads": 3}
LENGTHS = [6, 3, 1]  # valid tokens per caption; L = 6 < max_len
PAD_ONLY_ID = 10  # used only at padded positions: its embedding row must get no gradient
OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "text_encoder_tiny.safetensors")


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class SelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, mask):  # x (B, T, C), mask (B, T) bool
        b, t, c = x.shape
        h, d = self.heads, c // self.heads
        q, k, v = self.qkv(x).reshape(b, t, 3, h, d).permute(2, 0, 3, 1, 4)  # each (B, h, T, d)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)  # (B, h, T, T)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        o = scores.softmax(dim=-1) @ v  # (B, h, T, d)
        return self.proj(o.transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x):
        return self.fc2(gelu_tanh(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = Mlp(width)

    def forward(self, x, mask):
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class TextEncoder(nn.Module):
    def __init__(self, vocab, max_len, width, depth, heads):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.zeros(max_len, width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.ln_final = nn.LayerNorm(width, eps=1e-5)

    def forward(self, ids, mask):  # ids (B, L) int64, mask (B, L) bool
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_final(x) * mask[..., None].to(x.dtype)  # padded rows -> 0


def main():
    torch.manual_seed(SEED)
    model = TextEncoder(**CONFIG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and "ln" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape))
            else:
                p.copy_(0.5 * torch.randn(p.shape))
    b, l = len(LENGTHS), max(LENGTHS)
    mask = torch.tensor([[j < n for j in range(l)] for n in LENGTHS])
    ids = torch.randint(1, PAD_ONLY_ID, (b, l))
    ids[~mask] = torch.tensor([0, PAD_ONLY_ID]).repeat(int((~mask).sum()))[: int((~mask).sum())]
    dy = torch.randn(b, l, CONFIG["width"])
    saved = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    model = model.double()
    out = model(ids, mask)
    (out * dy.double()).sum().backward()

    tensors = dict(saved)
    tensors["input.ids"] = ids.float()
    tensors["input.mask"] = mask.float()
    tensors["dy"] = dy
    tensors["output"] = out.detach().float().contiguous()
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.float().contiguous()
    assert tensors["grad.token_embedding.weight"][PAD_ONLY_ID].abs().max() == 0
    meta = {f"config.{k}": str(v) for k, v in CONFIG.items()}
    meta.update({
        "loss": "sum(output * dy)",
        "seed": str(SEED),
        "torch_version": torch.__version__,
        "source": "tests/reference/text_reference.py",
    })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes), torch {torch.__version__}")
    for name in sorted(tensors):
        v = tensors[name]
        print(f"  {name:40s} {str(tuple(v.shape)):14s} max|.| {v.abs().max().item():.4g}")


if __name__ == "__main__":
    main()
