#!/usr/bin/env python3
"""PyTorch peers of benchmarks/bench_attention.cpp: the same shapes (B = 64, C in {64, 128, 256},
N in {1024, 4096}, the article block with M = N, dv = C and the official one with M = N/4, dv = C/2,
dk = C/8), the same table.

Variants:
  t0 torch unfused fp32   torch.bmm -> softmax -> torch.bmm (TF32 off), autograd backward
  t1 torch unfused tf32   the same with torch.backends.cuda.matmul.allow_tf32 = True
  t2 torch mem-efficient  F.scaled_dot_product_attention on the EFFICIENT_ATTENTION backend, fp32,
                          scale=1.0 (SAGAN has no 1/sqrt(dk)); the flash and cuDNN backends refuse
                          fp32. One head: tensors are [B, 1, positions, d], made directly in that
                          layout (ember's is channel-major [B, d, positions]; no transposes timed).
                          If the backend refuses dv != dk, q and k are zero-padded to dv (scores
                          unchanged) and the table says "padded"; FLOPs are counted unpadded.
Each is checked against a float64 computation on a small case first. Timing: CUDA events after
warm-up, median of --reps; TFLOP/s count forward 2 B N M (dk + dv) and backward 2 B N M (2 dk + 2 dv)
for every variant, as bench_attention does; memory: peak allocated beyond the inputs.
  usage: python3 torch_attention.py [--reps R] [--n N] [--c C]
"""
import argparse
import sys

import torch
import torch.nn.functional as F


def unfused(q, k, v):
    return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


def mem_efficient(q, k, v):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, scale=1.0)


def mem_efficient_padded(q, k, v):
    pad = v.shape[-1] - q.shape[-1]
    return mem_efficient(F.pad(q, (0, pad)), F.pad(k, (0, pad)), v)


def median_ms(fn, reps):
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def make(B, dk, N, M, dv, seed, dtype=torch.float32):
    g = torch.Generator(device="cuda").manual_seed(seed)
    u = lambda *s: (torch.rand(*s, generator=g, device="cuda", dtype=dtype) * 2 - 1)
    return u(B, 1, N, dk), u(B, 1, M, dk), u(B, 1, M, dv), u(B, 1, N, dv)


def pick_mem_efficient(dk, dv):
    """The SDPA call to use for these head dims: unequal dims natively if the backend takes them."""
    q, k, v, _ = make(1, dk, 64, 64, dv, 0)
    try:
        mem_efficient(q, k, v)
        return mem_efficient, ""
    except RuntimeError:
        return mem_efficient_padded, " padded"


def check(variants):
    """Each variant against float64 on a small case: forward and the three gradients."""
    B, dk, N, M, dv = 2, 8, 300, 76, 64
    q, k, v, g = make(B, dk, N, M, dv, 7)
    ref = [t.double().requires_grad_() for t in (q, k, v)]
    o_ref = unfused(*ref)
    o_ref.backward(g.double())
    ok = True
    print("check against float64 (B=2 dk=8 N=300 M=76 dv=64), ||out-ref||/||ref||:")
    for name, fn, tf32 in variants:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        ins = [t.clone().requires_grad_() for t in (q, k, v)]
        fn_ = fn if fn is not None else pick_mem_efficient(dk, dv)[0]
        o = fn_(*ins)
        o.backward(g)
        errs = [((a.double() - b).norm() / b.norm()).item() for a, b in
                [(o.detach(), o_ref.detach())] + [(x.grad, r.grad) for x, r in zip(ins, ref)]]
        tol = 3e-3 if tf32 else 1e-4
        good = all(e < tol for e in errs)
        ok &= good
        print(f"  {name:22s} o {errs[0]:.1e}  dq {errs[1]:.1e}  dk {errs[2]:.1e}  dv {errs[3]:.1e}  "
              f"{'ok' if good else 'FAILED'}")
    torch.backends.cuda.matmul.allow_tf32 = False
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--c", type=int, default=0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("CUDA skipped: torch sees no GPU")
        return 0
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    variants = [("t0 torch unfused fp32", unfused, False), ("t1 torch unfused tf32", unfused, True),
                ("t2 torch mem-efficient", None, False)]
    if not check(variants):
        print("a variant disagrees with float64: not timing")
        return 1
    print(f"{'block':8s} {'C':4s} {'N':5s} {'M':5s} {'dv':4s} {'variant':30s} {'fwd ms':>9s} {'TFLOP/s':>8s} "
          f"{'bwd ms':>9s} {'TFLOP/s':>8s} {'fwd x':>8s} {'bwd x':>8s} {'extra MB':>10s}")
    for N in (1024, 4096):
        for C in (64, 128, 256):
            for block in ("article", "official"):
                if (args.n and N != args.n) or (args.c and C != args.c):
                    continue
                B, dk = 64, C // 8
                M, dv = (N, C) if block == "article" else (N // 4, C // 2)
                q, k, v, g = make(B, dk, N, M, dv, 1000 + N + C)
                fwd_flops, bwd_flops = 2.0 * B * N * M * (dk + dv), 2.0 * B * N * M * (2 * dk + 2 * dv)
                base = {}
                for name, fn, tf32 in variants:
                    torch.backends.cuda.matmul.allow_tf32 = tf32
                    label = name
                    if fn is None:
                        fn, pad = pick_mem_efficient(dk, dv)
                        label += pad
                    ins = [t.clone().requires_grad_() for t in (q, k, v)]
                    torch.cuda.synchronize()
                    before = torch.cuda.memory_allocated()
                    torch.cuda.reset_peak_memory_stats()
                    o = fn(*ins)
                    o.backward(g, retain_graph=True)
                    torch.cuda.synchronize()
                    extra_mb = (torch.cuda.max_memory_allocated() - before) / 1e6
                    with torch.no_grad():
                        tf = median_ms(lambda: fn(*ins), args.reps)
                    tb = median_ms(lambda: torch.autograd.grad(o, ins, g, retain_graph=True), args.reps)
                    del o
                    if fn is unfused:
                        base[tf32] = (tf, tb)
                    bf, bb = base[tf32]
                    print(f"{block:8s} {C:<4d} {N:<5d} {M:<5d} {dv:<4d} {label:30s} {tf:9.3f} {fwd_flops / tf / 1e9:8.1f} "
                          f"{tb:9.3f} {bwd_flops / tb / 1e9:8.1f} {bf / tf:8.2f} {bb / tb:8.2f} {extra_mb:10.0f}",
                          flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    print("\nspeed-ups (x) are against torch's unfused path of the same precision (mem-efficient: fp32);\n"
          "extra MB: peak memory of one forward + backward beyond the inputs (the unfused path keeps P).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
