#!/usr/bin/env bash
# Installs what ember needs on a fresh Debian 12 machine (run as root, or with sudo).
# Everything comes from Debian packages; nothing is downloaded at build time.
#   catch2                 - unit tests (Catch2 v2)
#   libstb-dev             - stb_image / stb_image_write / stb_image_resize (data loading, PNG output)
#   libopenblas-dev        - CPU GEMM (optional: the build falls back to its own blocked GEMM)
#   libopenblas0-openmp    - OpenBLAS on OpenMP threads, which ember's kernels share (CMake prefers it)
#   libdnnl-dev            - oneDNN: the second CPU convolution path (optional; chosen per shape)
#   zlib1g-dev             - reading the gzip'd IDX files of Fashion-MNIST
#   nlohmann-json3-dev     - safetensors headers
#   libcli11-dev           - command-line parsing of the examples
#   dataset-fashion-mnist  - the default training data (no download needed)
#   libopenmpi-dev, openmpi-bin - data-parallel training (mpirun -np N; core/dist's MPI backend)
#   cmake, ninja-build, g++ - the build
set -euo pipefail
PKGS="cmake ninja-build g++ catch2 libstb-dev libopenblas-dev libopenblas0-openmp libdnnl-dev zlib1g-dev nlohmann-json3-dev libcli11-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# cuobjdump reads the register counts of the CUDA build for the emulator's launch checks
# (tests/emulation/kernel_resources.sh); pip-installed when the CUDA toolkit lacks it.
if [ -x /usr/local/cuda/bin/nvcc ] && [ ! -x /usr/local/cuda/bin/cuobjdump ] && ! command -v cuobjdump >/dev/null &&
   ! python3 -c 'import nvidia, os, sys; sys.exit(not any(os.path.exists(os.path.join(p, "cu13/bin/cuobjdump")) for p in nvidia.__path__))' 2>/dev/null; then
  echo "[setup] installing nvidia-cuda-cuobjdump (PyPI)"
  python3 -m pip install --quiet "nvidia-cuda-cuobjdump==13.*" || echo "[setup] warning: no cuobjdump; the emulator uses the committed resource table"
fi
# NCCL (PyPI nvidia-nccl-cu13: library and header, ~350 MB) for data-parallel training on several
# GPUs; cmake/nccl.cmake finds the wheel as it finds cuDNN's. Skipped when the CUDA toolkit already
# has NCCL. Optional: a failure here leaves a build that reduces CUDA tensors over MPI, and never
# fails a CPU set-up.
if [ -x /usr/local/cuda/bin/nvcc ] && [ ! -f /usr/local/cuda/include/nccl.h ] && [ ! -f /usr/include/nccl.h ] &&
   ! python3 -c 'import nvidia.nccl' 2>/dev/null; then
  echo "[setup] installing nvidia-nccl-cu13 (PyPI)"
  python3 -m pip install --quiet "nvidia-nccl-cu13==2.*" || echo "[setup] warning: no NCCL wheel; multi-GPU runs reduce through host memory over MPI"
fi
echo "[setup] dependencies present"
