#!/usr/bin/env bash
# The GAN-quality parity check of issue 14: the main command's recipe trained by ember and by
# PyTorch (tests/parity/torch_sagan_fashion.py), several seeds each at the documented run length,
# every run scored with the same committed classifier on 10,000 images; then both medians and the
# seed-to-seed spreads.
#
# Every run is resumable and the script skips what is done, so it can be stopped (or the machine
# taken away) and started again with the same arguments: ember resumes from its newest checkpoint
# (--resume), PyTorch from its state file (--state). Results accumulate in OUT/ember.csv and
# OUT/torch.csv (one row per finished seed); OUT/summary.txt is rewritten after each run.
#
#   usage: bash tests/parity/run_parity.sh [--out runs/parity] [--seeds 1,2,3] [--steps 2000]
#                                          [--build build] [--n 10000] [--threads 2]
#                                          [--only ember|torch]
# --only runs one side's seeds (e.g. two drivers side by side, one per side); the summary reads both.
# Needs Debian's PyTorch (/usr/bin/python3 with python3-torch) and a build of sagan_celeba.
# Time on the 2-core development machine (2026-12-01), one thread per run, two runs side by side:
# ~0.38 s per ember step, ~0.8 s per PyTorch step (all six 2,000-step runs: ~1.3 hours).
set -euo pipefail
cd "$(dirname "$0")/../.."

out=runs/parity seeds=1,2,3 steps=2000 build=build n=10000 threads=2 only=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "run_parity.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -z $only || $only == ember || $only == torch ]] || { echo "run_parity.sh: --only ember or torch" >&2; exit 2; }
bin=$build/examples/sagan_celeba/sagan_celeba
[[ -x $bin ]] || { echo "run_parity.sh: $bin not built (cmake --build $build --target sagan_celeba)" >&2; exit 2; }
/usr/bin/python3 -c "import torch" 2>/dev/null ||
  { echo "run_parity.sh: /usr/bin/python3 has no torch (apt-get install python3-torch)" >&2; exit 2; }
mkdir -p "$out"
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=$threads

# done SIDE SEED: whether SIDE's csv has a row for SEED at this length and n.
done_run() { [[ -f $out/$1.csv ]] && grep -q "^$2,$steps,$n," "$out/$1.csv"; }

summary() {
  /usr/bin/python3 - "$out" "$steps" "$n" <<'EOF'
import statistics, sys
out, steps, n = sys.argv[1], sys.argv[2], sys.argv[3]
lines = [f"parity at {steps} steps, Frechet distance on n = {n} (lower is better)"]
for side in ("ember", "torch"):
    try:
        rows = [r.split(",") for r in open(f"{out}/{side}.csv").read().split()]
    except FileNotFoundError:
        rows = []
    d = {int(r[0]): float(r[3]) for r in rows if r[1] == steps and r[2] == n}
    if d:
        v = sorted(d.values())
        lines.append(f"{side:6s} seeds {sorted(d)}: {', '.join(f'{d[s]:.1f}' for s in sorted(d))} | median "
                     f"{statistics.median(v):.1f} | spread (max - min) {v[-1] - v[0]:.1f}")
    else:
        lines.append(f"{side:6s} no finished run yet")
open(f"{out}/summary.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
}

IFS=, read -ra seed_list <<<"$seeds"
for s in "${seed_list[@]}"; do
  if [[ $only != ember ]] && ! done_run torch "$s"; then
    echo "[parity] PyTorch seed $s: $steps steps"
    line=$(/usr/bin/python3 tests/parity/torch_sagan_fashion.py --steps "$steps" --seed "$s" --n "$n" \
      --threads "$threads" --state "$out/torch_s$s.pt" --state-every 100 | tee -a "$out/torch_s$s.log" | tail -1)
    d=$(awk '{print $6}' <<<"$line")
    echo "$s,$steps,$n,$d" >>"$out/torch.csv"
    summary
  fi
  if [[ $only != torch ]] && ! done_run ember "$s"; then
    echo "[parity] ember seed $s: $steps steps"
    run=$out/ember_s$s resume=()
    compgen -G "$run/checkpoints/step_*.safetensors" >/dev/null && resume=(--resume)
    "$bin" train --out "$run" --steps "$steps" --seed "$s" --device cpu --checkpoint-every 100 \
      --sample-every 500 --log-every 100 "${resume[@]}" >>"$out/ember_s$s.log" 2>&1
    ck=$(printf '%s/checkpoints/step_%08d.safetensors' "$run" "$steps")
    "$bin" evaluate --checkpoint "$ck" --no-ema --n "$n" --seed "$s" --csv "$out/ember_eval.csv" \
      >>"$out/ember_s$s.log" 2>&1
    d=$(tail -1 "$out/ember_eval.csv" | cut -d, -f5)
    echo "$s,$steps,$n,$d" >>"$out/ember.csv"
    summary
  fi
done
summary
