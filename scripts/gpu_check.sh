#!/usr/bin/env bash
# The GPU check: one command that proves the CUDA backend on a GPU machine (README, "The GPU check").
#
#   bash scripts/gpu_check.sh REPORT_DIR
#
# The machine needs the CUDA toolkit (nvcc, compute-sanitizer), CMake, a C++ compiler and python3;
# ninja and PyTorch with its nvidia-cudnn wheel are used when present. No Debian packages and no
# network: the header-only dependencies come from .deps/ (scripts/pack_deps.sh, run beforehand on a
# machine that has them), cuDNN from the CUDA toolkit or, failing that, the nvidia.cudnn wheel of
# the python3 on PATH, whose location is passed to CMake as CUDNN_ROOT.
# 0. stops at once, with a report saying why, when no GPU is visible (nvidia-smi) or .deps/ is
#    missing and the system has no Catch2;
# 1. configures (for the GPU's own compute capability) and builds everything, keeping going past
#    a failing target;
# 2. runs the whole CTest suite and FAILS if any test failed or was skipped (a CUDA test skips
#    only when no GPU is usable) or if no CUDA test ran;
# 3. runs compute-sanitizer memcheck, racecheck, initcheck and synccheck over ember_cuda_tests
#    (in parallel, each time-boxed; memcheck with the caching allocator off so that it sees every
#    tensor's true bounds), leaving out every test tagged [library] (those that run cuBLAS,
#    cuDNN or NCCL kernels, whose internals the sanitizers would report on) and [large];
#    step 2 runs the NCCL backend's one-GPU test ("cuda: dist: NCCL communicator ...") when the
#    build found NCCL (the nvidia-nccl-cu13 wheel of python3, cmake/nccl.cmake);
# 4. runs every benchmarks/bench_* program and benchmarks/*.py (the GPU programs first, the
#    PyTorch peers next, the CPU-only bench_cpu last), each in an equal share of the budget left;
#    a benchmark cut off by its share is reported as "cut", not as a failure;
# 5. writes REPORT_DIR/report.md (GPU, driver, nvcc, commit, date, each test, each benchmark's
#    output) and its logs, and prints a summary table last.
#
# Everything goes into REPORT_DIR, flat and at most 8 files. The whole run is budgeted
# (EMBER_GPU_CHECK_BUDGET seconds, default 540, to fit a 10-minute slot on a 16-core machine):
# each phase gets what its cap and the budget allow (each time box may overrun by its 10 s kill
# grace). Tests that need the Fashion-MNIST files are left out when the files are missing.
# Environment: BUILD_DIR (default build-gpu), EMBER_COMMIT (when the tree has no .git),
# EMBER_CMAKE_ARGS (extra configure arguments), CUDNN_ROOT (overrides the cuDNN search).
# Exit status: 0 when every phase passed (sanitizer runs cut by their time box and benchmarks cut
# by the budget are INCOMPLETE, not failures, and are flagged in the summary), 1 otherwise,
# 2 on bad usage.
set -uo pipefail

usage() { echo "usage: $0 REPORT_DIR   (see the comment at the top of this script)"; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "" | -*) usage >&2; exit 2 ;;
esac
if [ $# -ne 1 ]; then
  usage >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" || exit 2
REPORT_DIR=$(cd "$1" && pwd)
BUILD=${BUILD_DIR:-build-gpu}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BUDGET=${EMBER_GPU_CHECK_BUDGET:-540}
START=$(date +%s)
JOBS=$(nproc 2>/dev/null || echo 4)
cd "$ROOT" || exit 2

BUILD_LOG="$REPORT_DIR/build.log"
CTEST_LOG="$REPORT_DIR/ctest.log"
JUNIT="$REPORT_DIR/ctest-junit.xml"
SAN_LOG="$REPORT_DIR/sanitizers.log"
BENCH_LOG="$REPORT_DIR/benchmarks.log"
REPORT="$REPORT_DIR/report.md"
: >"$BUILD_LOG"
: >"$CTEST_LOG"
: >"$SAN_LOG"
: >"$BENCH_LOG"

# ---- helpers ------------------------------------------------------------------------------------
SUMMARY=()   # "phase|status|seconds|detail"
OVERALL=0
note() { printf '[gpu_check %4ds] %s\n' $(($(date +%s) - START)) "$*"; }
record() {  # phase status seconds detail
  SUMMARY+=("$1|$2|$3|$4")
  case "$2" in FAIL) OVERALL=1 ;; esac
}
# Seconds a phase may use: its cap, or what is left of the budget minus a reserve for later phases.
allow() {  # cap reserve
  local left=$((BUDGET - ($(date +%s) - START) - $2))
  [ "$left" -lt "$1" ] && echo $((left > 10 ? left : 10)) || echo "$1"
}
have() { command -v "$1" >/dev/null 2>&1; }

# ---- 5. the report (also written when an early check stops the run) ---------------------------
finish() {
  {
    echo "# GPU check"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| GPU | $GPU |"
    echo "| driver | $DRIVER |"
    echo "| nvcc | $NVCC_VERSION |"
    echo "| commit | $COMMIT |"
    echo "| date | $DATE |"
    echo "| total time | $(($(date +%s) - START)) s |"
    echo
    echo "## Summary"
    echo
    echo "| phase | status | seconds | detail |"
    echo "|---|---|---|---|"
    for row in "${SUMMARY[@]}"; do echo "| ${row//|/ | } |"; done
    echo
    echo "## Tests"
    echo
    if [ -s "$JUNIT" ]; then
      echo "| test | result | seconds |"
      echo "|---|---|---|"
      python3 - "$JUNIT" <<'EOF' 2>/dev/null || echo "(could not read $JUNIT)"
import sys, xml.etree.ElementTree as ET
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    status = tc.get("status", "run")
    if status in ("notrun", "disabled") or tc.find("skipped") is not None:
        result = "SKIPPED"
    elif status == "fail" or tc.find("failure") is not None or tc.find("error") is not None:
        result = "**FAILED**"
    else:
        result = "passed"
    name = tc.get("name", "?").replace("|", "/")
    print(f"| {name} | {result} | {float(tc.get('time', 0)):.2f} |")
EOF
    else
      echo '```'
      grep -E 'Test +#[0-9]+:' "$CTEST_LOG" || echo "(no test output)"
      echo '```'
    fi
    echo
    echo "## Sanitizers"
    echo
    echo '```'
    grep -E '^==== |ERROR SUMMARY|RACECHECK SUMMARY' "$SAN_LOG" || echo "(not run)"
    echo '```'
    echo
    echo "## Benchmarks"
    echo
    echo "Full output of each program (its own figures and checks):"
    echo
    echo '```'
    cat "$BENCH_LOG"
    echo '```'
    echo
    echo "Logs: build.log, ctest.log, ctest-junit.xml, sanitizers.log, benchmarks.log."
  } >"$REPORT"

  # The summary, printed last.
  echo
  echo "GPU check: $GPU, driver $DRIVER, commit ${COMMIT:0:12}, $(($(date +%s) - START)) s; report: $REPORT"
  printf '%-11s %-11s %7s  %s\n' phase status seconds detail
  for row in "${SUMMARY[@]}"; do
    IFS='|' read -r phase status secs detail <<<"$row"
    printf '%-11s %-11s %7s  %s\n' "$phase" "$status" "$secs" "$detail"
  done
  exit $OVERALL
}

# ---- 0. the machine -----------------------------------------------------------------------------
GPU="unknown"
DRIVER="unknown"
if have nvidia-smi; then
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  GPU=${GPU:-none visible}
  DRIVER=${DRIVER:-unknown}
fi
NVCC=/usr/local/cuda/bin/nvcc
have nvcc && NVCC=$(command -v nvcc)
NVCC_VERSION=$("$NVCC" --version 2>/dev/null | grep -o 'release [0-9.]*, V[0-9.]*' || echo "not found")
COMMIT=${EMBER_COMMIT:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo "unknown (no .git; set EMBER_COMMIT)")}
DATE=$(date -u +"%Y-%m-%d %H:%M UTC")
note "GPU: $GPU, driver $DRIVER, nvcc $NVCC_VERSION, commit $COMMIT"

# A GPU must be visible. Without nvidia-smi nothing can be said here: the test phase decides
# (it fails when the CUDA tests skip).
ARCH=90
if have nvidia-smi; then
  if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    record machine FAIL 0 "no GPU visible (nvidia-smi -L lists none): nothing to check here"
    finish
  fi
  # Build for the GPU's own compute capability ("9.0" -> 90); EMBER_CMAKE_ARGS may override it.
  CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  case "$CAP" in [0-9][0-9] | [0-9][0-9][0-9]) ARCH=$CAP ;; esac
fi
# The header-only dependencies: .deps/ (scripts/pack_deps.sh) or the system's packages.
if [ ! -f "$ROOT/.deps/include/catch2/catch.hpp" ] && [ ! -f /usr/include/catch2/catch.hpp ]; then
  record machine FAIL 0 "no Catch2: run scripts/pack_deps.sh where the packages are and copy .deps/ along"
  finish
fi

# cuDNN: CUDNN_ROOT when set, else the toolkit's when it has both header and library, else the
# nvidia.cudnn wheel of this python3 (PyTorch's). The chosen folder is passed to CMake as CUDNN_ROOT
# (cmake/cudnn.cmake then searches it alone), so CMake's own choice of Python does not matter; its
# lib folder also goes on the loader path, for cuDNN's own dlopen of its sub-libraries.
has_cudnn() { [ -f "$1/include/cudnn.h" ] && compgen -G "$1/lib*/libcudnn.so*" >/dev/null; }
CUDNN_ROOT_ARG=${CUDNN_ROOT:-}
if [ -z "$CUDNN_ROOT_ARG" ] && has_cudnn /usr/local/cuda; then CUDNN_ROOT_ARG=/usr/local/cuda; fi
if [ -z "$CUDNN_ROOT_ARG" ] && have python3; then
  # __path__, not __file__: a wheel's nvidia/cudnn may be a namespace package (no __init__.py).
  PY_CUDNN=$(python3 -c "import nvidia.cudnn as m; print(list(m.__path__)[0])" 2>/dev/null || true)
  if [ -n "$PY_CUDNN" ] && has_cudnn "$PY_CUDNN"; then CUDNN_ROOT_ARG=$PY_CUDNN; fi
fi
CUDNN_ARGS=()
if [ -n "$CUDNN_ROOT_ARG" ]; then
  CUDNN_ARGS=(-DCUDNN_ROOT="$CUDNN_ROOT_ARG")
  for d in "$CUDNN_ROOT_ARG"/lib "$CUDNN_ROOT_ARG"/lib64; do
    if [ -d "$d" ]; then export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  done
fi
# cuDNN loads parts of itself and of cuBLAS(Lt) with dlopen: the toolkit's libraries must be findable.
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do
  if [ -d "$d" ]; then export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"; fi
done

# ---- 1. configure and build ----------------------------------------------------------------------
t0=$(date +%s)
GENERATOR=()
have ninja && GENERATOR=(-G Ninja)
[ -f "$BUILD/CMakeCache.txt" ] && GENERATOR=()  # keep the generator of an existing build
note "configure + build in $BUILD ($JOBS jobs)"
# shellcheck disable=SC2086
cmake -S "$ROOT" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_PREFIX_PATH="$ROOT/.deps" -DCMAKE_INCLUDE_PATH="$ROOT/.deps/include" \
  "${CUDNN_ARGS[@]}" ${EMBER_CMAKE_ARGS:-} >>"$BUILD_LOG" 2>&1
CONFIGURE_RC=$?
if [ $CONFIGURE_RC -ne 0 ]; then
  record configure FAIL $(($(date +%s) - t0)) "cmake failed (see build.log)"
else
  CUDNN_LIB=$(grep -E '^CUDNN_LIBRARY:' "$BUILD/CMakeCache.txt" | cut -d= -f2-)
  if [ -n "$CUDNN_LIB" ]; then
    CUDNN_DIR=$(dirname "$CUDNN_LIB")
    export LD_LIBRARY_PATH="$CUDNN_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  KEEP_GOING=(-k 0)
  grep -q 'CMAKE_GENERATOR:INTERNAL=Ninja' "$BUILD/CMakeCache.txt" || KEEP_GOING=(-k)
  timeout "$(allow 300 200)" cmake --build "$BUILD" -j "$JOBS" -- "${KEEP_GOING[@]}" >>"$BUILD_LOG" 2>&1
  BUILD_RC=$?
  WARNINGS=$(grep -c 'warning' "$BUILD_LOG" || true)
  if [ $BUILD_RC -eq 0 ]; then
    record build PASS $(($(date +%s) - t0)) "sm_$ARCH, $WARNINGS warning lines; cuDNN ${CUDNN_LIB:-?} (CUDNN_ROOT ${CUDNN_ROOT_ARG:-unset})"
  else
    FAILED_TARGETS=$(grep -E '^FAILED:' "$BUILD_LOG" | head -5 | sed 's/^FAILED: //' | tr '\n' ' ')
    record build FAIL $(($(date +%s) - t0)) "rc $BUILD_RC (124 = time box); failed: ${FAILED_TARGETS:-see build.log}"
  fi
fi
CUDA_TESTS="$BUILD/tests/ember_cuda_tests"

# ---- 2. the test suite ----------------------------------------------------------------------------
t0=$(date +%s)
# Tests that read the Fashion-MNIST files (examples/common/idx.h; the GPU machine has no
# datasets): the IDX statistics test and the CPU-only end-to-end example. Left out, and said so,
# when the files are missing.
EXCLUDE=()
EXCLUDED_NOTE=""
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  EXCLUDE=(-E '^example: |Fashion-MNIST IDX files')
  EXCLUDED_NOTE="; left out (no /usr/share/datasets/fashion-mnist): the example end-to-end test and the IDX statistics test"
fi
if [ -f "$BUILD/CTestTestfile.cmake" ]; then
  note "ctest"
  ( cd "$BUILD" && timeout -k 10 "$(allow 180 230)" ctest -j "$JOBS" --timeout 170 --output-on-failure \
      --output-junit "$JUNIT" "${EXCLUDE[@]}" ) >"$CTEST_LOG" 2>&1
  CTEST_RC=$?
  # Counts from the JUnit file: CUDA tests are named "cuda:..."; SKIP_RETURN_CODE gives notrun.
  read -r TOTAL FAILED SKIPPED CUDA_RUN < <(python3 - "$JUNIT" <<'EOF' 2>/dev/null || echo "0 0 0 0"
import sys, xml.etree.ElementTree as ET
total = failed = skipped = cuda_run = 0
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    total += 1
    status = tc.get("status", "run")
    skip = status in ("notrun", "disabled") or tc.find("skipped") is not None
    fail = status == "fail" or tc.find("failure") is not None or tc.find("error") is not None
    skipped += skip
    failed += fail and not skip
    cuda_run += tc.get("name", "").startswith("cuda:") and not skip
print(total, failed, skipped, cuda_run)
EOF
  )
  if [ "${TOTAL:-0}" -eq 0 ]; then  # no JUnit (old CTest, or killed): fall back on the text output
    TOTAL=$(grep -cE 'Test +#[0-9]+:' "$CTEST_LOG" || true)
    FAILED=$(grep -cE 'Test +#[0-9]+:.*(Failed|Timeout|Exception)' "$CTEST_LOG" || true)
    SKIPPED=$(grep -cE 'Test +#[0-9]+:.*(Skipped|Not Run)' "$CTEST_LOG" || true)
    CUDA_RUN=$(grep -E 'Test +#[0-9]+: cuda:' "$CTEST_LOG" | grep -cE 'Passed|Failed' || true)
  fi
  detail="$TOTAL tests, $FAILED failed, $SKIPPED skipped, $CUDA_RUN CUDA tests ran (ctest rc $CTEST_RC)$EXCLUDED_NOTE"
  if [ "$CTEST_RC" -eq 0 ] && [ "${FAILED:-1}" -eq 0 ] && [ "${SKIPPED:-1}" -eq 0 ] && [ "${CUDA_RUN:-0}" -gt 0 ]; then
    record tests PASS $(($(date +%s) - t0)) "$detail"
  else
    record tests FAIL $(($(date +%s) - t0)) "$detail"
  fi
else
  record tests FAIL 0 "no CTest files: configure failed"
fi

# ---- 3. compute-sanitizer --------------------------------------------------------------------------
SANITIZER=/usr/local/cuda/bin/compute-sanitizer
have compute-sanitizer && SANITIZER=$(command -v compute-sanitizer)
if [ ! -x "$CUDA_TESTS" ]; then
  record sanitizers FAIL 0 "ember_cuda_tests was not built"
elif [ ! -x "$SANITIZER" ]; then
  record sanitizers FAIL 0 "compute-sanitizer not found"
else
  t0=$(date +%s)
  SAN_TIME=$(allow 120 150)
  note "compute-sanitizer, 4 tools in parallel, $SAN_TIME s each at most"
  # One Catch2 filter for all four tools. Left out: [library], every test that runs cuBLAS or
  # cuDNN kernels (tagged so in tests/cuda: the sanitizers would report on the libraries'
  # internals, which are not ours to fix); [allocator], tests of the caching allocator's
  # behaviour (memcheck runs with the cache off); [errors], tests that fail CUDA calls on purpose;
  # [large], attention at N = 1024 and 4096, which would use up the time box (ctest runs them).
  FILTER='[cuda]~[library]~[allocator]~[errors]~[large]'
  TOOLS=(memcheck racecheck initcheck synccheck)
  TMP=$(mktemp -d)
  PIDS=()
  for i in "${!TOOLS[@]}"; do
    tool=${TOOLS[$i]}
    extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check no)
    ( EMBER_CUDA_NO_CACHE=$([ "$tool" = memcheck ] && echo 1 || echo 0) \
        timeout -k 10 "$SAN_TIME" "$SANITIZER" --tool "$tool" "${extra[@]}" --error-exitcode 99 --print-limit 50 \
        "$CUDA_TESTS" "$FILTER" >"$TMP/$tool.log" 2>&1
      echo $? >"$TMP/$tool.rc" ) &
    PIDS+=($!)
  done
  wait "${PIDS[@]}"
  san_elapsed=$(($(date +%s) - t0))
  san_status=PASS
  san_detail=""
  for i in "${!TOOLS[@]}"; do
    tool=${TOOLS[$i]}
    rc=$(cat "$TMP/$tool.rc" 2>/dev/null || echo 1)
    # 137: the KILL that follows an ignored TERM by 10 s, when the time box was reached.
    [ "$rc" = 137 ] && [ "$san_elapsed" -ge "$SAN_TIME" ] && rc=124
    errors=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$TMP/$tool.log" | tail -1 | grep -oE '[0-9]+$' || true)
    case "$rc" in
      0) s="ok" ;;
      124) s="INCOMPLETE (time box)"; [ "$san_status" = PASS ] && san_status=INCOMPLETE ;;
      99) s="${errors:-?} errors"; san_status=FAIL ;;
      *) s="rc $rc (tests failed?)"; san_status=FAIL ;;
    esac
    [ "$rc" = 124 ] && [ -n "$errors" ] && [ "$errors" != 0 ] && { s="$errors errors before the time box"; san_status=FAIL; }
    san_detail+="$tool: $s; "
    {
      echo "==== $tool (filter $FILTER): exit $rc"
      tail -c 2000000 "$TMP/$tool.log"
      echo
    } >>"$SAN_LOG"
  done
  rm -rf "$TMP"
  record sanitizers "$san_status" $(($(date +%s) - t0)) "${san_detail%; }"
fi

# ---- 4. benchmarks -----------------------------------------------------------------------------------
t0=$(date +%s)
BENCH_RESULTS=()  # "name|status"
bench_fail=0     # a program failed by itself (its own check, a crash)
bench_cut=0      # a program was cut off by its share of the budget, or not started: INCOMPLETE
shopt -s nullglob
BENCHES=()
for b in "$BUILD"/benchmarks/bench_*; do
  [ -f "$b" ] && [ -x "$b" ] && [ "$(basename "$b")" != bench_cpu ] && BENCHES+=("$b")
done
SCRIPTS=("$ROOT"/benchmarks/*.py)
LAST=()  # CPU-only timings: least relevant here, so run last
[ -x "$BUILD/benchmarks/bench_cpu" ] && LAST=("$BUILD/benchmarks/bench_cpu")
shopt -u nullglob
ALL_BENCH=("${BENCHES[@]}" "${SCRIPTS[@]}" "${LAST[@]}")
for idx in "${!ALL_BENCH[@]}"; do
  b=${ALL_BENCH[$idx]}
  case "$b" in *.py) cmd=(python3 "$b") ;; *) cmd=("$b") ;; esac
  name=$(basename "$b")
  # An equal share of what is left for this and every later program (at most 120 s), so that a
  # slow one cannot starve the rest.
  remaining=$(( ${#ALL_BENCH[@]} - idx ))
  left=$(( (BUDGET - ($(date +%s) - START) - 5) / remaining ))
  [ "$left" -gt 120 ] && left=120
  if [ "$left" -lt 10 ]; then
    BENCH_RESULTS+=("$name|not run (budget spent)")
    bench_cut=1
    continue
  fi
  note "benchmark $name ($left s at most)"
  echo "==== $name" >>"$BENCH_LOG"
  b0=$(date +%s)
  ( cd "$ROOT" && EMBER_BUILD_DIR="$BUILD" PYTHONUNBUFFERED=1 timeout -k 10 "$left" "${cmd[@]}" ) >>"$BENCH_LOG" 2>&1
  rc=$?
  echo "==== $name: exit $rc" >>"$BENCH_LOG"
  # timeout exits 124 after its TERM, 137 after the KILL that follows 10 s later: the budget,
  # not the program, ended it (a 137 before the time box is a real kill, e.g. out of memory).
  if [ $rc -eq 0 ]; then
    BENCH_RESULTS+=("$name|ok")
  elif [ $rc -eq 124 ] || { [ $rc -eq 137 ] && [ $(($(date +%s) - b0)) -ge "$left" ]; }; then
    BENCH_RESULTS+=("$name|cut ($left s share of the budget)")
    bench_cut=1
  else
    BENCH_RESULTS+=("$name|FAILED (exit $rc)")
    bench_fail=1
  fi
done
if [ ${#BENCH_RESULTS[@]} -eq 0 ]; then
  record benchmarks PASS $(($(date +%s) - t0)) "none present"
else
  detail=$(printf '%s; ' "${BENCH_RESULTS[@]}" | tr '|' ' ')
  bench_status=PASS
  [ $bench_cut -eq 1 ] && bench_status=INCOMPLETE
  [ $bench_fail -eq 1 ] && bench_status=FAIL
  record benchmarks "$bench_status" $(($(date +%s) - t0)) "${detail%; }"
fi

finish
