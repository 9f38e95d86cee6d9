"""Shared by the bench/ drivers: the machine, the binary under test, the daemon under test, /proc
readings, statistics and markdown tables. Run with Debian's /usr/bin/python3 (it has h5py).

`python3 bench/benchlib.py header [--tmpdir DIR] [--bin PATH]` prints the machine header that
bench/run.sh puts above its tables; `python3 bench/benchlib.py quiet [--min-idle PCT]
[--max-wait S]` waits until other work on the machine has calmed down, and says how idle it was."""

import argparse
import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTS = os.path.join(ROOT, "tests")
PYTHON = "/usr/bin/python3"  # Debian's, which has h5py.
MIB = 1 << 20
GIB = 1 << 30

sys.path.insert(0, TESTS)
import daemon_harness  # noqa: E402  (tests/ is on the path only from here on)
import writers  # noqa: E402,F401  (for the bench drivers: benchlib.writers)


# ---- the machine and the binary -----------------------------------------------------------------


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def fs_type(path):
    """Filesystem type of the mount holding `path` (`findmnt -T`), e.g. ext4, tmpfs, xfs."""
    proc = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", path],
                          capture_output=True, text=True)
    return " on ".join(proc.stdout.split()) if proc.returncode == 0 else "unknown"


def mem_total_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def git_commit():
    proc = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def machine(tmpdir):
    """One line naming the machine: cores, CPU, RAM, kernel and the temp dir's filesystem."""
    return (f"nproc {os.cpu_count()}, CPU {cpu_model()}, {mem_total_gib():.1f} GiB RAM, "
            f"kernel {platform.release()}, temp dir {tmpdir} on {fs_type(tmpdir)}")


def binary_version(binary):
    proc = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return " ".join(proc.stdout.split())


def snapshot_binary(binary, workdir):
    """Copies the binary under test and the ckptwatch-engine beside it into `workdir`, so a
    rebuild by someone else during the run cannot change what is measured; returns the copy's
    path. The front finds the engine copy beside itself, and the daemon's verifier children are
    that engine (it spawns /proc/self/exe)."""
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no ckptwatch binary at {binary}; build first (make build)")
    os.makedirs(workdir, exist_ok=True)
    copy = os.path.join(workdir, "ckptwatch")
    shutil.copy2(binary, copy)
    engine = os.path.join(os.path.dirname(os.path.abspath(binary)), "ckptwatch-engine")
    if os.access(engine, os.X_OK):
        shutil.copy2(engine, os.path.join(workdir, "ckptwatch-engine"))
    return copy


def shared_objects(binary):
    """The shared objects `binary` loads (ldd), by file name."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return [line.split()[0] for line in proc.stdout.splitlines()
            if "=>" in line or line.strip().startswith("/")]


def sha256_prefix(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


# ---- statistics and tables ----------------------------------------------------------------------


def median(values):
    return statistics.median(values) if values else float("nan")


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of `values`: a value that was measured."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def verdict(met):
    return "met" if met else "**NOT met**"


def fmt(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def table(header, rows):
    """A markdown table: `header` is a list of column titles; a title ending in ':' is
    right-aligned (the ':' is dropped)."""
    titles = [h.rstrip(":") for h in header]
    align = ["---:" if h.endswith(":") else "---" for h in header]
    lines = ["| " + " | ".join(titles) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def in_scratch_dir(parent, prefix, run):
    """run(work) in a fresh directory under `parent`, deleted afterwards whatever happens."""
    work = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        return run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- /proc readings ----------------------------------------------------------------------------


def proc_status(pid):
    """/proc/PID/status as {key: first field} (kB values stay kB)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()[0] if value.split() else ""
    return out


def tasks(pid):
    try:
        return os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_ns(pid):
    """Time on CPU of every thread of the process, in ns (/proc/PID/task/*/schedstat)."""
    total = 0
    for tid in tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def context_switches(pid):
    """(voluntary, involuntary) context switches summed over every thread: /proc/PID/status
    alone counts the main thread only."""
    vol = invol = 0
    for tid in tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return vol, invol


def thread_switches(pid):
    """{thread name: voluntary + involuntary context switches}, threads of one name summed."""
    out = {}
    for tid in tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                keys = ("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")
                n = sum(int(line.split()[1]) for line in f if line.startswith(keys))
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[name] = out.get(name, 0) + n
    return out


def inotify_watches(pid):
    """Watches held by the process: `inotify wd:` lines over its inotify descriptors."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                count += sum(1 for line in f if line.startswith("inotify wd:"))
        except FileNotFoundError:
            pass
    return count


# ---- the daemon under test ---------------------------------------------------------------------


def parse_ts(ts):
    """The daemon's `ts` (RFC 3339 UTC, microseconds) as Unix seconds: CLOCK_REALTIME, the clock
    of Python's time.time()."""
    stamp = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


class Daemon(daemon_harness.Daemon):
    """tests/daemon_harness.py's daemon (JSON log, real NOTIFY_SOCKET), on the binary under test,
    with a log that is read incrementally (a burst writes thousands of lines). At the default log
    level (info), as a host runs it: the tests' debug level adds a line per file (verifier_used),
    which is not what a deployment pays."""

    def __init__(self, binary, workdir, watches_yaml, log_level="info", **kwargs):
        super().__init__(workdir, watches_yaml, log_level=log_level, **kwargs)
        self.binary = os.path.abspath(binary)
        self._offset = 0
        self._partial = ""
        self.log = []
        self.started_at = None
        self.ready_at = None

    def start(self, wait_ready=True):
        previous = daemon_harness.BIN
        daemon_harness.BIN = self.binary
        try:
            self.started_at = time.monotonic()
            super().start(wait_ready=False)
        finally:
            daemon_harness.BIN = previous
        if wait_ready:
            self.wait_notification("READY=1", deadline=120)
            self.ready_at = time.monotonic()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def read_new(self):
        """Appends the log lines written since the last call to `self.log`; returns them."""
        try:
            with open(self.log_path) as f:
                f.seek(self._offset)
                text = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return []
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for its end
        new = [json.loads(line) for line in lines if line.strip()]
        self.log.extend(new)
        return new

    def wait_verdicts(self, count, deadline, quiet=None):
        """Waits until `count` verify events are in the log, or `deadline` seconds pass; with
        `quiet`, also until no verify event came for `quiet` seconds (to catch extra verdicts).
        Returns the verify events."""
        end = time.monotonic() + deadline
        last_change = time.monotonic()
        seen = 0
        while time.monotonic() < end:
            if any(e.get("event") == "verify" for e in self.read_new()):
                last_change = time.monotonic()
            seen = sum(1 for e in self.log if e.get("event") == "verify")
            if seen >= count and (quiet is None or time.monotonic() - last_change >= quiet):
                break
            self._check_alive()
            time.sleep(0.05)
        return [e for e in self.log if e.get("event") == "verify"]

    def stop(self, *args, **kwargs):
        code = super().stop(*args, **kwargs)
        self.read_new()
        return code


# ---- system settings ---------------------------------------------------------------------------


@contextlib.contextmanager
def sysctl(name, value):
    """Sets /proc/sys/NAME (dots as slashes) to `value` for the block; restores the old value
    whatever happens."""
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path) as f:
        old = f.read().strip()
    try:
        with open(path, "w") as f:
            f.write(str(value))
        yield old
    finally:
        with open(path, "w") as f:
            f.write(old)


def resident_pages(path):
    """Pages of `path` in the page cache (fincore), or -1 if fincore fails."""
    proc = subprocess.run(["fincore", "-n", "-o", "PAGES", path], capture_output=True, text=True)
    return int(proc.stdout.split()[0]) if proc.returncode == 0 and proc.stdout.split() else -1


def drop_file_cache(path):
    """Evicts `path` from the page cache (fsync, then posix_fadvise DONTNEED); returns the pages
    still resident afterwards (fincore), which should be 0."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return resident_pages(path)


def cpu_idle_share(seconds):
    """Share of all CPUs' time that was idle (idle + iowait) over the next `seconds`."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(min_idle, max_wait, window=5):
    """Waits until the machine was at least `min_idle` (0..1) idle over `window` seconds, at most
    `max_wait` seconds; returns (idle share of the last window, seconds waited)."""
    start = time.monotonic()
    while True:
        idle = cpu_idle_share(window)
        waited = time.monotonic() - start
        if idle >= min_idle or waited >= max_wait:
            return idle, waited


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["header", "quiet"])
    parser.add_argument("--min-idle", type=float, default=80, help="quiet: %% idle to wait for")
    parser.add_argument("--max-wait", type=float, default=600, help="quiet: seconds at most")
    parser.add_argument("--tmpdir", default=os.environ.get("TMPDIR", "/tmp"))
    parser.add_argument("--bin", help="the ckptwatch binary under test")
    parser.add_argument("--command-line", default="", help="the command that made the tables")
    args = parser.parse_args()
    if args.command == "quiet":
        idle, waited = wait_quiet(args.min_idle / 100, args.max_wait)
        print(f"_Before this section the CPUs were {idle * 100:.0f} % idle over 5 s "
              f"(waited {waited:.0f} s for ≥ {args.min_idle:g} %)._")
        return
    print(f"**Machine:** {machine(args.tmpdir)}  ")
    if args.bin:
        libs = shared_objects(args.bin)
        built = datetime.datetime.fromtimestamp(os.path.getmtime(args.bin),
                                                datetime.timezone.utc)
        print(f"**ckptwatch:** {binary_version(args.bin)}, binary built {built:%Y-%m-%d %H:%M} "
              f"UTC, sha256 {sha256_prefix(args.bin)}…, {len(libs)} shared objects; work tree "
              f"at run time: git {git_commit()}  ")
        shared_hdf5 = [lib for lib in libs if lib.startswith(("libhdf5.so", "libhdf5_serial.so"))]
        if shared_hdf5:
            print(f"**Warning:** this binary loads the shared {shared_hdf5[0]} (with libcurl, "
                  f"gnutls, krb5...), not the static libhdf5 CMakeLists.txt asks for: its build "
                  f"directory's CMake cache predates that (HDF5_HL_LIBRARY). Every process start, "
                  f"so every verification, is slower than it should be.  ")
    with open("/proc/loadavg") as f:
        print(f"**Load average at the start:** {' '.join(f.read().split()[:3])}  ")
    print(f"**Date:** {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ")
    if args.command_line:
        print(f"**Command:** `{args.command_line}`")


if __name__ == "__main__":
    main()
