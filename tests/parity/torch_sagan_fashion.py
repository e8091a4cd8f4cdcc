#!/usr/bin/env python3
"""The main command's recipe in PyTorch, scored like `sagan_celeba evaluate`: the parity check of
GAN quality (issue 14). Run with Debian's PyTorch: /usr/bin/python3 (python3-torch, not installed
by setup.sh).

Same as `sagan_celeba train` on the default data (examples/sagan_celeba/trainer.cpp):
  data:  Fashion-MNIST training images (/usr/share/datasets/fashion-mnist), padded 28 -> 32 with
         background, v / 127.5 - 1 in [-1, 1]; no flips (ember's Fashion-MNIST loader has none);
         reshuffled every epoch (PyTorch's generator, so the order differs from ember's);
  model: ember's SAGAN mirrors (tests/parity/ember_models.py) at 32x32, 1 channel, --width 0.25,
         PyTorch's default initialisation (ember draws its own: the same distributions, other numbers);
  step:  hinge loss; D on cat(real, fake) as one batch, fake made under no_grad; then G through D
         in training mode; Adam betas (0, 0.9), eps 1e-8, lr 4e-4 (D) / 1e-4 (G); n_dis 1; batch 64;
  score: G in eval mode, --n images from fixed noise, the committed classifier's 128 penultimate
         features (examples/fashion_mnist_classifier/fashion_classifier.safetensors) of the central
         28x28 standardised, Frechet distance to the 10,000 test images in float64 through
         symmetric eigen-decompositions (numpy.linalg.eigh), as examples/common/frechet.cpp does.
Prints "seed S steps N frechet D" and appends it to --csv when given. With --state FILE the run
writes its whole state (G, D, both optimisers, data order and position, both random generators) to
FILE every --state-every steps (to FILE.tmp, then renamed) and continues from FILE when it exists, so
a killed run resumes where it stopped and ends as an uninterrupted one would.
  usage: /usr/bin/python3 tests/parity/torch_sagan_fashion.py --steps 3000 --seed 1 [--n 10000]
         [--width 0.25] [--threads 2] [--csv results.csv] [--save G.safetensors]
         [--state FILE [--state-every 100]]
         [--score-ember CHECKPOINT]   (no training: score an ember checkpoint's trained G)
"""
import argparse
import importlib.util
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ember_models as em  # noqa: E402
import st  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
CLASSIFIER = os.path.join(HERE, "..", "..", "examples", "fashion_mnist_classifier", "fashion_classifier.safetensors")
MEAN, STD = 0.2860, 0.3530  # examples/common/idx.h: kFashionMnistMean, kFashionMnistStd


def read_images(train):
    name = "train-images-idx3-ubyte.gz" if train else "t10k-images-idx3-ubyte.gz"
    return tfc.read_idx(os.path.join(DATA, name))


def gan_format(images):
    """[n, 28, 28] bytes -> [n, 1, 32, 32] in [-1, 1], padded with background (-1)."""
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)
    return F.pad(x, (2, 2, 2, 2), value=-1.0).unsqueeze(1)


def load_by_path(name, *parts):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", "..", *parts))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# The classifier's PyTorch peer (same layers and names as examples/common/fashion_classifier.h).
tfc = load_by_path("torch_fashion_classifier", "benchmarks", "torch_fashion_classifier.py")


def features(clf, x):
    """The 128 penultimate features (ReLU(fc1)), as FashionClassifier::features."""
    h = F.max_pool2d(F.relu(clf.bn1(clf.conv1(x))), 2)
    h = F.max_pool2d(F.relu(clf.bn2(clf.conv2(h))), 2)
    return F.relu(clf.fc1(h.flatten(1)))


def classifier_features(clf, gan_images, batch=500):
    """GAN-format images -> float64 features [n, 128] (central 28x28, standardised)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(gan_images), batch):
            x = gan_images[i:i + batch, :, 2:30, 2:30]
            out.append(features(clf, ((x + 1) * 0.5 - MEAN) / STD).double())
    return torch.cat(out).numpy()


def stats(f):
    return f.mean(0), np.cov(f, rowvar=False)  # divided by n - 1, as gaussian_stats


def sym_sqrt(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet(s1, s2):
    (m1, c1), (m2, c2) = s1, s2
    r = sym_sqrt(c1)
    m = r @ c2 @ r
    m = 0.5 * (m + m.T)
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(m), 0, None)).sum()
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * tr_sqrt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--save", default=None, help="write G's state_dict (safetensors)")
    ap.add_argument("--state", default=None, help="resumable training state: written every --state-every "
                    "steps, read at start when it exists")
    ap.add_argument("--state-every", type=int, default=100)
    ap.add_argument("--score-ember", default=None, metavar="CHECKPOINT",
                    help="no training: score the trained G of an ember checkpoint (checks that both scorers agree)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    G = em.SaganGenerator(resolution=32, width=args.width, image_channels=1).train()
    D = em.SaganDiscriminator(resolution=32, width=args.width, image_channels=1).train()
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9), eps=1e-8)
    opt_D = torch.optim.Adam(D.parameters(), lr=4e-4, betas=(0.0, 0.9), eps=1e-8)
    if args.score_ember:
        tensors, _ = st.load(args.score_ember)
        G.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("G.")}, strict=True)
        args.steps = 0
    data = gan_format(read_images(True))
    gen = torch.Generator().manual_seed(args.seed)
    order, pos = torch.randperm(len(data), generator=gen), 0
    first = 1
    if args.state and os.path.exists(args.state):
        s = torch.load(args.state)
        if s["seed"] != args.seed or s["width"] != args.width or s["batch"] != args.batch:
            sys.exit(f"{args.state}: a state of seed {s['seed']} width {s['width']} batch {s['batch']}, "
                     f"not of this run's --seed {args.seed} --width {args.width} --batch {args.batch}")
        G.load_state_dict(s["G"])
        D.load_state_dict(s["D"])
        opt_G.load_state_dict(s["opt_G"])
        opt_D.load_state_dict(s["opt_D"])
        order, pos, first = s["order"], s["pos"], s["step"] + 1
        torch.set_rng_state(s["rng"])
        gen.set_state(s["gen"])
        print(f"resumed from {args.state} at step {s['step']}", flush=True)
    t0 = time.time()
    for step in range(first, args.steps + 1):
        if pos + args.batch > len(data):  # drop the last partial batch, as ember's loader does
            order, pos = torch.randperm(len(data), generator=gen), 0
        real = data[order[pos:pos + args.batch]]
        pos += args.batch
        with torch.no_grad():
            fake = G(torch.randn(args.batch, G.z_dim))
        logits = D(torch.cat([real, fake]))
        loss_d = em.d_loss_hinge(logits[:args.batch], logits[args.batch:])
        opt_D.zero_grad()
        loss_d.backward()
        opt_D.step()
        loss_g = em.g_loss_hinge(D(G(torch.randn(args.batch, G.z_dim))))
        opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} | D {loss_d.item():.4f} G {loss_g.item():.4f} | "
                  f"{(time.time() - t0) / (step - first + 1):.2f} s/step", flush=True)
        if args.state and (step % args.state_every == 0 or step == args.steps):
            torch.save({"seed": args.seed, "width": args.width, "batch": args.batch, "step": step,
                        "G": G.state_dict(), "D": D.state_dict(), "opt_G": opt_G.state_dict(),
                        "opt_D": opt_D.state_dict(), "order": order, "pos": pos,
                        "rng": torch.get_rng_state(), "gen": gen.get_state()}, args.state + ".tmp")
            os.replace(args.state + ".tmp", args.state)
    if args.save:
        st.save(args.save, G.state_dict())

    clf = tfc.SmallCnn()
    tensors, _ = st.load(CLASSIFIER)
    clf.load_state_dict(tensors, strict=True)
    clf.eval()
    real_stats = stats(classifier_features(clf, gan_format(read_images(False))))
    G.eval()
    zgen = torch.Generator().manual_seed(args.seed + 1000)
    with torch.no_grad():
        images = torch.cat([G(torch.randn(min(500, args.n - i), G.z_dim, generator=zgen))
                            for i in range(0, args.n, 500)])
    d = frechet(stats(classifier_features(clf, images)), real_stats)
    line = f"seed {args.seed} steps {args.steps} frechet {d:.3f}"
    print(line)
    if args.csv:
        with open(args.csv, "a") as f:
            f.write(f"{args.seed},{args.steps},{d:.4f}\n")


if __name__ == "__main__":
    main()
