#!/usr/bin/env bash
# End-to-end checks of sagan_celeba on the CPU with a tiny SAGAN on Fashion-MNIST:
#   1. bad data (missing folder, empty folder, only corrupt images) fails before training,
#      with a message and a non-zero status, and writes nothing;
#   2. a run stopped at step 3 and resumed to step 6 logs exactly the losses, D outputs,
#      gammas and sigmas of an uninterrupted 6-step run (deterministic mode);
#   3. samples, attention maps and checkpoints are written; `sample` reads a checkpoint;
#   4. SIGINT writes a checkpoint and exits cleanly; a second SIGINT quits at once (status 130);
#   5. flags out of range (--size 48, --lr-g inf, --beta2 1.0, ...) and a batch larger than the
#      data fail before the run folder exists, naming the flag, without source tags;
#   6. --resume of a moved run folder writes into the new --out; model flags that differ from
#      the checkpoint are refused (each named with both values), interval flags take effect;
#   7. a run whose weights blow up stops at the first non-finite loss, non-zero, and writes no
#      checkpoint of the broken state; the first progress line comes after the first step.
# Usage: sagan_celeba_e2e.sh PATH/TO/sagan_celeba
set -uo pipefail
BIN=$1
source "$(dirname "$0")/common.sh"
# No Frechet distance (its own test is sagan_celeba_evaluate.sh): it would cost seconds a run.
BASE0="--width 0.125 --batch 8 --workers 1 --deterministic --device cpu --seed 5 --frechet-every 0"
BASE="$BASE0 --log-every 1"
COMMON="$BASE --sample-every 3 --checkpoint-every 3"

# 1. bad input
mkdir -p "$T/empty" "$T/corrupt"
printf 'not a jpeg' > "$T/corrupt/a.jpg"
printf '\x89PNG\r\n\x1a\n garbage' > "$T/corrupt/b.png"
for d in "$T/missing" "$T/empty" "$T/corrupt"; do
  if "$BIN" train --data "$d" --out "$T/bad_run" $COMMON --steps 2 >"$T/out.txt" 2>&1; then
    fail "training on $d should fail"
  fi
  grep -q "error: --data $d: " "$T/out.txt" || fail "no error message naming --data for $d: $(cat "$T/out.txt")"
  no_tags "$T/out.txt"
  [ ! -e "$T/bad_run" ] || fail "a failed start on $d wrote $T/bad_run"
  echo "ok: $d rejected: $(grep error: "$T/out.txt" | head -1)"
done

# 2. resume equals uninterrupted
"$BIN" train --out "$T/full" $COMMON --steps 6 >"$T/full.log" 2>&1 || { cat "$T/full.log"; fail "uninterrupted run"; }
"$BIN" train --out "$T/part" $COMMON --steps 3 >"$T/part1.log" 2>&1 || { cat "$T/part1.log"; fail "first half"; }
# 6. The folder moves between the halves: the run continues where --out says, not where the
# checkpoint was written. Model flags that differ are refused before anything is written.
mv "$T/part" "$T/moved"
snapshot() { (cd "$T/moved" && find . -type f | sort && md5sum metrics.csv); }
snapshot > "$T/before.txt"
if "$BIN" train --out "$T/moved" --resume --steps 6 --batch 16 --lr-g 0.001 --arch dcgan --seed 5 >"$T/mis.log" 2>&1; then
  fail "resuming with a different --batch/--lr-g/--arch should fail"
fi
for want in "--batch: the checkpoint has 8, the command line 16" "--lr-g: the checkpoint has 1e-04, the command line 0.001" \
            "--arch: the checkpoint has 'sagan', the command line 'dcgan'"; do
  grep -qF -- "$want" "$T/mis.log" || fail "mismatch message lacks '$want': $(cat "$T/mis.log")"
done
grep -q -- "--seed" "$T/mis.log" && fail "--seed 5 equals the checkpoint's and is not a mismatch: $(cat "$T/mis.log")"
diff "$T/before.txt" <(snapshot) >/dev/null || fail "a refused --resume changed the run folder"
echo "ok: resume with different model flags refused: $(grep -c 'the checkpoint has' "$T/mis.log") flags named"
# Interval and worker flags given with --resume take effect (checkpoints every step now).
"$BIN" train --out "$T/moved" --resume --steps 6 --checkpoint-every 1 --workers 2 --seed 5 >"$T/part2.log" 2>&1 \
  || { cat "$T/part2.log"; fail "resumed half"; }
grep -q "resumed from $T/moved/" "$T/part2.log" || fail "the second half did not resume from the moved folder"
[ ! -e "$T/part" ] || fail "the resumed run re-created the folder the checkpoint came from"
for s in 4 5 6; do [ -s "$T/moved/checkpoints/step_0000000$s.safetensors" ] || fail "--checkpoint-every 1 ignored on resume (no step $s)"; done
# Compare everything but the timing and memory columns (6-8).
strip() { cut -d, -f1-5,9- "$1"; }
if ! diff <(strip "$T/full/metrics.csv") <(strip "$T/moved/metrics.csv"); then
  fail "resumed run differs from the uninterrupted one"
fi
[ "$(wc -l < "$T/full/metrics.csv")" -eq 7 ] || fail "expected a header and 6 metric lines"
echo "ok: stopped at 3, folder moved, resumed to 6 == uninterrupted 6 steps; new intervals used"

# 3. outputs
for f in samples/step_00000003.png samples/attention_step_00000003.png samples/step_00000006.png \
         checkpoints/step_00000003.safetensors checkpoints/step_00000006.safetensors; do
  [ -s "$T/full/$f" ] || fail "missing $f"
done
ls "$T/full/checkpoints" | grep -q tmp && fail "a temporary checkpoint file was left behind"
"$BIN" sample --checkpoint "$T/full/checkpoints/step_00000006.safetensors" --n 4 --out "$T/grid.png" \
  --save-tensor "$T/images.safetensors" --device cpu >"$T/sample.log" 2>&1 || { cat "$T/sample.log"; fail "sample"; }
[ -s "$T/grid.png" ] && [ -s "$T/images.safetensors" ] || fail "sample wrote nothing"
if "$BIN" sample --checkpoint "$T/nope.safetensors" --out "$T/x.png" --device cpu >"$T/nope.log" 2>&1; then
  fail "sampling a missing checkpoint should fail"
fi
grep -qF "error: --checkpoint $T/nope.safetensors: no such file" "$T/nope.log" || fail "missing checkpoint: $(cat "$T/nope.log")"
no_tags "$T/nope.log"
head -c 1000 "$T/full/checkpoints/step_00000006.safetensors" > "$T/cut.safetensors"
if "$BIN" sample --checkpoint "$T/cut.safetensors" --out "$T/x.png" --device cpu >"$T/cut.log" 2>&1; then
  fail "sampling a truncated checkpoint should fail"
fi
grep -qF "error: --checkpoint $T/cut.safetensors: " "$T/cut.log" || fail "truncated checkpoint: $(cat "$T/cut.log")"
no_tags "$T/cut.log"
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
grep -q "stopping after the current step and writing a checkpoint" "$T/sig.log" || fail "no message on the first SIGINT"
echo "ok: SIGINT wrote $(ls "$T/sig/checkpoints") and exited 0"

# A second SIGINT while the checkpoint is being written quits at once: status 130, the
# unfinished file stays a .tmp that --resume ignores, the previous checkpoint is used.
SAGAN_CELEBA_DEBUG_SAVE_PAUSE=30 "$BIN" train --out "$T/sig2" $BASE --steps 100000 --checkpoint-every 2 \
  --sample-every 100000 >"$T/sig2.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ "$(grep -c "debug: pausing" "$T/sig2.log")" -ge 2 ] && break  # step 2 saved, step 4 in the middle
  kill -0 "$pid" 2>/dev/null || { cat "$T/sig2.log"; fail "the run for the double SIGINT ended early"; }
  sleep 0.2
done
kill -INT "$pid"; sleep 0.3; kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || { cat "$T/sig2.log"; fail "second SIGINT: exit status $rc, expected 130"; }
[ "$(ls "$T/sig2/checkpoints")" = "$(printf 'step_00000002.safetensors\nstep_00000004.safetensors.tmp')" ] \
  || fail "after the second SIGINT: $(ls "$T/sig2/checkpoints")"
"$BIN" train --out "$T/sig2" --resume --steps 3 >"$T/sig2r.log" 2>&1 || { cat "$T/sig2r.log"; fail "resume after SIGINT x2"; }
grep -q "resumed from $T/sig2/checkpoints/step_00000002.safetensors" "$T/sig2r.log" || fail "did not resume from step 2"
grep -q "warning: ignoring.*step_00000004.safetensors.tmp" "$T/sig2r.log" || fail "no warning about the .tmp file"
echo "ok: a second SIGINT during a checkpoint write exits 130; resume uses step 2 and ignores the .tmp"

# 5. flags checked before anything is written; messages name the flag, without [file.cpp:N].
"$BIN" export --checkpoint "$T/full/checkpoints/step_00000006.safetensors" --n 3 --out "$T/few" --device cpu \
  >/dev/null 2>&1 || fail "export"
printf 'junk' > "$T/few/zz_bad.png"
check_refused() {  # expected-message, then the train arguments
  local want=$1; shift
  if "$BIN" train --out "$T/refused" "$@" >"$T/ref.log" 2>&1; then fail "train $* should fail"; fi
  grep -qF -- "$want" "$T/ref.log" || fail "train $*: expected '$want' in: $(cat "$T/ref.log")"
  no_tags "$T/ref.log"
  [ ! -e "$T/refused" ] || fail "train $* wrote $T/refused"
  echo "ok: refused before writing: $(grep error: "$T/ref.log" | head -1)"
}
check_refused "error: --size must be 32, 64 or 128, got 48" --size 48 --steps 1
check_refused "error: --size 64: the default data (Fashion-MNIST) is 32x32 only" --size 64 --steps 1
check_refused "error: --size must be 32, 64 or 128, got 48" --size 48 --data "$T/corrupt" --steps 1
check_refused "error: --lr-g must be a finite number > 0, got inf" --lr-g inf --steps 1
check_refused "error: --lr-d must be a finite number > 0" --lr-d -1 --steps 1
check_refused "error: --beta2 must be in [0, 1), got 1" --beta2 1.0 --steps 1
check_refused "error: --beta1 must be in [0, 1)" --beta1 nan --steps 1
check_refused "error: --seed must be >= 0, got -3" --seed -3 --steps 1
# EMBER_DEBUG=1 adds the source location for a developer.
EMBER_DEBUG=1 "$BIN" train --out "$T/refused" --seed -3 >"$T/dbg.log" 2>&1
grep -qE '^error: --seed must be >= 0, got -3 \[config\.cpp:[0-9]+\]$' "$T/dbg.log" || fail "EMBER_DEBUG=1: $(cat "$T/dbg.log")"
check_refused "error: --width 0.01 gives channel counts" --width 0.01 --device cpu --steps 1
check_refused "error: --batch 8 is larger than the data: 3 readable image(s) under $T/few (1 unreadable skipped); use --batch 3 or less" \
  --data "$T/few" --size 32 --batch 8 --workers 1 --device cpu --steps 1

# A folder run resumed with --size given (equal to the checkpoint's) is checked against the
# run's data, not against the default data.
"$BIN" train --out "$T/fold" --data "$T/few" --size 32 --batch 2 --workers 1 --width 0.125 --device cpu --steps 1 \
  >"$T/fold.log" 2>&1 || { cat "$T/fold.log"; fail "training on a folder of 3 images"; }
"$BIN" train --out "$T/fold" --resume --size 32 --steps 2 >"$T/fold2.log" 2>&1 || { cat "$T/fold2.log"; fail "resume with --size"; }
grep -q "resumed from .* at step 1" "$T/fold2.log" || fail "folder run did not resume: $(cat "$T/fold2.log")"
echo "ok: a folder run resumes with --size 32 given"

# 7. Weights that blow up (a learning rate of 1e30 is finite and allowed) stop the run at the
# first non-finite loss; no checkpoint of that step or later exists; the first progress line
# is printed after step 1 although --log-every is 10.
if "$BIN" train --out "$T/nan" $BASE0 --log-every 10 --lr-g 1e30 --steps 20 --checkpoint-every 1 \
  --sample-every 100 >"$T/nan.log" 2>&1; then
  fail "a run whose weights blow up should fail: $(cat "$T/nan.log")"
fi
grep -q "^step 1/20 |" "$T/nan.log" || fail "no progress line after the first step: $(cat "$T/nan.log")"
bad=$(sed -n 's/^error: step \([0-9]*\): .* is not finite (NaN or Inf); training stopped without writing a checkpoint.*/\1/p' "$T/nan.log")
[ -n "$bad" ] || fail "no non-finite error: $(cat "$T/nan.log")"
no_tags "$T/nan.log"
for f in "$T/nan/checkpoints"/step_*; do
  n=$(basename "$f" | sed 's/step_0*\([0-9]*\).*/\1/')
  [ "$n" -lt "$bad" ] || fail "checkpoint $f written at or after the failing step $bad"
done
grep -q "nan\|inf" "$T/nan/metrics.csv" && fail "non-finite values reached metrics.csv"
echo "ok: $(grep error: "$T/nan.log")"
echo "all sagan_celeba end-to-end checks passed"
