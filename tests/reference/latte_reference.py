#!/usr/bin/env python3
"""Reference fixture for minisora's `alternating` video DiT: a PyTorch Latte.

An independent PyTorch implementation of Latte (Ma et al., "Latte: Latent Diffusion Transformer
for Video Generation", arXiv 2401.03048), variant 1 (spatial and temporal Transformer blocks
alternating), class-conditional, with the module structure of the reference code
(Vchitect/Latte `models/latte.py`, class `Latte`, `extras == 2`), so that `state_dict()` names
and shapes are exactly the reference's. Latte's layers are DiT's (its `PatchEmbed` and `Mlp` are
timm's, its `TransformerBlock`, `FinalLayer`, `TimestepEmbedder`, `LabelEmbedder` and sin-cos
tables are DiT's code), so they are imported from `dit_reference.py`; what this file adds is what
Latte adds: the clip layout, the per-frame and per-position copies of the conditioning, the
`(b f) t d <-> (b t) f d` rearranges between the blocks and `temp_embed`. It builds a tiny
Latte, sets EVERY weight to a random non-zero value (also the adaLN-Zero modulations and the
final layer, which the reference initialises to zero, so every gradient is non-trivial), runs
forward and backward on fixed inputs, and saves everything to
`tests/fixtures/latte_tiny.safetensors`:

  <name>           every parameter under its state_dict name (f32)
  pos_embed        the fixed 2-D sin-cos table (1, S, D), S tokens per frame
  temp_embed       the fixed 1-D sin-cos table (1, F, D) of frames 0..F
  input.x          (B, F, C, H, W) noisy latent clips, in LATTE's layout (minisora's clips are
                   (B, C, F, H, W): the Rust test swaps axes 1 and 2)
  input.t          (B,) integer timesteps, stored as f32
  input.y          (B,) class labels, stored as f32 (one of them the null label `num_classes`)
  output           (B, F, 2C, H, W) the model's output (learn_sigma), Latte's layout
  target           (B, F, 2C, H, W) a fixed random target, Latte's layout
  loss             () the loss  L = mean((output - target)^2)  over every element
  grad.<name>      ∂L/∂<name> for every parameter

and the config in the file's metadata (`config.*`, `clip_layout`, plus `loss`, `torch_version`,
`seed`). Label dropout is off (eval mode, as at sampling): the labels are used as given.

The computation runs in float64 on the float32-rounded weights and inputs (so the saved f32
weights are exactly the ones used); outputs and gradients are then rounded to float32. (As in
dit_reference.py the timestep frequencies are float64 here, float32 in the reference; and
Latte's attention scales q·kᵀ after the product where timm's scales q before it, the same
numbers up to rounding. The script also runs the model in plain float32 and prints how far that
lands from the saved values, a yardstick for the tolerances.) The Rust test
`tests/latte_reference.rs` loads the file, runs minisora's `VideoDiT` (layout `alternating`,
temporal patch 1) forward and its hand-written backward, and compares.

Run by hand (never by CI), from the repository root:

    pip install torch safetensors numpy
    python3 tests/reference/latte_reference.py
    python3 tests/reference/latte_reference.py --load target/tmp/latte_tiny_minisora.safetensors

The second checks the other direction: a video checkpoint minisora wrote (`alternating`, the
file `cargo test --release --test latte_reference` writes, or `minisora train --model video-…`)
loads into this PyTorch Latte with `load_state_dict(strict=True)`, and runs.

Written and run with torch 2.15.0 (the PyPI wheel, 2.15.0+cu132, run on the CPU), numpy 2.4 and
safetensors from PyPI, Python 3.11.
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import (  # noqa: E402  (Latte's layers are DiT's)
    DiTBlock,
    FinalLayer,
    LabelEmbedder,
    PatchEmbed,
    TimestepEmbedder,
    save_safetensors,
    sincos_1d,
    sincos_2d,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "latte_tiny.safetensors")

# mlp_ratio 2 (Latte's models all use 4) keeps the fixture under 200 KB with D = 16 and depth 4.
CONFIG = dict(
    input_size=4,
    patch_size=2,
    in_channels=2,
    hidden_size=16,
    depth=4,  # blocks 0, 2 spatial; 1, 3 temporal
    num_heads=2,
    mlp_ratio=2.0,
    num_frames=3,
    class_dropout_prob=0.1,
    num_classes=3,
    learn_sigma=True,
)
SEED = 0
BATCH = 2
TIMESTEPS = [17, 901]
LABELS = [1, 3]  # 3 = num_classes: the null label of classifier-free guidance
WEIGHT_STD = 0.2  # weights and biases N(0, 0.2²), embedding table too
CLIP_LAYOUT = ("input.x, output and target are (B, F, C, H, W), Latte's clip layout; "
               "minisora's clips are (B, C, F, H, W): swap axes 1 and 2")


# ---------------------------------------------------------------------------------------------
# The model. Attribute names follow the reference exactly: they ARE the state_dict names.
# ---------------------------------------------------------------------------------------------


def per_row(c, copies):
    """einops `repeat(c, 'n d -> (n k) d', k=copies)`: each row `copies` times, consecutively."""
    return c.repeat_interleave(copies, dim=0)


def frames_to_positions(x, b):
    """einops `'(b f) t d -> (b t) f d'`: from one sequence per frame to one per position."""
    bf, t, d = x.shape
    f = bf // b
    return x.reshape(b, f, t, d).transpose(1, 2).reshape(b * t, f, d)


def positions_to_frames(x, b):
    """einops `'(b t) f d -> (b f) t d'`, the inverse."""
    bt, f, d = x.shape
    t = bt // b
    return x.reshape(b, t, f, d).transpose(1, 2).reshape(b * f, t, d)


class Latte(nn.Module):
    """Latte with `extras == 2` (class labels); `depth` counts spatial and temporal blocks."""

    def __init__(self, input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                 mlp_ratio, num_frames, class_dropout_prob, num_classes, learn_sigma):
        super().__init__()
        assert class_dropout_prob > 0, "the null-label row exists only with label dropout"
        assert depth % 2 == 0, "blocks come in (spatial, temporal) pairs"
        self.patch = patch_size
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        grid = input_size // patch_size
        self.x_embedder = PatchEmbed(in_channels, hidden_size, patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size)
        # Both fixed (requires_grad=False) but in the state_dict, as in the reference, which
        # builds them in float64 with numpy and stores them as float32.
        pe = torch.from_numpy(sincos_2d(hidden_size, grid)).float()[None]
        self.pos_embed = nn.Parameter(pe, requires_grad=False)  # (1, S, D)
        te = torch.from_numpy(sincos_1d(hidden_size, np.arange(num_frames))).float()[None]
        self.temp_embed = nn.Parameter(te, requires_grad=False)  # (1, F, D)
        self.blocks = nn.ModuleList(
            [DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)

    def unpatchify(self, x):
        """(N, T, p·p·C) -> (N, C, H, W) per frame: each token's features ordered (p_row, p_col, c)."""
        n, t, _ = x.shape
        p, c = self.patch, self.out_channels
        g = int(round(t**0.5))
        x = x.reshape(n, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)  # nhwpqc -> nchpwq
        return x.reshape(n, c, g * p, g * p)

    def forward(self, x, t, y):
        b, f, ch, h, w = x.shape  # Latte's clip layout
        assert f == self.temp_embed.shape[1], "Latte's tables are for num_frames frames"
        s = self.pos_embed.shape[1]
        x = x.reshape(b * f, ch, h, w)  # 'b f c h w -> (b f) c h w'
        x = self.x_embedder(x) + self.pos_embed  # (B·F, S, D)
        e_t = self.t_embedder(t)  # (B, D)
        e_y = self.y_embedder(y)  # eval: no label dropout
        c_spatial = per_row(e_t, f) + per_row(e_y, f)  # (B·F, D), row b·F + f
        c_temporal = per_row(e_t, s) + per_row(e_y, s)  # (B·S, D), row b·S + s
        for i in range(0, len(self.blocks), 2):
            x = self.blocks[i](x, c_spatial)  # attention within each frame
            x = frames_to_positions(x, b)  # (B·S, F, D)
            if i == 0:
                x = x + self.temp_embed
            x = self.blocks[i + 1](x, c_temporal)  # attention across frames, per position
            x = positions_to_frames(x, b)  # (B·F, S, D)
        x = self.unpatchify(self.final_layer(x, c_spatial))  # (B·F, C_out, H, W)
        return x.reshape(b, f, self.out_channels, h, w)


# The reference's state_dict, name -> shape, for this config (checked below).
def expected_shapes(cfg):
    d, p, ci = cfg["hidden_size"], cfg["patch_size"], cfg["in_channels"]
    co = 2 * ci if cfg["learn_sigma"] else ci
    s = (cfg["input_size"] // p) ** 2
    h = int(d * cfg["mlp_ratio"])
    shapes = {
        "pos_embed": (1, s, d),
        "temp_embed": (1, cfg["num_frames"], d),
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


def main():
    torch.manual_seed(SEED)
    model = Latte(**CONFIG)

    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = expected_shapes(CONFIG)
    if got != want:
        sys.exit(f"state_dict differs from the reference's:\n got  {got}\n want {want}")

    # Every trainable tensor random and non-zero, drawn in f32 (the values that are saved).
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.requires_grad:  # not pos_embed, temp_embed: they stay the sin-cos tables
                p.copy_(torch.randn(p.shape) * WEIGHT_STD)
    n, f, ci = CONFIG["input_size"], CONFIG["num_frames"], CONFIG["in_channels"]
    x = torch.randn(BATCH, f, ci, n, n)  # Latte's (B, F, C, H, W)
    t = torch.tensor(TIMESTEPS, dtype=torch.int64)
    y = torch.tensor(LABELS, dtype=torch.int64)
    target = torch.randn(BATCH, f, model.out_channels, n, n)
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
        else:
            assert p.grad is None, f"the fixed table {name} got a gradient"

    meta = {f"config.{k}": str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in CONFIG.items()}
    meta.update({
        "clip_layout": CLIP_LAYOUT,
        "loss": "mean((output - target)^2) over every element",
        "loss_value": repr(loss.item()),
        "seed": str(SEED),
        "weight_std": str(WEIGHT_STD),
        "torch_version": torch.__version__,
        "source": "tests/reference/latte_reference.py",
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
    """`--load PATH`: a video checkpoint minisora wrote (layout `alternating`, temporal patch 1)
    loads into this PyTorch Latte with `load_state_dict(strict=True)` — the same names, shapes,
    `pos_embed` and `temp_embed` — and runs. Training-state files also hold `ema.*`/`adamw.*`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    if meta.get("video.layout", "alternating") != "alternating":
        sys.exit(f"{path}: layout {meta['video.layout']}; Latte is the `alternating` layout")
    if meta.get("video.temporal_patch", "1") != "1":
        sys.exit(f"{path}: temporal patch {meta['video.temporal_patch']}; Latte patches per frame")
    if meta.get("dit.conditioning", "adaln-zero") != "adaln-zero":
        sys.exit(f"{path}: conditioning {meta['dit.conditioning']}; Latte is adaLN-Zero")
    cfg = {k[4:]: v for k, v in meta.items() if k.startswith("dit.")}
    ints = ["input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "num_classes"]
    args = {k: int(cfg[k]) for k in ints}
    args.update(mlp_ratio=float(cfg["mlp_ratio"]), class_dropout_prob=float(cfg["class_dropout_prob"]),
                learn_sigma=cfg["learn_sigma"] == "true", num_frames=int(meta["video.frames"]))
    model = Latte(**args)
    fresh = {k: v.clone() for k, v in model.state_dict().items() if k in ("pos_embed", "temp_embed")}
    state = {k: v for k, v in load_file(path).items() if not k.startswith(("ema.", "adamw."))}
    print(f"{path}: {model.load_state_dict(state, strict=True)} ({len(state)} tensors, config {args})")
    for k, v in fresh.items():
        print(f"  {k} {tuple(v.shape)}: max |minisora's - sin-cos| = {(state[k] - v).abs().max().item():.2e}")

    model.eval()
    torch.manual_seed(SEED)
    b, f, n = 2, args["num_frames"], args["input_size"]
    x = torch.randn(b, f, args["in_channels"], n, n)  # Latte's (B, F, C, H, W)
    t = torch.tensor([10, 500])
    y = torch.tensor([0, args["num_classes"]])  # a class and the null label
    with torch.no_grad():
        out = model(x, t, y)
    print(f"  forward: x {tuple(x.shape)} -> {tuple(out.shape)}, finite {bool(torch.isfinite(out).all())}, "
          f"max |out| {out.abs().max().item():.4g}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        check_load(sys.argv[2])
    else:
        main()
