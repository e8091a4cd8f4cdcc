#!/usr/bin/env python3
"""Draws the training curves of a sagan_celeba run (RUN_DIR/metrics.csv) into a PNG.

Usage: python3 scripts/plot_metrics.py RUN_DIR [--out RUN_DIR/metrics.png]
Needs matplotlib (Debian: apt-get install python3-matplotlib).
The Frechet distance panel shows metrics.csv's "frechet" column (measured during training) and,
when RUN_DIR/frechet.csv exists (a "step" column and one column per curve, e.g. written from
`sagan_celeba evaluate` over the run's checkpoints), each of its curves.
"""
import argparse
import csv
import os
import sys


def read_metrics(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{path}: no metrics rows")
    cols = {k: [] for k in rows[0].keys()}
    for r in rows:
        for k, v in r.items():
            try:
                cols[k].append(float(v))
            except (TypeError, ValueError):
                cols[k].append(float("nan"))
    return cols


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    path = os.path.join(args.run_dir, "metrics.csv")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: is {args.run_dir} a sagan_celeba run folder?")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = read_metrics(path)
    step = m["step"]
    fig, ax = plt.subplots(2, 3, figsize=(16, 7))
    ax[0, 0].plot(step, m["loss_d"], label="D (hinge)")
    ax[0, 0].plot(step, m["loss_g"], label="G")
    ax[0, 0].set_title("losses")
    ax[0, 1].plot(step, m["d_real"], label="mean D(x)")
    ax[0, 1].plot(step, m["d_fake"], label="mean D(G(z))")
    ax[0, 1].set_title("discriminator outputs")
    for k in m:
        if k.startswith("gamma:"):
            ax[1, 0].plot(step, m[k], label=k[6:])
    ax[1, 0].set_title("attention gamma")
    for k in m:
        if k.startswith("sigma:"):
            ax[1, 1].plot(step, m[k], label=k[6:], linewidth=0.8)
    ax[1, 1].set_title("spectral-norm sigma estimates")
    fd = ax[0, 2]
    if "frechet" in m:
        pts = [(x, y) for x, y in zip(step, m["frechet"]) if y == y]  # rows without a measurement are NaN
        if pts:
            fd.plot(*zip(*pts), marker="o", markersize=3, label="during training")
    extra = os.path.join(args.run_dir, "frechet.csv")
    if os.path.exists(extra):
        e = read_metrics(extra)
        for k in e:
            if k != "step":
                fd.plot(e["step"], e[k], marker="s", markersize=3, label=k)
    fd.set_title("Frechet distance to the test images (classifier features)")
    if fd.lines:
        fd.set_yscale("log")
    ax[1, 2].axis("off")
    for a in list(ax.flat)[:5]:
        a.set_xlabel("step")
        if a.lines and len(a.lines) <= 8:
            a.legend(fontsize=7)
    fig.tight_layout()
    out = args.out or os.path.join(args.run_dir, "metrics.png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
