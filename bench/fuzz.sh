#!/usr/bin/env bash
# Fuzzes ckptwatch's own parsers with libFuzzer (targets in bench/fuzz/): builds them with
# clang-14, ASan and UBSan in build-fuzz/, writes their seed corpora, runs every target for
# SECONDS (default 300), FUZZ_JOBS at a time (default 2), and prints executions, coverage and
# crashes per target. Exits 1 when any target crashed, leaked, hung or ran out of memory; the
# inputs that did it are kept in build-fuzz/artifacts/<target>/ (reproduce: the target binary
# with the file as its argument). What each target checks: the comment atop bench/fuzz/*.cc.
#
# usage: bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   e.g. bench/fuzz.sh 600 config
#        bench/fuzz.sh --build-only     (builds the targets and stops)
# Needs: clang-14 libclang-rt-14-dev (apt-get install), python3-h5py and python3-torch for the
# seeds, and the top-level CMakeLists.txt including bench/fuzz when CKPTWATCH_FUZZ=ON.
# Environment: FUZZ_JOBS, CKPTWATCH_CORPUS (default ../shared/corpus), CKPTWATCH_FORMATS_CORPUS
# (default ../shared/corpus-formats), FUZZ_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
if [[ ${1:-} == --build-only ]]; then
  build_only=true
  shift
fi
seconds=${1:-300}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || {
  echo "usage: bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
}
shift $(($# > 0 ? 1 : 0))
all_targets=(superblock keras_zip config units logfmt keras_classes text_escape safetensors torch state)
targets=("${@:-${all_targets[@]}}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" ${t%_fuzz} "* ]] || {
    echo "fuzz.sh: unknown target $t (known: ${all_targets[*]})" >&2
    exit 2
  }
done
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-2}
corpus=${CKPTWATCH_CORPUS:-../shared/corpus}

for tool in clang-14 clang++-14 /usr/bin/python3; do
  command -v "$tool" >/dev/null || {
    echo "fuzz.sh: $tool not found (apt-get install clang-14 libclang-rt-14-dev python3-h5py)" >&2
    exit 2
  }
done

started=$SECONDS
# -O1 and assertions on: fast enough to fuzz, and every check in the code stays armed. Line
# tables only (a crash report names file and line) and a unity build: CI builds this each run.
if [[ ! -f $build/CMakeCache.txt ]]; then
  grep -q 'add_subdirectory(bench/fuzz)' CMakeLists.txt || {
    echo "fuzz.sh: CMakeLists.txt does not include bench/fuzz (see bench/fuzz/CMakeLists.txt)" >&2
    exit 2
  }
  cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCKPTWATCH_FUZZ=ON -DCKPTWATCH_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_UNITY_BUILD=ON >/dev/null
fi
cmake --build "$build" -j 2 --target ckptwatch_fuzz
build_seconds=$((SECONDS - started))
if $build_only; then
  echo "fuzz.sh: build ${build_seconds}s (--build-only)"
  exit 0
fi

seeds=$build/fuzz-seeds
rm -rf "$seeds"
/usr/bin/python3 bench/fuzz/make_seeds.py "$seeds" "$corpus"
mkdir -p "$build/fuzz-logs"

# Per target: longest input, and a dictionary where one exists.
declare -A max_len=([superblock]=8192 [keras_zip]=65536 [config]=4096 [units]=64 [logfmt]=1024
  [keras_classes]=16384 [text_escape]=4096 [safetensors]=16384 [torch]=65536 [state]=16384)

binary() {
  local bin=$build/bench/fuzz/$1_fuzz
  [[ -x $bin ]] || bin=$(find "$build" -name "$1_fuzz" -type f -perm -u+x | head -1)
  echo "$bin"
}

run_target() {
  local name=$1 bin
  bin=$(binary "$1")
  local work=$build/fuzz-corpus/$name artifacts=$build/artifacts/$name/
  mkdir -p "$work" "$artifacts" "$seeds/$name"
  local dict=()
  [[ -f bench/fuzz/$name.dict ]] && dict=(-dict="bench/fuzz/$name.dict")
  local rc=0
  UBSAN_OPTIONS=print_stacktrace=1 "$bin" -max_total_time="$seconds" -max_len="${max_len[$name]}" \
    -timeout=10 -rss_limit_mb=2048 -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "${dict[@]}" "$work" "$seeds/$name" \
    >"$build/fuzz-logs/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$build/fuzz-logs/$name.rc"
}

# Each job is a subshell running one fuzzer: stop both, so no fuzzer outlives the script.
pids=()
stop() {
  for pid in "${pids[@]}"; do
    kill $(ps -o pid= --ppid "$pid") "$pid" 2>/dev/null || true
  done
}
trap stop EXIT
trap 'exit 130' INT TERM

for t in "${targets[@]}"; do
  t=${t%_fuzz}
  rm -f "$build/fuzz-logs/$t.rc"
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  run_target "$t" &
  pids+=($!)
done
wait || true
pids=()

failed=0
printf '\n%-14s %12s %9s %6s %7s %7s  %s\n' target executions exec/s cov ft corpus result
for t in "${targets[@]}"; do
  t=${t%_fuzz}
  log=$build/fuzz-logs/$t.log
  rc=$(cat "$build/fuzz-logs/$t.rc" 2>/dev/null || echo 1)
  # The last status line libFuzzer printed: "#N DONE cov: C ft: F corp: K/..b ... exec/s: E".
  status=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [[ -n $execs ]] || execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$status")
  field() { sed -nE "s|.* $1: ([0-9]+).*|\1|p" <<<"$status"; }
  cov=$(field cov) ft=$(field ft) rate=$(field exec/s)
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$status")
  # This run's findings: the seeds were written just before it started.
  findings=$(find "$build/artifacts/$t" -type f -newer "$seeds" \( -name 'crash-*' \
    -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null || true)
  result=ok
  if [[ $rc != 0 || -n $findings ]]; then
    result="FAILED (exit $rc)"
    failed=1
  fi
  printf '%-14s %12s %9s %6s %7s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "${corp:-?}" "$result"
  if [[ $result != ok ]]; then
    grep -E '^(SUMMARY|==[0-9]+==ERROR|.*_fuzz: )|runtime error' "$log" | head -5 | sed 's/^/    /'
    for f in $findings; do echo "    reproduce: $(binary "$t") $f"; done
    echo "    log: $log"
  fi
done
echo "fuzz.sh: build ${build_seconds}s, total $((SECONDS - started))s, ${seconds}s per target," \
  "$jobs at a time"
exit $failed
