#!/usr/bin/env bash
# The resource table of an emulated build that has a CUDA build beside it (tests/emulation/CMakeLists.txt
# runs this whenever libember.a changes):
#   bash tests/emulation/resource_table.sh <libember.a> <committed table> <output table>
# The sm_80 and sm_90 lines are read from this build's cubins (kernel_resources.sh), so the emulator's
# launch checks use the register counts of the kernels just compiled. An architecture the build lacks
# (e.g. -DCMAKE_CUDA_ARCHITECTURES=90), or no cuobjdump, keeps the committed table's lines, with a note.
set -euo pipefail
lib=${1:?usage: resource_table.sh <libember.a> <committed table> <output table>}
committed=${2:?committed table}
out=${3:?output table}
tmp=$out.tmp
if ! bash "$(dirname "$0")/kernel_resources.sh" "$lib" > "$tmp"; then
  echo "note: no kernel resources read from $lib; the emulator's launch checks use the committed table" >&2
  : > "$tmp"
fi
from_build=1
for arch in sm_80 sm_90; do
  if ! grep -q "^$arch " "$tmp"; then
    echo "note: this CUDA build has no $arch cubins; the emulator's $arch table is the committed one" >&2
    grep "^$arch " "$committed" >> "$tmp" || true
    from_build=0
  fi
done
LC_ALL=C sort -o "$tmp" "$tmp"
if [ "$from_build" = 1 ] && ! cmp -s <(LC_ALL=C sort "$committed") "$tmp"; then
  echo "note: tests/emulation/kernel_resources.txt differs from this build's kernels; regenerate it (docs/emulation.md)" >&2
fi
mv "$tmp" "$out"
