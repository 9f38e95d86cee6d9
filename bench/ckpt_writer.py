"""A checkpoint writer for the latency and burst benches: writes Keras-layout .h5 files with the
real h5py (tests/writers.py), one after another, and records when each was closed.

  ckpt_writer.py --bytes N --count K [--interval-ms MS] --times OUT DIR...

Writes K files per DIR (DIR/ckpt_00000.h5, ...; round-robin over the DIRs). After importing h5py
and building the weights it prints "ready" and waits for a line on stdin, so several writers start
together. `time.time()` (CLOCK_REALTIME, the clock of the daemon's `ts`) is taken right after each
file's close returns; at the end OUT gets one "PATH<TAB>CLOSE_TIME" line per file. With
--interval-ms, file i is started no earlier than start + i × MS (paced); without, back to back."""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import writers  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bytes", type=int, required=True, help="size of each file")
    parser.add_argument("--count", type=int, required=True, help="files per directory")
    parser.add_argument("--interval-ms", type=float, default=0, help="pace: one file per MS")
    parser.add_argument("--times", required=True, help="where to write PATH<TAB>CLOSE_TIME lines")
    parser.add_argument("--prefix", default="ckpt", help="file name prefix")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()

    layers = writers.sized_stack(args.bytes)
    paths = [os.path.join(d, f"{args.prefix}_{i:05d}.h5")
             for i in range(args.count) for d in args.dirs]
    print("ready", flush=True)
    sys.stdin.readline()

    closed = []
    start = time.monotonic()
    for i, path in enumerate(paths):
        if args.interval_ms:
            delay = start + i * args.interval_ms / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        # Keras 2 model.save(): h5py.File(path, "w") ... close; returns after the close.
        writers.write_sized_model(path, args.bytes, layers)
        closed.append((path, time.time()))
    with open(args.times, "w") as f:
        f.writelines(f"{path}\t{t:.6f}\n" for path, t in closed)


if __name__ == "__main__":
    main()
