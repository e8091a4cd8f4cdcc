#!/usr/bin/env python3
"""PyTorch peer of benchmarks/bench_train_step.cpp: the same SAGAN training step, the same table.

The models are ember's PyTorch mirrors (tests/parity/ember_models.py, imported by path), built as
bench_train_step builds them (article SAGAN at `width`; the ResNet form with base = 64 * width,
a multiple of 8). One step, as examples/sagan_celeba/trainer.cpp does it (n_dis = 1):
  D step: fake = G(z) under no_grad; D(cat(real, fake)) split into real / fake logits; hinge loss;
          opt_D.zero_grad, backward, Adam step (lr 4e-4)
  G step: -mean(D(G(z'))); opt_G.zero_grad, backward, Adam step (lr 1e-4)
Adam(betas (0, 0.9)), PyTorch's default implementation; fp32 with PyTorch's default TF32 settings
(cuDNN convolutions TF32, matmuls full fp32; cudnn.benchmark off, like ember's heuristic choice).
The real batch is uniform in [-1, 1], made once on the device (no data loading timed).
Timing: --warmup steps, then each of --steps steps (fewer, at least 3, when the last warm-up step
says they would take longer than --max-seconds) timed with perf_counter between
torch.cuda.synchronize() calls; images/s = batch / median step. peak_MB: max_memory_allocated
during the timed steps; mallocs: cudaMalloc calls (allocator segments) during them.
Exits 0 with a message when torch or CUDA is missing; --cpu runs a tiny configuration on the CPU
(to check the script's logic on a machine without a GPU).
  usage: python3 torch_train_step.py [--res 128,64] [--models sagan,sagan_resnet] [--batch 64]
                                     [--width 1] [--channels 3] [--threads T] [--steps 10] [--warmup 3]
                                     [--max-seconds 4] [--cpu]
"""
import argparse
import importlib.util
import os
import sys
import time

try:
    import torch
except ImportError:
    torch = None


def load_ember_models():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity", "ember_models.py")
    spec = importlib.util.spec_from_file_location("ember_models", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(em, name, res, width, channels, device):
    torch.manual_seed(1)
    if name == "sagan":
        G = em.SaganGenerator(resolution=res, width=width, image_channels=channels)
        D = em.SaganDiscriminator(resolution=res, width=width, image_channels=channels)
    elif name == "sagan_resnet":
        base = max(8, int(64 * width + 0.5) // 8 * 8)
        G = em.SaganResNetGenerator(resolution=res, base=base, image_channels=channels)
        D = em.SaganResNetDiscriminator(resolution=res, base=base, image_channels=channels)
    else:
        raise SystemExit(f"torch_train_step: unknown model '{name}' (sagan or sagan_resnet)")
    return G.to(device).train(), D.to(device).train()


def run_config(em, name, res, args, device):
    G, D = build(em, name, res, args.width, args.channels, device)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_D = torch.optim.Adam(D.parameters(), lr=4e-4, betas=(0.0, 0.9))
    B, z_dim = args.batch, 128
    gen = torch.Generator(device=device).manual_seed(2)
    real = torch.rand(B, args.channels, res, res, generator=gen, device=device) * 2 - 1
    cuda = device.type == "cuda"
    losses = {}

    def step():
        with torch.no_grad():
            fake = G(torch.randn(B, z_dim, generator=gen, device=device))
        logits = D(torch.cat([real, fake]))  # one joint batch, as models::discriminate
        d_real, d_fake = logits[:B], logits[B:]
        loss_d = em.d_loss_hinge(d_real, d_fake)
        opt_D.zero_grad()
        loss_d.backward()
        opt_D.step()

        loss_g = em.g_loss_hinge(D(G(torch.randn(B, z_dim, generator=gen, device=device))))
        opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
        losses["d"], losses["g"] = loss_d.detach(), loss_g.detach()

    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def timed_step():  # ms, the device's queue drained at both ends
        a = time.perf_counter()
        step()
        sync()
        return 1e3 * (time.perf_counter() - a)

    sync()
    last_ms = 0.0
    for _ in range(args.warmup):
        last_ms = timed_step()
    # Fewer timed steps (at least 3) when they would not fit in --max-seconds, as bench_train_step.
    steps = args.steps
    if last_ms > 0:
        steps = max(min(steps, 3), min(steps, int(1e3 * args.max_seconds / last_ms)))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        segs_before = torch.cuda.memory_stats().get("segment.all.allocated", 0)
    times = [timed_step() for _ in range(steps)]
    peak, mallocs = "-", "-"
    if cuda:
        peak = f"{torch.cuda.max_memory_allocated() / 1048576:.0f}"
        mallocs = str(torch.cuda.memory_stats().get("segment.all.allocated", 0) - segs_before)
    s = sorted(times)
    n = len(s)
    med = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    print(f"{name:<13} {res:5d} {args.width:6.3g} {B:6d} {device.type:<5} {steps:6d} {med:11.2f} {s[0]:9.2f} "
          f"{1e3 * B / med:10.1f} {peak:>9} {mallocs:>7}   D {losses['d'].item():.3f} G {losses['g'].item():.3f}",
          flush=True)
    del G, D, opt_G, opt_D
    if cuda:
        torch.cuda.empty_cache()


def print_header(title):
    print(f"\n## {title}")
    print(f"{'model':<13} {'res':>5} {'width':>6} {'batch':>6} {'dev':<5} {'steps':>6} {'median_ms':>11} {'min_ms':>9} "
          f"{'images/s':>10} {'peak_MB':>9} {'mallocs':>7}   last losses")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--res", default=None, help="comma-separated resolutions (default 128,64; 32 with --cpu)")
    p.add_argument("--models", default="sagan,sagan_resnet")
    p.add_argument("--batch", type=int, default=None, help="default 64 (16 with --cpu)")
    p.add_argument("--width", type=float, default=None, help="default 1 (0.25 with --cpu)")
    p.add_argument("--channels", type=int, default=3, help="image channels (Fashion-MNIST: 1)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    p.add_argument("--steps", type=int, default=None, help="default 10 (3 with --cpu)")
    p.add_argument("--warmup", type=int, default=None, help="default 3 (1 with --cpu)")
    p.add_argument("--max-seconds", type=float, default=4.0,
                   help="cut the timed steps of one configuration (to no fewer than 3) to fit this")
    p.add_argument("--cpu", action="store_true", help="a tiny configuration on the CPU (checks the logic)")
    args = p.parse_args()
    small = args.cpu
    res = [int(r) for r in (args.res or ("32" if small else "128,64")).split(",") if r]
    args.batch = args.batch or (16 if small else 64)
    args.width = args.width or (0.25 if small else 1.0)
    args.steps = args.steps or (3 if small else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if small else 3)

    if torch is None:
        print("torch_train_step: PyTorch is not installed; skipped")
        return 0
    if not small and not torch.cuda.is_available():
        print("torch_train_step: CUDA is not available to PyTorch; skipped (--cpu runs a tiny CPU configuration)")
        return 0
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu" if small else "cuda")
    em = load_ember_models()
    print(f"torch_train_step: PyTorch {torch.__version__}, one SAGAN training step (D step on a joint real+fake "
          f"batch, then G step), hinge loss, Adam(0, 0.9) TTUR 1e-4/4e-4, n_dis 1; images/s = batch / median step; "
          f"{torch.get_num_threads()} CPU threads; "
          f"TF32 convs {torch.backends.cudnn.allow_tf32}, matmuls {torch.backends.cuda.matmul.allow_tf32}, "
          f"cudnn.benchmark {torch.backends.cudnn.benchmark}")
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name()}")
    print_header("CUDA" if device.type == "cuda" else "CPU")
    for name in [m for m in args.models.split(",") if m]:
        for r in res:
            run_config(em, name, r, args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
