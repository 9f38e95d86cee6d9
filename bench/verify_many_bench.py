"""`ckptwatch verify` over many small files: --files Keras-layout checkpoints of --bytes each
(default 1,000 of 64 KiB) in one directory, verified by one `ckptwatch verify --level LEVEL DIR`
(with `-j` at its default, one per CPU, and with each -j in --jobs) against one warm h5py process
that opens each file and reads every dataset (bench/h5py_read_all.py's loop, in one Python
process started and warmed before the clock starts: what a user's own script over a directory
costs at best). Wall time and CPU (user + system, children included), median of --reps
interleaved runs, files warm in the page cache. Prints one markdown table.

  /usr/bin/python3 bench/verify_many_bench.py --bin build/ckptwatch --files 1000 --reps 3
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import fmt, median, verdict

sys.path.insert(0, os.path.join(benchlib.HERE, "..", "tests"))
import writers  # noqa: E402

TARGET_RATIO = 1.5  # issue 26: within 1.5× of one warm h5py process

# The warm reader: imports h5py and reads one file before it says "ready"; then, on "go", reads
# every file named on stdin and prints its wall and CPU seconds.
READER = r"""
import os, sys, time, h5py
def read(path):
    def visit(_, obj):
        if isinstance(obj, h5py.Dataset):
            obj[()]
    with h5py.File(path, "r") as f:
        f.visititems(visit)
paths = sys.argv[1:]
read(paths[0])
print("ready", flush=True)
sys.stdin.readline()
t0, c0 = time.perf_counter(), time.process_time()
for p in paths:
    read(p)
print(time.perf_counter() - t0, time.process_time() - c0, flush=True)
"""


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ckptwatch(binary, directory, level, jobs):
    argv = [binary, "verify", "--level", level]
    if jobs:
        argv += ["-j", str(jobs)]
    cpu0 = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run([*argv, directory], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, children_cpu() - cpu0


def run_reader(paths):
    proc = subprocess.Popen([benchlib.PYTHON, "-c", READER, *paths], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the h5py reader did not start")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    wall, cpu = (float(x) for x in proc.stdout.readline().split())
    proc.wait()
    return wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--bytes", type=int, default=64 << 10)
    parser.add_argument("--level", default="structure", choices=["structure", "full"])
    parser.add_argument("--jobs", default="1", help="comma-separated -j values besides the default")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tmpdir", default=tempfile.gettempdir())
    parser.add_argument("--no-header", action="store_true", help="omit the machine header")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="cw-many-", dir=args.tmpdir)
    try:
        binary = benchlib.snapshot_binary(args.bin, os.path.join(work, "bin"))
        directory = os.path.join(work, "files")
        os.makedirs(directory)
        layers = writers.sized_stack(args.bytes)
        paths = [os.path.join(directory, f"ckpt_{i:05d}.h5") for i in range(args.files)]
        for path in paths:
            writers.write_sized_model(path, args.bytes, layers)
        tools = [("ckptwatch", 0)] + [("ckptwatch", int(j)) for j in args.jobs.split(",") if j]
        results = {t: [] for t in tools}
        results[("h5py", 0)] = []
        for _ in range(args.reps):
            for tool in tools:
                results[tool].append(run_ckptwatch(binary, directory, args.level, tool[1]))
            results[("h5py", 0)].append(run_reader(paths))
        base_wall = median([w for w, _ in results[("h5py", 0)]])
        base_cpu = median([c for _, c in results[("h5py", 0)]])
        if not args.no_header:
            print(f"**Machine:** {benchlib.machine(args.tmpdir)}  ")
            print(f"**ckptwatch:** {benchlib.binary_version(binary)}, git {benchlib.git_commit()}  ")
            print()
        print(f"### `ckptwatch verify --level {args.level}` over {args.files:,} files of "
              f"{args.bytes >> 10} KiB vs one warm h5py process")
        print()
        rows = []
        for tool, runs in results.items():
            name, jobs = tool
            wall = median([w for w, _ in runs])
            cpu = median([c for _, c in runs])
            label = ("one warm h5py process: open + read every dataset" if name == "h5py" else
                     f"`ckptwatch verify{' -j ' + str(jobs) if jobs else ''}`"
                     f"{'' if jobs else f' (-j {os.cpu_count()}, the default)'}")
            ratio = wall / base_wall
            is_default = name == "ckptwatch" and jobs == 0
            rows.append([label, fmt(wall, 2), fmt(cpu * 1000 / args.files, 2), f"{ratio:.2f}×",
                         f"≤ {TARGET_RATIO}× (issue 26)" if is_default else "",
                         verdict(ratio <= TARGET_RATIO) if is_default else ""])
        print(benchlib.table(["tool", "wall s (median):", "CPU ms per file:",
                              "× warm h5py wall:", "target", "status"], rows))
        print()
        print(f"Median of {args.reps} interleaved runs; CPU is user + system of the command and its "
              f"children (the reader's: its own process time after start-up); "
              f"warm h5py: {fmt(base_wall, 2)} s, {fmt(base_cpu * 1000 / args.files, 2)} ms CPU per file.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
