#!/usr/bin/env bash
# CTest's entries for one Catch2 binary must be exactly that binary's test cases. CMake splits a
# test name at ';' (a list separator) into entries that match no test; such a phantom entry once
# "passed" while running nothing. Usage: check_test_names.sh CTEST BUILD_DIR PREFIX BINARY
set -euo pipefail
ctest=$1 build=$2 prefix=$3 binary=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# "  Test  #12: cpu:tensor: factories" -> "tensor: factories" (Catch's CMake drops the space
# after the prefix; an optional one is stripped too).
{ "$ctest" --test-dir "$build" -N 2>/dev/null || true; } | sed -n "s/^ *Test *#[0-9]*: ${prefix} \?//p" | sort > "$tmp/ctest"
# Catch2 v2 exits with the number of tests listed: not an error. An empty list fails the diff.
{ "$binary" --list-test-names-only || true; } | sed '/^$/d' | sort > "$tmp/catch"
status=0
if grep -n ';' "$tmp/catch"; then
  echo "error: the Catch2 test names above contain ';', which CMake splits into phantom CTest entries"
  status=1
fi
if ! diff "$tmp/catch" "$tmp/ctest" > "$tmp/diff"; then
  echo "error: CTest entries '${prefix}*' differ from the test cases of $binary ('<' Catch2 only, '>' CTest only):"
  cat "$tmp/diff"
  status=1
fi
[ "$status" -eq 0 ] && echo "$(wc -l < "$tmp/catch") test cases, each one CTest entry '${prefix}<name>'"
exit "$status"
