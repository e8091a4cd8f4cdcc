#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, and trains SAGAN (the reference
# article's architecture at 32x32) on Fashion-MNIST from Debian's dataset-fashion-mnist package,
# on the GPU when one is usable, else on the CPU. Extra arguments go to `sagan_celeba train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${EMBER_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target sagan_celeba
RUN=${RUN_DIR:-runs/fashion_mnist}
exec "$BUILD/examples/sagan_celeba/sagan_celeba" train --out "$RUN" "$@"
