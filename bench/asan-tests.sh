#!/usr/bin/env bash
# Builds ckptwatch and its whole test suite with AddressSanitizer and UBSan (GCC, -O1 -g1)
# in build-asan/ and runs the CTest suite under them: the unit tests, and the end-to-end tests,
# which run the sanitized binary (and through it, the sanitized verifier child).
#
# Sanitizer reports go to build-asan/sanitizer-logs/ (one file per reporting process) and are
# sorted afterwards by bench/asan_triage.py. A report in our code (any UBSan finding, a leak
# through our frames, a crash with a frame of ours anywhere above libhdf5's entry — libhdf5
# called back into us) or in a library other than libhdf5 fails the run. A verifier child
# crashing inside (uninstrumented) libhdf5 on a malformed corpus file, our frames only below it
# as its callers, is what that child exists for: counted and listed, not failed. libhdf5's own
# leaks are suppressed (below): a process that runs libhdf5 and exits normally (the unit
# binary; a verifier leaves with _Exit) would otherwise fail on them.
#
# The GoogleTest binaries run as 8 shards (CTest label `shard`, tests/CMakeLists.txt
# CKPTWATCH_GTEST_SHARDS), each one process running every 8th test, instead of one process per
# test: the same tests and assertions, without an instrumented process start and LeakSanitizer
# exit scan per test (583 tests: 328 s of test time one per process, 156 s in one process). Leaks
# are still checked, at each shard's exit. The one-test-per-process entries stay for -R:
# bench/asan-tests.sh -R Superblock. unit.house_check reads the source tree and runs nothing of
# ours, so it runs in the release suite only.
#
# Not run by default (any CTEST_ARGS replace this choice):
#  - e2e.package_test installs the .deb built from the build directory system-wide and checks
#    the unit's seccomp filter against the release binary's system calls under strace: an
#    instrumented package must not be installed, and the sanitizer runtime makes other calls.
#  - e2e.soak_test bounds the daemon's RSS growth, which under ASan measures the quarantine of
#    freed memory (up to 256 MiB by design), not the daemon. Its other checks pass under ASan:
#    bench/asan-tests.sh -R soak_test.
#  - e2e.asan_triage_test runs no binary of ours (it tests bench/asan_triage.py on canned
#    reports), e2e.prometheus_rules_test checks the shipped rules, dashboard and docs with promtool
#    and e2e.alert_latency_test times a real Prometheus's alert: what they ask of the daemon (an
#    ok save, a truncated or disk-full one, a scrape) daemon_test, causes_test and runs_test run
#    here too, and their own evidence is about Prometheus, which instrumenting us cannot change.
#    They run in the release suite (`make test`). Every module that feeds hostile bytes, names or
#    floods to the daemon or the verifier (security, fault_injection, formats, hostile_names,
#    alarm_denial, metrics_flood, ...) runs here: that is what the sanitizers are for.
#
# Builds only what the suite runs (both binaries, the two test binaries, no_openat2), not the
# benches. On CI's 2 cores the build was about half of this script's time (issue 23: 620 s of
# 1,309 s file by file; 314 s of 863 s unity), so nothing is built that no test runs.
#
# usage: bench/asan-tests.sh [CTEST_ARGS...]      e.g. bench/asan-tests.sh -R Superblock
#        bench/asan-tests.sh --build-only         (builds the tree and stops)
# Environment: ASAN_BUILD_DIR (default build-asan), JOBS (default 2), UNITY (default ON: CMake's
# unity build, 8 sources per translation unit: the instrumented build took 769 s of a clean-clone
# CI run file by file, 314 s unity; OFF to rebuild only what changed).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ASAN_BUILD_DIR:-build-asan}
jobs=${JOBS:-2}
started=$SECONDS
build_only=false
if [[ ${1:-} == --build-only ]]; then
  build_only=true
  shift
fi
ctest_args=("$@")
[[ ${#ctest_args[@]} -gt 0 ]] ||
  ctest_args=(-L '^(shard|e2e)$'
    -E '^e2e\.(package_test|soak_test|asan_triage_test|prometheus_rules_test|alert_latency_test)$')

sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# -O1 -g1 instead of RelWithDebInfo's -O2 -g: what the sanitizers find does not need -O2 (ASan's
# own advice is -O1), and a report's stack needs function names and line tables, not the
# variables -g adds. About 35-55 % less compile CPU per file (pipeline_test.cc 42.9 s -> 19.3 s;
# verify_command.cc 15.2 -> 11.7 s), the larger part of this script's time on CI (issue 23).
# -no-pie: an instrumented executable is 88 MB, and the dynamic loader spent 40 % of each start
# of a PIE one applying its relative relocations (perf; 190 ms of an engine start that does
# nothing, 113 ms without). The suite starts thousands of them (a verifier per file our CLI
# retires, every `verify` of the e2e tests), and their placement is not what ASan tests.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKPTWATCH_TESTS=ON \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_C_FLAGS="$sanitize" -DCMAKE_CXX_FLAGS="$sanitize" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitize -no-pie" -DCMAKE_UNITY_BUILD="${UNITY:-ON}" \
  -DCKPTWATCH_GTEST_SHARDS=8 >/dev/null
cmake --build "$build" -j "$jobs" --target ckptwatch ckptwatch-engine ckptwatch_tests \
  ckptwatch_pipeline_tests no_openat2
build_seconds=$((SECONDS - started))
if $build_only; then
  echo "asan-tests: build ${build_seconds}s (--build-only)"
  exit 0
fi

build=$(realpath "$build")
logs=$build/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# Leaks inside libhdf5 1.10.8 itself, found by this script: the udata of H5LTopen_file_image()
# with DONT_RELEASE on every .keras verification, and object-header and nbit-filter buffers on
# the error paths of malformed files.
printf 'leak:%s\n' H5LTopen_file_image H5O__prefix_deserialize H5O__chunk_deserialize \
  H5Z__filter_nbit >"$build/lsan.supp"
# malloc's stack is unwound by frame pointers (ASan's default; this script used to ask for the
# slow unwinder, to match these suppressions through libhdf5, which has no frame pointers). It is
# not needed for them: LeakSanitizer checks a process when it exits normally, and a verifier
# (one-shot or warm) leaves with _Exit after its verdict; the process that does run libhdf5 and
# exit normally is the unit binary, where the one leak met is H5LTopen_file_image's, its
# allocation's direct caller: 306 suppressed, and no other leak, with either unwinder (issue 23).
# Either way an unsuppressed leak fails the run. What the fast unwinder loses is depth in the
# allocation and free stacks of a report through libhdf5; what it saves is time wherever
# libhdf5 allocates (the unit tests: 208 s of test time -> 115 s; DirectReadCorpus 27 s -> 11 s).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$logs/asan"
export LSAN_OPTIONS="suppressions=$build/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
rc=0
JOBS=$jobs tests/run-ctest.sh "$build" "${ctest_args[@]}" || rc=$?
test_seconds=$((SECONDS - started - build_seconds))

/usr/bin/python3 bench/asan_triage.py "$logs" "$PWD/daemon/" || rc=1

echo "asan-tests: build ${build_seconds}s, tests ${test_seconds}s, total $((SECONDS - started))s;" \
  "reports in $logs"
exit $rc
