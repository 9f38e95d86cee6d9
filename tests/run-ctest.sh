#!/usr/bin/env bash
# `make test`: CTest on BUILD_DIR, refusing an empty selection; under CI (CI=true) a test that
# CTest reports as skipped (GTEST_SKIP, an e2e module that ran nothing) also fails the run.
#
# usage: tests/run-ctest.sh BUILD_DIR [CTEST_ARGS...]
set -euo pipefail
build=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
(cd "$build" && ctest --no-tests=error --output-on-failure -j "${JOBS:-2}" "$@") 2>&1 | tee "$out" || rc=$?
if [[ ${CI:-} == true ]] && grep -q '\*\*\*Skipped\|(Skipped)' "$out"; then
  echo "run-ctest: CI=true and CTest skipped tests (listed above): missing evidence fails CI" >&2
  rc=1
fi
exit $rc
