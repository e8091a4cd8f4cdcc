#!/usr/bin/env python3
"""ember against PyTorch on this machine's CPU: training speed of the same networks, interleaved.

Configurations (issue 11):
  (a) SAGAN 32x32, width 1, batch 64, 3 channels      bench_train_step vs torch_train_step.py
  (b) the main command's: SAGAN 32x32, width 0.25, batch 64, 1 channel (Fashion-MNIST)
  (c) SAGAN 64x64, width 1, batch 32, 3 channels
  (d) one epoch of the Fashion-MNIST classifier         fashion_mnist_classifier vs torch_fashion_classifier.py
Each round runs every configuration once with ember, then once with PyTorch (A B A B ...), so that
both see the same load; the table gives medians over the rounds of images/s (training steps only),
the ratio ember / PyTorch, and for (a)-(c) ember's GEMM work per step and the rate it achieved
against the machine's sgemm rate (printed by bench_train_step). The load average is printed
before and after: with other work on the machine the absolute numbers drop, the ratios much less.

PyTorch runs with its best settings found here: OpenBLAS is not involved (Debian's PyTorch uses
its own kernels and oneDNN), and --torch-threads sets its thread count (default: the number of
CPUs, which on the 2-vCPU development machine beats PyTorch's own default of 1 physical core).

  usage: /usr/bin/python3 benchmarks/compare_cpu.py [--build build] [--rounds 3] [--quick]
                                                    [--configs a,b,c,d] [--torch-threads N]
--quick: one round, fewer steps, and (d) on 6,400 images instead of 60,000 (about 2 minutes).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SAGAN = {  # name: (res, width, batch, channels, title)
    "a": (32, 1.0, 64, 3, "SAGAN 32x32 width 1 batch 64, 3 ch"),
    "b": (32, 0.25, 64, 1, "main command: 32x32 width 0.25 batch 64, 1 ch"),
    "c": (64, 1.0, 32, 3, "SAGAN 64x64 width 1 batch 32, 3 ch"),
}


def run(cmd, env=None):
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"compare_cpu: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def table_row_images_per_s(out):
    """images/s from the one table row of bench_train_step / torch_train_step.py (column 9)."""
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 9 and f[0] in ("sagan", "sagan_resnet") and f[4] == "cpu":
            return float(f[8])
    sys.exit(f"compare_cpu: no result row in:\n{out}")


def epoch_images_per_s(out):
    m = re.search(r"epoch 1: .*\(([\d.]+) img/s\)", out)
    if not m:
        sys.exit(f"compare_cpu: no epoch line in:\n{out}")
    return float(m.group(1))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="ember's build folder (relative to the repository)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one round, fewer steps, (d) on 6,400 images")
    p.add_argument("--configs", default="a,b,c,d")
    p.add_argument("--torch-threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    rounds = 1 if args.quick else args.rounds
    steps, warmup = ("3", "1") if args.quick else ("5", "2")
    limit = ["--train-limit", "6400"] if args.quick else []
    configs = [c for c in args.configs.split(",") if c]
    bench = os.path.join(args.build, "benchmarks", "bench_train_step")
    classifier = os.path.join(args.build, "examples", "fashion_mnist_classifier", "fashion_mnist_classifier")
    py = "/usr/bin/python3"  # Debian's Python sees Debian's python3-torch

    print(f"compare_cpu: {rounds} round(s), load average before: {loadavg()}", flush=True)
    res = {c: {"ember": [], "torch": [], "gflop": [], "rate": []} for c in configs}
    machine = None
    for rnd in range(1, rounds + 1):
        for c in configs:
            if c in SAGAN:
                r, w, b, ch, _ = SAGAN[c]
                common = ["--res", str(r), "--width", str(w), "--batch", str(b), "--channels", str(ch),
                          "--models", "sagan", "--steps", steps, "--warmup", warmup, "--max-seconds", "1000"]
                out = run([bench, "--cpu"] + common)
                res[c]["ember"].append(table_row_images_per_s(out))
                g = re.search(r"gemm: ([\d.]+) GFLOP per step, ([\d.]+) GFLOP/s", out)
                if g:
                    res[c]["gflop"].append(float(g.group(1)))
                    res[c]["rate"].append(float(g.group(2)))
                m = re.search(r"machine: sgemm .*?: ([\d.]+) GFLOP/s", out)
                if m:
                    machine = max(machine or 0.0, float(m.group(1)))
                if rnd == 1 and c == configs[0]:
                    for line in out.splitlines():
                        if line.startswith("CPU:") or line.startswith("machine:"):
                            print(line)
                out = run([py, "benchmarks/torch_train_step.py", "--cpu", "--threads", str(args.torch_threads)] + common)
                res[c]["torch"].append(table_row_images_per_s(out))
            else:
                out = run([classifier, "--epochs", "1", "--device", "cpu"] + limit)
                res[c]["ember"].append(epoch_images_per_s(out))
                out = run([py, "benchmarks/torch_fashion_classifier.py", "--epochs", "1",
                           "--threads", str(args.torch_threads)] + limit)
                res[c]["torch"].append(epoch_images_per_s(out))
            print(f"round {rnd} ({c}): ember {res[c]['ember'][-1]:.1f} img/s, PyTorch {res[c]['torch'][-1]:.1f} img/s"
                  f"  [load {loadavg()}]", flush=True)

    print(f"\nload average after: {loadavg()}; PyTorch threads {args.torch_threads}; machine sgemm "
          f"{machine or 0:.1f} GFLOP/s (1024^3, best seen)")
    print(f"{'config':<50} {'ember img/s':>12} {'PyTorch img/s':>14} {'ratio':>7} {'GFLOP/step':>11} "
          f"{'GFLOP/s':>8} {'of sgemm':>9}")
    for c in configs:
        e, t = statistics.median(res[c]["ember"]), statistics.median(res[c]["torch"])
        title = SAGAN[c][4] if c in SAGAN else "Fashion-MNIST classifier, 1 epoch" + (" (6,400 images)" if limit else "")
        extra = ""
        if res[c]["gflop"]:
            gf, rate = statistics.median(res[c]["gflop"]), statistics.median(res[c]["rate"])
            extra = f"{gf:11.2f} {rate:8.1f} {100 * rate / machine if machine else 0:8.0f}%"
        print(f"({c}) {title:<46} {e:12.1f} {t:14.1f} {e / t:7.2f} {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
