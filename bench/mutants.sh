#!/usr/bin/env bash
# Mutation testing of the verdict-critical code: does a realistic bug make a unit test fail?
#
# Each row of bench/mutants.tsv names one mutant: a file, an exact text that must occur in it
# exactly once, its replacement, and the ctest -R regex of the unit tests that should kill it.
# The harness copies the worktree (tracked and untracked, not ignored, files as they are now)
# to $MUTANTS_DIR/src — the worktree itself is never modified — builds the unit tests there
# once, checks each mutant's tests pass unmutated, then per mutant: applies it, rebuilds
# ckptwatch_tests and ckptwatch_pipeline_tests (one object and a link), runs its tests and restores the file. A mutant is
# killed when its tests fail, survived when they pass. A row whose text is not found exactly
# once, or whose mutant does not compile, is stale: fix the row.
#
# Prints a markdown table; exits 0 only when every selected mutant was killed.
#
# usage: bench/mutants.sh [NAME_REGEX]        e.g. bench/mutants.sh '^truncation-'
# Environment: MUTANTS_DIR (default $TMPDIR/ckptwatch-mutants, kept between runs so the next
# build is incremental), MUTANTS_TABLE (default bench/mutants.tsv), JOBS (default 2).
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
  -DCKPTWATCH_CORPUS="$root/../shared/corpus" >/dev/null
build_tests() { nice -n 10 cmake --build "$build" --target ckptwatch_tests ckptwatch_pipeline_tests -j "$jobs" >"$work/build.log" 2>&1; }
run_tests() { (cd "$build" && ctest --no-tests=error --timeout 300 -j "$jobs" -R "$1" >"$work/ctest.log" 2>&1); }
if ! build_tests; then
  tail -30 "$work/build.log" >&2
  echo "mutants: the unmutated copy does not build" >&2
  exit 2
fi

# name, file, find, replace, tests — one mutant per line, selected by name.
mapfile -t rows < <(grep -v '^#' "$table" | grep -v '^[[:space:]]*$' |
  awk -F'\t' -v re="$select" 'NF == 5 && $1 ~ re')
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
  IFS=$'\t' read -r name file find replace tests <<<"$row"
  if ! run_tests "$tests"; then
    cat "$work/ctest.log" >&2
    echo "mutants: $name's tests ($tests) fail without the mutant: fix them first" >&2
    exit 2
  fi
done

results=()
killed=0
for row in "${rows[@]}"; do
  IFS=$'\t' read -r name file find replace tests <<<"$row"
  t0=$SECONDS
  cp "$src/$file" "$work/original"
  if ! err=$(mutate "$src/$file" "$find" "$replace" 2>&1); then
    result="STALE (text $err)"
  else
    if ! build_tests; then
      result="STALE (does not compile)"
    elif run_tests "$tests"; then
      result="**SURVIVED**"
    else
      failed=$(grep -c '\*\*\*Failed\|\*\*\*Timeout\|\*\*\*Exception' "$work/ctest.log" || true)
      result="killed ($failed failing)"
      killed=$((killed + 1))
    fi
    cp "$work/original" "$src/$file"  # a fresh mtime: the next build recompiles it
  fi
  echo "mutants: $name: $result ($((SECONDS - t0)) s)" >&2
  results+=("| \`$name\` | \`$file\` | \`${tests//|/\\|}\` | $result |")
done
build_tests  # leave the copy built unmutated for the next run

commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- daemon tests && echo "" || echo "-dirty")
echo "Mutants of $commit ($table), $((SECONDS - started)) s:"
echo
echo "| mutant | file | unit tests (ctest -R) | result |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${results[@]}"
echo
echo "$killed of ${#rows[@]} killed"
[[ $killed -eq ${#rows[@]} ]]
