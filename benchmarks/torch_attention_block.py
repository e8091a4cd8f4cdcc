#!/usr/bin/env python3
"""PyTorch peer of benchmarks/bench_attention_block.cpp: the SAGAN self-attention block as PyTorch
composes it (tests/parity/ember_models.py's SelfAttention: three spectral-normalised 1x1 convs, the
official variant's 2x2 max-pools and output conv, bmm -> softmax -> bmm, gamma * o + x), forward +
backward of sum(y * g) at the same shapes and batch, printed as rows of the same table (path
"pytorch").

The module runs in eval mode: torch.nn.utils.spectral_norm then skips the power iteration but still
divides by sigma = u^T W v with the gradient through sigma, which is what ember's benchmark times
(its spectral-norm step is excluded too). gamma is set to 0.5 so that the attention path carries
gradient. Timing: median of --reps after one warm-up; CPU with torch's default threads unless
--threads; CUDA with events when --device cuda.
  usage: python3 benchmarks/torch_attention_block.py [--b 64] [--reps 3] [--device cpu|cuda] [--threads T]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from ember_models import SelfAttention  # noqa: E402
from torch_timing import median_ms  # noqa: E402

# (model, channels, H, W, official): bench_attention_block.cpp's cases.
CASES = [
    ("SAGAN-128/64", 64, 32, 32, False),
    ("SAGAN-32", 128, 16, 16, False),
    ("ResNet-G", 256, 32, 32, True),
    ("ResNet-D", 128, 32, 32, True),
    ("ResNet-G-32", 512, 16, 16, True),
]


def time_block(block, x, g, reps, device):
    def step():
        x.grad = None
        block.zero_grad(set_to_none=True)
        (block(x) * g).sum().backward()

    return median_ms(step, reps, device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--b", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch_attention_block: no CUDA device", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    print(f"## PyTorch {torch.__version__}, {torch.get_num_threads()} threads: self-attention block, "
          "forward + backward (spectral-norm step excluded)")
    print(f"{'dev':<4} {'model':<12} {'variant':<9} {'shape':<18} {'path':<9} {'time_ms':>10}")
    for model, c, h, w, official in CASES:
        variant = "official" if official else "article"
        block = SelfAttention(c, variant).to(args.device)
        with torch.no_grad():
            block.gamma.fill_(0.5)
        block.train()
        block(torch.randn(1, c, h, w, device=args.device))  # one power-iteration step: u, v set
        block.eval()
        x = torch.randn(args.b, c, h, w, device=args.device, requires_grad=True)
        g = torch.randn(args.b, c, h, w, device=args.device)
        ms = time_block(block, x, g, args.reps, args.device)
        shape = f"B{args.b} C{c} {h}x{w}"
        print(f"{args.device:<4} {model:<12} {variant:<9} {shape:<18} {'pytorch':<9} {ms:>10.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
