#!/usr/bin/env python3
"""PyTorch peer of benchmarks/bench_sn_group.cpp: one training step's spectral-norm work for every
weight of SAGAN's G and D (tests/parity/ember_models.py, torch.nn.utils.spectral_norm), as PyTorch
does it: weight by weight, each hook's power iteration and W / sigma (SpectralNorm.compute_weight
with do_power_iteration=True, what the forward pre-hook runs in training). Median of --runs after
one warm-up, in microseconds, CPU wall time or CUDA events.
  usage: /usr/bin/python3 benchmarks/torch_sn_group.py [--runs 20] [--device cpu|cuda] [--threads T]
"""
import argparse
import os
import sys

import torch
from torch.nn.utils.spectral_norm import SpectralNorm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from ember_models import SaganDiscriminator, SaganGenerator  # noqa: E402
from torch_timing import median_ms  # noqa: E402


def sn_hooks(model):
    out = []
    for m in model.modules():
        for hook in m._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm):
                out.append((m, hook))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch_sn_group: no CUDA device", file=sys.stderr)
        return 2
    print(f"## PyTorch {torch.__version__}, {torch.get_num_threads()} threads: spectral-norm step of every "
          "weight, per layer (median us)")
    print(f"{'dev':<4} {'model':<40} {'per_layer_us':>12}")
    for res in (32, 128):
        for name, model in ((f"SAGAN-{res} G", SaganGenerator(resolution=res)),
                            (f"SAGAN-{res} D", SaganDiscriminator(resolution=res))):
            model.to(args.device).train()
            hooks = sn_hooks(model)
            kb = sum(getattr(m, h.name + "_orig").numel() for m, h in hooks) * 4 // 1024

            def step():
                for m, h in hooks:
                    setattr(m, h.name, h.compute_weight(m, do_power_iteration=True))

            us = 1e3 * median_ms(step, args.runs, args.device)
            what = f"{name} ({len(hooks)} weights, {kb} KB)"
            print(f"{args.device:<4} {what:<40} {us:>12.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
