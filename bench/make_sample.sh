#!/usr/bin/env bash
# Writes a small sample Keras checkpoint (a Keras 2 full-model .h5 and a Keras 3 .keras) into DIR,
# with the real h5py, for `make run`.
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/../tests/writers.py" sample "$1"
