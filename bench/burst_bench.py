"""Burst: many small checkpoints written as fast as possible into a recursive watch, with the
kernel's inotify queue made small enough to overflow.

fs.inotify.max_queued_events is lowered (the kernel reads it when an inotify instance is created)
just before the watcher starts, and restored right after it is up, whatever happens. --dirs
directories exist before the watcher starts; --writers writer processes (bench/ckpt_writer.py)
then write --files Keras-layout files of --bytes across them, back to back. Every file must get
exactly one verdict: the JSON log's verify events are counted per path. Reports the drain time
(the last close → the last verdict), overflows (event=overflow), rescans (event=rescan and
ckptwatch_rescans_total). Baseline in the same run, under the same small queue:
`inotifywait -m -r -e close_write | bench/h5py_watch_verify.py`. Prints one markdown table."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import fmt, median, verdict
from latency_bench import CONSUMER, go, read_times, start_writer


def make_tree(root, dirs):
    paths = [os.path.join(root, f"d{i:03d}") for i in range(dirs)]
    for p in paths:
        os.makedirs(p)
    return paths


def start_writers(dirs, args, times_dir):
    procs, times = [], []
    for k in range(args.writers):
        mine = dirs[k::args.writers]
        if not mine:
            continue
        per_dir = args.files // len(dirs)
        times.append(os.path.join(times_dir, f"closes-{k}.tsv"))
        procs.append(start_writer(mine, per_dir, args.bytes, 0, times[-1]))
    return procs, times


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def outcome(closes, verdict_times, go_time, extra):
    counts = {p: len(verdict_times.get(p, [])) for p in closes}
    last_close = max(closes.values())
    all_times = [t for ts in verdict_times.values() for t in ts]
    last_verdict = max(all_times, default=float("nan"))
    result = {
        "files": len(closes),
        "exactly_one": sum(1 for c in counts.values() if c == 1),
        "missing": sum(1 for c in counts.values() if c == 0),
        "repeated": sum(1 for c in counts.values() if c > 1),
        "write_s": last_close - go_time,
        "drain_s": last_verdict - last_close,
        "total_s": last_verdict - go_time,
    }
    result.update(extra)
    return result


def run_ckptwatch(binary, work, args, queue):
    root = os.path.join(work, "ckpt")
    dirs = make_tree(root, args.dirs)
    # Debug level: the table counts verify_superseded, a debug event.
    daemon = benchlib.Daemon(binary, work, benchlib.daemon_harness.yaml_watch(
        "burst", root, recursive=True, settle=args.settle, level=args.level), log_level="debug")
    with benchlib.sysctl("fs.inotify.max_queued_events", queue):
        daemon.start()
    try:
        procs, times = start_writers(dirs, args, work)
        go_time = time.time()
        go(procs)
        events = daemon.wait_verdicts(args.files, deadline=120 + args.files * 0.1, quiet=3.0)
        metrics = daemon.scrape()
    finally:
        daemon.stop()
    closes = {}
    for t in times:
        closes.update(read_times(t))
    verdicts = {}
    for e in events:
        verdicts.setdefault(e["path"], []).append(benchlib.parse_ts(e["ts"]))
    log = daemon.log
    not_ok = {}
    for e in events:
        if e.get("verdict") != "ok":
            not_ok[e.get("verdict")] = not_ok.get(e.get("verdict"), 0) + 1
    return outcome(closes, verdicts, go_time, {
        "overflows": sum(1 for e in log if e.get("event") == "overflow"),
        "rescans": sum(1 for e in log if e.get("event") == "rescan"),
        "rescans_metric": metric_sum(metrics, "ckptwatch_rescans_total"),
        "queue_full": sum(1 for e in log if e.get("event") == "queue_full"),
        "superseded": sum(1 for e in log if e.get("event") == "verify_superseded"),
        "not_ok": not_ok,
    })


def start_inotify_baseline(options, root, out_path):
    """`inotifywait -m OPTIONS ROOT | h5py_watch_verify.py OUT_PATH`, returned as (watcher,
    reader) once every watch is set up and the reader has imported h5py."""
    watcher = subprocess.Popen(
        ["inotifywait", "-m", *options, "--format", "%w%f %T", "--timefmt", "%s", root],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Without -q, inotifywait says on stderr when every watch is set up.
    line = ""
    while "Watches established" not in line:
        line = watcher.stderr.readline()
        if not line:
            raise SystemExit("inotifywait did not start")
    consumer = subprocess.Popen([benchlib.PYTHON, CONSUMER, out_path], stdin=watcher.stdout)
    watcher.stdout.close()
    deadline = time.monotonic() + 30
    while not os.path.exists(out_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return watcher, consumer


def run_baseline(work, args, queue):
    root = os.path.join(work, "ckpt")
    dirs = make_tree(root, args.dirs)
    out_path = os.path.join(work, "verified.tsv")
    with benchlib.sysctl("fs.inotify.max_queued_events", queue):
        watcher, consumer = start_inotify_baseline(["-r", "-e", "close_write"], root, out_path)
    try:
        procs, times = start_writers(dirs, args, work)
        go_time = time.time()
        go(procs)
        deadline = time.monotonic() + 120 + args.files * 0.1
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            with open(out_path) as f:
                count = sum(1 for _ in f)
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            if count >= args.files and time.monotonic() - last_change > 3:
                break
            if count < args.files and time.monotonic() - last_change > 10:
                break  # events were lost: nothing more is coming
            time.sleep(0.1)
    finally:
        watcher.terminate()
        watcher.wait()
        consumer.wait(timeout=60)
    closes = {}
    for t in times:
        closes.update(read_times(t))
    verdicts = {}
    with open(out_path) as f:
        for line in f:
            path, t, _ = line.rstrip("\n").split("\t")
            verdicts.setdefault(path, []).append(float(t))
    # inotifywait drops IN_Q_OVERFLOW without a word (checked with inotify-tools 3.22): lost
    # events show only as files without a verdict.
    return outcome(closes, verdicts, go_time, {"overflows": 0})


def report(args, results):
    """`results`: {queue limit: {"ckptwatch": [runs], "baseline": [runs]}}."""
    print(f"### 3. Burst: {args.files:,} files of {args.bytes // 1024} KiB into {args.dirs} "
          f"directories (recursive watch), {args.writers} writers, as fast as they can")
    print()

    def med(rs, key):
        return median([r[key] for r in rs])

    def total(rs, key):
        return sum(r[key] for r in rs)

    def ratio(a, b):
        # Below 0.1 s the baseline's drain is within the close timestamp's skew (see notes).
        return f"{a / b:.2f}×" if b >= 0.1 else "—"

    rows = []
    for queue, by_tool in results.items():
        cw, base = by_tool["ckptwatch"], by_tool["baseline"]
        q = f"{queue:,}"
        n_files = total(cw, "files")
        one, one_b = total(cw, "exactly_one"), total(base, "exactly_one")
        rows.append([q, "files with exactly one verdict / written (all runs)",
                     f"{one:,} / {n_files:,}", f"{one_b:,} / {total(base, 'files'):,}",
                     ratio(one, one_b), "all", verdict(one == n_files)])
        rows.append([q, "files with no verdict (all runs)", fmt(total(cw, "missing")),
                     fmt(total(base, "missing")), "—", "0", verdict(total(cw, "missing") == 0)])
        rows.append([q, "files with more than one verdict (all runs)", fmt(total(cw, "repeated")),
                     fmt(total(base, "repeated")), "—", "0", verdict(total(cw, "repeated") == 0)])
        for key, label in (("write_s", "write time: go → last close (s)"),
                           ("drain_s", "drain time: last close → last verdict (s)")):
            ours, theirs = max(0.0, med(cw, key)), max(0.0, med(base, key))
            rows.append([q, label, fmt(ours, 2), fmt(theirs, 2), ratio(ours, theirs), "", ""])
        rate = median([r["files"] / r["total_s"] for r in cw])
        rate_b = median([r["files"] / r["total_s"] for r in base if r["total_s"] > 0])
        rows.append([q, "verdicts per second (go → last verdict)", fmt(rate), fmt(rate_b),
                     ratio(rate, rate_b), "", ""])
        rows.append([q, "inotify queue overflows (all runs)", fmt(total(cw, "overflows")),
                     "not reported", "—", "", ""])
        rows.append([q, "rescans: `event=rescan` lines / `ckptwatch_rescans_total` (all runs)",
                     f"{total(cw, 'rescans'):,} / {int(total(cw, 'rescans_metric')):,}",
                     "—", "—",
                     "overflows are followed by rescans", verdict(total(cw, "rescans") >= 1)
                     if total(cw, "overflows") else ""])
    print(benchlib.table(["inotify queue (max_queued_events)", "measure", "ckptwatch:",
                          "baseline: inotifywait -r + h5py:", "ratio:", "target", "status"], rows))
    print()
    notes = []
    for queue, by_tool in results.items():
        cw = by_tool["ckptwatch"]
        not_ok = {}
        for r in cw:
            for k, v in r["not_ok"].items():
                not_ok[k] = not_ok.get(k, 0) + v
        notes.append(
            f"queue {queue}: verdicts other than ok "
            f"{', '.join(f'{k} {v}' for k, v in sorted(not_ok.items())) or 'none'}, "
            f"verify_superseded {total(cw, 'superseded')}, queue_full {total(cw, 'queue_full')}; "
            f"per run (overflows / rescans / drain s) " +
            ", ".join(f"{r['overflows']} / {r['rescans']} / {r['drain_s']:.2f}" for r in cw))
    print(f"{len(next(iter(results.values()))['ckptwatch'])} runs per tool and queue limit, "
          f"alternating; times are medians, counts are sums. settle {args.settle}, level "
          f"{args.level}. The baseline loses files when its h5py reader falls behind: the pipe "
          f"fills, inotifywait blocks writing to it and stops reading its inotify queue, which "
          f"overflows; inotifywait drops IN_Q_OVERFLOW without a word, so those files never "
          f"get a verdict and nothing says so. Several overflows during one "
          f"rescan are answered by one more rescan, so rescans can be fewer than overflows. "
          f"Close times are taken by the writer right after close() returns; a writer "
          f"descheduled in between makes a drain of a few ms read as 0. " + "; ".join(notes) + ".")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--dirs", type=int, default=50)
    parser.add_argument("--bytes", type=int, default=64 << 10)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--max-queued-events", default="256,16",
                        help="comma-separated inotify queue limits, one burst series each")
    parser.add_argument("--settle", default="0s")
    parser.add_argument("--level", default="structure", choices=["header", "structure", "full"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tmpdir", default=tempfile.gettempdir())
    parser.add_argument("--no-header", action="store_true", help="omit the machine header")
    args = parser.parse_args()
    if args.files % args.dirs:
        raise SystemExit("--files must be a multiple of --dirs")
    queues = [int(q) for q in args.max_queued_events.split(",")]
    tmp = tempfile.mkdtemp(prefix="ckptwatch-burst-", dir=args.tmpdir)
    results = {q: {"ckptwatch": [], "baseline": []} for q in queues}
    try:
        for rep in range(args.reps):
            for queue in queues:
                for tool in ("ckptwatch", "baseline"):
                    r = benchlib.in_scratch_dir(
                        tmp, f"{tool}-", lambda work: run_ckptwatch(args.bin, work, args, queue)
                        if tool == "ckptwatch" else run_baseline(work, args, queue))
                    results[queue][tool].append(r)
                    print(f"burst rep {rep + 1}/{args.reps} queue {queue} {tool}: "
                          f"{r['exactly_one']}/{r['files']} exactly once, missing {r['missing']}, "
                          f"repeated {r['repeated']}, drain {r['drain_s']:.2f} s, overflows "
                          f"{r['overflows']}, rescans {r.get('rescans', '-')}", file=sys.stderr)
        if not args.no_header:
            print(f"Machine: {benchlib.machine(args.tmpdir)}\n")
        report(args, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
