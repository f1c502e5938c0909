#!/usr/bin/env python3
"""Reference fixture for minisora's DiT, in the spirit of llm.c's `test_gpt2`.

An independent PyTorch implementation of the DiT of Peebles & Xie, "Scalable Diffusion Models
with Transformers" (arXiv 2212.09748), with the module structure of the reference code
(facebookresearch/DiT `models.py`, which builds on timm's PatchEmbed / Attention / Mlp), so that
`state_dict()` names and shapes are exactly the reference's. It builds a tiny DiT, sets EVERY
weight to a random non-zero value (also the adaLN-Zero modulations and the final layer, which the
reference initialises to zero, so every gradient is non-trivial), runs forward and backward on
fixed inputs, and saves everything to `tests/fixtures/dit_tiny.safetensors`:

  <name>           every parameter under its state_dict name (f32)
  pos_embed        the fixed 2-D sin-cos position embedding (1, T, D), as the reference stores it
  input.x          (B, C, H, W) noisy latents
  input.t          (B,) integer timesteps, stored as f32
  input.y          (B,) class labels, stored as f32 (one of them the null label `num_classes`)
  output           (B, 2C, H, W) the model's output (learn_sigma: ε and the variance channels)
  target           (B, 2C, H, W) a fixed random target
  loss             () the loss  L = mean((output - target)^2)  over every element
  grad.<name>      ∂L/∂<name> for every parameter

and the config in the file's metadata (`config.*`, plus `loss`, `torch_version`, `seed`).
Label dropout is off (eval mode, as at sampling): the labels are used as given.

The computation runs in float64 on the float32-rounded weights and inputs (so the saved f32
weights are exactly the ones used); outputs and gradients are then rounded to float32. (The
reference computes the timestep frequencies in float32; here they are float64, the exact values:
the two outputs differ by ~6e-6 of their scale. The script also runs this model in plain float32
and prints how far that lands from the saved values, ~1e-6, a yardstick for the tolerances.) The Rust
test `tests/dit_reference.rs` loads the file, runs minisora's DiT forward and its hand-written
backward, and compares.

Run by hand (never by CI), from the repository root:

    pip install torch safetensors numpy
    python3 tests/reference/dit_reference.py
    python3 tests/reference/dit_reference.py --load out/demo/dit/dit.safetensors

The second checks the other direction: a checkpoint minisora wrote loads into this PyTorch DiT
with `load_state_dict(strict=True)`.

Written and run with torch 2.15.0 (the PyPI wheel, 2.15.0+cu132, run on the CPU), numpy and safetensors from PyPI, Python 3.11.
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import json
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "dit_tiny.safetensors")

CONFIG = dict(
    input_size=8,
    patch_size=2,
    in_channels=4,
    hidden_size=16,
    depth=2,
    num_heads=4,
    mlp_ratio=4.0,
    class_dropout_prob=0.1,
    num_classes=10,
    learn_sigma=True,
)
SEED = 0
BATCH = 3
TIMESTEPS = [0, 500, 999]
LABELS = [3, 10, 7]  # 10 = num_classes: the null label of classifier-free guidance
WEIGHT_STD = 0.2  # weights and biases N(0, 0.2²), embedding table too


# ---------------------------------------------------------------------------------------------
# The model. Attribute names follow the reference exactly: they ARE the state_dict names.
# ---------------------------------------------------------------------------------------------


def shift_scale(x, shift, scale):
    """adaLN modulation: x·(1 + scale) + shift, with (B, D) shift/scale broadcast over tokens."""
    return x * (1.0 + scale[:, None, :]) + shift[:, None, :]


def layer_norm(x):
    """LayerNorm over the last axis without affine parameters, eps 1e-6 (biased variance)."""
    return F.layer_norm(x, (x.shape[-1],), weight=None, bias=None, eps=1e-6)


class PatchEmbed(nn.Module):
    """p×p stride-p convolution, (B, C, H, W) -> (B, T, D) with tokens in row-major patch order."""

    def __init__(self, in_channels, hidden, patch):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        x = self.proj(x)  # (B, D, h, w)
        return x.flatten(2).transpose(1, 2)  # (B, h·w, D)


def sinusoid(t, dim=256, max_period=10000.0):
    """GLIDE/ADM timestep features: [cos(t·f_i), sin(t·f_i)], f_i = exp(-ln(max_period)·i/half)."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float64)
    freqs = torch.exp(-math.log(max_period) * i / half)
    args = t.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq_dim=256):
        super().__init__()
        self.freq_dim = freq_dim
        # index 0: Linear, 1: SiLU, 2: Linear  ->  mlp.0.*, mlp.2.*
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        return self.mlp(sinusoid(t, self.freq_dim).to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, hidden):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden)  # last row: null label

    def forward(self, y):
        return self.embedding_table(y)


class Attention(nn.Module):
    """Multi-head self-attention with fused qkv (bias) and an output projection, as timm's."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.heads
        # (B, N, 3D) -> (3, B, heads, N, hd): q = columns [0, D), k = [D, 2D), v = [2D, 3D),
        # head h = columns [h·hd, (h+1)·hd) within each
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax((q * hd**-0.5) @ k.transpose(-2, -1), dim=-1)  # (B, heads, N, N)
        out = (att @ v).transpose(1, 2).reshape(b, n, d)  # heads concatenated per token
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """adaLN-Zero block: chunks (shift, scale, gate) for attention, then for the MLP."""

    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(dim, heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1[:, None, :] * self.attn(shift_scale(layer_norm(x), sh1, sc1))
        x = x + g2[:, None, :] * self.mlp(shift_scale(layer_norm(x), sh2, sc2))
        return x


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out_channels):
        super().__init__()
        self.linear = nn.Linear(dim, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(shift_scale(layer_norm(x), shift, scale))


def sincos_1d(dim, pos):
    """MAE 1-D sin-cos: omega_i = 1 / 10000^(i / (dim/2)), out = [sin(pos·omega), cos(pos·omega)]."""
    omega = 1.0 / 10000.0 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.outer(pos.reshape(-1).astype(np.float64), omega)  # (M, dim/2)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (M, dim)


def sincos_2d(dim, grid_size):
    """MAE 2-D sin-cos over a grid_size² grid of tokens in row-major order (token = row·g + col).

    MAE builds `np.meshgrid(grid_w, grid_h)`, so its grid[0] holds each token's COLUMN and
    grid[1] its ROW; the first dim/2 features encode grid[0] (the column), the last dim/2 the row.
    """
    cols, rows = np.meshgrid(np.arange(grid_size), np.arange(grid_size))  # each (g, g), [row, col]
    return np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)


class DiT(nn.Module):
    def __init__(self, input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                 mlp_ratio, class_dropout_prob, num_classes, learn_sigma):
        super().__init__()
        assert class_dropout_prob > 0, "the null-label row exists only with label dropout"
        self.patch = patch_size
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        grid = input_size // patch_size
        self.x_embedder = PatchEmbed(in_channels, hidden_size, patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size)
        # Fixed (not trained), but part of the state_dict, as in the reference; the reference
        # builds it in float64 with numpy and stores it as float32.
        pe = torch.from_numpy(sincos_2d(hidden_size, grid)).float()[None]
        self.pos_embed = nn.Parameter(pe, requires_grad=False)
        self.blocks = nn.ModuleList(
            [DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)

    def unpatchify(self, x):
        """(B, T, p·p·C) -> (B, C, H, W): each token's features are ordered (p_row, p_col, c)."""
        b, t, _ = x.shape
        p, c = self.patch, self.out_channels
        g = int(round(t**0.5))
        x = x.reshape(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)  # nhwpqc -> nchpwq
        return x.reshape(b, c, g * p, g * p)

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed  # (B, T, D)
        c = self.t_embedder(t) + self.y_embedder(y)  # (B, D)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))


# The reference's state_dict, name -> shape, for this config (checked below).
def expected_shapes(cfg):
    d, p, ci = cfg["hidden_size"], cfg["patch_size"], cfg["in_channels"]
    co = 2 * ci if cfg["learn_sigma"] else ci
    t = (cfg["input_size"] // p) ** 2
    h = int(d * cfg["mlp_ratio"])
    shapes = {
        "pos_embed": (1, t, d),
        "x_embedder.proj.weight": (d, ci, p, p),
        "x_embedder.proj.bias": (d,),
        "t_embedder.mlp.0.weight": (d, 256),
        "t_embedder.mlp.0.bias": (d,),
        "t_embedder.mlp.2.weight": (d, d),
        "t_embedder.mlp.2.bias": (d,),
        "y_embedder.embedding_table.weight": (cfg["num_classes"] + 1, d),
    }
    for i in range(cfg["depth"]):
        b = f"blocks.{i}."
        shapes.update({
            b + "attn.qkv.weight": (3 * d, d), b + "attn.qkv.bias": (3 * d,),
            b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
            b + "mlp.fc1.weight": (h, d), b + "mlp.fc1.bias": (h,),
            b + "mlp.fc2.weight": (d, h), b + "mlp.fc2.bias": (d,),
            b + "adaLN_modulation.1.weight": (6 * d, d), b + "adaLN_modulation.1.bias": (6 * d,),
        })
    shapes.update({
        "final_layer.linear.weight": (p * p * co, d), "final_layer.linear.bias": (p * p * co,),
        "final_layer.adaLN_modulation.1.weight": (2 * d, d),
        "final_layer.adaLN_modulation.1.bias": (2 * d,),
    })
    return shapes


def save_safetensors(path, tensors, metadata):
    """Writes a safetensors file byte for byte reproducibly: tensors in name order, the JSON
    header with sorted keys (safetensors' own writer orders the metadata by a random hash, so
    rerunning the script would change the file's bytes without changing its contents)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to a multiple of 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def main():
    torch.manual_seed(SEED)
    model = DiT(**CONFIG)

    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = expected_shapes(CONFIG)
    if got != want:
        sys.exit(f"state_dict differs from the reference's:\n got  {got}\n want {want}")

    # Every trainable tensor random and non-zero, drawn in f32 (the values that are saved).
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.requires_grad:  # not pos_embed: it stays the fixed sin-cos table
                p.copy_(torch.randn(p.shape) * WEIGHT_STD)
    x = torch.randn(BATCH, CONFIG["in_channels"], CONFIG["input_size"], CONFIG["input_size"])
    t = torch.tensor(TIMESTEPS, dtype=torch.int64)
    y = torch.tensor(LABELS, dtype=torch.int64)
    out_shape = (BATCH, model.out_channels, CONFIG["input_size"], CONFIG["input_size"])
    target = torch.randn(out_shape)
    saved = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    # The same model in float32, as PyTorch would run it: how far plain f32 arithmetic lands
    # from the float64 values saved below (a yardstick for the Rust test's tolerances).
    model.eval()  # no label dropout
    out32 = model(x, t, y)
    ((out32 - target) ** 2).mean().backward()
    grads32 = {n: p.grad.double() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)

    # Compute in float64 from exactly those f32 values.
    model = model.double()
    out = model(x.double(), t, y)
    loss = ((out - target.double()) ** 2).mean()
    loss.backward()

    tensors = dict(saved)
    tensors["input.x"] = x
    tensors["input.t"] = t.float()
    tensors["input.y"] = y.float()
    tensors["output"] = out.detach().float().contiguous()
    tensors["target"] = target
    tensors["loss"] = loss.detach().float().reshape(())
    for name, p in model.named_parameters():
        if p.requires_grad:
            g = p.grad
            assert g is not None and g.abs().max() > 0, f"gradient of {name} is zero"
            tensors["grad." + name] = g.float().contiguous()

    meta = {f"config.{k}": str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in CONFIG.items()}
    meta.update({
        "loss": "mean((output - target)^2) over every element",
        "loss_value": repr(loss.item()),
        "seed": str(SEED),
        "weight_std": str(WEIGHT_STD),
        "torch_version": torch.__version__,
        "source": "tests/reference/dit_reference.py",
    })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, tensors, meta)

    # What was written, and a few statistics that show the fixture exercises every part.
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes), torch {torch.__version__}")
    for name in sorted(tensors):
        v = tensors[name]
        print(f"  {name:45s} {str(tuple(v.shape)):18s} max|.| {v.abs().max().item():.4g}")
    print(f"loss = {loss.item():.9g}")

    def rel(a, b):
        return ((a.double() - b).abs().max() / b.abs().max()).item()

    worst = max((rel(grads32[n], p.grad), n) for n, p in model.named_parameters() if p.requires_grad)
    print(f"float32 PyTorch vs these float64 values: output {rel(out32.detach(), out.detach()):.2e}, "
          f"worst gradient {worst[0]:.2e} ({worst[1]}), relative to each tensor's max |.|")


def check_load(path):
    """`--load PATH`: a checkpoint minisora wrote (`minisora train --model dit-…`, the demo's
    out/demo/dit/dit.safetensors) loads into this PyTorch DiT with `load_state_dict(strict=True)`:
    the same names, shapes and `pos_embed`. Training-state files also hold `ema.*`/`adamw.*`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    cfg = {k[4:]: v for k, v in meta.items() if k.startswith("dit.")}
    ints = ["input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "num_classes"]
    args = {k: int(cfg[k]) for k in ints}
    args.update(mlp_ratio=float(cfg["mlp_ratio"]), class_dropout_prob=float(cfg["class_dropout_prob"]),
                learn_sigma=cfg["learn_sigma"] == "true")
    model = DiT(**args)
    state = {k: v for k, v in load_file(path).items() if not k.startswith(("ema.", "adamw."))}
    print(f"{path}: {model.load_state_dict(state, strict=True)} ({len(state)} tensors, config {args})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        check_load(sys.argv[2])
    else:
        main()
