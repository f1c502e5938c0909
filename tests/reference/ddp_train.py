#!/usr/bin/env python3
"""Continue a minisora training run in PyTorch's DistributedDataParallel, and hand it back.

Reads a training checkpoint that `minisora train --save-every` wrote (the weights under
facebookresearch/DiT's or Latte's `state_dict` names, the EMA weights `ema.*`, AdamW's moments
`adamw.*.exp_avg(_sq)`, the loss of every step `train.losses`, and in the metadata the model's
config, the diffusion, the step, AdamW's step count, the EMA's update count and every option of
the recipe `train.opt.*`) and the latent file it trained on (`minisora encode` or
`encode-video`). It builds the model with the reference module structure (`dit_reference.py`,
or `latte_reference.py` for the video DiT's `alternating` layout), wraps it in
`DistributedDataParallel` and takes the run's next steps with minisora's recipe:

  - the same diffusion: linear β over 1000 steps, ε-prediction, with learned σ DiT's hybrid loss
    (ε-MSE plus the variational bound of the learned-range variance, the mean detached, the
    t = 0 term the discretized decoder NLL), computed in float64 as minisora does;
  - a fresh latent z = (μ + σ·ε − m)·s from each stored posterior, with the checkpoint's own
    normalisation (m, s), uniform timesteps, label dropout at the checkpoint's rate (the null
    label is `num_classes`);
  - AdamW with the checkpoint's lr schedule (warm-up, cosine decay to lr/10 at the run's last
    step, or constant), weight decay, betas (0.9, 0.999) and eps 1e-8 (minisora's, PyTorch's
    defaults), gradient clipping if the run clipped, and the EMA with minisora's warm-up
    decay min(d, (1 + n)/(10 + n)) continued from its update count n.

AdamW's moments are CONVERTED into `torch.optim.AdamW`'s state (`exp_avg`, `exp_avg_sq`,
`step` = the checkpoint's `train.adamw_t`; both libraries increment the step before the bias
corrections 1 − β^t, so the next update is the one minisora would take). Restarting them
(--restart-optimizer) is the control: with m = v = 0 and t = 0 the first steps are ±lr in
every coordinate, and the loss jumps. --restart-ema is the other control: the average starts
again from the current weights.

The global batch is the run's (`train.opt.batch`), cut into one equal shard per process; the
gradients DDP averages are then the gradients of the whole batch, so the learning rate stays
the run's. The random draws of step n (the batch's indices, latents, timesteps, noise and label
dropout) come from one generator seeded with minisora's seed_for(seed, n) and are drawn for the
whole batch on every process, which keeps its own shard: the run is the same for any number of
processes (up to the order of floating-point sums), and resumable from (seed, n). The streams
are PyTorch's, not Rust's, so the numbers differ from minisora's own; their distribution does
not.

It writes, atomically (a temporary file, then a rename), checkpoints in minisora's format:
`train_<step>.safetensors` (a training checkpoint `minisora train --resume` continues from) every
--save-every steps and at the end, and `<model>.safetensors` (the EMA weights) that
`minisora sample`, `evaluate`, `sample-video` and `evaluate-video` read. --csv writes a CSV of
every step's loss, learning rate and gradient norm.

Run by hand (never by CI), from the repository root, on CPU processes (gloo) or GPUs (nccl, one
process per GPU; chosen automatically):

    pip install torch numpy
    torchrun --standalone --nproc_per_node=2 tests/reference/ddp_train.py \\
        --ckpt out/ddp/minisora/train_500.safetensors --latents out/ddp/latents.safetensors \\
        --steps 1000 --out out/ddp/torch --csv out/ddp/torch/loss.csv

The book's appendix "Beyond one machine" (book/src/distributed.md) gives the whole round trip.
Written and run with torch 2.15.0 (the PyPI wheel, on the CPU), numpy 2.4, Python 3.11.
"""

import argparse
import csv
import datetime
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference  # noqa: E402
import latte_reference  # noqa: E402

TRAIN_STATE = "minisora-train-state-v1"  # the `contents` of a training checkpoint
LATENTS = "minisora-latents-v1"  # the `contents` of a latent file
TENSORS_FORMAT = "minisora-tensors-v1"  # `format` of a training checkpoint (a tensor file)
MODEL_FORMAT = "minisora-checkpoint-v1"  # `format` of a model checkpoint
STEP_KEYS = ("contents", "train.step", "train.adamw_t", "train.ema_updates")


def fused_attention(self, x):
    """timm's fused path: the reference's attention through scaled_dot_product_attention."""
    b, n, d = x.shape
    qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    return self.proj(out.transpose(1, 2).reshape(b, n, d))


dit_reference.Attention.forward = fused_attention


# ---------------------------------------------------------------------------------------------
# safetensors by hand: an 8-byte little-endian header length, a JSON header (dtype, shape and
# byte range of each tensor, and a string map `__metadata__`), then the raw bytes.
# ---------------------------------------------------------------------------------------------

def read_safetensors(path):
    """Every tensor (all f32, as minisora writes them) and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        body = f.read()
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, h in header.items():
        if h["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {h['dtype']}; minisora writes F32 only")
        a, b = h["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(body[a:b], dtype="<f4").reshape(h["shape"]).copy())
    return tensors, meta


def write_safetensors(path, tensors, meta):
    """Writes the file under a temporary name, then renames it: never half a file under `path`."""
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().cpu().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The recipe, as the checkpoint's metadata states it.
# ---------------------------------------------------------------------------------------------

def seed_for(seed, step):
    """minisora's `seed_for`: SplitMix64 of (seed, step), the seed of step `step`'s draws."""
    m = (1 << 64) - 1
    z = seed ^ (((step + 1) * 0x9E3779B97F4A7C15) & m)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


class Recipe:
    """`train.opt.*` and the other keys of a training checkpoint that fix the next step."""

    def __init__(self, meta, path):
        def need(key):
            if key not in meta:
                sys.exit(f"{path}: no `{key}` in the metadata; resume from a train_<step>.safetensors")
            return meta[key]

        if meta.get("contents") != TRAIN_STATE:
            sys.exit(f"{path} is not a training checkpoint (contents = {meta.get('contents')!r}); "
                     "write one with `minisora train --save-every N`")
        self.step = int(need("train.step"))
        self.adamw_t = int(need("train.adamw_t"))
        self.ema_updates = int(need("train.ema_updates"))
        self.seed = int(need("train.opt.seed"))
        self.batch = int(need("train.opt.batch"))
        self.lr = float(need("train.opt.lr"))
        self.weight_decay = float(need("train.opt.weight_decay"))
        self.warmup = int(need("train.opt.warmup_steps"))
        self.lr_decay = need("train.opt.lr_decay") == "true"
        self.total = int(meta["train.opt.steps"]) if self.lr_decay else None
        clip = need("train.opt.grad_clip")
        self.grad_clip = None if clip == "none" else float(clip)
        self.ema_decay = float(need("train.opt.ema_decay"))
        self.label_dropout = float(need("train.opt.label_dropout"))
        self.shift = [float(v) for v in need("train.latent_shift").split(",")]
        self.scale = [float(v) for v in need("train.latent_scale").split(",")]
        self.num_classes = int(need("dit.num_classes"))
        self.learn_sigma = need("dit.learn_sigma") == "true"
        want = {"diffusion.schedule": "linear", "diffusion.prediction": "Epsilon",
                "diffusion.variance": "LearnedRange" if self.learn_sigma else "FixedSmall"}
        for key, value in want.items():
            if meta.get(key, value) != value:
                sys.exit(f"{path}: {key} = {meta[key]}; this script trains {value} only")
        self.timesteps = int(need("diffusion.timesteps"))
        self.rescale = self.timesteps / 1000.0 if meta.get("diffusion.loss") == "RescaledMse" else 1.0
        if meta.get("dit.conditioning", "adaln-zero") != "adaln-zero":
            sys.exit(f"{path}: conditioning {meta['dit.conditioning']}; the reference DiT is adaLN-Zero")
        if any(k.startswith("text.") for k in meta):
            sys.exit(f"{path}: a text-conditioned model; this script trains class labels only")

    def lr_at(self, step):
        """minisora's CosineSchedule: linear warm-up, then a half cosine to lr/10 at the last
        step (or the constant lr), rounded to f32 as minisora stores it."""
        base = self.lr
        floor = base * 0.1 if self.lr_decay else base
        if step < self.warmup:
            return float(np.float32(base * (step + 1) / self.warmup))
        total = self.total if self.total is not None else step + 1
        progress = min((step - self.warmup) / max(total - self.warmup, 1), 1.0)
        return float(np.float32(floor + (base - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))))

    def ema_decay_at(self, updates):
        """The EMA's decay for update number `updates` (from 0), with minisora's warm-up, in f32."""
        n = np.float32(updates)
        return float(min(np.float32(self.ema_decay), (np.float32(1) + n) / (np.float32(10) + n)))


# ---------------------------------------------------------------------------------------------
# The diffusion and DiT's training loss.
# ---------------------------------------------------------------------------------------------

def approx_cdf(z):
    """Φ(z) ≈ ½(1 + tanh(√(2/π)(z + 0.044715 z³))), and 1 − Φ(z), both without cancellation."""
    u = math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)
    return torch.sigmoid(2 * u), torch.sigmoid(-2 * u)


class Diffusion:
    """Linear β over T steps and the tables of the loss, in float64 as minisora keeps them."""

    def __init__(self, recipe):
        t = recipe.timesteps
        s = 1000.0 / t
        b = torch.linspace(s * 1e-4, s * 0.02, t, dtype=torch.float64).clamp(max=0.999)
        ab = torch.cumprod(1 - b, 0)
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        post_var = b * (1 - ab_prev) / (1 - ab)
        self.sqrt_ab, self.sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
        self.recip, self.recipm1 = (1 / ab).sqrt(), (1 / ab - 1).sqrt()
        self.log_beta = b.log()
        self.log_post = torch.cat([post_var[1:2], post_var[1:]]).log()  # clipped at t = 0
        self.c1 = b * ab_prev.sqrt() / (1 - ab)
        self.c2 = (1 - ab_prev) * (1 - b).sqrt() / (1 - ab)
        self.learn_sigma, self.rescale = recipe.learn_sigma, recipe.rescale

    def q_sample(self, x0, t, noise):
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
        g = self.per_sample(t, x0.ndim)
        return (g(self.sqrt_ab) * x0.double() + g(self.sqrt_1mab) * noise.double()).float()

    def per_sample(self, t, ndim):
        shape = (-1,) + (1,) * (ndim - 1)
        return lambda table: table[t].reshape(shape)

    # ANCHOR: hybrid_loss
    def loss(self, out, x0, x_t, t, noise):
        """DiT's loss, per sample: mean((ε − ε̂)²) and, with learned σ, L_vlb in bits per
        dimension (the KL to the true posterior; at t = 0 the decoder's NLL) with the predicted
        mean detached, so it trains only the variance channels."""
        out, x0, x_t, noise = out.double(), x0.double(), x_t.double(), noise.double()
        dims = tuple(range(1, x0.ndim))
        c = x0.shape[1]
        eps = out[:, :c]
        mse = ((noise - eps) ** 2).mean(dim=dims)
        if not self.learn_sigma:
            return mse
        g = self.per_sample(t, x0.ndim)
        # log σ² = f log β_t + (1 − f) log β̃_t,  f = (v + 1)/2
        frac = (out[:, c:] + 1) / 2
        log_var = frac * g(self.log_beta) + (1 - frac) * g(self.log_post)
        # the mean from the detached ε̂:  x̂_0 = x_t/√ᾱ − √(1/ᾱ − 1) ε̂,  μ̂ = c1 x̂_0 + c2 x_t
        x0_hat = g(self.recip) * x_t - g(self.recipm1) * eps.detach()
        mean = g(self.c1) * x0_hat + g(self.c2) * x_t
        true_mean, true_log_var = g(self.c1) * x0 + g(self.c2) * x_t, g(self.log_post)
        kl = 0.5 * (-1.0 + log_var - true_log_var + torch.exp(true_log_var - log_var)
                    + (true_mean - mean) ** 2 * torch.exp(-log_var))
        # t = 0: −log of x_0's bin (width 2/255) under N(μ̂, σ²), the edge bins open
        inv_std = torch.exp(-0.5 * log_var)
        plus, minus = inv_std * (x0 - mean + 1 / 255), inv_std * (x0 - mean - 1 / 255)
        (cdf_p, sf_p), (cdf_m, sf_m) = approx_cdf(plus), approx_cdf(minus)
        mid = torch.where(minus > 0, sf_m - sf_p, cdf_p - cdf_m)
        p = torch.where(x0 < -0.999, cdf_p, torch.where(x0 > 0.999, sf_m, mid))
        nll = -torch.log(p.clamp(min=1e-12))
        at_zero = (t == 0).reshape((-1,) + (1,) * (x0.ndim - 1))
        vb = torch.where(at_zero, nll, kl).mean(dim=dims) / math.log(2.0)
        return mse + self.rescale * vb
    # ANCHOR_END: hybrid_loss


# ---------------------------------------------------------------------------------------------
# The model: the reference module structure, built from the checkpoint's config.
# ---------------------------------------------------------------------------------------------

class ClipLayout(torch.nn.Module):
    """Latte takes clips as (B, F, C, H, W); minisora's are (B, C, F, H, W)."""

    def __init__(self, latte):
        super().__init__()
        self.latte = latte

    def forward(self, x, t, y):
        return self.latte(x.transpose(1, 2), t, y).transpose(1, 2)


def build_model(meta, path):
    """DiT, or Latte for a video checkpoint; the wrapped module holds the state_dict names."""
    cfg = {k[4:]: v for k, v in meta.items() if k.startswith("dit.")}
    ints = ["input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "num_classes"]
    args = {k: int(cfg[k]) for k in ints}
    args.update(mlp_ratio=float(cfg["mlp_ratio"]), class_dropout_prob=float(cfg["class_dropout_prob"]),
                learn_sigma=cfg["learn_sigma"] == "true")
    if "video.frames" not in meta:
        model = dit_reference.DiT(**args)
        return model, model
    if meta.get("video.layout") != "alternating" or meta.get("video.temporal_patch", "1") != "1":
        sys.exit(f"{path}: layout {meta.get('video.layout')}, temporal patch "
                 f"{meta.get('video.temporal_patch')}; Latte is `alternating` with per-frame patches")
    latte = latte_reference.Latte(num_frames=int(meta["video.frames"]), **args)
    return ClipLayout(latte), latte


# ---------------------------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------------------------

def setup():
    """One process of `torchrun` (or a lone process): rank, world size and device, with gloo
    on CPU processes and nccl on GPUs."""
    if "RANK" not in os.environ:  # started without torchrun: a world of one
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
                          MASTER_ADDR="127.0.0.1", MASTER_PORT="29517")
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    local = int(os.environ["LOCAL_RANK"])
    if cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:  # share the cores: one process per core, not every process on every core
        per = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        torch.set_num_threads(per)
        device = torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


class Batches:
    """Step n's global batch: the n-th slice of an epoch's shuffle (epochs drop their short
    tail, as minisora's Batcher does), and every draw from one generator seeded
    seed_for(seed, n) — the same on every process, which keeps its own shard."""

    def __init__(self, latents, recipe, rank, world):
        self.mean, self.logvar, self.labels = latents["mean"], latents["logvar"], latents["labels"].long()
        self.n, self.batch, self.seed = self.labels.shape[0], recipe.batch, recipe.seed
        self.per_epoch = self.n // self.batch
        shape = (1, -1) + (1,) * (self.mean.ndim - 2)
        self.shift = torch.tensor(recipe.shift).reshape(shape)
        self.scale = torch.tensor(recipe.scale).reshape(shape)
        self.recipe, self.part = recipe, slice(rank * self.batch // world, (rank + 1) * self.batch // world)
        self.order, self.epoch = None, -1

    # ANCHOR: draw
    def draw(self, step, timesteps):
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            g = torch.Generator().manual_seed(seed_for(self.seed ^ 0xBA7C, epoch))
            self.order, self.epoch = torch.randperm(self.n, generator=g), epoch
        idx = self.order[pos * self.batch:(pos + 1) * self.batch]  # (B)
        g = torch.Generator().manual_seed(seed_for(self.seed, step))
        mean, logvar = self.mean[idx], self.logvar[idx]  # (B, C, …)
        # z = μ + σ ε from each posterior, then (z − m_c) s_c
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
        x0 = (z - self.shift) * self.scale
        t = torch.randint(0, timesteps, (self.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)  # ε
        drop = torch.rand(self.batch, generator=g) < self.recipe.label_dropout
        y = torch.where(drop, self.recipe.num_classes, self.labels[idx])  # the null label
        p = self.part  # this process's shard of the global batch
        return x0[p], t[p], noise[p], y[p]
    # ANCHOR_END: draw


def load_latents(path, recipe, meta):
    tensors, lmeta = read_safetensors(path)
    if lmeta.get("contents") != LATENTS:
        sys.exit(f"{path} is not a latent file; write one with `minisora encode` or `encode-video`")
    shape = [int(v) for v in meta["train.shape"].split(",")]
    if list(tensors["mean"].shape[1:]) != shape:
        sys.exit(f"{path}: samples of shape {list(tensors['mean'].shape[1:])}, the run trained on {shape}")
    if meta.get("train.dataset") not in (None, lmeta.get("data")):
        print(f"warning: the run trained on {meta['train.dataset']}, {path} holds {lmeta.get('data')}")
    return tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, help="a training checkpoint, train_<step>.safetensors")
    ap.add_argument("--latents", required=True, help="the latent file the run trains on")
    ap.add_argument("--steps", type=int, required=True, help="train until this step")
    ap.add_argument("--out", required=True, help="folder for the checkpoints")
    ap.add_argument("--save-every", type=int, default=0, help="also a training checkpoint every N steps")
    ap.add_argument("--csv", help="CSV of every step: step, loss, lr, grad_norm")
    ap.add_argument("--restart-optimizer", action="store_true",
                    help="control: drop AdamW's moments and step count (fresh AdamW)")
    ap.add_argument("--restart-ema", action="store_true",
                    help="control: drop the EMA (restart it from the current weights, count 0)")
    args = ap.parse_args()
    rank, world, device = setup()

    tensors, meta = read_safetensors(args.ckpt)
    r = Recipe(meta, args.ckpt)
    if r.total is not None and args.steps > r.total:
        sys.exit(f"the run's learning rate decays to its floor at step {r.total}; "
                 f"--steps {args.steps} would train past the schedule minisora resumes with")
    if args.steps <= r.step:
        sys.exit(f"{args.ckpt} is already at step {r.step}; pass a larger --steps")
    if r.batch % world:
        sys.exit(f"the global batch {r.batch} does not split into {world} equal shards")
    data = Batches(load_latents(args.latents, r, meta), r, rank, world)
    diffusion = Diffusion(r)

    # ANCHOR: load
    wrapper, model = build_model(meta, args.ckpt)
    names = set(model.state_dict())
    model.load_state_dict({k: tensors[k] for k in names}, strict=True)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    ema = [tensors[f"ema.{n}"].clone() for n, _ in trainable]  # on rank 0's CPU
    ema_updates = r.ema_updates
    if args.restart_ema:
        ema, ema_updates = [p.detach().clone() for _, p in trainable], 0
    wrapper.to(device)
    opt = torch.optim.AdamW([p for _, p in trainable], lr=r.lr_at(r.step), betas=(0.9, 0.999),
                            eps=1e-8, weight_decay=r.weight_decay)
    adamw_t = r.adamw_t
    if args.restart_optimizer:
        adamw_t = 0
    else:  # minisora's moments become torch's state; `step` counts the updates taken
        for n, p in trainable:
            opt.state[p] = {
                "step": torch.tensor(float(r.adamw_t)),
                "exp_avg": tensors[f"adamw.{n}.exp_avg"].to(device),
                "exp_avg_sq": tensors[f"adamw.{n}.exp_avg_sq"].to(device),
            }
    losses = tensors["train.losses"].tolist()
    ddp = DistributedDataParallel(wrapper, device_ids=[device.index] if device.type == "cuda" else None)
    # ANCHOR_END: load

    if rank == 0:
        print(f"{args.ckpt}: {meta.get('model')} at step {r.step}, "
              f"{sum(p.numel() for _, p in trainable)} parameters; {world} processes "
              f"({dist.get_backend()}, {device.type}), global batch {r.batch} = {world} × "
              f"{r.batch // world}; lr {r.lr_at(r.step):.3g} at this step; AdamW "
              f"{'restarted' if args.restart_optimizer else f'continued at t = {r.adamw_t}'}; EMA "
              f"{'restarted' if args.restart_ema else f'continued after {r.ema_updates} updates'}")
    log = open(args.csv, "w", newline="") if rank == 0 and args.csv else None
    if log:
        writer = csv.writer(log)
        writer.writerow(["step", "loss", "lr", "grad_norm"])
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    for step in range(r.step, args.steps):
        # ANCHOR: step
        x0, t, noise, y = (v.to(device) for v in data.draw(step, r.timesteps))  # this shard
        x_t = diffusion.q_sample(x0, t, noise)
        out = ddp(x_t, t, y)
        loss = diffusion.loss(out, x0, x_t, t, noise).mean().float()  # the mean over the shard
        for group in opt.param_groups:
            group["lr"] = r.lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # DDP all-reduces the gradients: each is the mean over the processes
        norm = torch.nn.utils.clip_grad_norm_(ddp.parameters(), r.grad_clip if r.grad_clip else math.inf)
        opt.step()
        adamw_t += 1
        if rank == 0:  # θ_ema ← d θ_ema + (1 − d) θ with d = min(decay, (1 + n)/(10 + n))
            d = r.ema_decay_at(ema_updates)
            with torch.no_grad():
                for e, (_, p) in zip(ema, trainable):
                    e.mul_(d).add_(p.detach().cpu(), alpha=1 - d)
            ema_updates += 1
        # ANCHOR_END: step
        loss = loss.detach()
        dist.all_reduce(loss, op=dist.ReduceOp.SUM)
        losses.append(loss.item() / world)  # the global batch's loss
        done = step + 1
        if log:
            writer.writerow([done, f"{losses[-1]:.6f}", f"{r.lr_at(step):.6g}", f"{norm.item():.5f}"])
        if rank == 0 and (done % max(1, (args.steps - r.step) // 10) == 0 or done == args.steps):
            secs = time.perf_counter() - start
            recent = losses[-min(100, done - r.step):]
            print(f"  step {done}/{args.steps}: loss {sum(recent) / len(recent):.4f} (mean of the last "
                  f"{len(recent)}), {(done - r.step) * r.batch / secs:.0f} img/s", flush=True)
        last = done == args.steps
        if rank == 0 and (last or (args.save_every and done % args.save_every == 0)):
            counts = (adamw_t, ema_updates)
            state = save(args.out, meta, r.step, model, trainable, ema, opt, counts, losses, last)
            print(f"  saved {state}", flush=True)
    if log:
        log.close()
    dist.barrier()
    dist.destroy_process_group()


# ANCHOR: save
def save(out, meta, first, model, trainable, ema, opt, counts, losses, last):
    """A training checkpoint at this step (and at the end the EMA model), in minisora's format:
    the same names and metadata as the checkpoint it continued, the counts moved on."""
    fixed = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}  # pos_embed, …
    tensors = {n: p.detach() for n, p in trainable} | fixed
    for (n, p), e in zip(trainable, ema):
        tensors[f"ema.{n}"] = e
        s = opt.state.get(p)
        tensors[f"adamw.{n}.exp_avg"] = s["exp_avg"] if s else torch.zeros_like(p)
        tensors[f"adamw.{n}.exp_avg_sq"] = s["exp_avg_sq"] if s else torch.zeros_like(p)
    tensors["train.losses"] = torch.tensor(losses, dtype=torch.float32)
    step = len(losses)
    info = dict(meta)
    info.update({"format": TENSORS_FORMAT, "contents": TRAIN_STATE, "train.step": str(step),
                 "train.adamw_t": str(counts[0]), "train.ema_updates": str(counts[1]),
                 "train.ddp": f"steps {first + 1} to {step} by tests/reference/ddp_train.py, torch "
                              f"{torch.__version__}, {dist.get_world_size()} processes ({dist.get_backend()})"})
    path = os.path.join(out, f"train_{step}.safetensors")
    write_safetensors(path, tensors, info)
    if last:  # the EMA weights, as minisora's trainer saves them for `sample` and `evaluate`
        weights = {n: e for (n, _), e in zip(trainable, ema)} | fixed
        info = {k: v for k, v in info.items() if k not in STEP_KEYS}
        recent = losses[-100:]
        info.update({"format": MODEL_FORMAT, "weights": "ema",
                     "train.final_loss": f"{sum(recent) / len(recent):.5f}"})
        write_safetensors(os.path.join(out, f"{meta['model']}.safetensors"), weights, info)
    return path
# ANCHOR_END: save


if __name__ == "__main__":
    main()
