#!/usr/bin/env python3
"""PyTorch's side of `examples/bench_train.rs`: the same DiT training step, timed the same way.

Measures, on this machine, what the performance appendix compares against: PyTorch (eager mode) training
the reference DiT — the model of `dit_reference.py` (facebookresearch/DiT's module structure),
with attention through `F.scaled_dot_product_attention` as timm's fused path does — on batches of
64 latents of 4 × 8 × 8, learned variance, DiT's hybrid loss (ε-MSE plus the variational bound
of the learned-range variance with the mean detached), AdamW (lr 1e-4, no weight decay) and an
EMA update of every weight, as `train.py` does per step. Two threads unless told otherwise.
Rounds interleave a 1024³ matmul (the sgemm ceiling) with the two models, and each figure is
the median, as in the Rust benchmark; the last stdout line is one JSON object.

Run by hand, never by CI (the same real-time priority as the Rust run makes the two comparable
on a shared machine):

    pip install torch numpy
    chrt -f 10 python3 tests/reference/bench_dit_torch.py
    chrt -f 10 cargo run --release --example bench_train -- --no-sampling

Written and run with torch 2.15.0 (the PyPI wheel, on the CPU), Python 3.11.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference as ref  # noqa: E402

BATCH = 64
CONFIGS = {  # name: (depth, hidden, heads), patch 2, on 8×8×4 latents
    "DiT-tiny/2": (6, 128, 4),
    "DiT-S/2": (12, 384, 6),
}


def fused_attention(self, x):
    """timm's Attention with fused_attn: the same products through scaled_dot_product_attention."""
    b, n, d = x.shape
    qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    return self.proj(out.transpose(1, 2).reshape(b, n, d))


ref.Attention.forward = fused_attention


def linear_betas(steps=1000):
    scale = 1000.0 / steps
    return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)


class Hybrid:
    """DiT's training loss for learn_sigma: MSE(ε) + L_vlb of the learned-range variance (the
    mean detached), the t = 0 term a plain Gaussian NLL proxy (only its cost matters here)."""

    def __init__(self):
        b = linear_betas()
        ab = torch.cumprod(1 - b, 0)
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        post_var = b * (1 - ab_prev) / (1 - ab)
        f = lambda a: a.float()  # noqa: E731
        self.sqrt_ab, self.sqrt_1mab = f(ab.sqrt()), f((1 - ab).sqrt())
        self.log_post = f(torch.log(torch.cat([post_var[1:2], post_var[1:]])))
        self.log_beta = f(torch.log(b))
        self.c1 = f(b * ab_prev.sqrt() / (1 - ab))
        self.c2 = f((1 - ab_prev) * (1 - b).sqrt() / (1 - ab))
        self.recip, self.recipm1 = f((1 / ab).sqrt()), f((1 / ab - 1).sqrt())

    def __call__(self, model, x0, t, y):
        g = lambda a: a[t][:, None, None, None]  # noqa: E731
        noise = torch.randn_like(x0)
        x_t = g(self.sqrt_ab) * x0 + g(self.sqrt_1mab) * noise
        out = model(x_t, t, y)
        eps, v = out.chunk(2, dim=1)
        mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
        # variance from v in [-1, 1]: log σ² = frac·log β + (1 − frac)·log β̃
        frac = (v + 1) / 2
        log_var = frac * g(self.log_beta) + (1 - frac) * g(self.log_post)
        x0_pred = (g(self.recip) * x_t - g(self.recipm1) * eps.detach()).clamp(-1, 1)
        mean = g(self.c1) * x0_pred + g(self.c2) * x_t
        true_mean = g(self.c1) * x0 + g(self.c2) * x_t
        kl = 0.5 * (-1.0 + log_var - g(self.log_post) + torch.exp(g(self.log_post) - log_var)
                    + (true_mean - mean) ** 2 * torch.exp(-log_var))
        vb = kl.mean(dim=(1, 2, 3)) / math.log(2.0)
        return (mse + vb).mean()


class Run:
    def __init__(self, name, steps):
        depth, hidden, heads = CONFIGS[name]
        torch.manual_seed(0)
        self.name, self.steps = name, steps
        self.model = ref.DiT(input_size=8, patch_size=2, in_channels=4, hidden_size=hidden,
                             depth=depth, num_heads=heads, mlp_ratio=4.0,
                             class_dropout_prob=0.1, num_classes=10, learn_sigma=True)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.ema = [p.detach().clone() for p in self.params]
        self.opt = torch.optim.AdamW(self.params, lr=1e-4, weight_decay=0.0)
        self.loss = Hybrid()
        self.x0 = torch.randn(BATCH, 4, 8, 8)
        self.t = torch.randint(0, 1000, (BATCH,))
        self.y = torch.arange(BATCH) % 11
        self.step()

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model, self.x0, self.t, self.y)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, self.params, 1 - 0.9999)
        return loss.item()

    def macs(self):
        depth, d, _ = CONFIGS[self.name]
        t, p = 16, 2
        block = t * 12 * d * d + 2 * t * t * d + 6 * d * d
        return t * 4 * p * p * d + 256 * d + d * d + depth * block + 2 * d * d + t * d * p * p * 8


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a = torch.randn(1024, 1024)
    runs = [Run("DiT-tiny/2", 8), Run("DiT-S/2", 1)]
    gemm, steps = [], {r.name: [] for r in runs}
    for _ in range(args.rounds):
        for _ in range(2):
            s = time.perf_counter()
            (a @ a).sum().item()
            gemm.append(time.perf_counter() - s)
        for r in runs:
            for _ in range(r.steps):
                s = time.perf_counter()
                r.step()
                steps[r.name].append(time.perf_counter() - s)
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    ceiling = 2 * 1024**3 / med(gemm) / 1e9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; sgemm ceiling {ceiling:.1f} GFLOP/s")
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "sgemm_gflop_s": round(ceiling, 1)}
    for r in runs:
        sec = med(steps[r.name])
        gf = 6 * r.macs() * BATCH / sec / 1e9
        print(f"{r.name}: {BATCH / sec:.0f} img/s ({sec * 1e3:.1f} ms per step), {gf:.1f} GFLOP/s "
              f"= {100 * gf / ceiling:.0f} % of the ceiling")
        out[r.name] = {"img_per_s": round(BATCH / sec, 1), "step_ms": round(sec * 1e3, 2),
                       "train_gflop_s": round(gf, 1), "train_fraction_of_sgemm": round(gf / ceiling, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
