#!/usr/bin/python3
"""Soak: the real daemon for N minutes under 4 writers, 10 % broken files, a reload every minute and
a log rotation every 5 minutes. Passes when every file got exactly one verdict, the right one (ok
for a good save, not ok for a broken one), no error line other than those verdicts appeared, and
RSS and open file descriptors stayed flat. Prints a markdown table.

usage: bench/soak.py [--minutes 15] [--writers 4] [--broken 0.1] [--reload-every 60]
                     [--rotate-every 300] [--bin build/ckptwatch]
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import writers  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_and_fds(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def writer_loop(index, directory, stop, broken_fraction, written, lock, seed):
    """Writes small Keras checkpoints; a fraction of them cut short (a save killed mid-way)."""
    rng = random.Random(seed)
    staging = os.path.join(directory, ".staging")
    os.makedirs(staging, exist_ok=True)
    seq = 0
    while not stop.is_set():
        seq += 1
        name = f"w{index}_{seq:06}.h5"
        tmp = os.path.join(staging, name)
        units = (8, rng.choice((16, 32, 64)), rng.choice((16, 32, 64)), 10)
        writers.write_full_model(tmp, writers.dense_stack(units=units, seed=seq))
        broken = rng.random() < broken_fraction
        if broken:
            size = os.path.getsize(tmp)
            writers.truncate(tmp, rng.randrange(1, size))
        final = os.path.join(directory, name)
        os.rename(tmp, final)  # into place in one step, as atomic savers do
        with lock:
            written[final] = broken
        stop.wait(rng.uniform(0.05, 0.3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--broken", type=float, default=0.1)
    ap.add_argument("--reload-every", type=float, default=60)
    ap.add_argument("--rotate-every", type=float, default=300)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "ckptwatch"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="ckptwatch-soak-")
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    dirs = [os.path.join(work, f"run{i}") for i in range(args.writers)]
    for d in dirs:
        os.makedirs(d)
    log_path = os.path.join(work, "ckptwatch.log")
    config_path = os.path.join(work, "ckptwatch.yaml")
    port = free_port()

    def write_config(generation):
        # Every reload changes something real: the summary period and one watch's settle.
        watches = "\n".join(
            f"  - name: run{i}\n    path: {d}\n    settle: {100 + (generation % 2) * 50 * (i == 0)}ms"
            for i, d in enumerate(dirs))
        with open(config_path, "w") as f:
            f.write(f"log: {{file: {log_path}, format: json, level: info, "
                    f"summary_every: {1 + generation % 2}m}}\n"
                    f"metrics: {{listen: \"127.0.0.1:{port}\"}}\n"
                    f"verify: {{max_parallel: 2, timeout: 60s}}\n"
                    f"watches:\n{watches}\n")

    write_config(0)
    notify_path = os.path.join(work, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(30)
    daemon = subprocess.Popen([args.bin, "run", "--config", config_path],
                              env=dict(os.environ, NOTIFY_SOCKET=notify_path),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while b"READY=1" not in notify.recv(4096):
        pass

    stop = threading.Event()
    lock = threading.Lock()
    written = {}
    threads = [threading.Thread(target=writer_loop, args=(i, d, stop, args.broken, written, lock, i))
               for i, d in enumerate(dirs)]
    for t in threads:
        t.start()

    started = time.monotonic()
    end = started + args.minutes * 60
    time.sleep(min(10, args.minutes * 60 / 10))  # warm-up before the baseline sample
    rss_start, fds_start = rss_and_fds(daemon.pid)
    reloads = rotations = 0
    next_reload = started + args.reload_every
    next_rotate = started + args.rotate_every
    rotated = []
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_reload:
            reloads += 1
            write_config(reloads)
            daemon.send_signal(signal.SIGHUP)
            next_reload += args.reload_every
        if now >= next_rotate:
            rotations += 1
            target = f"{log_path}.{rotations}"
            os.rename(log_path, target)
            rotated.append(target)
            daemon.send_signal(signal.SIGUSR1)
            next_rotate += args.rotate_every
        if daemon.poll() is not None:
            print("FAIL: the daemon exited:", daemon.stderr.read().decode(), file=sys.stderr)
            return 1
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()

    def events():
        out = []
        for path in rotated + [log_path]:
            with open(path) as f:
                out.extend(json.loads(line) for line in f if line.strip())
        return out

    # Drain: every written file verified, or the deadline passes.
    drain_deadline = time.monotonic() + 120
    while time.monotonic() < drain_deadline:
        seen = {e["path"] for e in events() if e.get("event") == "verify"}
        if all(p in seen for p in written):
            break
        time.sleep(0.5)
    drained = time.monotonic()
    rss_end, fds_end = rss_and_fds(daemon.pid)
    daemon.send_signal(signal.SIGTERM)
    exit_code = daemon.wait(timeout=30)

    all_events = events()
    verdicts = {}
    for e in all_events:
        if e.get("event") == "verify":
            verdicts.setdefault(e["path"], []).append(e)
    missing = [p for p in written if p not in verdicts]
    duplicated = [p for p, v in verdicts.items() if len(v) != 1]
    wrong = [p for p, broken in written.items() if p in verdicts and
             (verdicts[p][0]["verdict"] == "ok") == broken]
    unexpected_errors = [e for e in all_events
                         if e.get("level") == "error" and e.get("event") != "verify"]
    reload_events = [e for e in all_events if e.get("event") == "reload"]
    reopen_events = [e for e in all_events if e.get("event") == "log_reopened"]
    broken_count = sum(written.values())
    # Flat: per-file state is a few hundred bytes (the path, two stats); allow that plus 8 MiB.
    rss_budget = rss_start + 8 * 1024 * 1024 + 512 * len(written)
    checks = [
        ("files written", len(written), f"{broken_count} broken", True),
        ("files with exactly one verdict", len(written) - len(missing) - len(duplicated),
         f"missing {len(missing)}, duplicated {len(duplicated)}", not missing and not duplicated),
        ("verdicts that match the file", len(written) - len(wrong), f"wrong {len(wrong)}", not wrong),
        ("error lines other than verdicts", len(unexpected_errors), "0 expected", not unexpected_errors),
        ("reloads (SIGHUP) / reload events", f"{reloads} / {len(reload_events)}", "equal",
         reloads == len(reload_events)),
        ("rotations (SIGUSR1) / reopen events", f"{rotations} / {len(reopen_events)}", "equal",
         rotations == len(reopen_events)),
        ("RSS start → end", f"{rss_start / 2**20:.1f} → {rss_end / 2**20:.1f} MiB",
         f"≤ {rss_budget / 2**20:.1f} MiB", rss_end <= rss_budget),
        ("open fds start → end", f"{fds_start} → {fds_end}", "≤ start + 2", fds_end <= fds_start + 2),
        ("drain after writers stopped", f"{drained - end:.1f} s", "≤ 120 s", drained - end <= 120),
        ("exit status after SIGTERM", exit_code, "0", exit_code == 0),
    ]
    print(f"Soak: {args.minutes:g} min, {args.writers} writers, {args.broken:.0%} broken, "
          f"reload every {args.reload_every:g} s, rotation every {args.rotate_every:g} s\n")
    print("| check | measured | expected | |")
    print("|---|---:|---|---|")
    for name, measured, expected, ok in checks:
        print(f"| {name} | {measured} | {expected} | {'ok' if ok else 'FAIL'} |")
    for label, items in (("missing", missing), ("duplicated", duplicated), ("wrong", wrong)):
        for p in items[:5]:
            print(f"{label}: {p} {verdicts.get(p)}", file=sys.stderr)
    for e in unexpected_errors[:5]:
        print("unexpected error line:", e, file=sys.stderr)
    passed = all(ok for *_, ok in checks)
    print("\n" + ("1 passed, 0 failed" if passed else "0 passed, 1 failed"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
