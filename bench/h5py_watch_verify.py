"""The do-it-yourself watcher ckptwatch is compared with: `inotifywait -m -e close_write` piped
into this script, which opens each .h5 file it is told about with h5py and reads every dataset
(bench/h5py_read_all.py), then notes the time.

  inotifywait -m -e close_write --format '%w%f %T' --timefmt %s DIR | h5py_watch_verify.py OUT

Each stdin line is "PATH TIME"; for each, OUT gets "PATH<TAB>VERIFIED_TIME<TAB>ok|error" (flushed
per line, so a bench can count progress), VERIFIED_TIME being time.time() after the read."""

import sys
import time

import h5py_read_all


def main(out_path):
    with open(out_path, "w") as out:
        for line in sys.stdin:
            path = line.rstrip("\n").rsplit(" ", 1)[0]
            if not path.endswith(".h5"):
                continue
            try:
                h5py_read_all.main(path)
                status = "ok"
            except Exception:  # A broken file is a verdict here, not a crash of the watcher.
                status = "error"
            out.write(f"{path}\t{time.time():.6f}\t{status}\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
