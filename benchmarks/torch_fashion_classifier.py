#!/usr/bin/env python3
"""PyTorch peer of examples/fashion_mnist_classifier: the same CNN, optimiser and data, timed per epoch.

  x [B,1,28,28] -> Conv 3x3 p1 1->32 -> BN -> ReLU -> MaxPool -> Conv 3x3 p1 32->64 -> BN -> ReLU
  -> MaxPool -> flatten -> Linear 3136->128 -> ReLU -> Linear 128->10; cross-entropy, Adam (lr 1e-3,
  betas 0.9/0.999), batch 64, images standardised as ember's MnistFormat Standardized does
  ((x/255 - 0.2860) / 0.3530), shuffled each epoch.
Prints, per epoch, the same line as the ember example ("epoch N: train loss L | test accuracy A% |
S s (I img/s)"); the time covers the training steps only (the whole set is in memory, so the data
path costs nothing here, while ember's example decodes batches on loader threads).
  usage: /usr/bin/python3 torch_fashion_classifier.py [--epochs 1] [--train-limit N] [--threads T]
"""
import argparse
import gzip
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    torch = None

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class SmallCnn(nn.Module if torch else object):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 32, 3, 1, 1), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, 1, 1), nn.BatchNorm2d(64)
        self.fc1, self.fc2 = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        h = F.max_pool2d(F.relu(self.bn2(self.conv2(h))), 2)
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DATA)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--train-limit", type=int, default=0, help="use only the first N training images (0 = all)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if torch is None:
        print("torch_fashion_classifier: PyTorch (or numpy) is not installed; skipped")
        return 0
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def load(prefix):
        x = read_idx(os.path.join(args.data, f"{prefix}-images-idx3-ubyte.gz")).astype(np.float32)
        y = read_idx(os.path.join(args.data, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
        x = (x / 255.0 - 0.2860) / 0.3530
        return torch.from_numpy(x).unsqueeze(1).contiguous(), torch.from_numpy(y)

    xtr, ytr = load("train")
    xte, yte = load("t10k")
    if 0 < args.train_limit < len(xtr):
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]
    model = SmallCnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
    n, B = len(xtr), args.batch
    steps = n // B
    print(f"torch_fashion_classifier: PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{n} train images, {len(xte)} test")
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        loss_sum = 0.0
        for s in range(steps):
            idx = perm[s * B:(s + 1) * B]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item()
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum()) for i in range(0, len(xte), 500))
        print(f"epoch {epoch}: train loss {loss_sum / steps:.4f} | test accuracy {100 * correct / len(xte):.2f}% | "
              f"{secs:.1f} s ({steps * B / secs:.0f} img/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
