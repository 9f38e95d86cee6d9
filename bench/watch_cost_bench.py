"""What watching costs: start-up and memory at scale, and CPU and wakeups when idle.

  watch_cost_bench.py scale --bin BIN [--dirs 10000] [--reps 3]
  watch_cost_bench.py idle  --bin BIN [--dirs 1000] [--seconds 60] [--reps 3]

scale: one recursive watch over a tree of --dirs directories (100 per parent, each holding one
small checkpoint). Measures the time from exec to the daemon's sd_notify READY=1 (NOTIFY_SOCKET is a
unix datagram socket this script reads), its RSS (VmRSS) once the start-up scan is done and its
peak (VmHWM), and the inotify watches it holds (`inotify wd:` lines in /proc/PID/fdinfo). Each rep
starts a fresh daemon on the same tree; the first rep is after the tree was just written (its
dentries cached), like the rest.

idle: the same over --dirs directories, then nothing happens for --seconds: CPU time (utime+stime
from /proc/PID/stat, and every thread's schedstat) and wakeups (voluntary + involuntary context
switches of every thread, /proc/PID/task/*/status) over that window. Reps are consecutive windows
of one daemon. Each prints one markdown table."""

import argparse
import os
import shutil
import sys
import tempfile
import time

import benchlib
from benchlib import fmt, median, verdict

TARGET_RSS_MIB = 50
TARGET_IDLE_CPU_PCT = 0.1


def make_tree(root, count, files=True):
    """`count` directories under `root`, 100 per parent; one 4 KiB checkpoint in each parent."""
    made = 0
    parents = []
    while made < count:
        parent = os.path.join(root, f"p{len(parents):03d}")
        os.makedirs(parent)
        parents.append(parent)
        made += 1
        for i in range(min(99, count - made)):
            os.mkdir(os.path.join(parent, f"c{i:02d}"))
            made += 1
    if files:
        for p in parents:
            benchlib.writers.write_sized_model(os.path.join(p, "epoch_001.h5"), 4096)
    return made


def start_daemon(binary, work, root, name):
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir)
    daemon = benchlib.Daemon(binary, run_dir, benchlib.daemon_harness.yaml_watch(
        "scale", root, recursive=True))
    daemon.start()
    return daemon


def wait_start_scan(daemon, deadline=60):
    """The start-up scan verifies the newest checkpoint: its verdict means the scan is done."""
    daemon.wait_verdicts(1, deadline=deadline)


def kib(status, key):
    return int(status.get(key, "0"))


def scale(args):
    tmp = tempfile.mkdtemp(prefix="ckptwatch-scale-", dir=args.tmpdir)
    runs = []
    try:
        root = os.path.join(tmp, "tree")
        dirs = make_tree(root, args.dirs)
        for rep in range(args.reps):
            daemon = start_daemon(args.bin, tmp, root, f"run{rep}")
            try:
                ready_s = daemon.ready_at - daemon.started_at
                wait_start_scan(daemon)
                time.sleep(1)  # let the verifier child's exit and the scan's buffers settle
                status = benchlib.proc_status(daemon.pid)
                runs.append({
                    "ready_s": ready_s,
                    "rss_kib": kib(status, "VmRSS"),
                    "hwm_kib": kib(status, "VmHWM"),
                    "watches": benchlib.inotify_watches(daemon.pid),
                    "threads": int(status.get("Threads", "0")),
                })
            finally:
                daemon.stop()
            print(f"scale rep {rep + 1}/{args.reps}: {runs[-1]}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_header:
        print(f"Machine: {benchlib.machine(args.tmpdir)}\n")
    print(f"### 4. Scale: one recursive watch over {dirs:,} directories")
    print()
    rss = median([r["rss_kib"] for r in runs]) / 1024
    hwm = median([r["hwm_kib"] for r in runs]) / 1024
    rows = [
        ["time to READY=1 (exec → sd_notify, s)", fmt(median([r["ready_s"] for r in runs]), 3),
         "", ""],
        ["RSS after the start-up scan (VmRSS, MiB)", fmt(rss), f"≤ {TARGET_RSS_MIB} MiB",
         verdict(rss <= TARGET_RSS_MIB)],
        ["peak RSS (VmHWM, MiB)", fmt(hwm), f"≤ {TARGET_RSS_MIB} MiB",
         verdict(hwm <= TARGET_RSS_MIB)],
        ["inotify watches held", fmt(int(median([r["watches"] for r in runs]))),
         f"{dirs + 1:,} (every directory and the root)",
         verdict(all(r["watches"] == dirs + 1 for r in runs))],
        ["threads", fmt(int(median([r["threads"] for r in runs]))), "", ""],
    ]
    print(benchlib.table(["measure", "ckptwatch:", "target", "status"], rows))
    print()
    print(f"Median of {len(runs)} daemon starts on the same tree (100 directories per parent, a "
          f"4 KiB checkpoint in each parent). Per run (READY s / RSS MiB): " +
          ", ".join(f"{r['ready_s']:.3f} / {r['rss_kib'] / 1024:.1f}" for r in runs) +
          ". No baseline: inotifywait has no daemon to compare with.")
    print()


def idle(args):
    tmp = tempfile.mkdtemp(prefix="ckptwatch-idle-", dir=args.tmpdir)
    windows = []
    try:
        root = os.path.join(tmp, "tree")
        dirs = make_tree(root, args.dirs)
        daemon = start_daemon(args.bin, tmp, root, "run")
        try:
            wait_start_scan(daemon)
            time.sleep(2)
            pid = daemon.pid
            hz = os.sysconf("SC_CLK_TCK")
            for rep in range(args.reps):
                t0, ticks0, ns0 = time.monotonic(), benchlib.cpu_ticks(pid), benchlib.cpu_ns(pid)
                vol0, invol0 = benchlib.context_switches(pid)
                per_thread0 = benchlib.thread_switches(pid)
                time.sleep(args.seconds)
                t1, ticks1, ns1 = time.monotonic(), benchlib.cpu_ticks(pid), benchlib.cpu_ns(pid)
                vol1, invol1 = benchlib.context_switches(pid)
                per_thread1 = benchlib.thread_switches(pid)
                wall = t1 - t0
                windows.append({
                    "cpu_pct_ticks": (ticks1 - ticks0) / hz / wall * 100,
                    "cpu_pct_ns": (ns1 - ns0) / 1e9 / wall * 100,
                    "cpu_ms": (ns1 - ns0) / 1e6,
                    "wakeups_per_s": ((vol1 - vol0) + (invol1 - invol0)) / wall,
                    "voluntary": vol1 - vol0, "involuntary": invol1 - invol0,
                    "threads": len(benchlib.tasks(pid)),
                    "per_thread": {k: (v - per_thread0.get(k, 0)) / wall
                                   for k, v in per_thread1.items()},
                })
                print(f"idle window {rep + 1}/{args.reps}: {windows[-1]}", file=sys.stderr)
            daemon.read_new()
            events = {}
            for e in daemon.log:
                events[e.get("event")] = events.get(e.get("event"), 0) + 1
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_header:
        print(f"Machine: {benchlib.machine(args.tmpdir)}\n")
    print(f"### 5. Idle cost: one recursive watch over {dirs:,} directories, nothing written, "
          f"{args.seconds:g} s windows")
    print()
    cpu = median([w["cpu_pct_ns"] for w in windows])
    rows = [
        ["CPU, % of one core (schedstat, every thread)", f"{cpu:.4f}",
         f"≤ {TARGET_IDLE_CPU_PCT} %", verdict(cpu <= TARGET_IDLE_CPU_PCT)],
        ["CPU, % of one core (utime+stime, 1/100 s ticks)",
         f"{median([w['cpu_pct_ticks'] for w in windows]):.4f}", f"≤ {TARGET_IDLE_CPU_PCT} %",
         verdict(median([w['cpu_pct_ticks'] for w in windows]) <= TARGET_IDLE_CPU_PCT)],
        [f"CPU time per {args.seconds:g} s window (ms)",
         fmt(median([w["cpu_ms"] for w in windows]), 2), "", ""],
        ["wakeups per second (context switches, every thread)",
         fmt(median([w["wakeups_per_s"] for w in windows]), 2), "", ""],
        ["of which voluntary / involuntary (per window)",
         f"{median([w['voluntary'] for w in windows]):.0f} / "
         f"{median([w['involuntary'] for w in windows]):.0f}", "", ""],
        ["threads", fmt(int(median([w["threads"] for w in windows]))), "", ""],
    ]
    print(benchlib.table(["measure", "ckptwatch:", "target", "status"], rows))
    print()
    names = sorted(windows[0]["per_thread"])
    per_thread = {n: median([w["per_thread"].get(n, 0) for w in windows]) for n in names}
    print(f"Median of {len(windows)} consecutive windows of one daemon, after its start-up scan. "
          f"Wakeups per second by thread name: " +
          ", ".join(f"`{n}` {v:.2f}"
                    for n, v in sorted(per_thread.items(), key=lambda kv: -kv[1])) +
          ". Log events over the whole run: " +
          ", ".join(f"{k} {v}" for k, v in sorted(events.items())) + ".")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["scale", "idle"])
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument("--dirs", type=int, help="directories (scale 10000, idle 1000)")
    parser.add_argument("--seconds", type=float, default=60, help="idle window")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tmpdir", default=tempfile.gettempdir())
    parser.add_argument("--no-header", action="store_true", help="omit the machine header")
    args = parser.parse_args()
    if args.dirs is None:
        args.dirs = 10000 if args.what == "scale" else 1000
    (scale if args.what == "scale" else idle)(args)


if __name__ == "__main__":
    main()
