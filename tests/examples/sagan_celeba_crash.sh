#!/usr/bin/env bash
# Crash safety of sagan_celeba training (CPU, a tiny SAGAN on Fashion-MNIST, --deterministic):
#   1. SIGKILL at random times with a checkpoint every step (so kills land before, during and
#      after writes), resuming each time: every checkpoint on disk loads whole, and the finished
#      run's metrics (losses, D outputs, gammas, sigmas) equal an uninterrupted run's;
#   2. SIGKILL inside a checkpoint write (held open by SAGAN_CELEBA_DEBUG_SAVE_PAUSE), next to a
#      truncated newer checkpoint and an empty one: --resume warns about each by name, continues
#      from the newest valid checkpoint and again matches the uninterrupted run;
#   3. the disk fills during a checkpoint write (ulimit -f): a clear error naming the file, a
#      non-zero exit, no partial file, and the previous checkpoint intact and loadable.
# Usage: sagan_celeba_crash.sh PATH/TO/sagan_celeba   (CRASH_SEED=N repeats a run's kill times)
set -uo pipefail
BIN=$1
source "$(dirname "$0")/common.sh"
SEED=${CRASH_SEED:-$$}
RANDOM=$SEED
echo "kill times from CRASH_SEED=$SEED"
N=8
ARGS="--width 0.125 --batch 8 --workers 1 --deterministic --device cpu --seed 7 --log-every 1 --sample-every 1000"
# Compare everything but the timing and memory columns (6-8).
strip() { cut -d, -f1-5,9- "$1"; }
same_as_reference() {  # run folder, what
  diff <(strip "$T/ref/metrics.csv") <(strip "$1/metrics.csv") >"$T/diff.txt" \
    || fail "$2: the metrics differ from the uninterrupted run: $(head -5 "$T/diff.txt")"
}
has_checkpoint() { ls "$1"/checkpoints/step_*.safetensors >/dev/null 2>&1; }
loads() { "$BIN" sample --checkpoint "$1" --n 1 --out "$T/probe.png" --device cpu >"$T/probe.log" 2>&1; }

"$BIN" train --out "$T/ref" $ARGS --steps $N --checkpoint-every $N >"$T/ref.log" 2>&1 || { cat "$T/ref.log"; fail "reference run"; }
[ "$(wc -l < "$T/ref/metrics.csv")" -eq $((N + 1)) ] || fail "reference: expected a header and $N metric lines"

# 1. Random SIGKILLs: each round waits for a random number of progress lines (the machine's
# speed does not matter), then a random fraction of a step, then kills.
declare -A checked
kills=0
n_checked=0
for round in 1 2 3 4; do
  resume=""
  has_checkpoint "$T/run" && resume="--resume"
  "$BIN" train --out "$T/run" $ARGS --steps $N --checkpoint-every 1 $resume >"$T/kill$round.log" 2>&1 &
  pid=$!
  wait_lines=$((RANDOM % 4))
  for _ in $(seq 1 600); do
    [ "$(grep -c '^step ' "$T/kill$round.log")" -ge "$wait_lines" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep "0.$((RANDOM % 10))"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
  grep -q "^error:" "$T/kill$round.log" && { cat "$T/kill$round.log"; fail "round $round failed by itself"; }
  for f in "$T"/run/checkpoints/step_*.safetensors; do
    [ -e "$f" ] || continue
    [ -n "${checked[$f]:-}" ] && continue
    loads "$f" || fail "round $round left a checkpoint that does not load: $f: $(cat "$T/probe.log")"
    checked[$f]=1
    n_checked=$((n_checked + 1))
  done
  echo "round $round: killed after $(grep -c '^step ' "$T/kill$round.log") progress line(s) + 0.x s;" \
    "checkpoints: $(ls "$T/run/checkpoints" 2>/dev/null | tr '\n' ' ')"
done
resume=""
has_checkpoint "$T/run" && resume="--resume"
"$BIN" train --out "$T/run" $ARGS --steps $N --checkpoint-every 1 $resume >"$T/final.log" 2>&1 \
  || { cat "$T/final.log"; fail "the final resume"; }
same_as_reference "$T/run" "after $kills SIGKILLs"
echo "ok: $kills SIGKILLs at random times, $n_checked checkpoints all loadable, resumed run == uninterrupted run"

# 2. SIGKILL inside a checkpoint write, with a truncated and an empty checkpoint beside it.
SAGAN_CELEBA_DEBUG_SAVE_PAUSE=30 "$BIN" train --out "$T/mid" $ARGS --steps $N --checkpoint-every 2 >"$T/mid.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ "$(grep -c "debug: pausing" "$T/mid.log")" -ge 2 ] && break  # step 2 written, step 4 held open
  kill -0 "$pid" 2>/dev/null || { cat "$T/mid.log"; fail "the run to kill mid-write ended early"; }
  sleep 0.2
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
C="$T/mid/checkpoints"
[ -e "$C/step_00000004.safetensors.tmp" ] && [ ! -e "$C/step_00000004.safetensors" ] || fail "no unfinished write: $(ls "$C")"
size=$(stat -c %s "$C/step_00000002.safetensors")
head -c $((size / 2)) "$C/step_00000002.safetensors" > "$C/step_00000003.safetensors"  # truncated
: > "$C/step_00000005.safetensors"                                                      # empty
"$BIN" train --out "$T/mid" --resume >"$T/mid2.log" 2>&1 || { cat "$T/mid2.log"; fail "resume after the mid-write kill"; }
for want in "warning: ignoring '$C/step_00000004.safetensors.tmp'" "warning: skipping checkpoint '$C/step_00000005.safetensors'" \
            "warning: skipping checkpoint '$C/step_00000003.safetensors'" "resumed from $C/step_00000002.safetensors at step 2"; do
  grep -qF -- "$want" "$T/mid2.log" || fail "expected '$want' in: $(cat "$T/mid2.log")"
done
same_as_reference "$T/mid" "after a kill mid-write"
echo "ok: killed inside a checkpoint write; the .tmp, a truncated and an empty checkpoint were skipped with warnings"

# 3. Disk full during a checkpoint write.
"$BIN" train --out "$T/full" $ARGS --steps 2 --checkpoint-every 2 >"$T/full1.log" 2>&1 || { cat "$T/full1.log"; fail "disk-full setup"; }
C="$T/full/checkpoints"
good="$C/step_00000002.safetensors"
sum_before=$(md5sum < "$good")
limit_kb=$(( $(stat -c %s "$good") / 1024 / 2 ))  # half a checkpoint
( ulimit -f "$limit_kb"; exec "$BIN" train --out "$T/full" --resume --steps 4 --checkpoint-every 1 ) >"$T/full2.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] || fail "a checkpoint write past the file-size limit exited 0: $(cat "$T/full2.log")"
grep -q "^error: cannot write the checkpoint $C/step_00000003.safetensors: .*File too large.*$good, is intact" "$T/full2.log" \
  || fail "disk full: unclear error: $(cat "$T/full2.log")"
[ "$(ls "$C")" = "step_00000002.safetensors" ] || fail "disk full left files behind: $(ls "$C")"
[ "$(md5sum < "$good")" = "$sum_before" ] || fail "the previous checkpoint changed"
loads "$good" || fail "the previous checkpoint does not load after the disk-full error: $(cat "$T/probe.log")"
echo "ok: disk full (exit $rc): $(grep '^error:' "$T/full2.log" | cut -c1-160)..."
echo "all sagan_celeba crash-safety checks passed"
