#!/usr/bin/env python3
"""Times `ckptwatch verify` of two builds side by side, interleaved, on the same files.

For a change whose cost must stay small (the confined verifier: fd hand-off, capability drop,
seccomp filter), both builds verify the same checkpoints at each level in alternation, so
machine load affects both alike. Prints a markdown table: median wall time per file for each
build and their ratio.

usage: bench/compare_builds.py --base OLD/ckptwatch --new NEW/ckptwatch [--runs 60]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import writers  # noqa: E402


def make_files(directory):
    """A small Keras full model and a 64 MiB weights file: start-up cost and read cost."""
    small = os.path.join(directory, "small_full_model.h5")
    writers.write_full_model(small, writers.dense_stack())
    large = os.path.join(directory, "large_weights.h5")
    import h5py
    import numpy
    with h5py.File(large, "w") as f:
        for i in range(16):
            f[f"layer_{i}/kernel"] = numpy.ones((1024, 1024), dtype="float32")
    return {"small": small, "64MiB": large}


def time_once(binary, level, path):
    started = time.perf_counter()
    proc = subprocess.run([binary, "verify", "--level", level, path],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{binary} verify --level {level} {path}: {proc.stdout}{proc.stderr}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the baseline ckptwatch binary")
    parser.add_argument("--new", required=True, help="the ckptwatch binary under test")
    parser.add_argument("--runs", type=int, default=60, help="runs per build, level and file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ckptwatch-compare-") as d:
        files = make_files(d)
        for name, path in files.items():
            for level in ("header", "structure", "full"):
                times = {"base": [], "new": []}
                for _ in range(3):  # warm the page cache and both binaries
                    time_once(args.base, level, path)
                    time_once(args.new, level, path)
                for _ in range(args.runs):
                    times["base"].append(time_once(args.base, level, path))
                    times["new"].append(time_once(args.new, level, path))
                base = statistics.median(times["base"]) * 1000
                new = statistics.median(times["new"]) * 1000
                rows.append((name, level, base, new, new / base))
    print(f"`ckptwatch verify` per file, median of {args.runs} interleaved runs "
          f"(wall clock, whole process)\n")
    print("| file | level | base ms | new ms | new / base |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, level, base, new, ratio in rows:
        print(f"| {name} | {level} | {base:.1f} | {new:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
