"""Times `ckptwatch verify --level full` on a warm safetensors file (default 1 GiB of F32, BF16 and
F16 tensors, written once by the published format and reused) against dd reading the same bytes,
and prints a markdown table of medians with the ratio. Target: full ≤ 1.25× dd.

usage: /usr/bin/python3 bench/safetensors_bench.py [--bin build/ckptwatch] [--size 1GiB] [--runs 5]
       [--file PATH]
"""

import argparse
import os
import struct
import sys
import tempfile

import numpy as np

import benchlib
from verify_bench import MIB, parse_size, size_name, time_once, warm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import format_writers  # noqa: E402

TARGET = 1.25


def ensure_file(path, size):
    """A safetensors file of `size` bytes of data in 64 MiB tensors cycling F32, BF16, F16;
    PATH.complete marks one that was written whole."""
    marker = path + ".complete"
    if os.path.exists(path) and os.path.exists(marker):
        return
    chunk = 64 * MIB
    dtypes = [("F32", 4), ("BF16", 2), ("F16", 2)]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for i in range(size // chunk):
        dtype, width = dtypes[i % 3]
        header[f"layers.{i}.weight"] = {"dtype": dtype, "shape": [chunk // width], "data_offsets": [offset, offset + chunk]}
        offset += chunk
    text = format_writers.json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(11)
    # Random halfwords with bit 14 clear: the exponent is never all ones in F32, BF16 or F16.
    block = (rng.integers(0, 1 << 16, chunk // 2, dtype=np.uint16) & 0x3FFF).tobytes()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _ in range(size // chunk):
            f.write(block)
    open(marker, "w").close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "ckptwatch"))
    parser.add_argument("--size", type=parse_size, default=1 << 30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--file", default=None)
    args = parser.parse_args()
    path = args.file or os.path.join(tempfile.gettempdir(), f"ckptwatch-bench-{size_name(args.size)}.safetensors")
    ensure_file(path, args.size)
    tools = {
        "dd if=FILE of=/dev/null bs=1M": ["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"],
        "ckptwatch verify --level full": [args.bin, "verify", "--level", "full", path],
        "ckptwatch verify --level structure": [args.bin, "verify", "--level", "structure", path],
    }
    warm(path)
    times = {name: [] for name in tools}
    for _ in range(args.runs):
        for name, argv in tools.items():  # interleaved: drift hits every tool alike
            times[name].append(time_once(argv))
    medians = {name: benchlib.median(t) for name, t in times.items()}
    dd = medians["dd if=FILE of=/dev/null bs=1M"]
    full = medians["ckptwatch verify --level full"]
    print(f"machine: {benchlib.machine(tempfile.gettempdir())}")
    print(f"file: {path}, {os.path.getsize(path):,} bytes, warm page cache, median of {args.runs} runs\n")
    rows = [[name, benchlib.fmt(ms), benchlib.fmt(ms / dd, 2)] for name, ms in medians.items()]
    print(benchlib.table(["tool", "ms:", "× dd:"], rows))
    print(f"\ntarget: full ≤ {TARGET}× dd: {benchlib.verdict(full / dd <= TARGET)} ({full / dd:.2f}×)")
    return 0 if full / dd <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
