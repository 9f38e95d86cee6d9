#!/usr/bin/env bash
# One GoogleTest shard as one CTest test (tests/CMakeLists.txt, CKPTWATCH_GTEST_SHARDS): runs
# BINARY with GTEST_TOTAL_SHARDS and GTEST_SHARD_INDEX from the environment, printing only what
# failed or skipped. Exits 77 (CTest: Skipped) when every test of the shard passed but some
# skipped, so that CI=true refuses it as it refuses a skipped single test (run-ctest.sh); a
# failure stays a failure even when other tests of the shard skipped.
#
# usage: tests/run-gtest-shard.sh BINARY [GTEST_ARGS...]
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$1" --gtest_brief=1 "${@:2}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [[ $rc -eq 0 ]] && grep -q '^\[  SKIPPED \]' "$out"; then
  exit 77
fi
exit "$rc"
