#!/usr/bin/env python3
"""PyTorch peers of benchmarks/bench_softmax.cpp and benchmarks/bench_spectral_norm.cpp: the same
shapes, the same byte counts, the same table (op, variant, shape, time_us, GB/s, %copy, check).

Variants:
  t torch.softmax            torch.softmax(x, -1); backward torch._softmax_backward_data (the kernel
                             autograd calls), fp32
  t spectral_norm fwd        torch.nn.utils.spectral_norm's forward pre-hook in training mode (one
                             power iteration, sigma, weight / sigma), with autograd recording as in a
                             real forward
  t spectral_norm bwd        backward of that weight to weight_orig (autograd), graph built untimed
Each is checked against a float64 computation on the same input first (the relative error is
printed; above 1e-5 the script exits with status 1). Timing: CUDA events around each call after
warm-up, median of --runs calls, rotating through enough input sets that they do not fit in L2.
Bytes as in the C++ programs: softmax forward 8 per element, backward 12; spectral norm forward
4|W| (two reads for the power iteration, read W and write W / sigma), backward 3|W|.
%copy compares with a device-to-device copy (x.copy_) measured here.
  usage: python3 torch_softmax_sn.py [--runs N]
"""
import argparse
import math
import sys

import torch

FAILED = False


def median_us(fn, runs, warmup=10):
    """Median of CUDA-event times (microseconds) of fn(i); i counts calls, for rotating inputs."""
    i = 0
    for _ in range(warmup):
        fn(i)
        i += 1
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(i)
        b.record()
        b.synchronize()
        times.append(1e3 * a.elapsed_time(b))
        i += 1
    times.sort()
    n = len(times)
    return times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])


def rotation_sets(bytes_per_set):
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    return min(64, max(2, math.ceil(3.0 * l2 / bytes_per_set)))


def rel_err(out, ref):
    out, ref = out.double(), ref.double()
    if not torch.isfinite(out).all():
        return math.inf
    den = ref.norm().item()
    num = (out - ref).norm().item()
    return num / den if den > 0 else num


def header(title):
    print(f"\n## {title}")
    print(f"{'op':<22} {'variant':<22} {'shape':<22} {'time_us':>12} {'GB/s':>10} {'%copy':>8} {'check':>10}")


def row(op, variant, shape, us, nbytes, copy_gbs, check):
    global FAILED
    gbs = nbytes / (us * 1e3)
    pct = f"{100.0 * gbs / copy_gbs:.1f}" if copy_gbs > 0 else "-"
    chk = f"{check:.1e}" if check is not None else "-"
    print(f"{op:<22} {variant:<22} {shape:<22} {us:12.2f} {gbs:10.1f} {pct:>8} {chk:>10}")
    if check is not None and not check <= 1e-5:
        FAILED = True
        print(f"  ^ FAILED: relative error {check:.2e} above 1e-05")


def copy_bandwidth_gbs(runs):
    n = 64 << 20
    a = torch.full((n,), 0.0115, device="cuda")
    b = torch.empty_like(a)
    us = median_us(lambda i: b.copy_(a), runs)
    return 2.0 * n * 4 / (us * 1e3)


# ---- softmax ----------------------------------------------------------------------------------

SOFTMAX_SHAPES = [(262144, 32), (131072, 100), (32768, 1024), (65536, 1024), (8192, 4096), (16384, 4096),
                  (2048, 16384), (512, 100003), (64, 1048576)]


def bench_softmax(copy_gbs, runs):
    header("softmax, PyTorch")
    for rows, cols in SOFTMAX_SHAPES:
        shape = f"{rows}x{cols}"
        n = rows * cols
        g = torch.Generator(device="cuda").manual_seed(11 + cols)
        x = torch.rand(rows, cols, generator=g, device="cuda") * 16 - 8
        dy = torch.rand(rows, cols, generator=g, device="cuda") * 2 - 1
        y = torch.softmax(x, -1)
        y_ref = torch.softmax(x.double(), -1)
        check = rel_err(y, y_ref)
        sets = rotation_sets(8.0 * n)
        xs = [x.clone() for _ in range(sets)]
        us = median_us(lambda i: torch.softmax(xs[i % sets], -1), runs)
        row("softmax fwd", "t torch.softmax", shape, us, 8.0 * n, copy_gbs, check)
        del xs

        dx = torch._softmax_backward_data(dy, y, -1, torch.float32)
        yd = y.double()
        dx_ref = yd * (dy.double() - (yd * dy.double()).sum(-1, keepdim=True))
        check = rel_err(dx, dx_ref)
        sets = rotation_sets(12.0 * n)
        ys = [y.clone() for _ in range(sets)]
        dys = [dy.clone() for _ in range(sets)]
        us = median_us(lambda i: torch._softmax_backward_data(dys[i % sets], ys[i % sets], -1, torch.float32), runs)
        row("softmax bwd", "t torch.softmax", shape, us, 12.0 * n, copy_gbs, check)
        del ys, dys, x, dy, y, y_ref, dx, dx_ref, yd
        torch.cuda.empty_cache()


# ---- spectral norm ----------------------------------------------------------------------------

def make_module(kind, shape):
    nn = torch.nn
    if kind == "linear":
        return nn.Linear(shape[1], shape[0], bias=False)
    if kind == "conv":
        return nn.Conv2d(shape[1], shape[0], shape[2], bias=False)
    return nn.ConvTranspose2d(shape[0], shape[1], shape[2], bias=False)  # weight [in, out, k, k], dim 1


SN_CASES = [("conv", (64, 3, 3, 3)), ("conv", (256, 256, 3, 3)), ("linear", (512, 4608)),
            ("convT", (512, 256, 4, 4)), ("linear", (4096, 4608))]


def sn_hook(m):
    from torch.nn.utils.spectral_norm import SpectralNorm

    return next(h for h in m._forward_pre_hooks.values() if isinstance(h, SpectralNorm))


def sn_reference(w, dim, u0):
    """One power-iteration step in float64 from u0: u, v, sigma and w / sigma."""
    wm = w.double()
    if dim != 0:
        wm = wm.permute(dim, *[d for d in range(wm.dim()) if d != dim])
    wm = wm.reshape(wm.shape[0], -1)
    v = wm.t() @ u0.double()
    v = v / v.norm()
    t = wm @ v
    u = t / t.norm()
    sigma = u @ t
    return u, v, sigma, w.double() / sigma


def bench_spectral_norm(copy_gbs, runs):
    header("spectral norm, PyTorch (torch.nn.utils.spectral_norm)")
    for kind, wshape in SN_CASES:
        torch.manual_seed(21)
        dim = 1 if kind == "convT" else 0
        rows = wshape[dim]
        cols = math.prod(wshape) // rows
        shape = f"{rows}x{cols}" + (" d1" if dim else "")
        wbytes = 4.0 * math.prod(wshape)
        sets = rotation_sets(2 * wbytes)
        mods = [torch.nn.utils.spectral_norm(make_module(kind, wshape)).cuda().train() for _ in range(sets)]
        m0, h0 = mods[0], sn_hook(mods[0])

        # Check one training step from the current u against float64.
        w = m0.weight_orig.detach().clone()
        u0 = m0.weight_u.detach().clone()
        u_ref, v_ref, _, out_ref = sn_reference(w, dim, u0)
        with torch.no_grad():
            h0(m0, None)
            check = max(rel_err(m0.weight_u, u_ref), rel_err(m0.weight_v, v_ref), rel_err(m0.weight, out_ref))

        hooks = [sn_hook(m) for m in mods]
        us = median_us(lambda i: hooks[i % sets](mods[i % sets], None), runs)
        row("sn fwd (train)", "t spectral_norm", shape, us, 4 * wbytes, copy_gbs, check)

        # Backward to weight_orig, the graph built outside the timed region.
        g = torch.rand(wshape, device="cuda") * 2 - 1
        times = []
        for r in range(runs + 10):
            m = mods[r % sets]
            wt = sn_hook(m).compute_weight(m, do_power_iteration=True)
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            a.record()
            wt.backward(g)
            b.record()
            b.synchronize()
            if r >= 10:
                times.append(1e3 * a.elapsed_time(b))
            m.weight_orig.grad = None
        times.sort()
        row("sn bwd", "t autograd", shape, times[len(times) // 2], 3 * wbytes, copy_gbs, None)
        del mods, hooks
        torch.cuda.empty_cache()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=100)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("CUDA not available to PyTorch: nothing to time")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 gemv, as in the C++ baseline
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    copy_gbs = copy_bandwidth_gbs(args.runs)
    print(f"device-to-device copy: {copy_gbs:.1f} GB/s (bytes read + written)")
    bench_softmax(copy_gbs, args.runs)
    bench_spectral_norm(copy_gbs, args.runs)
    if FAILED:
        print("\nFAILED: a variant disagreed with the float64 reference (see above)")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
