"""Sharded save: --files Keras-layout checkpoints of --bytes each (default 512 of 8 MiB, like one
step of a 512-rank data-parallel save) appear in one watched directory within --window seconds,
each published the way trainers publish a shard (written to a staging name, then renamed into
place). Measures the time from the first rename to the last verdict, each shard's
rename → verdict latency, and the CPU seconds the watcher spent (user + system, its children
included) — ckptwatch vs the warm h5py baseline (`inotifywait -m -e close_write,moved_to |
bench/h5py_watch_verify.py`, one Python process that opens each file with h5py and reads every
dataset), measured side by side in the same run, alternating. Prints one markdown table.

The shards are written once, before any measurement, into a staging directory on the same
filesystem and moved back there after each run, so every run publishes the same bytes, warm in
the page cache (as right after a save)."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import fmt, median, percentile, verdict
from burst_bench import start_inotify_baseline

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, include_children=True):
    """utime + stime (+ cutime + cstime: children already reaped) of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the ")": state is field 3 of stat(5); utime, stime, cutime, cstime are 14-17.
    ticks = [int(x) for x in fields[11:15]]
    return sum(ticks if include_children else ticks[:2]) / TICKS


def children_of(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return out


def service_cpu_seconds(pid):
    """The CPU of the daemon `pid` and of every process under it: the zygote with the children
    it forked and reaped (in its cutime), and the warm verifiers still alive (issue 26: not
    reaped yet). Taken before and after the save, like the baseline's: what the zygote and the
    spares spent starting up, before the first file, is not the save's."""
    cpu = cpu_seconds(pid)
    for child in children_of(pid):
        cpu += cpu_seconds(child)
        cpu += sum(cpu_seconds(g) for g in children_of(child))
    return cpu


def publish(stage, target, names, window):
    """Renames each staged shard into `target`, spread evenly over `window` seconds; returns
    {target path: rename time}."""
    times = {}
    start = time.monotonic()
    for i, name in enumerate(names):
        delay = start + window * i / len(names) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        path = os.path.join(target, name)
        os.rename(os.path.join(stage, name), path)
        times[path] = time.time()
    return times


def unpublish(stage, target, names):
    for name in names:
        os.rename(os.path.join(target, name), os.path.join(stage, name))


def outcome(renames, verdicts, cpu):
    lat = [(verdicts[p][0] - renames[p]) * 1000 for p in renames if len(verdicts.get(p, [])) == 1]
    last = max((t for ts in verdicts.values() for t in ts), default=float("nan"))
    return {
        "files": len(renames),
        "exactly_one": sum(1 for p in renames if len(verdicts.get(p, [])) == 1),
        "to_last_s": last - min(renames.values()),
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "cpu_s": cpu,
    }


def run_ckptwatch(binary, work, stage, names, args):
    target = os.path.join(work, "ckpt")
    os.makedirs(target)
    daemon = benchlib.Daemon(binary, work, benchlib.daemon_harness.yaml_watch(
        "sharded", target, settle=args.settle, level=args.level))
    daemon.start()
    try:
        before = service_cpu_seconds(daemon.pid)
        renames = publish(stage, target, names, args.window)
        events = daemon.wait_verdicts(len(names), deadline=120 + len(names) * 0.5, quiet=1.0)
        cpu = service_cpu_seconds(daemon.pid) - before
    finally:
        daemon.stop()
        unpublish(stage, target, names)
    verdicts = {}
    for e in events:
        verdicts.setdefault(e["path"], []).append(benchlib.parse_ts(e["ts"]))
    not_ok = sum(1 for e in events if e.get("verdict") != "ok")
    return dict(outcome(renames, verdicts, cpu), not_ok=not_ok)


def run_baseline(work, stage, names, args):
    target = os.path.join(work, "ckpt")
    os.makedirs(target)
    out_path = os.path.join(work, "verified.tsv")
    watcher, consumer = start_inotify_baseline(["-e", "close_write,moved_to"], target, out_path)
    try:
        before = cpu_seconds(watcher.pid) + cpu_seconds(consumer.pid)
        renames = publish(stage, target, names, args.window)
        deadline = time.monotonic() + 120 + len(names) * 0.5
        while time.monotonic() < deadline:
            with open(out_path) as f:
                if sum(1 for _ in f) >= len(names):
                    break
            time.sleep(0.05)
        cpu = cpu_seconds(watcher.pid) + cpu_seconds(consumer.pid) - before
    finally:
        watcher.terminate()
        watcher.wait()
        consumer.wait(timeout=60)
        unpublish(stage, target, names)
    verdicts = {}
    not_ok = 0
    with open(out_path) as f:
        for line in f:
            path, t, status = line.rstrip("\n").split("\t")
            verdicts.setdefault(path, []).append(float(t))
            not_ok += status != "ok"
    return dict(outcome(renames, verdicts, cpu), not_ok=not_ok)


def report(args, results):
    cw, base = results["ckptwatch"], results["baseline"]
    print(f"### 6. Sharded save: {args.files:,} files of {args.bytes >> 20} MiB renamed into one "
          f"directory within {args.window:g} s")
    print()

    def row(label, key, digits=1, target="", met=None, limit=None):
        ours, theirs = median([r[key] for r in cw]), median([r[key] for r in base])
        ratio = ours / theirs if theirs > 0 else float("nan")
        status = "" if limit is None else verdict(ratio <= limit)
        return [label, fmt(ours, digits), fmt(theirs, digits), f"{ratio:.2f}×", target, status]

    total = lambda rs, k: sum(r[k] for r in rs)  # noqa: E731
    rows = [
        ["files with exactly one verdict / published (all runs)",
         f"{total(cw, 'exactly_one'):,} / {total(cw, 'files'):,}",
         f"{total(base, 'exactly_one'):,} / {total(base, 'files'):,}", "—", "all",
         verdict(total(cw, "exactly_one") == total(cw, "files"))],
        row("first rename → last verdict (s)", "to_last_s", 2),
        row("rename → verdict p50 (ms)", "p50"),
        row("rename → verdict p99 (ms)", "p99", target="≤ 3× baseline (burst)", limit=3.0),
        row("CPU seconds (user + system, children included)", "cpu_s", 2,
            target="≤ 0.5× baseline (issue 26)" if args.level == "structure" else "",
            limit=0.5 if args.level == "structure" else None),
        ["CPU ms per file", fmt(median([r["cpu_s"] for r in cw]) * 1000 / args.files, 2),
         fmt(median([r["cpu_s"] for r in base]) * 1000 / args.files, 2), "—",
         "≤ 1 ms per structure verification" if args.level == "structure" else "",
         verdict(median([r["cpu_s"] for r in cw]) * 1000 / args.files <= 1.0)
         if args.level == "structure" else ""],
    ]
    print(benchlib.table(["measure", "ckptwatch:", "baseline: inotifywait + h5py:",
                          "ratio (ckptwatch / baseline):", "target", "status"], rows))
    print()
    print(f"Median of {len(cw)} runs per tool, alternating; counts are sums. ckptwatch at level "
          f"{args.level}, settle {args.settle}; the baseline reads every dataset. Verdicts other "
          f"than ok: ckptwatch {total(cw, 'not_ok')}, baseline {total(base, 'not_ok')}. "
          f"ckptwatch's CPU is the daemon's and its zygote's (with every verifier child it "
          f"forked); the baseline's is inotifywait's and the Python reader's.")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument("--files", type=int, default=512)
    parser.add_argument("--bytes", type=int, default=8 << 20)
    parser.add_argument("--window", type=float, default=1.0,
                        help="seconds over which the shards are renamed into place")
    parser.add_argument("--settle", default="0s")
    parser.add_argument("--level", default="structure", choices=["header", "structure", "full"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tmpdir", default=tempfile.gettempdir())
    parser.add_argument("--no-header", action="store_true", help="omit the machine header")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ckptwatch-sharded-", dir=args.tmpdir)
    try:
        stage = os.path.join(tmp, "stage")
        os.makedirs(stage)
        names = [f"shard_{i:05d}.h5" for i in range(args.files)]
        print(f"writing {args.files} shards of {args.bytes} bytes...", file=sys.stderr)
        for name in names:
            benchlib.writers.write_sized_model(os.path.join(stage, name), args.bytes)
        subprocess.run(["sync"], check=False)
        results = {"ckptwatch": [], "baseline": []}
        for rep in range(args.reps):
            for tool in ("ckptwatch", "baseline"):
                r = benchlib.in_scratch_dir(
                    tmp, f"{tool}-", lambda work: run_ckptwatch(args.bin, work, stage, names, args)
                    if tool == "ckptwatch" else run_baseline(work, stage, names, args))
                results[tool].append(r)
                print(f"sharded rep {rep + 1}/{args.reps} {tool}: {r['exactly_one']}/{r['files']}"
                      f" verdicts, last after {r['to_last_s']:.2f} s, p99 {r['p99']:.0f} ms, "
                      f"CPU {r['cpu_s']:.2f} s", file=sys.stderr)
        if not args.no_header:
            print(f"Machine: {benchlib.machine(args.tmpdir)}\n")
        report(args, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
