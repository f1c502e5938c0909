#!/usr/bin/env python3
"""PyTorch's side of `examples/bench_video.rs`: the same video DiT training step and sampling, timed the same way.

Measures, on this machine, what the performance appendix compares the video DiT against:
PyTorch (eager mode) training `video-mini/2` (depth 4, width 64, 4 heads, MLP ratio 4, patch 2,
per-frame patches) on batches of 16 latent clips of 4 channels × F frames × 8 × 8 (16 tokens
per frame), 40 classes plus the null label, learned variance, in each attention layout:

  full         DiT's block over all F·16 tokens of a clip; the temporal sin-cos table added to
               every token at the input;
  alternating  Latte (`latte_reference.Latte`, its module structure and state_dict): even
               blocks attend within frames, odd blocks within positions, `temp_embed` added to
               the residual stream before the first temporal block;
  factorized   Open-Sora's STDiT block as minisora builds it: spatial attention, then a temporal
               attention (`attn_temp`) sharing the spatial branch's shift, scale and gate, then
               the MLP; the first block adds the temporal table to its temporal attention's input.

Depth is minisora's `VideoDiTConfig::named`: 4 blocks for `full` and `factorized`, 4 spatial +
4 temporal blocks for `alternating` (each spatial block of the image size gets a temporal one). The layers are `dit_reference.py`'s (DiT's
module structure) with attention through `F.scaled_dot_product_attention`, as in
`bench_dit_torch.py`; every model reads clips in Latte's layout (B, F, C, H, W).

A training step is what `bench_dit_torch.py` times: x_t from fixed x0, noise and t, the forward
pass, DiT's hybrid loss (ε-MSE plus the variational bound of the learned-range variance, the
mean detached), backward, AdamW (lr 1e-4, no weight decay) and an EMA update of every weight
(decay 0.9999); forward (+ loss), backward and optimizer (+ EMA) are also timed apart. Guided
sampling is 50-step DDIM (η = 0, the ddim50 spacing of 1000 steps) with classifier-free guidance
of scale 4 for 16 clips of 8 frames: each step runs the model on 2 × 16 clips (the labels, then
the null label) and guides the ε half, as DiT's `forward_with_cfg` does.

Rounds interleave a 1024³ matmul (the sgemm ceiling) with every model, and each figure is the
median, as in the Rust benchmark. Effective GFLOP/s: 2 FLOPs per multiply-add, a training step
is 3 forward passes' worth, the multiply-adds per clip counted as minisora's `video_flops`
counts them. Peak memory is measured per configuration in a fresh process (this script run
with `--one LAYOUT:FRAMES`), since a process keeps memory a bigger configuration needed: the
process's peak resident set (`VmHWM`, Linux only) after one warm-up step and `--sweep-steps`
timed ones, as the Rust side reads it, with the resident set before the model was built
(torch loaded) as `baseline_rss_mib`. The scaling sweep runs frames 4, 8,
16, 32 per layout and fits the log-log slopes of step time and of peak memory against frames.
The last stdout line is one JSON object with every figure.

Run by hand, never by CI (the same real-time priority as the Rust run makes the two comparable
on a shared machine):

    pip install torch numpy
    chrt -f 10 python3 tests/reference/bench_video_torch.py
    chrt -f 10 cargo run --release --example bench_video

Written with torch 2.15.0 (the PyPI wheel, 2.15.0+cu132, run on the CPU), numpy 2.4, Python 3.11.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_dit_torch as image  # noqa: E402  (the SDPA attention, the hybrid loss's tables)
import dit_reference as ref  # noqa: E402
import latte_reference as latte  # noqa: E402

ref.Attention.forward = image.fused_attention  # importing bench_dit_torch already did; made explicit

BATCH = 16
DEPTH, HIDDEN, HEADS, MLP_RATIO = 4, 64, 4, 4.0  # video-mini/2
PATCH, CHANNELS, SIDE, NUM_CLASSES = 2, 4, 8, 40
TOKENS = (SIDE // PATCH) ** 2  # S = 16 tokens per frame
FREQ_DIM = 256  # the timestep embedder's sinusoid features
LAYOUTS = ("full", "alternating", "factorized")
TRAIN_FRAMES = (8, 16)
SWEEP_FRAMES = (4, 8, 16, 32)
STEPS_PER_ROUND = {8: 2, 16: 1}  # training steps of each model per round
SAMPLE_FRAMES, SAMPLE_STEPS, GUIDANCE = 8, 50, 4.0


# ---------------------------------------------------------------------------------------------
# The three layouts. Each is Latte's module (the same embedders, tables, final layer and
# state_dict names); `full` and `factorized` change the forward pass, `factorized` the blocks.
# ---------------------------------------------------------------------------------------------


def depth(layout):
    """minisora's `VideoDiTConfig::named` doubles the depth of `alternating`: each spatial
    block of the image size gets a temporal block of its own (4 + 4 for video-mini/2)."""
    return 2 * DEPTH if layout == "alternating" else DEPTH


def config(layout, frames):
    return dict(input_size=SIDE, patch_size=PATCH, in_channels=CHANNELS, hidden_size=HIDDEN,
                depth=depth(layout), num_heads=HEADS, mlp_ratio=MLP_RATIO, num_frames=frames,
                class_dropout_prob=0.1, num_classes=NUM_CLASSES, learn_sigma=True)


def per_clip(v):
    """(B, D) -> (B, 1, 1, D): one row per clip, over its (F, S) tokens."""
    return v[:, None, None, :]


def modulate(x, shift, scale):
    """adaLN on (B, F, S, D) tokens with the clip's (B, D) shift and scale."""
    return x * (1.0 + per_clip(scale)) + per_clip(shift)


class FullDiT(latte.Latte):
    """`full`: DiT's blocks over one sequence of F·S tokens per clip, conditioned once per clip."""

    def forward(self, x, t, y):
        b, f, ch, h, w = x.shape
        assert f == self.temp_embed.shape[1], "the tables are for num_frames frames"
        s = self.pos_embed.shape[1]
        tokens = self.x_embedder(x.reshape(b * f, ch, h, w)) + self.pos_embed  # (B·F, S, D)
        tokens = tokens.reshape(b, f, s, -1) + self.temp_embed[:, :, None, :]  # E_s + E_t
        tokens = tokens.reshape(b, f * s, -1)
        c = self.t_embedder(t) + self.y_embedder(y)  # (B, D)
        for block in self.blocks:
            tokens = block(tokens, c)
        out = self.final_layer(tokens, c).reshape(b * f, s, -1)  # (B·F, S, p·p·C_out)
        return self.unpatchify(out).reshape(b, f, self.out_channels, h, w)


class FactorizedBlock(ref.DiTBlock):
    """DiT's block with a temporal attention `attn_temp` between its attention and its MLP; both
    attentions read the same modulated LayerNorm (shift₁, scale₁) and share the gate α₁."""

    def __init__(self, dim, heads, mlp_ratio):
        super().__init__(dim, heads, mlp_ratio)
        self.attn_temp = ref.Attention(dim, heads)

    def forward(self, x, c, temp_embed=None):
        b, f, s, d = x.shape  # tokens (B, F, S, D)
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        a = modulate(ref.layer_norm(x), sh1, sc1).reshape(b * f, s, d)  # within frames
        x = x + per_clip(g1) * self.attn(a).reshape(b, f, s, d)
        a = modulate(ref.layer_norm(x), sh1, sc1)
        if temp_embed is not None:
            a = a + temp_embed[:, :, None, :]  # (1, F, 1, D): the first block only
        a = a.transpose(1, 2).reshape(b * s, f, d)  # '(b f) s d -> (b s) f d'
        o = self.attn_temp(a).reshape(b, s, f, d).transpose(1, 2)  # and back
        x = x + per_clip(g1) * o
        return x + per_clip(g2) * self.mlp(modulate(ref.layer_norm(x), sh2, sc2))


class FactorizedDiT(latte.Latte):
    """`factorized`: `depth` factorized blocks over (B, F, S, D) tokens."""

    def __init__(self, **cfg):
        super().__init__(**cfg)
        self.blocks = nn.ModuleList([FactorizedBlock(cfg["hidden_size"], cfg["num_heads"],
                                                     cfg["mlp_ratio"]) for _ in range(cfg["depth"])])

    def forward(self, x, t, y):
        b, f, ch, h, w = x.shape
        assert f == self.temp_embed.shape[1], "the tables are for num_frames frames"
        s = self.pos_embed.shape[1]
        tokens = self.x_embedder(x.reshape(b * f, ch, h, w)) + self.pos_embed  # (B·F, S, D)
        tokens = tokens.reshape(b, f, s, -1)
        c = self.t_embedder(t) + self.y_embedder(y)  # (B, D)
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, c, self.temp_embed if i == 0 else None)
        out = self.final_layer(tokens.reshape(b, f * s, -1), c).reshape(b * f, s, -1)
        return self.unpatchify(out).reshape(b, f, self.out_channels, h, w)


MODELS = {"full": FullDiT, "alternating": latte.Latte, "factorized": FactorizedDiT}


def expected_shapes(layout, frames):
    """Latte's state_dict (latte_reference's list); the factorized blocks add `attn_temp`."""
    shapes = latte.expected_shapes(config(layout, frames))
    if layout == "factorized":
        for i in range(DEPTH):
            shapes.update({f"blocks.{i}.attn_temp.qkv.weight": (3 * HIDDEN, HIDDEN),
                           f"blocks.{i}.attn_temp.qkv.bias": (3 * HIDDEN,),
                           f"blocks.{i}.attn_temp.proj.weight": (HIDDEN, HIDDEN),
                           f"blocks.{i}.attn_temp.proj.bias": (HIDDEN,)})
    return shapes


def video_macs(layout, frames):
    """Multiply-adds of one forward pass of ONE clip, counted as minisora's `video_flops`:
    Linears per token they run on (the patch embedding is one), QKᵀ and PV, the timestep MLP
    and every adaLN modulation once per clip; no biases, norms, activations or softmax."""
    f, s, d = frames, TOKENS, HIDDEN  # temporal patch 1: F' = F
    t, hidden, p = f * s, int(HIDDEN * MLP_RATIO), PATCH
    patch = t * (CHANNELS * p * p) * d
    t_mlp = FREQ_DIM * d + d * d

    def attention(k, n):  # k sequences of n tokens: qkv and proj, QKᵀ and PV
        return k * (n * 4 * d * d + 2 * n * n * d)

    mlp, modulation = t * 2 * d * hidden, 6 * d * d
    if layout == "full":
        blocks = DEPTH * (attention(1, t) + mlp + modulation)
    elif layout == "alternating":
        spatial = attention(f, s) + mlp + modulation
        temporal = attention(s, f) + mlp + modulation
        blocks = depth(layout) // 2 * (spatial + temporal)
    else:
        blocks = DEPTH * (attention(f, s) + attention(s, f) + mlp + modulation)
    last = 2 * d * d + t * d * (p * p * 2 * CHANNELS)
    return patch + t_mlp + blocks + last


# ---------------------------------------------------------------------------------------------
# Training and sampling.
# ---------------------------------------------------------------------------------------------


class ClipHybrid(image.Hybrid):
    """bench_dit_torch's hybrid loss on clips (B, F, C, H, W), with the noise given (fixed)."""

    def __call__(self, model, x0, noise, t, y):
        g = lambda a: a[t].view(-1, 1, 1, 1, 1)  # noqa: E731
        x_t = g(self.sqrt_ab) * x0 + g(self.sqrt_1mab) * noise
        out = model(x_t, t, y)
        eps, v = out.chunk(2, dim=2)  # the channel axis
        per_clip_mean = lambda a: a.mean(dim=(1, 2, 3, 4))  # noqa: E731
        mse = per_clip_mean((noise - eps) ** 2)
        frac = (v + 1) / 2  # log σ² = frac·log β + (1 − frac)·log β̃
        log_var = frac * g(self.log_beta) + (1 - frac) * g(self.log_post)
        x0_pred = (g(self.recip) * x_t - g(self.recipm1) * eps.detach()).clamp(-1, 1)
        mean = g(self.c1) * x0_pred + g(self.c2) * x_t
        true_mean = g(self.c1) * x0 + g(self.c2) * x_t
        kl = 0.5 * (-1.0 + log_var - g(self.log_post) + torch.exp(g(self.log_post) - log_var)
                    + (true_mean - mean) ** 2 * torch.exp(-log_var))
        return (mse + per_clip_mean(kl) / math.log(2.0)).mean()


class Run:
    """One layout at one clip length with its optimiser, EMA and a fixed batch."""

    def __init__(self, layout, frames):
        self.layout, self.frames = layout, frames
        torch.manual_seed(0)
        self.model = MODELS[layout](**config(layout, frames))
        got = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        assert got == expected_shapes(layout, frames), f"{layout}: the state_dict differs"
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.n_params = sum(p.numel() for p in self.params)
        self.ema = [p.detach().clone() for p in self.params]
        self.opt = torch.optim.AdamW(self.params, lr=1e-4, weight_decay=0.0)
        self.loss = ClipHybrid()
        gen = torch.Generator().manual_seed(1000 + frames)  # the same batch in every layout
        shape = (BATCH, frames, CHANNELS, SIDE, SIDE)
        self.x0 = torch.randn(shape, generator=gen)
        self.noise = torch.randn(shape, generator=gen)
        self.t = torch.randint(0, 1000, (BATCH,), generator=gen)
        self.y = torch.tensor([i % (NUM_CLASSES + 1) for i in range(BATCH)])
        self.step()  # the first step allocates AdamW's moments

    def step(self):
        """One training step: (total, forward + loss, backward, optimizer + EMA) seconds."""
        s0 = time.perf_counter()
        loss = self.loss(self.model, self.x0, self.noise, self.t, self.y)
        s1 = time.perf_counter()
        loss.backward()
        s2 = time.perf_counter()
        self.opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, self.params, 1 - 0.9999)
        self.opt.zero_grad(set_to_none=True)
        s3 = time.perf_counter()
        value = loss.item()
        assert math.isfinite(value), f"{self.layout}:{self.frames}: the loss is {value}"
        return s3 - s0, s1 - s0, s2 - s1, s3 - s2


def ddim_timesteps(num_timesteps, count):
    """improved-diffusion's `space_timesteps(T, "ddimN")`: the integer stride giving N steps."""
    for stride in range(1, num_timesteps):
        if len(range(0, num_timesteps, stride)) == count:
            return list(range(0, num_timesteps, stride))
    raise ValueError(f"no integer stride gives {count} of {num_timesteps} steps")


class GuidedDDIM:
    """DDIM (η = 0) on the respaced schedule with DiT's classifier-free guidance, for a model."""

    def __init__(self, model, frames):
        self.model, self.frames = model, frames
        self.keep = ddim_timesteps(1000, SAMPLE_STEPS)  # the model is called with these
        ab = torch.cumprod(1 - image.linear_betas(), 0)[self.keep]  # ᾱ kept at the kept steps
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        self.recip, self.recipm1 = (1 / ab).sqrt().tolist(), (1 / ab - 1).sqrt().tolist()
        self.sqrt_ab_prev, self.sqrt_1mab_prev = ab_prev.sqrt().tolist(), (1 - ab_prev).sqrt().tolist()
        gen = torch.Generator().manual_seed(2)
        self.noise = torch.randn((BATCH, frames, CHANNELS, SIDE, SIDE), generator=gen)
        y = torch.tensor([i % (NUM_CLASSES + 1) for i in range(BATCH)])
        self.y = torch.cat([y, torch.full((BATCH,), NUM_CLASSES)])  # then the null label

    @torch.no_grad()
    def __call__(self):
        x = self.noise.clone()
        for k in reversed(range(len(self.keep))):
            t = torch.full((2 * BATCH,), self.keep[k], dtype=torch.int64)
            out = self.model(torch.cat([x, x]), t, self.y)  # (2B, F, 2C, H, W)
            cond, uncond = out[:, :, :CHANNELS].chunk(2)  # the ε half; σ is not used at η = 0
            eps = uncond + GUIDANCE * (cond - uncond)
            x0 = self.recip[k] * x - self.recipm1[k] * eps  # no clipping, as DiT samples
            eps = (self.recip[k] * x - x0) / self.recipm1[k]  # ε re-derived from x̂₀
            x = self.sqrt_ab_prev[k] * x0 + self.sqrt_1mab_prev[k] * eps
        assert torch.isfinite(x).all(), "sampling diverged"
        return x


# ---------------------------------------------------------------------------------------------
# Peak memory, in a fresh process per configuration.
# ---------------------------------------------------------------------------------------------


def status_mib(key):
    """A `kB` line of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def one(spec, steps):
    """`--one LAYOUT:FRAMES`: a warm-up step, then `steps` timed; prints one JSON line."""
    layout, frames = spec.split(":")
    baseline = status_mib("VmRSS")  # torch loaded, nothing built
    run = Run(layout, int(frames))  # the peak is the whole process's, as on the Rust side
    times = [run.step()[0] for _ in range(steps)]
    print(json.dumps({"layout": layout, "frames": run.frames, "params": run.n_params,
                      "step_ms": round(median(times) * 1e3, 2),
                      "peak_rss_mib": round(status_mib("VmHWM"), 1),
                      "baseline_rss_mib": round(baseline, 1)}))


def fresh(layout, frames, args):
    """Runs `--one layout:frames` in a child process and returns its JSON line."""
    cmd = [sys.executable, os.path.abspath(__file__), "--one", f"{layout}:{frames}",
           "--threads", str(args.threads), "--sweep-steps", str(args.sweep_steps)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(v):
    return sorted(v)[len(v) // 2]


def slope(xs, ys):
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-sampling", action="store_true", help="time training steps only")
    ap.add_argument("--no-sweep", action="store_true", help="skip the scaling sweep")
    ap.add_argument("--only", choices=LAYOUTS, help="measure this layout alone")
    ap.add_argument("--one", metavar="LAYOUT:FRAMES", help=argparse.SUPPRESS)  # internal
    ap.add_argument("--sweep-steps", type=int, default=3,
                    help="steps timed per fresh-process point, after one warm-up step")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        return one(args.one, args.sweep_steps)

    layouts = [args.only] if args.only else list(LAYOUTS)
    a = torch.randn(1024, 1024)
    runs = [Run(layout, f) for layout in layouts for f in TRAIN_FRAMES]
    samplers = {} if args.no_sampling else {
        r.layout: GuidedDDIM(r.model, SAMPLE_FRAMES) for r in runs if r.frames == SAMPLE_FRAMES}
    gemm = []
    steps = {(r.layout, r.frames): [] for r in runs}
    samples = {layout: [] for layout in samplers}
    for _ in range(args.rounds):
        for _ in range(2):
            s = time.perf_counter()
            (a @ a).sum().item()
            gemm.append(time.perf_counter() - s)
        for r in runs:
            for _ in range(STEPS_PER_ROUND[r.frames]):
                steps[(r.layout, r.frames)].append(r.step())
        for layout, sampler in samplers.items():
            s = time.perf_counter()
            sampler()
            samples[layout].append(time.perf_counter() - s)

    # peak memory (and the sweep's step times): one fresh process per configuration
    points = sorted(set(TRAIN_FRAMES) | (set() if args.no_sweep else set(SWEEP_FRAMES)))
    child = {(layout, f): fresh(layout, f, args) for layout in layouts for f in points}

    ceiling = 2 * 1024**3 / median(gemm) / 1e9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}; "
          f"sgemm ceiling {ceiling:.1f} GFLOP/s")
    out = {"impl": "pytorch", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
           "batch": BATCH, "rounds": args.rounds, "sgemm_gflop_s": round(ceiling, 1),
           "train": [], "sample": [], "sweep": [], "slopes": {}}
    for r in runs:
        times = steps[(r.layout, r.frames)]
        total, fwd, bwd, opt = (median([t[i] for t in times]) for i in range(4))
        gflops = video_macs(r.layout, r.frames) / 1e9
        gf = 6 * gflops * BATCH / total
        rss = child[(r.layout, r.frames)]["peak_rss_mib"]
        print(f"{r.layout} × {r.frames} frames ({r.n_params} parameters, {gflops:.4f} Gflops per clip): "
              f"{BATCH / total:.1f} clips/s, {total * 1e3:.1f} ms per step (forward {fwd * 1e3:.1f}, "
              f"backward {bwd * 1e3:.1f}, optimizer {opt * 1e3:.1f}), {gf:.1f} GFLOP/s = "
              f"{100 * gf / ceiling:.0f} % of the ceiling, peak RSS {rss:.0f} MiB")
        out["train"].append({
            "layout": r.layout, "frames": r.frames, "params": r.n_params,
            "gflops_forward": round(gflops, 6), "clips_per_s": round(BATCH / total, 2),
            "step_ms": round(total * 1e3, 2), "forward_ms": round(fwd * 1e3, 2),
            "backward_ms": round(bwd * 1e3, 2), "optimizer_ms": round(opt * 1e3, 2),
            "gflop_s": round(gf, 2), "fraction_of_sgemm": round(gf / ceiling, 4),
            "peak_rss_mib": rss, "baseline_rss_mib": child[(r.layout, r.frames)]["baseline_rss_mib"]})
    for layout in samplers:
        sec = median(samples[layout])
        print(f"{layout}: {SAMPLE_STEPS}-step guided DDIM for {BATCH} clips of {SAMPLE_FRAMES} "
              f"frames in {sec:.2f} s")
        out["sample"].append({"layout": layout, "frames": SAMPLE_FRAMES, "clips": BATCH,
                              "steps": SAMPLE_STEPS, "seconds": round(sec, 3)})
    if not args.no_sweep:
        for layout in layouts:
            pts = [child[(layout, f)] for f in SWEEP_FRAMES]
            for p in pts:
                out["sweep"].append({"layout": layout, "frames": p["frames"], "step_ms": p["step_ms"],
                                     "peak_rss_mib": p["peak_rss_mib"],
                                     "baseline_rss_mib": p["baseline_rss_mib"]})
            ms, rss = [p["step_ms"] for p in pts], [p["peak_rss_mib"] for p in pts]
            grown = [p["peak_rss_mib"] - p["baseline_rss_mib"] for p in pts]
            grown = f"{slope(SWEEP_FRAMES, grown):.2f}" if min(grown) > 0 else "n/a"
            out["slopes"][layout] = {"time": round(slope(SWEEP_FRAMES, ms), 3),
                                     "memory": round(slope(SWEEP_FRAMES, rss), 3)}
            print(f"{layout} sweep, frames {list(SWEEP_FRAMES)}: step ms {ms}, peak RSS MiB {rss}; "
                  f"log-log slopes: time {out['slopes'][layout]['time']:.2f}, "
                  f"memory {out['slopes'][layout]['memory']:.2f} "
                  f"(above the {pts[0]['baseline_rss_mib']:.0f} MiB of a process with torch "
                  f"loaded: {grown})")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
