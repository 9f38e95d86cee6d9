#!/usr/bin/env bash
# Mutation testing of the verdict-critical code: does a realistic bug make a test fail?
#
# Each row of bench/mutants.tsv names one mutant: a file, an exact text that must occur in it
# exactly once, its replacement, the ctest -R regex of the unit and pipeline tests that should
# kill it and, optionally (a sixth field), the ctest -R regex of the e2e tests that guard it too.
# The harness copies the worktree (tracked and untracked, not ignored, files as they are now)
# to $MUTANTS_DIR/src — the worktree itself is never modified — builds the unit tests there
# once, checks each mutant's unit tests pass unmutated, then per mutant: applies it, rebuilds
# ckptwatch_tests and ckptwatch_pipeline_tests (one object and a link), runs its unit tests
# (ctest -L "unit|pipeline" -R TESTS) and, when they pass and the row names e2e tests, builds
# the binaries and runs those (checked once, unmutated, before their first use); then restores
# the file. A mutant is killed by the first suite that fails, survived when all pass. A row
# whose text is not found exactly once, or whose mutant does not compile, is stale: fix the row.
# TESTS may be "-" for a row that only e2e tests guard (it counts against the unit target).
#
# Prints a markdown table with the suite that killed each row; exits 0 only when every
# selected mutant was killed.
#
# usage: bench/mutants.sh [NAME_REGEX]        e.g. bench/mutants.sh '^truncation-'
# Environment: MUTANTS_DIR (default $TMPDIR/ckptwatch-mutants, kept between runs so the next
# build is incremental), MUTANTS_TABLE (default bench/mutants.tsv), JOBS (default 2),
# MUTANTS_NO_E2E=1 (unit and pipeline tests only: a row they do not kill is reported survived).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${MUTANTS_DIR:-${TMPDIR:-/tmp}/ckptwatch-mutants}
table=$(realpath "${MUTANTS_TABLE:-bench/mutants.tsv}")
jobs=${JOBS:-2}
select=${1:-.}
src=$work/src
build=$work/build
started=$SECONDS

# The copy. Only files whose content differs from the copy's are written (with a fresh
# modification time), so the next build is incremental and never trusts a stale object.
mkdir -p "$src"
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
  if ! cmp -s "$f" "$src/$f"; then
    mkdir -p "$src/$(dirname "$f")"
    cp "$f" "$src/$f"
  fi
done

echo "mutants: building the unit tests in $build" >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCKPTWATCH_TESTS=ON \
  -DCKPTWATCH_CORPUS="$root/../shared/corpus" \
  -DCKPTWATCH_FORMATS_CORPUS="$root/../shared/corpus-formats" >/dev/null
build_tests() {
  nice -n 10 cmake --build "$build" --target ckptwatch_tests ckptwatch_pipeline_tests no_openat2 \
    -j "$jobs" >"$work/build.log" 2>&1
}
build_binaries() { nice -n 10 cmake --build "$build" --target ckptwatch ckptwatch-engine -j "$jobs" >"$work/build.log" 2>&1; }
run_tests() {
  (cd "$build" && ctest --no-tests=error --timeout 300 -j "$jobs" -L 'unit|pipeline' -R "$1" >"$work/ctest.log" 2>&1)
}
# e2e modules start daemons on fixed ports and share the machine: one at a time.
run_e2e() { (cd "$build" && ctest --no-tests=error --timeout 900 -L e2e -R "$1" >"$work/ctest.log" 2>&1); }
declare -A e2e_checked=()
if ! build_tests; then
  tail -30 "$work/build.log" >&2
  echo "mutants: the unmutated copy does not build" >&2
  exit 2
fi

# name, file, find, replace, tests[, e2e] — one mutant per line, selected by name. Fields are
# rejoined with the unit separator: `read` would merge the two TABs around an empty replacement.
mapfile -t rows < <(grep -v '^#' "$table" | grep -v '^[[:space:]]*$' |
  awk -F'\t' -v OFS='\037' -v re="$select" '(NF == 5 || NF == 6) && $1 ~ re { $1 = $1; print }')
if [[ ${#rows[@]} -eq 0 ]]; then
  echo "mutants: no row of $table matches '$select'" >&2
  exit 2
fi

# Swaps `find` for `replace` in a file; `find` must occur exactly once.
mutate() {
  /usr/bin/python3 - "$@" <<'PY'
import sys
path, find, replace = sys.argv[1:4]
text = open(path).read()
n = text.count(find)
if n != 1:
    sys.exit(f"found {n} times")
open(path, "w").write(text.replace(find, replace))
PY
}

for row in "${rows[@]}"; do
  IFS=$'\037' read -r name file find replace tests e2e <<<"$row"
  [[ $tests == - ]] && continue
  if ! run_tests "$tests"; then
    cat "$work/ctest.log" >&2
    echo "mutants: $name's tests ($tests) fail without the mutant: fix them first" >&2
    exit 2
  fi
done

# The e2e tests of a row, unmutated, once per regex: a failure there is not the mutant's.
check_e2e() {
  [[ -n ${e2e_checked[$1]:-} ]] && return 0
  build_binaries || { tail -30 "$work/build.log" >&2; echo "mutants: the unmutated binaries do not build" >&2; exit 2; }
  if ! run_e2e "$1"; then
    cat "$work/ctest.log" >&2
    echo "mutants: e2e tests ($1) fail without a mutant: fix them first" >&2
    exit 2
  fi
  e2e_checked[$1]=1
}

results=()
killed=0 by_unit=0 by_e2e=0
for row in "${rows[@]}"; do
  IFS=$'\037' read -r name file find replace tests e2e <<<"$row"
  t0=$SECONDS
  [[ -n $e2e && -z ${MUTANTS_NO_E2E:-} ]] && check_e2e "$e2e"
  cp "$src/$file" "$work/original"
  if ! err=$(mutate "$src/$file" "$find" "$replace" 2>&1); then
    result="STALE (text $err)"
  else
    result="**SURVIVED**"
    if ! build_tests; then
      result="STALE (does not compile)"
    elif [[ $tests != - ]] && ! run_tests "$tests"; then
      failed=$(grep -c '\*\*\*Failed\|\*\*\*Timeout\|\*\*\*Exception' "$work/ctest.log" || true)
      result="killed by unit|pipeline ($failed failing)"
      killed=$((killed + 1)) by_unit=$((by_unit + 1))
    elif [[ -n $e2e && -z ${MUTANTS_NO_E2E:-} ]]; then
      if ! build_binaries; then
        result="STALE (binaries do not compile)"
      elif ! run_e2e "$e2e"; then
        failed=$(grep -c '\*\*\*Failed\|\*\*\*Timeout\|\*\*\*Exception' "$work/ctest.log" || true)
        result="killed by e2e ($failed failing)"
        killed=$((killed + 1)) by_e2e=$((by_e2e + 1))
      fi
    fi
    cp "$work/original" "$src/$file"  # a fresh mtime: the next build recompiles it
  fi
  echo "mutants: $name: $result ($((SECONDS - t0)) s)" >&2
  results+=("| \`$name\` | \`$file\` | \`${tests//|/\\|}\` | ${e2e:+\`${e2e//|/\\|}\`} | ${result//|/\\|} |")
done
build_tests  # leave the copy built unmutated for the next run
[[ ${#e2e_checked[@]} -gt 0 ]] && build_binaries

commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- daemon tests && echo "" || echo "-dirty")
echo "Mutants of $commit ($table), $((SECONDS - started)) s:"
echo
echo "| mutant | file | unit tests (ctest -R) | e2e tests (ctest -R) | result |"
echo "| --- | --- | --- | --- | --- |"
printf '%s\n' "${results[@]}"
echo
total=${#rows[@]}
echo "$killed of $total killed: $by_unit by unit|pipeline tests ($((100 * by_unit / total)) %), $by_e2e more by e2e"
[[ $killed -eq $total ]]
