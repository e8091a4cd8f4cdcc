#!/usr/bin/env bash
# End-to-end checks of sagan_celeba on the CPU with a tiny SAGAN on Fashion-MNIST:
#   1. bad data (missing folder, empty folder, only corrupt images) fails before training,
#      with a message and a non-zero status, and writes nothing;
#   2. a run stopped at step 3 and resumed to step 6 logs exactly the losses, D outputs,
#      gammas and sigmas of an uninterrupted 6-step run (deterministic mode);
#   3. samples, attention maps and checkpoints are written; `sample` reads a checkpoint;
#   4. SIGINT writes a checkpoint and exits cleanly.
# Usage: sagan_celeba_e2e.sh PATH/TO/sagan_celeba
set -uo pipefail
BIN=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
BASE="--width 0.125 --batch 8 --log-every 1 --workers 1 --deterministic --device cpu --seed 5"
COMMON="$BASE --sample-every 3 --checkpoint-every 3"

# 1. bad input
mkdir -p "$T/empty" "$T/corrupt"
printf 'not a jpeg' > "$T/corrupt/a.jpg"
printf '\x89PNG\r\n\x1a\n garbage' > "$T/corrupt/b.png"
for d in "$T/missing" "$T/empty" "$T/corrupt"; do
  if "$BIN" train --data "$d" --out "$T/bad_run" $COMMON --steps 2 >"$T/out.txt" 2>&1; then
    fail "training on $d should fail"
  fi
  grep -q "error:" "$T/out.txt" || fail "no error message for $d: $(cat "$T/out.txt")"
  [ ! -e "$T/bad_run" ] || fail "a failed start on $d wrote $T/bad_run"
  echo "ok: $d rejected: $(grep error: "$T/out.txt" | head -1)"
done

# 2. resume equals uninterrupted
"$BIN" train --out "$T/full" $COMMON --steps 6 >"$T/full.log" 2>&1 || { cat "$T/full.log"; fail "uninterrupted run"; }
"$BIN" train --out "$T/part" $COMMON --steps 3 >"$T/part1.log" 2>&1 || { cat "$T/part1.log"; fail "first half"; }
"$BIN" train --out "$T/part" --resume --steps 6 >"$T/part2.log" 2>&1 || { cat "$T/part2.log"; fail "resumed half"; }
grep -q "resumed from" "$T/part2.log" || fail "the second half did not resume"
# Compare everything but the timing and memory columns (6-8).
strip() { cut -d, -f1-5,9- "$1"; }
if ! diff <(strip "$T/full/metrics.csv") <(strip "$T/part/metrics.csv"); then
  fail "resumed run differs from the uninterrupted one"
fi
[ "$(wc -l < "$T/full/metrics.csv")" -eq 7 ] || fail "expected a header and 6 metric lines"
echo "ok: stopped at 3 and resumed to 6 == uninterrupted 6 steps"

# 3. outputs
for f in samples/step_00000003.png samples/attention_step_00000003.png samples/step_00000006.png \
         checkpoints/step_00000003.safetensors checkpoints/step_00000006.safetensors; do
  [ -s "$T/full/$f" ] || fail "missing $f"
done
ls "$T/full/checkpoints" | grep -q tmp && fail "a temporary checkpoint file was left behind"
"$BIN" sample --checkpoint "$T/full/checkpoints/step_00000006.safetensors" --n 4 --out "$T/grid.png" \
  --save-tensor "$T/images.safetensors" --device cpu >"$T/sample.log" 2>&1 || { cat "$T/sample.log"; fail "sample"; }
[ -s "$T/grid.png" ] && [ -s "$T/images.safetensors" ] || fail "sample wrote nothing"
if "$BIN" sample --checkpoint "$T/nope.safetensors" --out "$T/x.png" --device cpu >/dev/null 2>&1; then
  fail "sampling a missing checkpoint should fail"
fi
echo "ok: samples, attention maps, checkpoints, sample command"

# 4. SIGINT
"$BIN" train --out "$T/sig" $BASE --steps 100000 --checkpoint-every 100000 --sample-every 100000 >"$T/sig.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$T/sig/metrics.csv" ] && [ "$(wc -l < "$T/sig/metrics.csv")" -ge 3 ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$T/sig.log"; fail "the run for the SIGINT check ended early"; }
  sleep 0.2
done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || { cat "$T/sig.log"; fail "SIGINT exit status $rc"; }
ls "$T/sig/checkpoints/"step_*.safetensors >/dev/null 2>&1 || fail "no checkpoint after SIGINT"
grep -q "stopped by signal" "$T/sig.log" || fail "no stop message"
echo "ok: SIGINT wrote $(ls "$T/sig/checkpoints") and exited 0"
echo "all sagan_celeba end-to-end checks passed"
