#!/usr/bin/env bash
# Benchmarks `ckptwatch verify` at each level against h5py reading every dataset and against dd,
# on a ~1 GiB Keras-layout checkpoint (generated once, then reused), and prints a markdown table.
#
# usage: bench/verify.sh [BUILD_DIR] [--size BYTES|1GiB|512MiB] [--runs N] [--file PATH]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=$here/../build
if [[ $# -gt 0 && $1 != --* ]]; then
  build_dir=$1
  shift
fi
exec /usr/bin/python3 "$here/verify_bench.py" --bin "$build_dir/ckptwatch" "$@"
