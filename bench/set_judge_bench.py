"""Checkpoint set judged by the daemon: a Hugging Face sharded save of --shards safetensors shards
(default 64 of 4 MiB, written by the spec with format_writers.py) plus its
model.safetensors.index.json lands in a watched directory closed at once — its staging directory
renamed into place, as the Trainer publishes tmp-checkpoint-N: that rename is its commit point —
and the daemon judges the set (every shard verified as a file by the confined verifier first,
then the index read off the loop). Measures, per repetition, the time from the rename to the
`event=checkpoint` line and to the last shard's verdict, and the daemon's peak resident memory
(VmHWM) before and after. Prints one markdown table. Issue 24: judged within 1 s of its commit
point at `structure`, memory bounded.

The set is written once into a staging directory on the same filesystem and moved back after
each run, so every repetition publishes the same bytes, warm in the page cache."""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import benchlib
from benchlib import fmt, median

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import format_writers  # noqa: E402


def hwm_kib(pid):
    return int(benchlib.proc_status(pid)["VmHWM"])


def write_shards(stage, shards, size):
    import numpy as np
    weight_map = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        tensor = np.full(size // 4, i, "<f4")
        format_writers.write_safetensors(os.path.join(stage, name),
                                         {f"layers.{i}.weight": format_writers.array_tensor(tensor)})
        weight_map[f"layers.{i}.weight"] = name
    with open(os.path.join(stage, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": shards * size}, "weight_map": weight_map}, f)


def one_run(daemon, stage, target):
    os.rename(stage, target)
    committed = time.time()
    index = os.path.join(target, "model.safetensors.index.json")
    end = time.monotonic() + 60
    judged = None
    while time.monotonic() < end and judged is None:
        for e in daemon.read_new():
            if e.get("event") == "checkpoint" and e.get("path") == index and "layout" in e:
                judged = e
        time.sleep(0.01)
    if judged is None:
        raise SystemExit(f"no event=checkpoint for {target} within 60 s")
    verdicts = [benchlib.parse_ts(e["ts"]) for e in daemon.log
                if e.get("event") == "verify" and e.get("path", "").startswith(target + "/")]
    os.rename(target, stage)
    return {"verdict": judged["verdict"], "members": int(judged["members"]),
            "to_judged_s": benchlib.parse_ts(judged["ts"]) - committed,
            "to_last_verdict_s": max(verdicts, default=float("nan")) - committed,
            "shard_verdicts": len(verdicts)}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="path to the ckptwatch binary")
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--bytes", type=int, default=4 << 20, help="bytes per shard")
    parser.add_argument("--level", default="structure", choices=["header", "structure", "full"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tmpdir", default=tempfile.gettempdir())
    parser.add_argument("--no-header", action="store_true", help="omit the machine header")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="ckptwatch-setbench-", dir=args.tmpdir)
    try:
        stage = os.path.join(work, "stage")
        watched = os.path.join(work, "ckpt")
        os.makedirs(stage)
        os.makedirs(watched)
        write_shards(stage, args.shards, args.bytes)
        if not args.no_header:
            print(benchlib.machine(work))
        daemon = benchlib.Daemon(args.bin, work, benchlib.daemon_harness.yaml_watch(
            "bench", watched, recursive=True, settle="0s", level=args.level))
        daemon.start()
        try:
            before = hwm_kib(daemon.pid)
            runs = [one_run(daemon, stage, os.path.join(watched, f"sharded-{r}"))
                    for r in range(args.reps)]
            after = hwm_kib(daemon.pid)
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = all(r["verdict"] == "ok" and r["members"] == args.shards + 1 for r in runs)
    judged = [r["to_judged_s"] for r in runs]
    print(benchlib.table(
        ["measure", "value"],
        [["set", f"hf_sharded, {args.shards} shards of {args.bytes >> 20} MiB + index, "
                 f"level {args.level}, {args.reps} saves"],
         ["verdicts", "every save ok with every member" if ok else f"NOT ALL OK: {runs}"],
         ["commit point → event=checkpoint, median (max)",
          f"{fmt(median(judged) * 1000, 0)} ms ({fmt(max(judged) * 1000, 0)} ms)"],
         ["commit point → last shard's verdict, median",
          f"{fmt(median([r['to_last_verdict_s'] for r in runs]) * 1000, 0)} ms"],
         ["daemon peak RSS (VmHWM) before → after", f"{before / 1024:.1f} → {after / 1024:.1f} MiB"]]))
    return 0 if ok and max(judged) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
