"""Per-file state is bounded and freed: the daemon's RSS before, during and after a flood.

  flood_rss.py --bin BIN [--files 20000] [--batches 2]

One watch (header level, settle 0, queue_limit 10000). Each batch writes --files copies of a
small Keras-layout checkpoint, waits for every verdict, deletes them all and waits for the
daemon to free their state (malloc_trim runs every 30 s). RSS (VmRSS) is read at start, after
each flood is verified and after each deletion; the baseline is the daemon's own RSS at start in
the same run. Prints one markdown table: RSS after deletion should return near the baseline and
not grow batch over batch (the old daemon went 12 -> 104 MB for 100k files and stayed there)."""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import benchlib  # noqa: E402
import writers  # noqa: E402
from daemon_harness import yaml_watch  # noqa: E402


def rss_mib(pid):
    return int(benchlib.proc_status(pid)["VmRSS"]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--batches", type=int, default=2)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ckptwatch-flood-")
    try:
        ckpt = os.path.join(work, "ckpt")
        os.makedirs(ckpt)
        ref = os.path.join(work, "ref.h5")
        writers.write_sized_model(ref, 4096)
        d = benchlib.Daemon(args.bin, work, yaml_watch("flood", ckpt, settle="0s"),
                            verify_yaml="verify: {max_parallel: 2, timeout: 60s, queue_limit: 10000, "
                                        "level: header}\n")
        d.start()
        time.sleep(1)
        rows = [["start", 0, f"{rss_mib(d.pid):.1f}", "1.00"]]
        base = rss_mib(d.pid)
        verified = 0
        for batch in range(1, args.batches + 1):
            names = [os.path.join(ckpt, f"b{batch}_{i:06}.h5") for i in range(args.files)]
            started = time.monotonic()
            for name in names:
                shutil.copyfile(ref, name)
            verified += args.files
            got = d.wait_verdicts(verified, deadline=3600)
            if len(got) < verified:
                sys.exit(f"only {len(got)} of {verified} verdicts")
            took = time.monotonic() - started
            rss = rss_mib(d.pid)
            rows.append([f"batch {batch}: {args.files} files verified ({took:.0f} s)", args.files,
                         f"{rss:.1f}", f"{rss / base:.2f}"])
            for name in names:
                os.remove(name)
            time.sleep(35)  # a malloc_trim period and then some
            rss = rss_mib(d.pid)
            rows.append([f"batch {batch}: all deleted", 0, f"{rss:.1f}", f"{rss / base:.2f}"])
        d.stop()
        print(benchlib.table(["moment", "files present:", "RSS MiB:", "× start:"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
