#!/usr/bin/env bash
# Data-parallel scaling of the training step: sagan_celeba on the default data (Fashion-MNIST,
# SAGAN at its CPU width) with --batch B per process, as 1 process and as N processes of 1 thread
# each (OMP_NUM_THREADS=1), on the CPU. Prints images/s (global: all ranks' images) averaged over
# the logged steps after the first two (warm-up), the speed-up and the scaling efficiency, and the
# load average: on a shared machine the figures are only as good as the idle cores.
# The N-process run is made twice: gradient buckets started during backward (the default) and
# after it (--no-overlap); the table gives both step times and the share of the after-backward
# all-reduce time that overlapping hid: 1 - (time in average_gradients, overlapped) / (the same,
# --no-overlap), both from the runs' closing lines.
# Usage: benchmarks/dist_scaling.sh PATH/TO/sagan_celeba [N=2] [STEPS=12] [BATCH=16] [FLAGS]
#        (FLAGS: extra train flags for the N-process runs, e.g. "--bucket-mb 0.25";
#         EMBER_DIST_POLL=0 in the environment: the overlapped run does not MPI_Test from the hooks)
#        (MPIRUN overrides the launcher, default: mpirun --allow-run-as-root --oversubscribe)
set -euo pipefail
BIN=$1
N=${2:-2}
STEPS=${3:-12}
BATCH=${4:-16}
FLAGS=${5:-}
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
CORES=$(getconf _NPROCESSORS_ONLN)
export OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ARGS="--device cpu --workers 1 --batch $BATCH --steps $STEPS --log-every 1 --sample-every 100000 --checkpoint-every 100000"
# Mean of images_per_s (column 6) over steps 3..STEPS.
rate() { awk -F, 'NR > 3 { s += $6; n++ } END { printf "%.2f", s / n }' "$1/metrics.csv"; }
# Seconds in average_gradients, from the closing line "gradient all-reduce X s of Y s ...".
allreduce_s() { sed -n 's/^data parallel: gradient all-reduce \([0-9.]*\) s of.*/\1/p' "$1"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $CORES cores"
"$BIN" train --out "$T/one" $ARGS >"$T/one.log" 2>&1 || { cat "$T/one.log"; exit 1; }
one=$(rate "$T/one")
for mode in overlap no-overlap; do
  extra=$FLAGS
  [ "$mode" = no-overlap ] && extra="$extra --no-overlap"
  $MPIRUN -x OMP_NUM_THREADS=1 ${EMBER_DIST_POLL:+-x EMBER_DIST_POLL} -np "$N" "$BIN" train --out "$T/$mode" $ARGS $extra >"$T/$mode.log" 2>&1 \
    || { cat "$T/$mode.log"; exit 1; }
  grep "^data parallel: gradient" "$T/$mode.log" || true
done
on=$(rate "$T/overlap")
off=$(rate "$T/no-overlap")
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v a="$one" -v b="$on" -v c="$off" -v n="$N" -v bs="$BATCH" -v ar_on="$(allreduce_s "$T/overlap.log")" \
    -v ar_off="$(allreduce_s "$T/no-overlap.log")" -v steps="$STEPS" 'BEGIN {
  printf "| processes x threads | gradients | batch per process | global batch | images/s | step (s) | speed-up | efficiency |\n"
  printf "|---|---|---|---|---|---|---|---|\n"
  printf "| 1 x 1 | - | %d | %d | %.2f | %.3f | 1.00 | 100%% |\n", bs, bs, a, bs / a
  printf "| %d x 1 | overlapped | %d | %d | %.2f | %.3f | %.2f | %.0f%% |\n", n, bs, n * bs, b, n * bs / b, b / a, 100 * b / a / n
  printf "| %d x 1 | after backward | %d | %d | %.2f | %.3f | %.2f | %.0f%% |\n", n, bs, n * bs, c, n * bs / c, c / a, 100 * c / a / n
  printf "all-reduce time not hidden, per step: %.1f ms overlapped, %.1f ms after backward: %.0f%% hidden\n",
         1000 * ar_on / steps, 1000 * ar_off / steps, (ar_off > 0 ? 100 * (1 - ar_on / ar_off) : 0) }'
