#!/usr/bin/env bash
# Every benchmark of docs/performance.md in one command: prints one markdown document (a header
# naming the machine, then one table per section), every median and ratio measured in this run.
#
# usage: bench/run.sh [--quick] [--build-dir DIR] [--out FILE] [--keep-data] [--wait S]
#                     [SECTION...]
#
#   SECTION      verify latency burst scale idle sharded (default: all six, in that order)
#   --quick      a smoke run of about two minutes: 1 GiB only, 100 files for latency, a
#                1,000-file burst, 1,000 directories for scale, a 10 s idle window, a 128-shard
#                save, one rep each
#   --build-dir  where the ckptwatch binary is (default: build); it is copied first, so a rebuild
#                during the run cannot change what is measured
#   --out FILE   also write the document to FILE
#   --keep-data  keep the generated checkpoints (1 GiB and 10 GiB) in $TMPDIR/ckptwatch-run.*
#   --wait S     before each section, wait up to S seconds (default 600; 0: not at all) for the
#                CPUs to be 80 % idle, so others' builds and tests disturb less; the document
#                says how idle they were
#
# Run as root: the burst lowers fs.inotify.max_queued_events (and restores it), and missing tools
# (inotify-tools, linux-perf, strace) are installed with apt-get. Generated data peaks at about
# 12 GiB under $TMPDIR (default /tmp), 4 GiB more for the sharded save, and is deleted at the end.
set -euo pipefail

# All of it is one function, read whole before it runs: editing this file during a long run
# cannot change what the running one does.
main() {
  local command_line="bench/run.sh $*"
  here=$(cd "$(dirname "$0")" && pwd)
  root=$(cd "$here/.." && pwd)
  python=/usr/bin/python3  # Debian's, which has h5py.

  quick=0
  build_dir=$root/build
  out=
  keep=0
  wait=600
  sections=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --quick) quick=1 ;;
      --build-dir) build_dir=$2; shift ;;
      --out) out=$2; shift ;;
      --keep-data) keep=1 ;;
      --wait) wait=$2; shift ;;
      verify|latency|burst|scale|idle|sharded) sections+=("$1") ;;
      -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
  done
  [[ ${#sections[@]} -gt 0 ]] || sections=(verify latency burst scale idle sharded)

  if [[ ! -x $build_dir/ckptwatch ]]; then
    echo "bench/run.sh: no ckptwatch binary in $build_dir; build first (make build)" >&2
    exit 2
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench/run.sh: run as root (sysctl fs.inotify.max_queued_events, apt-get)" >&2
    exit 2
  fi

  # Tools the sections need, by Debian package.
  missing=()
  command -v inotifywait >/dev/null || missing+=(inotify-tools)
  command -v perf >/dev/null || missing+=(linux-perf)
  command -v strace >/dev/null || missing+=(strace)
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing ${missing[*]}..." >&2
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi

  tmp=${TMPDIR:-/tmp}
  work=$(mktemp -d "$tmp/ckptwatch-run.XXXXXX")
  old_queue=$(cat /proc/sys/fs/inotify/max_queued_events)
  cleanup() {
    # The burst restores it itself; this is for a run killed in the middle of one.
    echo "$old_queue" > /proc/sys/fs/inotify/max_queued_events
    if [[ $keep -eq 1 ]]; then
      echo "kept generated data in $work" >&2
    else
      rm -rf "$work"
    fi
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  # The front and the engine it execs (and whose children verify), side by side as built.
  bin=$work/ckptwatch
  cp -p "$build_dir/ckptwatch" "$build_dir/ckptwatch-engine" "$work/"

  run_section() {
    local name=$1
    echo "== section $name ($(date -u +%H:%M:%S))" >&2
    case $name in
      verify)
        if [[ $quick -eq 1 ]]; then
          "$python" "$here/verify_bench.py" --bin "$bin" --dir "$work/data" --no-header \
            --size 1GiB --cold --runs 5 --cold-runs 3
          "$python" "$here/verify_profile.py" --bin "$bin" --dir "$work/data" --runs 5 --perf-runs 1
        else
          "$python" "$here/verify_bench.py" --bin "$bin" --dir "$work/data" --no-header \
            --size 1GiB --size 10GiB --cold --runs 7 --cold-runs 5
          "$python" "$here/verify_profile.py" --bin "$bin" --dir "$work/data" --runs 7 --perf-runs 3
        fi ;;
      latency)
        if [[ $quick -eq 1 ]]; then
          "$python" "$here/latency_bench.py" --bin "$bin" --tmpdir "$work" --no-header \
            --files 100 --reps 1
        else
          "$python" "$here/latency_bench.py" --bin "$bin" --tmpdir "$work" --no-header \
            --files 500 --reps 3
        fi ;;
      burst)
        if [[ $quick -eq 1 ]]; then
          "$python" "$here/burst_bench.py" --bin "$bin" --tmpdir "$work" --no-header \
            --files 1000 --reps 1 --max-queued-events 16
        else
          "$python" "$here/burst_bench.py" --bin "$bin" --tmpdir "$work" --no-header \
            --files 5000 --reps 3 --max-queued-events 256,16
        fi ;;
      scale)
        if [[ $quick -eq 1 ]]; then
          "$python" "$here/watch_cost_bench.py" scale --bin "$bin" --tmpdir "$work" --no-header \
            --dirs 1000 --reps 1
        else
          "$python" "$here/watch_cost_bench.py" scale --bin "$bin" --tmpdir "$work" --no-header \
            --dirs 10000 --reps 3
        fi ;;
      idle)
        if [[ $quick -eq 1 ]]; then
          "$python" "$here/watch_cost_bench.py" idle --bin "$bin" --tmpdir "$work" --no-header \
            --dirs 1000 --seconds 10 --reps 1
        else
          "$python" "$here/watch_cost_bench.py" idle --bin "$bin" --tmpdir "$work" --no-header \
            --dirs 1000 --seconds 60 --reps 3
        fi ;;
      sharded)
        if [[ $quick -eq 1 ]]; then
          "$python" "$here/sharded_bench.py" --bin "$bin" --tmpdir "$work" --no-header \
            --files 128 --reps 1
        else
          "$python" "$here/sharded_bench.py" --bin "$bin" --tmpdir "$work" --no-header \
            --files 512 --bytes $((8 << 20)) --reps 3
        fi ;;
    esac
  }

  document() {
    echo "## ckptwatch benchmarks$([[ $quick -eq 1 ]] && echo ' (quick)')"
    echo
    "$python" "$here/benchlib.py" header --tmpdir "$tmp" --bin "$bin" \
      --command-line "$command_line"
    echo
    for section in "${sections[@]}"; do
      local quiet=
      if [[ $wait -gt 0 ]]; then
        echo "waiting up to $wait s for a quiet machine..." >&2
        quiet=$("$python" "$here/benchlib.py" quiet --max-wait "$wait")
      fi
      # The section's title first, then how quiet the machine was, then its tables.
      run_section "$section" > "$work/section.md"
      head -n 1 "$work/section.md"
      [[ -z $quiet ]] || printf '\n%s\n' "$quiet"
      tail -n +2 "$work/section.md"
    done
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (others share this machine)."
  }

  started=$(date +%s)
  if [[ " ${sections[*]} " == *" verify "* ]]; then
    # Before the first wait for a quiet machine: writing 11 GiB is not quiet.
    local sizes=(--size 1GiB --size 10GiB)
    [[ $quick -eq 0 ]] || sizes=(--size 1GiB)
    "$python" "$here/verify_bench.py" --bin "$bin" --dir "$work/data" --generate-only "${sizes[@]}"
  fi
  if [[ -n $out ]]; then
    document | tee "$out"
  else
    document
  fi
  echo "bench/run.sh: done in $(( $(date +%s) - started )) s" >&2
}

main "$@"
exit
