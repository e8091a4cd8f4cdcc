#!/usr/bin/env bash
# Checks of `sagan_celeba evaluate` (the Frechet distance on the committed Fashion-MNIST
# classifier's features) on tiny runs, CPU:
#   1. bad input fails with a message naming what was wrong, a non-zero status and no source
#      tag: a missing checkpoint, a checkpoint of an RGB model (the classifier does not apply),
#      --ema on a checkpoint without an EMA copy, an unknown --bn, a missing classifier file;
#   2. `sample --bn eval|batch|standing --attention FILE` writes the grid and the attention picture;
#   3. a real checkpoint is scored: the distance and the floor are printed, finite and >= 0, and
#      an untrained-ish G is far worse than the real-data floor; the same seed gives the same number.
# Usage: sagan_celeba_evaluate.sh PATH/TO/sagan_celeba
set -uo pipefail
BIN=$1
source "$(dirname "$0")/common.sh"
TINY="--width 0.125 --batch 8 --workers 1 --device cpu --seed 3 --log-every 1"

# A 2-step Fashion-MNIST run (with an EMA copy) and one without EMA.
"$BIN" train --out "$T/fm" $TINY --steps 2 --ema 0.9 >"$T/fm.log" 2>&1 || { cat "$T/fm.log"; fail "tiny Fashion-MNIST run"; }
"$BIN" train --out "$T/fm_noema" $TINY --steps 1 >"$T/fm2.log" 2>&1 || { cat "$T/fm2.log"; fail "tiny run without EMA"; }
CK=$(ls "$T"/fm/checkpoints/*.safetensors | tail -1)
CK_NOEMA=$(ls "$T"/fm_noema/checkpoints/*.safetensors | tail -1)
# An RGB run: a folder of PNGs (grids drawn by `sample`, read as 3-channel images), 32x32.
mkdir -p "$T/rgb_data"
for i in 1 2 3; do "$BIN" sample --checkpoint "$CK" --n 4 --seed $i --out "$T/rgb_data/$i.png" >/dev/null 2>&1 || fail "sample for the RGB data"; done
"$BIN" train --data "$T/rgb_data" --size 32 --out "$T/rgb" --width 0.125 --batch 2 --workers 1 --device cpu --steps 1 \
  >"$T/rgb.log" 2>&1 || { cat "$T/rgb.log"; fail "tiny RGB run"; }
CK_RGB=$(ls "$T"/rgb/checkpoints/*.safetensors | tail -1)
# sample: the attention picture of the EMA G (the sampler when the checkpoint has one), each --bn.
for bn in auto eval batch standing; do
  "$BIN" sample --checkpoint "$CK" --n 8 --bn $bn --out "$T/s_$bn.png" --attention "$T/a_$bn.png" >"$T/s.log" 2>&1 \
    || { cat "$T/s.log"; fail "sample --bn $bn --attention"; }
  [ -s "$T/s_$bn.png" ] && [ -s "$T/a_$bn.png" ] || fail "sample --bn $bn wrote no grid or attention picture"
done

# 1. bad input
expect_error() {  # expect_error "wanted message part" args...
  local want=$1; shift
  if "$BIN" evaluate "$@" >"$T/out.txt" 2>&1; then fail "evaluate $* should fail: $(cat "$T/out.txt")"; fi
  grep -qF -- "$want" "$T/out.txt" || fail "evaluate $*: no '$want' in: $(cat "$T/out.txt")"
  no_tags "$T/out.txt"
  echo "ok: rejected: $(grep error: "$T/out.txt" | head -1)"
}
expect_error "error: --checkpoint $T/missing.safetensors: no such file" --checkpoint "$T/missing.safetensors" --n 100
expect_error "scores 1-channel 32x32 Fashion-MNIST models only" --checkpoint "$CK_RGB" --n 100
expect_error "sagan_celeba export" --checkpoint "$CK_RGB" --n 100
expect_error "--ema: $CK_NOEMA has no EMA generator" --checkpoint "$CK_NOEMA" --ema --n 100
expect_error "--bn must be auto, eval, batch or standing, got 'sometimes'" --checkpoint "$CK" --bn sometimes --n 100
expect_error "the Fashion-MNIST classifier weights $T/none.safetensors" --checkpoint "$CK" --classifier "$T/none.safetensors" --n 100
expect_error "--n must be >= 2" --checkpoint "$CK" --n 1

# 3. a real score; 500 images: the floor at this n is a few units, a 2-step G is far off.
# One process (the test statistics are computed once): auto, then standing, then eval. For the EMA
# copy auto means standing: the first two lines must be equal (which also shows that a run
# repeats: G is reloaded for each line); eval statistics give another number.
"$BIN" evaluate --checkpoint "$CK" --n 500 --seed 4 --bn auto,standing,eval >"$T/e.txt" 2>&1 \
  || { cat "$T/e.txt"; fail "evaluate"; }
cat "$T/e.txt"
scores=$(sed -n 's/^frechet distance \([0-9.]*\): 500 images of the EMA G (step 2, BatchNorm \([a-z]*\)).*/\1 \2/p' "$T/e.txt")
[ "$(echo "$scores" | awk '{print $2}' | tr '\n' ' ')" = "standing standing eval " ] \
  || fail "expected the EMA G with standing, standing, eval statistics: $(cat "$T/e.txt")"
d=$(echo "$scores" | sed -n 1p | cut -d' ' -f1)
d2=$(echo "$scores" | sed -n 2p | cut -d' ' -f1)
d3=$(echo "$scores" | sed -n 3p | cut -d' ' -f1)
f=$(sed -n 's/^floor \([0-9.]*\): .*/\1/p' "$T/e.txt")
[ -n "$d" ] && [ -n "$f" ] || fail "no distance or floor printed"
awk -v d="$d" -v f="$f" 'BEGIN { exit !(f >= 0 && d > 2 * f && d > 10) }' || fail "distance $d should be far above the floor $f"
[ "$d" = "$d2" ] || fail "auto ($d) and standing ($d2) differ for the EMA G (or a repeat differs)"
[ "$d" != "$d3" ] || fail "eval statistics gave exactly the standing statistics' $d: the mode had no effect"
echo "ok: distance $d, floor $f (n 500)"
echo "PASS"
