"""Where the time of `ckptwatch verify` goes, on one Keras-layout checkpoint with a warm page cache.

Three views, all measured in this run:
  1. wall time of commands that each add one stage (process start, header, structure, full; dd
     with 1 MiB and with 8 MiB buffers), medians, and the differences between them;
  2. `perf record -e cpu-clock -g` over --level full and --level structure: CPU time split into
     process start (exec, ld.so), HDF5, read() copies, the NaN/Inf scan, the page-cache guard...;
  3. `strace -f -c` of --level full: the system calls made.
Needs perf (Debian: linux-perf) and strace; a view whose tool is missing is skipped, and says so.
Prints markdown."""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile

import benchlib
from verify_bench import H5PY_READ_ALL, PYTHON, ensure_checkpoint, time_once, warm

MIB = 1 << 20


def timings(binary, path, runs):
    tools = {
        "true": ["/bin/true"],
        "version": [binary, "--version"],
        "header": [binary, "verify", "--level", "header", path],
        "structure": [binary, "verify", "--level", "structure", path],
        "full": [binary, "verify", "--level", "full", path],
        "h5py": [PYTHON, H5PY_READ_ALL, path],
        "dd1": ["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"],
        "dd8": ["dd", f"if={path}", "of=/dev/null", "bs=8M", "status=none"],
    }
    warm(path)
    for argv in tools.values():
        time_once(argv)
    times = {name: [] for name in tools}
    for _ in range(runs):
        for name, argv in tools.items():
            times[name].append(time_once(argv))
    return {name: statistics.median(t) for name, t in times.items()}


# perf sample -> category: first rule whose test matches the sample's frames wins.
# Frames are (symbol, dso) from leaf to root; kernel frames come first.
def classify(frames):
    syms = [s for s, _ in frames]
    dsos = [d for _, d in frames]
    text = " ".join(syms)
    leaf_sym, leaf_dso = frames[0] if frames else ("", "")
    user = [(s, d) for s, d in frames if "kernel.kallsyms" not in d and d != "[unknown]"]
    user_dso = user[0][1] if user else ""
    if any("ld-linux" in d for d in dsos) or re.search(
            r"execve|load_elf_binary|bprm|begin_new_exec|_dl_", text):
        return "start"
    if re.search(r"do_exit|exit_mmap|do_group_exit|mmput", text):
        return "exit"
    if re.search(r"pread64|ksys_read|__x64_sys_read\b|vfs_read|filemap_read", text):
        return "read"
    if "mincore" in text:
        return "mincore"
    if "fadvise" in text:
        return "fadvise"
    if re.search(r"__x64_sys_munmap|__x64_sys_mmap|vm_mmap|vm_munmap", text):
        return "mmap"
    if re.search(r"CountExponent|CountNonfinite|Nonfinite|::Count(16|32|64)\b", leaf_sym):
        return "nan"
    if leaf_sym.startswith(("H5", "H5_")) or "hdf5" in leaf_dso:
        return "hdf5"
    if re.search(r"exc_page_fault|handle_mm_fault", text):
        return "faults"
    if "libc.so" in leaf_dso or "libc.so" in user_dso:
        return "libc"
    if re.search(r"clone|fork|wait4|schedule|__x64_sys_wait", text):
        return "spawn"
    return "other"


LABELS = {
    "start": "process start: exec, ld.so loading and relocating shared libraries",
    "hdf5": "HDF5 library: open, object walk, dataspace/hyperslab bookkeeping",
    "read": "read syscalls: the kernel copying page-cache pages into the read buffer",
    "nan": "NaN/Inf scan of the buffer",
    "mincore": "page-cache guard: mincore() residency check of every page before reading",
    "fadvise": "page-cache guard: fadvise(DONTNEED) of the pages the read brought in",
    "mmap": "mmap/munmap (the guard's windows, large buffers)",
    "faults": "page faults outside start-up (buffers' first touch)",
    "libc": "libc (malloc, memcpy, strings)",
    "spawn": "fork, wait, scheduler",
    "exit": "process exit (unmapping)",
    "other": "other (libstdc++, kernel misc.)",
}


def perf_profile(binary, path, level, runs, workdir):
    """{category: CPU ms per invocation}, and {pid role: CPU ms}; None if perf cannot record."""
    data = os.path.join(workdir, f"perf-{level}.data")
    argv = [binary, "verify", "--level", level, path]
    samples_by_cat, total_ns = {}, 0
    by_role = {"parent": 0, "child": 0}
    for i in range(runs):
        rec = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "10000", "-g",
                              "-o", data, "--", *argv], capture_output=True, text=True)
        if rec.returncode != 0:
            return None, None
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,period,ip,sym,dso"],
                                capture_output=True, text=True)
        first_pid = None
        for block in script.stdout.split("\n\n"):
            lines = [l for l in block.splitlines() if l.strip()]
            if not lines:
                continue
            head = lines[0].split()
            try:
                pid, period = int(head[-2]), int(head[-1])
            except (ValueError, IndexError):
                continue
            first_pid = pid if first_pid is None else first_pid
            frames = []
            for line in lines[1:]:
                m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
                if m:
                    frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), m.group(2)))
            cat = classify(frames)
            samples_by_cat[cat] = samples_by_cat.get(cat, 0) + period
            by_role["parent" if pid == first_pid else "child"] += period
            total_ns += period
    per_run = {c: ns / runs / 1e6 for c, ns in samples_by_cat.items()}
    roles = {r: ns / runs / 1e6 for r, ns in by_role.items()}
    return per_run, roles


def perf_stat_task_clock(argv, before=None):
    """(task-clock ms, wall ms) of one run of argv under perf stat."""
    if before:
        before()
    proc = subprocess.run(["perf", "stat", "-x", ",", "-e", "task-clock", "--", *argv],
                          capture_output=True, text=True)
    task = float("nan")
    for line in proc.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("task-clock"):
            task = float(fields[0])
    return task


def strace_counts(binary, path, workdir):
    out = os.path.join(workdir, "strace.txt")
    proc = subprocess.run(["strace", "-f", "-c", "-o", out, binary, "verify", "--level", "full",
                           path], capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        return None
    rows = []
    with open(out) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and re.match(r"[\d.]+$", fields[0]) and fields[-1] != "total":
                calls = int(fields[3])
                rows.append((fields[-1], calls))
    rows.sort(key=lambda r: -r[1])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--file", help="checkpoint (default: a 1 GiB one generated in --dir)")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "ckptwatch-bench"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--perf-runs", type=int, default=3)
    args = parser.parse_args()
    path = args.file or os.path.join(args.dir, "keras_1024MiB.h5")
    if not args.file:
        ensure_checkpoint(path, 1 << 30)
    size_mib = os.path.getsize(path) / MIB
    work = tempfile.mkdtemp(prefix="ckptwatch-profile-")
    try:
        t = timings(args.bin, path, args.runs)
        libs = benchlib.shared_objects(args.bin)
        shared_hdf5 = [l for l in libs if re.match(r"libhdf5(_serial)?\.so", l)]
        print(f"#### Profile: where `verify --level full` spends its time ({size_mib:,.0f} MiB, "
              f"warm page cache)")
        print()
        print("Wall time, median of {} runs each; each line adds one stage:".format(args.runs))
        print()
        child_start = t["version"]
        walk = t["structure"] - t["header"] - child_start
        rows = [
            ["`/bin/true`: fork + exec + wait from Python", f"{t['true']:.1f}", ""],
            [f"`ckptwatch --version`: one process start ({len(libs)} shared objects loaded)",
             f"{t['version']:.1f}",
             "paid twice by `verify` beyond header: parent + verifier child"],
            ["`verify --level header`: start + superblock check, in-process", f"{t['header']:.1f}",
             f"{t['header'] - t['version']:+.1f} over one start"],
            ["`verify --level structure`: + verifier child + HDF5 open and walk",
             f"{t['structure']:.1f}", f"{t['structure'] - t['header']:+.1f} over header: child "
             f"start ≈ {child_start:.1f}, HDF5 open + walk ≈ {walk:.1f}"],
            ["`verify --level full`: + read every byte + NaN/Inf scan", f"{t['full']:.1f}",
             f"{t['full'] - t['structure']:+.1f} over structure"],
            ["`dd bs=1M`: read every byte, 1 MiB buffer", f"{t['dd1']:.1f}", "the read limit"],
            ["`dd bs=8M`: read every byte, 8 MiB buffer (full's libhdf5 reads; direct reads: 512 KiB)", f"{t['dd8']:.1f}",
             f"{t['dd8'] - t['dd1']:+.1f} over 1 MiB: a buffer larger than the CPU cache"],
            ["h5py script: start Python, import h5py, read every dataset", f"{t['h5py']:.1f}",
             f"{t['h5py'] / t['full']:.2f}× full's time"],
        ]
        print(benchlib.table(["command", "wall ms:", "difference"], rows))
        print()
        floor = 2 * t["version"] + walk + t["dd1"]
        print(f"Lower bound for `full` with this design (two process starts + HDF5 walk + one "
              f"dd-speed read): ≈ {floor:.0f} ms, i.e. at most {t['h5py'] / floor:.1f}× faster "
              f"than the h5py script; even a tool with no start-up and no metadata that only "
              f"read the bytes (dd) is {t['h5py'] / t['dd1']:.1f}× faster. A ≥ 10× target "
              f"would need the whole verification in {t['h5py'] / 10:.0f} ms, "
              f"{t['h5py'] / 10 / t['dd1']:.2f}× the time dd takes just to copy the bytes.")
        print()
        if shared_hdf5:
            print(f"**Note:** this binary loads the shared {', '.join(shared_hdf5)} (and with it "
                  f"libcurl, gnutls, krb5, ldap...), although CMakeLists.txt links HDF5 "
                  f"statically: a build directory configured before that change keeps "
                  f"`HDF5_HL_LIBRARY` pointing at the .so in its CMake cache.")
            print()

        if shutil.which("perf"):
            prof, roles = perf_profile(args.bin, path, "full", args.perf_runs, work)
            sprof, sroles = perf_profile(args.bin, path, "structure", args.perf_runs, work)
            if prof:
                total = sum(prof.values())
                stotal = sum(sprof.values()) if sprof else float("nan")
                print(f"CPU time by where it was spent (`perf record -e cpu-clock -F 10000 -g`, "
                      f"mean of {args.perf_runs} runs; ms of CPU per invocation, parent and "
                      f"verifier child together):")
                print()
                rows = []
                for cat in sorted(LABELS, key=lambda c: -prof.get(c, 0)):
                    ms = prof.get(cat, 0)
                    sms = sprof.get(cat, 0) if sprof else float("nan")
                    if ms < 0.05 and sms < 0.05:
                        continue
                    rows.append([LABELS[cat], f"{ms:.1f}", f"{ms / total * 100:.0f} %",
                                 f"{sms:.1f}"])
                rows.append(["**total CPU**", f"**{total:.1f}**", "100 %", f"**{stotal:.1f}**"])
                rows.append(["of which the `verify` parent / the verifier child",
                             f"{roles['parent']:.1f} / {roles['child']:.1f}", "",
                             f"{sroles['parent']:.1f} / {sroles['child']:.1f}" if sroles else ""])
                print(benchlib.table(["where", "full (ms CPU):", "share:", "structure (ms CPU):"],
                                     rows))
                print()
                cold_task = perf_stat_task_clock(
                    [args.bin, "verify", "--level", "full", path],
                    before=lambda: benchlib.drop_file_cache(path))
                cold_wall = time_once_cold(args.bin, path)
                print(f"Cold cache (file evicted first): `full` takes {cold_wall:.0f} ms of wall "
                      f"time but only {cold_task:.0f} ms of CPU: the rest is waiting for the disk, "
                      f"where every tool that reads the bytes is equally bound (see the cold "
                      f"rows).")
                print()
            else:
                print("(perf could not record here: no CPU profile.)\n")
        else:
            print("(perf not installed — apt-get install linux-perf — no CPU profile.)\n")

        if shutil.which("strace"):
            counts = strace_counts(args.bin, path, work)
            if counts:
                top = ", ".join(f"`{name}` {calls:,}" for name, calls in counts[:8])
                print(f"System calls of one `verify --level full` (`strace -f -c`, parent and "
                      f"child): {top}.")
                print()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def time_once_cold(binary, path):
    benchlib.drop_file_cache(path)
    return time_once([binary, "verify", "--level", "full", path])


if __name__ == "__main__":
    main()
