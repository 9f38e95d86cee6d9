"""Driver of bench/verify.sh: times `ckptwatch verify` at each level, h5py reading every dataset
and dd on one Keras-layout checkpoint, all in this run, with a warm page cache, and prints the
machine and one markdown table of medians."""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WRITERS = os.path.join(HERE, "..", "tests", "writers.py")
H5PY_READ_ALL = os.path.join(HERE, "h5py_read_all.py")
PYTHON = "/usr/bin/python3"  # Debian's, which has h5py.
MIB = 1 << 20

# Rows that measure overhead, not verification: tool -> what the row means.
FLOORS = {
    "/bin/true (process spawn, no work)": "floor under every row (fork/exec/wait from Python)",
    "ckptwatch --version (process start, no file)": "floor under every ckptwatch row",
}
# tool -> (target text, predicate on (median_ms, h5py_ms)).
TARGETS = {
    "ckptwatch verify --level header": ("< 5 ms", lambda ms, h5py_ms: ms < 5),
    "ckptwatch verify --level structure": ("< 50 ms", lambda ms, h5py_ms: ms < 50),
    "ckptwatch verify --level full": (
        "≥ 5× faster than h5py", lambda ms, h5py_ms: h5py_ms / ms >= 5
    ),
}


def parse_size(text):
    match = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: want BYTES or e.g. 512MiB, 1GiB")
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[unit]


def ensure_checkpoint(path, size):
    """Generates the checkpoint unless a complete one (marked by PATH.complete) exists."""
    marker = path + ".complete"
    if os.path.exists(path) and os.path.exists(marker):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"generating {path} ({size / MIB:.0f} MiB)...", file=sys.stderr)
    partial = path + ".partial"
    subprocess.run([PYTHON, WRITERS, "sized", partial, str(size)], check=True)
    os.replace(partial, path)
    open(marker, "w").close()


def warm(path):
    with open(path, "rb") as f:
        while f.read(16 * MIB):
            pass


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"nproc {os.cpu_count()}, CPU {model}, kernel {platform.release()}"


def time_once(argv):
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed_ms = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(
            f"benchmark command failed (exit {proc.returncode}): {' '.join(argv)}\n"
            f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}"
        )
    return elapsed_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument(
        "--size", type=parse_size, default=1 << 30, help="checkpoint size (default 1GiB)"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per tool, median (min 5)")
    parser.add_argument(
        "--file", help="checkpoint to use (default: generated in $TMPDIR/ckptwatch-bench)"
    )
    args = parser.parse_args()
    runs = max(5, args.runs)
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"no ckptwatch binary at {args.bin}; build first (make build)")

    path = args.file or os.path.join(
        tempfile.gettempdir(), "ckptwatch-bench", f"keras_{args.size // MIB}MiB.h5"
    )
    if not args.file:
        ensure_checkpoint(path, args.size)
    size = os.path.getsize(path)
    datasets = subprocess.run(
        [PYTHON, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import writers; "
         "print(len(writers.dataset_names(sys.argv[2])))", os.path.dirname(WRITERS), path],
        check=True, capture_output=True, text=True,
    ).stdout.strip()

    tools = {
        "/bin/true (process spawn, no work)": ["/bin/true"],
        "ckptwatch --version (process start, no file)": [args.bin, "--version"],
        "ckptwatch verify --level header": [args.bin, "verify", "--level", "header", path],
        "ckptwatch verify --level structure": [args.bin, "verify", "--level", "structure", path],
        "ckptwatch verify --level full": [args.bin, "verify", "--level", "full", path],
        "h5py: open + read every dataset": [PYTHON, H5PY_READ_ALL, path],
        "dd if=FILE of=/dev/null bs=1M": [
            "dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"
        ],
    }
    warm(path)
    for argv in tools.values():  # One unmeasured run each: caches, lazy loading.
        time_once(argv)
    times = {name: [] for name in tools}
    for _ in range(runs):  # Interleaved, so drift hits every tool alike.
        for name, argv in tools.items():
            times[name].append(time_once(argv))
    medians = {name: statistics.median(t) for name, t in times.items()}
    h5py_ms = medians["h5py: open + read every dataset"]
    dd_ms = medians["dd if=FILE of=/dev/null bs=1M"]

    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Machine: {machine()}")
    print(f"ckptwatch: {' '.join(version.split())}")
    print(f"File: {path} ({size / MIB:.1f} MiB, {datasets} datasets), warm page cache, "
          f"median of {runs} runs, process start included")
    print()
    print("| tool | wall time (ms, median) | throughput (MiB/s) | × faster than h5py "
          "| × dd time | target |")
    print("|---|---:|---:|---:|---:|---|")
    for name, ms in medians.items():
        if name in FLOORS:
            print(f"| `{name}` | {ms:.1f} | — | — | — | {FLOORS[name]} |")
            continue
        target = ""
        if name in TARGETS:
            text, met = TARGETS[name]
            target = f"{text}: {'met' if met(ms, h5py_ms) else 'NOT met'}"
        print(f"| `{name}` | {ms:.1f} | {size / MIB / (ms / 1000):.0f} | {h5py_ms / ms:.2f} | "
              f"{ms / dd_ms:.2f} | {target} |")
    print()
    print("Throughput is file size / wall time; header and structure read only metadata, so "
          "theirs is not a read rate. `× dd time` below 1 means faster than reading the bytes.")


if __name__ == "__main__":
    main()
