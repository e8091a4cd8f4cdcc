#!/usr/bin/env bash
# Data-parallel scaling of the training step: sagan_celeba on the default data (Fashion-MNIST,
# SAGAN at its CPU width) with --batch B per process, as 1 process and as N processes of 1 thread
# each (OMP_NUM_THREADS=1), on the CPU. Prints images/s (global: all ranks' images) averaged over
# the logged steps after the first two (warm-up), the speed-up and the scaling efficiency, and the
# load average: on a shared machine the figures are only as good as the idle cores.
# Usage: benchmarks/dist_scaling.sh PATH/TO/sagan_celeba [N=2] [STEPS=12] [BATCH=16]
#        (MPIRUN overrides the launcher, default: mpirun --allow-run-as-root --oversubscribe)
set -euo pipefail
BIN=$1
N=${2:-2}
STEPS=${3:-12}
BATCH=${4:-16}
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
CORES=$(getconf _NPROCESSORS_ONLN)
export OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ARGS="--device cpu --workers 1 --batch $BATCH --steps $STEPS --log-every 1 --sample-every 100000 --checkpoint-every 100000"
# Mean of images_per_s (column 6) over steps 3..STEPS.
rate() { awk -F, 'NR > 3 { s += $6; n++ } END { printf "%.2f", s / n }' "$1/metrics.csv"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $CORES cores"
"$BIN" train --out "$T/one" $ARGS >"$T/one.log" 2>&1 || { cat "$T/one.log"; exit 1; }
one=$(rate "$T/one")
$MPIRUN -x OMP_NUM_THREADS=1 -np "$N" "$BIN" train --out "$T/many" $ARGS >"$T/many.log" 2>&1 || { cat "$T/many.log"; exit 1; }
many=$(rate "$T/many")
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
grep "^data parallel: gradient" "$T/many.log" || true
awk -v a="$one" -v b="$many" -v n="$N" -v bs="$BATCH" 'BEGIN {
  printf "| processes x threads | batch per process | global batch | images/s | speed-up | efficiency |\n"
  printf "|---|---|---|---|---|---|\n"
  printf "| 1 x 1 | %d | %d | %.2f | 1.00 | 100%% |\n", bs, bs, a
  printf "| %d x 1 | %d | %d | %.2f | %.2f | %.0f%% |\n", n, bs, n * bs, b, b / a, 100 * b / a / n }'
