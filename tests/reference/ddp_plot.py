#!/usr/bin/env python3
"""The loss across a hand-over: reads `train.losses` (the loss of every step since step 0) from
training checkpoints written by `minisora train` and `ddp_train.py`, writes them side by side as
a CSV, prints the mean loss in windows before and after the hand-over step, and draws the
curves (a running mean) as a PNG. With --measure it also runs each run's last weights on the same
fresh batches: the loss of the model itself, without the noise of each run's own batches. Runs
that ddp_train.py continued from the same checkpoint drew the same batches, so the per-step
difference of such a run from the second run (--paired NAME) is the effect of what differs
between the two, without the batches' noise.

Run by hand (never by CI), from the repository root, after the round trip of the appendix
"Beyond one machine" (book/src/distributed.md):

    pip install torch numpy matplotlib
    python3 tests/reference/ddp_plot.py --handover 500 --csv out/ddp/losses.csv \\
        --png book/src/figures/distributed/dit_handover.png \\
        minisora=out/ddp/minisora/train_1000.safetensors ddp=out/ddp/torch/train_1000.safetensors

Written and run with matplotlib 3.11, numpy 2.4, torch 2.15.0, Python 3.11.
"""

import argparse
import csv
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ddp_train import Batches, Diffusion, Recipe, build_model, load_latents, read_safetensors  # noqa: E402


def running_mean(v, k):
    """The mean of each window of k steps ending at a step (shorter at the start)."""
    c = np.cumsum(np.insert(v, 0, 0.0))
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(i - k, 0)
    return (c[i] - c[lo]) / (i - lo)


# ANCHOR: measure
def measure(path, latents, draws):
    """The loss of a checkpoint's weights (not the EMA's) on `draws` batches that no run
    trained on (the draws of steps 10⁶, 10⁶ + 1, …), the same batches for every checkpoint."""
    import torch

    tensors, meta = read_safetensors(path)
    recipe = Recipe(meta, path)
    data, diffusion = Batches(load_latents(latents, recipe, meta), recipe, 0, 1), Diffusion(recipe)
    wrapper, model = build_model(meta, path)
    model.load_state_dict({k: tensors[k] for k in model.state_dict()}, strict=True)
    losses = []
    with torch.no_grad():
        for step in range(10**6, 10**6 + draws):
            x0, t, noise, y = data.draw(step, recipe.timesteps)
            x_t = diffusion.q_sample(x0, t, noise)
            losses.append(diffusion.loss(wrapper(x_t, t, y), x0, x_t, t, noise).mean().item())
    v = np.array(losses)
    return v.mean(), v.std(ddof=1) / np.sqrt(draws)
# ANCHOR_END: measure


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="NAME=train_<step>.safetensors, the first the reference")
    ap.add_argument("--handover", type=int, required=True, help="the step the run changed hands")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--png", help="draw the curves here")
    ap.add_argument("--title", default="")
    ap.add_argument("--paired", action="append", default=[], metavar="NAME",
                    help="a run that drew the second run's batches: print its per-step difference")
    ap.add_argument("--measure", metavar="LATENTS",
                    help="also the loss of each run's last weights on the same fresh batches of LATENTS")
    ap.add_argument("--draws", type=int, default=200, help="batches of --measure")
    ap.add_argument("--smooth", type=int, default=25, help="steps of the running mean")
    args = ap.parse_args()
    runs, paths = {}, {}
    for spec in args.runs:
        name, path = spec.split("=", 1)
        tensors, _ = read_safetensors(path)
        runs[name], paths[name] = tensors["train.losses"].numpy().astype(np.float64), path
    steps = max(len(v) for v in runs.values())
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step"] + list(runs))
        for s in range(steps):
            w.writerow([s + 1] + [f"{v[s]:.6f}" if s < len(v) else "" for v in runs.values()])

    h = args.handover
    windows = [(h - 100, h), (h, h + 10), (h, h + 100), (steps - 100, steps)]
    print("mean loss ± its standard error, steps " + ", ".join(f"{a + 1}–{b}" for a, b in windows))
    for name, v in runs.items():
        print(f"  {name:24s} " + "  ".join(
            f"{v[a:b].mean():.4f} ± {v[a:b].std(ddof=1) / np.sqrt(b - a):.4f}" if b <= len(v)
            else "       —       " for a, b in windows))
    # two runs that drew the same batches (ddp_train.py's draws depend on (seed, step) alone):
    # the mean per-step difference from the second run on, and its standard error
    second = list(runs)[1]
    for name in args.paired:
        for a, b in windows[1:3]:
            d = runs[name][a:b] - runs[second][a:b]
            print(f"  {name} − {second}, steps {a + 1}–{b}: {d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(b - a):.4f}")
    if args.measure:
        print(f"the loss of each run's last weights on the same {args.draws} fresh batches")
        for name, path in paths.items():
            mean, err = measure(path, args.measure, args.draws)
            print(f"  {name:24s} {mean:.4f} ± {err:.4f}  ({path})")
    if not args.png:
        return

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (whole, near) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    for name, v in runs.items():
        x = np.arange(1, len(v) + 1)
        whole.plot(x, running_mean(v, args.smooth), label=name, lw=1.2)
        lo, hi = max(h - 50, 0), min(h + 100, len(v))
        near.plot(x[lo:hi], running_mean(v, 10)[lo:hi], label=name, lw=1.2)
    for ax in (whole, near):
        ax.axvline(h, color="grey", ls=":", lw=1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    whole.set_yscale("log")
    whole.set_ylabel(f"loss (mean of {args.smooth} steps)")
    whole.set_title(args.title or "the loss across the hand-over", fontsize=10)
    near.set_ylabel("loss (mean of 10 steps)")
    near.set_title(f"steps {max(h - 50, 0) + 1}–{h + 100}: the hand-over at step {h}", fontsize=10)
    whole.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.png) or ".", exist_ok=True)
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.csv} and {args.png}")


if __name__ == "__main__":
    main()
