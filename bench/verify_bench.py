"""Driver of bench/verify.sh: times `ckptwatch verify` at each level, h5py reading every dataset
and dd on Keras-layout checkpoints, all in this run, and prints the machine and one markdown table
of medians. Warm page cache by default; --cold also times every tool with the file evicted from
the page cache (posix_fadvise DONTNEED) before each run."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))
WRITERS = os.path.join(HERE, "..", "tests", "writers.py")
H5PY_READ_ALL = os.path.join(HERE, "h5py_read_all.py")
PYTHON = benchlib.PYTHON
MIB = 1 << 20

H5PY = "h5py: open + read every dataset"
DD = "dd if=FILE of=/dev/null bs=1M"
# Rows that measure overhead, not verification: tool -> what the row means.
FLOORS = {
    "/bin/true (process spawn, no work)": "floor under every row (fork/exec/wait from Python)",
    "ckptwatch --version (process start, no file)": "the engine's start (the front execs it): floor under structure and full",
    "ckptwatch-engine verify --level header (0.1's single binary)": "what a header check cost before the light front",
}
# Targets, warm page cache: tool -> [(target text, predicate on (ms, h5py_ms, dd_ms))].
TARGETS = {
    "ckptwatch verify --level header": [("≤ 2 ms", lambda ms, h5py_ms, dd_ms: ms <= 2)],
    "ckptwatch verify --level structure": [("< 50 ms", lambda ms, h5py_ms, dd_ms: ms < 50)],
    "ckptwatch verify --level full": [
        ("≥ 10× faster than h5py", lambda ms, h5py_ms, dd_ms: h5py_ms / ms >= 10),
        ("≤ 1.25× dd time (issue 12)", lambda ms, h5py_ms, dd_ms: ms / dd_ms <= 1.25),
    ],
}


def parse_size(text):
    match = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: want BYTES or e.g. 512MiB, 1GiB")
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[unit]


def size_name(size):
    return f"{size >> 30}GiB" if size % (1 << 30) == 0 else f"{size // MIB}MiB"


def ensure_checkpoint(path, size):
    """Generates the checkpoint unless a complete one (marked by PATH.complete) exists.

    Layers are 4 MiB up to 1 GiB (256 layers, 512 datasets), larger beyond, so a 10 GiB model
    still has 256 layers: Keras keeps `model_config` in one attribute, which must fit HDF5's
    64 KiB object header message."""
    marker = path + ".complete"
    if os.path.exists(path) and os.path.exists(marker):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"generating {path} ({size / MIB:.0f} MiB)...", file=sys.stderr)
    partial = path + ".partial"
    layer_bytes = max(4 * MIB, size // 256)
    subprocess.run(
        [PYTHON, "-c",
         "import sys; sys.path.insert(0, sys.argv[1]); import writers; "
         "size = int(sys.argv[3]); "
         "writers.write_sized_model(sys.argv[2], size, "
         "writers.sized_stack(size, layer_bytes=int(sys.argv[4])))",
         os.path.dirname(WRITERS), partial, str(size), str(layer_bytes)],
        check=True)
    os.replace(partial, path)
    open(marker, "w").close()
    # Writing back gigabytes of dirty pages takes the disk and a core for a while: wait for it,
    # or the first measurements pay for it.
    os.sync()


def warm(path):
    with open(path, "rb") as f:
        while f.read(16 * MIB):
            pass


def machine():
    return benchlib.machine(tempfile.gettempdir())


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


def tools_for(binary, path, cold):
    tools = {
        "/bin/true (process spawn, no work)": ["/bin/true"],
        "ckptwatch --version (process start, no file)": [binary, "--version"],
        "ckptwatch-engine verify --level header (0.1's single binary)": [
            os.path.join(os.path.dirname(os.path.abspath(binary)), "ckptwatch-engine"),
            "verify", "--level", "header", path],
        "ckptwatch verify --level header": [binary, "verify", "--level", "header", path],
        "ckptwatch verify --level structure": [binary, "verify", "--level", "structure", path],
        "ckptwatch verify --level full": [binary, "verify", "--level", "full", path],
        H5PY: [PYTHON, H5PY_READ_ALL, path],
        DD: ["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"],
    }
    if cold:  # Process start does not depend on the checkpoint's pages.
        for name in FLOORS:
            del tools[name]
    return tools


def measure(binary, path, runs, cold):
    """Median wall ms per tool. Warm: the file is read once first and every tool gets one unmeasured
    run (caches, lazy loading). Cold: the file is evicted before every run of every tool."""
    tools = tools_for(binary, path, cold)
    if cold:
        evict = lambda: benchlib.drop_file_cache(path)  # noqa: E731
    else:
        evict = lambda: 0  # noqa: E731
        warm(path)
        for argv in tools.values():
            time_once(argv)
    times = {name: [] for name in tools}
    resident = 0
    for _ in range(runs):  # Interleaved, so drift hits every tool alike.
        for name, argv in tools.items():
            resident = max(resident, evict())
            times[name].append(time_once(argv))
    if cold and resident:
        print(f"warning: {resident} pages of {path} stayed cached after eviction", file=sys.stderr)
    if not cold:  # Did the whole file stay cached? (A large one on a busy machine may not.)
        pages = (os.path.getsize(path) + 4095) // 4096
        resident = benchlib.resident_pages(path)
        warm_share = resident / pages * 100 if resident >= 0 else float("nan")
        if warm_share < 99:
            print(f"warning: only {warm_share:.0f} % of {path} cached after the warm runs",
                  file=sys.stderr)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return medians, (warm_share if not cold else resident)


def rows_for(label, cache, size, medians):
    h5py_ms, dd_ms = medians[H5PY], medians[DD]
    rows = []
    for name, ms in medians.items():
        if name in FLOORS:
            rows.append([label, cache, f"`{name}`", f"{ms:.1f}", "—", "—", "—", FLOORS[name],
                         ""])
            continue
        target = status = ""
        if name in TARGETS and cache == "warm":
            target = "; ".join(text for text, _ in TARGETS[name])
            status = "; ".join(benchlib.verdict(met(ms, h5py_ms, dd_ms))
                               for _, met in TARGETS[name])
        elif name == DD:
            target = ("the read limit: × faster than h5py here bounds any tool that reads "
                      "every byte")
        rows.append([label, cache, f"`{name}`", f"{ms:.1f}", f"{size / MIB / (ms / 1000):,.0f}",
                     f"{h5py_ms / ms:.2f}", f"{ms / dd_ms:.2f}", target, status])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument(
        "--size", type=parse_size, action="append",
        help="checkpoint size, e.g. 1GiB or 10GiB; repeat for several (default 1GiB)")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool, median (min 5)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold-cache runs per tool")
    parser.add_argument("--cold", action="store_true",
                        help="also time every tool with the file evicted from the page cache")
    parser.add_argument(
        "--file", help="checkpoint to use (default: generated in --dir)")
    parser.add_argument(
        "--dir", default=os.path.join(tempfile.gettempdir(), "ckptwatch-bench"),
        help="where generated checkpoints are kept and reused (default $TMPDIR/ckptwatch-bench)")
    parser.add_argument("--no-header", action="store_true",
                        help="print a section title instead of the machine (for bench/run.sh)")
    parser.add_argument("--generate-only", action="store_true",
                        help="generate the checkpoints of --size in --dir, measure nothing")
    args = parser.parse_args()
    runs = max(5, args.runs)
    cold_runs = max(3, args.cold_runs)
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"no ckptwatch binary at {args.bin}; build first (make build)")

    if args.file:
        paths = [args.file]
    else:
        paths = []
        for size in args.size or [1 << 30]:
            path = os.path.join(args.dir, f"keras_{size // MIB}MiB.h5")
            ensure_checkpoint(path, size)
            paths.append(path)
    if args.generate_only:
        return

    rows = []
    described = []
    for path in paths:
        size = os.path.getsize(path)
        datasets = subprocess.run(
            [PYTHON, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import writers; "
             "print(len(writers.dataset_names(sys.argv[2])))", os.path.dirname(WRITERS), path],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        label = f"{size_name(size) if not args.file else os.path.basename(path)}"
        described.append(f"`{os.path.basename(path)}` ({size / MIB:,.1f} MiB, {datasets} datasets")
        medians, warm_share = measure(args.bin, path, runs, cold=False)
        rows += rows_for(label, "warm", size, medians)
        cached = f"{warm_share:.0f} % of it cached after the warm runs"
        if args.cold:
            medians, left = measure(args.bin, path, cold_runs, cold=True)
            rows += rows_for(label, "cold", size, medians)
            cached += f", at most {left} pages left cached by an eviction"
        described[-1] += f"; {cached})"

    if args.no_header:
        print("### 1. Verify throughput: `ckptwatch verify` vs h5py reading every dataset vs dd")
    else:
        version = benchlib.binary_version(args.bin)
        print(f"Machine: {machine()}")
        print(f"ckptwatch: {version}")
    print()
    print(f"Files: {', '.join(described)}. Warm: the file is in the page cache, median of {runs} "
          f"runs. " + (f"Cold: the file is evicted (posix_fadvise DONTNEED, checked with fincore) "
                       f"before each run, median of {cold_runs} runs. " if args.cold else "") +
          "Wall time from fork to exit, process start included.")
    print()
    print(benchlib.table(
        ["file", "page cache", "tool", "wall time (ms, median):", "throughput (MiB/s):",
         "× faster than h5py:", "× dd time:", "target", "status"], rows))
    print()
    print("Throughput is file size / wall time; header and structure read only metadata, so "
          "theirs is not a read rate. `× dd time` below 1 means faster than reading the bytes.")
    print()


if __name__ == "__main__":
    main()
