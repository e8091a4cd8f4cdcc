# Sourced by the sagan_celeba test scripts of this folder, after `BIN=$1`: a scratch folder $T
# removed on exit, fail(), no_tags(), and idle OpenMP threads that sleep instead of spinning (many
# short processes on a possibly busy machine).
export OMP_WAIT_POLICY=passive
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# User-facing errors name the flag or file, never a source location such as [trainer.cpp:120].
no_tags() { grep -qE '\[[A-Za-z_]+\.(cpp|h|cu|cuh):[0-9]+\]' "$1" && fail "source tag in a user message: $(cat "$1")"; true; }
