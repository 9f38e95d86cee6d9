"""Detection latency: from the close of a checkpoint by its writer to the verdict about it.

ckptwatch: `ckptwatch run` on a fresh directory (settle 0s, level structure, JSON log); latency is
the verify line's `ts` minus the writer's close time. Baseline, in the same run:
`inotifywait -m -e close_write | bench/h5py_watch_verify.py` (h5py opens each file and reads every
dataset); latency is its time after the read minus the same close time. Both clocks are
CLOCK_REALTIME. Each tool gets the same writer (bench/ckpt_writer.py: N Keras-layout files of
--bytes), paced (one file every --interval-ms, so latency and not queueing is measured) and as an
unpaced burst (back to back: queueing included). Runs alternate between the tools; each statistic
is the median over --reps runs. Prints one markdown table."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import fmt, median, percentile, verdict

WRITER = os.path.join(benchlib.HERE, "ckpt_writer.py")
CONSUMER = os.path.join(benchlib.HERE, "h5py_watch_verify.py")
TARGET_P99_MS = 20.0
# Issue 12's targets: ratios to the warm h5py baseline, measured side by side in the same run.
PACED_RATIO_TARGET = 1.0
BURST_RATIO_TARGET = 3.0


def start_writer(dirs, files, size, interval_ms, times_path):
    """A bench/ckpt_writer.py writing `files` files per directory of `dirs`, started and waiting
    for go()."""
    proc = subprocess.Popen(
        [benchlib.PYTHON, WRITER, "--bytes", str(size), "--count", str(files), "--interval-ms",
         str(interval_ms), "--times", times_path, *dirs],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("writer did not start")
    return proc


def go(writers):
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in writers:
        if w.wait() != 0:
            raise SystemExit(f"writer failed with exit status {w.returncode}")


def read_times(path):
    out = {}
    with open(path) as f:
        for line in f:
            name, t = line.rstrip("\n").split("\t")
            out[name] = float(t)
    return out


def summarize(closes, verdict_times, extra=None):
    """Latencies in ms of the paths verified exactly once; counts of missing and repeated."""
    lat = [(verdict_times[p][0] - closes[p]) * 1000
           for p in closes if len(verdict_times.get(p, [])) == 1]
    result = {
        "latencies": lat,
        "missing": sum(1 for p in closes if p not in verdict_times),
        "repeated": sum(1 for p in closes if len(verdict_times.get(p, [])) > 1),
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "max": max(lat, default=float("nan")),
    }
    result.update(extra or {})
    return result


def run_ckptwatch(binary, work, files, size, interval_ms, level):
    directory = os.path.join(work, "ckpt")
    os.makedirs(directory)
    daemon = benchlib.Daemon(binary, work, benchlib.daemon_harness.yaml_watch(
        "latency", directory, settle="0s", level=level))
    daemon.start()
    try:
        times_path = os.path.join(work, "closes.tsv")
        go([start_writer([directory], files, size, interval_ms, times_path)])
        events = daemon.wait_verdicts(files, deadline=60 + files * 0.2, quiet=1.0)
    finally:
        daemon.stop()
    closes = read_times(times_path)
    verdicts = {}
    for e in events:
        verdicts.setdefault(e["path"], []).append(benchlib.parse_ts(e["ts"]))
    not_ok = sum(1 for e in events if e.get("verdict") != "ok")
    elapsed = [float(e["elapsed_ms"]) for e in events if "elapsed_ms" in e]
    return summarize(closes, verdicts, {"not_ok": not_ok, "verify_ms": median(elapsed)})


def run_baseline(work, files, size, interval_ms):
    directory = os.path.join(work, "ckpt")
    os.makedirs(directory)
    out_path = os.path.join(work, "verified.tsv")
    watcher = subprocess.Popen(
        ["inotifywait", "-m", "-q", "-e", "close_write", "--format", "%w%f %T", "--timefmt", "%s",
         directory], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    consumer = subprocess.Popen([benchlib.PYTHON, CONSUMER, out_path], stdin=watcher.stdout)
    watcher.stdout.close()  # the consumer holds the pipe; its EOF follows the watcher's exit
    try:
        # inotifywait -q says nothing when its watch is set up; the consumer creating its output
        # file (after importing h5py) and a probe file's event reaching it say both are live.
        probe = os.path.join(directory, "probe.h5")
        deadline = time.monotonic() + 30
        while not os.path.exists(out_path) and time.monotonic() < deadline:
            time.sleep(0.01)
        probe_seen = False
        while time.monotonic() < deadline and not probe_seen:
            benchlib.writers.write_sized_model(probe, 4096)
            time.sleep(0.2)
            with open(out_path) as f:
                probe_seen = any(line.startswith(probe + "\t") for line in f)
        if not probe_seen:
            raise SystemExit("inotifywait | h5py_watch_verify.py did not start")
        times_path = os.path.join(work, "closes.tsv")
        go([start_writer([directory], files, size, interval_ms, times_path)])
        deadline = time.monotonic() + 60 + files * 0.2
        done = 0
        while time.monotonic() < deadline:
            with open(out_path) as f:
                done = sum(1 for line in f if not line.startswith(probe + "\t"))
            if done >= files:
                break
            time.sleep(0.05)
    finally:
        watcher.terminate()
        watcher.wait()
        consumer.wait(timeout=30)
    closes = read_times(times_path)
    verdicts = {}
    not_ok = 0
    with open(out_path) as f:
        for line in f:
            path, t, status = line.rstrip("\n").split("\t")
            if path in closes:
                verdicts.setdefault(path, []).append(float(t))
                not_ok += status != "ok"
    return summarize(closes, verdicts, {"not_ok": not_ok})


def measure(args, binary, tmp):
    """{(tool, mode): [result per rep]}"""
    modes = {"paced": args.interval_ms, "burst": 0}
    results = {}
    for rep in range(args.reps):
        for mode, interval in modes.items():
            for tool in ("ckptwatch", "baseline"):
                work = tempfile.mkdtemp(prefix=f"lat-{tool}-{mode}-", dir=tmp)
                try:
                    if tool == "ckptwatch":
                        r = run_ckptwatch(binary, work, args.files, args.bytes, interval,
                                          args.level)
                    else:
                        r = run_baseline(work, args.files, args.bytes, interval)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                results.setdefault((tool, mode), []).append(r)
                print(f"latency rep {rep + 1}/{args.reps} {mode} {tool}: p50 {r['p50']:.1f} "
                      f"p99 {r['p99']:.1f} max {r['max']:.1f} ms, missing {r['missing']}, "
                      f"repeated {r['repeated']}", file=sys.stderr)
    return results


def report(args, results):
    print(f"### 2. Detection latency: writer's close → verdict ({args.files} files of "
          f"{args.bytes // 1024:,} KiB, settle 0s, level {args.level})")
    print()
    rows = []
    for mode, label in (("paced", f"paced, one file every {args.interval_ms:g} ms"),
                        ("burst", "unpaced burst (queueing included)")):
        cw, base = results[("ckptwatch", mode)], results[("baseline", mode)]
        for stat in ("p50", "p99", "max"):
            ours = median([r[stat] for r in cw])
            theirs = median([r[stat] for r in base])
            target, status = "", ""
            if mode == "paced" and stat == "p99":
                target, status = f"≤ {TARGET_P99_MS:g} ms", verdict(ours <= TARGET_P99_MS)
                # Issue 12: the same p99 as the warm h5py baseline, measured in this run.
                target += f"; ≤ {PACED_RATIO_TARGET:g}× baseline"
                status += "; " + verdict(theirs > 0 and ours / theirs <= PACED_RATIO_TARGET)
            if mode == "burst" and stat == "p99":
                target = f"≤ {BURST_RATIO_TARGET:g}× baseline"
                status = verdict(theirs > 0 and ours / theirs <= BURST_RATIO_TARGET)
            # A baseline under 0.1 ms is within the close timestamp's skew: no ratio.
            rows.append([label, f"{stat} latency (ms)", fmt(ours), fmt(max(theirs, 0.0)),
                         f"{ours / theirs:.1f}×" if theirs >= 0.1 else "—", target, status])
        missing = sum(r["missing"] + r["repeated"] for r in cw)
        base_missing = sum(r["missing"] + r["repeated"] for r in base)
        rows.append([label, "files without exactly one verdict (all runs)", fmt(missing),
                     fmt(base_missing), "—", "0", verdict(missing == 0)])
    print(benchlib.table(
        ["run", "measure", "ckptwatch:", "baseline: inotifywait + h5py:",
         "ratio (ckptwatch / baseline):",
         "target", "status"], rows))
    print()
    def per_run(tool):
        return " / ".join(f"{r['p99']:.1f}" for r in results[(tool, "paced")])

    verify_ms = median([r["verify_ms"] for r in results[("ckptwatch", "paced")]])
    print(f"Median of {args.reps} runs per row; ratio below 1 means ckptwatch answered sooner. "
          f"The writer takes each close time right after close() returns; when it is "
          f"descheduled in between (unpaced, both cores busy) the baseline's sub-millisecond "
          f"verdict can come first, which reads as 0. "
          f"The verifier child's own time (`elapsed_ms`, paced, median): {verify_ms:.1f} ms; the "
          f"rest of ckptwatch's latency is inotify delivery, the event loop and spawning it. "
          f"Per run (paced p99, ms): ckptwatch "
          f"{per_run('ckptwatch')}, baseline {per_run('baseline')}.")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--bytes", type=int, default=1 << 20, help="size of each file")
    parser.add_argument("--interval-ms", type=float, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--level", default="structure", choices=["header", "structure", "full"])
    parser.add_argument("--tmpdir", default=tempfile.gettempdir())
    parser.add_argument("--no-header", action="store_true", help="omit the machine header")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ckptwatch-latency-", dir=args.tmpdir)
    try:
        if not args.no_header:
            print(f"Machine: {benchlib.machine(args.tmpdir)}\n")
        report(args, measure(args, args.bin, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
