#!/usr/bin/env bash
# Copies the header-only build dependencies (Catch2 v2, stb, nlohmann-json, CLI11) and their CMake
# package files into .deps/ of this checkout, for a GPU machine that has the CUDA toolkit, CMake,
# ninja and Python but no Debian packages and no network. Run it here, on a machine where
# scripts/setup.sh has installed them; then copy the checkout, .deps/ included, to the GPU machine
# and run scripts/gpu_check.sh there (it points CMake at .deps/ itself). git ignores .deps/.
#   bash scripts/pack_deps.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
missing=()
for h in /usr/include/catch2/catch.hpp /usr/include/stb/stb_image.h /usr/include/nlohmann/json.hpp \
         /usr/include/CLI/CLI.hpp; do
  [ -f "$h" ] || missing+=("$h")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "pack_deps: missing ${missing[*]}: run scripts/setup.sh first" >&2
  exit 1
fi
rm -rf .deps
mkdir -p .deps/include .deps/lib/cmake
cp -r /usr/include/catch2 /usr/include/stb /usr/include/nlohmann /usr/include/CLI .deps/include/
# CMake package files (Catch2's gives catch_discover_tests); each is optional except Catch2's.
cp -r /usr/lib/cmake/Catch2 .deps/lib/cmake/
for d in /usr/share/cmake/nlohmann_json /usr/lib/cmake/CLI11 /usr/share/cmake/CLI11; do
  if [ -d "$d" ]; then cp -r "$d" .deps/lib/cmake/; fi
done
echo "pack_deps: $(du -sh .deps | cut -f1) in $ROOT/.deps"
