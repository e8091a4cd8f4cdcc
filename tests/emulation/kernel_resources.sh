#!/usr/bin/env bash
# Writes the emulator's kernel resource table (launch.cpp) from a CUDA build of ember:
#   bash tests/emulation/kernel_resources.sh build/libember.a > table.txt
# One line per kernel and architecture (sm_80, sm_90):
#   <arch> <mangled name> <registers per thread> <static shared bytes> <__launch_bounds__ threads or 0>
# read with cuobjdump (from the CUDA toolkit, or PyPI's nvidia-cuda-cuobjdump, which
# scripts/setup.sh installs). nvcc names an anonymous namespace after the file
# (_GLOBAL__N__<hash>_<file>...); g++ calls it _GLOBAL__N_1: the names are rewritten to match.
set -euo pipefail
lib=${1:?usage: kernel_resources.sh <libember.a or CUDA object>}
CUOBJDUMP=${CUOBJDUMP:-}
if [ -z "$CUOBJDUMP" ]; then
  for c in /usr/local/cuda/bin/cuobjdump "$(command -v cuobjdump || true)" \
           $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13/bin/cuobjdump") for p in nvidia.__path__))' 2>/dev/null || true); do
    if [ -n "$c" ] && [ -x "$c" ]; then CUOBJDUMP=$c; break; fi
  done
fi
[ -n "$CUOBJDUMP" ] || { echo "kernel_resources.sh: cuobjdump not found (pip install nvidia-cuda-cuobjdump)" >&2; exit 1; }

# Host-style name of an nvcc anonymous namespace: "<n>_GLOBAL__N__..." (n characters) -> "12_GLOBAL__N_1".
normalise='
function norm(s,   pre, n, rest) {
  while (match(s, /[0-9]+_GLOBAL__N__/)) {
    pre = substr(s, 1, RSTART - 1)
    rest = substr(s, RSTART)
    match(rest, /^[0-9]+/)
    n = substr(rest, 1, RLENGTH) + 0
    s = pre "12_GLOBAL__N_1" substr(rest, RLENGTH + n + 1)
  }
  return s
}
function hex(s,   i, v) {
  v = 0; s = tolower(s); sub(/^0x/, "", s)
  for (i = 1; i <= length(s); ++i) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
  return v
}'
{
  "$CUOBJDUMP" --dump-resource-usage "$lib" 2>/dev/null | awk "$normalise"'
    /arch = sm_/ { arch = $3 }
    /^ *Function / { name = $2; sub(/:$/, "", name); name = norm(name); next }
    /^ *REG:/ && name != "" {
      reg = $1; sub(/REG:/, "", reg); sh = $3; sub(/SHARED:/, "", sh)
      print "R", arch, name, reg, sh; name = "" }'
  "$CUOBJDUMP" -elf "$lib" 2>/dev/null | awk "$normalise"'
    /arch = sm_/ { arch = $3 }
    /^\.nv\.info\._Z/ { name = norm(substr($1, 10)) }
    /EIATTR_MAX_THREADS/ { want = 1; next }
    want && /Value:/ { print "M", arch, name, hex($2); want = 0 }'
} | awk '
  $1 == "R" { key = $2 " " $3; regs[key] = $4; smem[key] = $5; order[++n] = key }
  $1 == "M" { maxt[$2 " " $3] = $4 }
  END {
    for (i = 1; i <= n; ++i) {
      k = order[i]; split(k, p, " ")
      if ((p[1] == "sm_80" || p[1] == "sm_90") && !(k in seen)) {
        seen[k] = 1
        # sm_90 cubins count the 1 KB the system reserves in every block that uses shared memory;
        # the launch limits (48 KB, 227 KB) count only the bytes the kernel declares.
        s = smem[k]; if (p[1] == "sm_90" && s >= 1024) s -= 1024
        print k, regs[k], s, (k in maxt ? maxt[k] : 0)
      }
    }
  }' | sort
