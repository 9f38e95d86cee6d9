"""End-to-end: a writer that hangs with its checkpoint open, half written, is reported once as
`stuck` after `stuck_after` of silence, naming the process that holds it; its close resolves it.

The writer is a real h5py process (writers.py hold-open: a libver='latest' file flushed and left
open, so its superblock still says "open for writing") and the daemon the real binary.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from daemon_harness import BIN, Daemon, tempdir, yaml_watch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class StuckWriterTest(unittest.TestCase):
    def test_a_file_held_open_half_written_is_stuck_within_8s_then_its_close_resolves_it(self):
        work = tempdir(self)
        ckpt = os.path.join(work, "ckpt")
        os.makedirs(ckpt)
        d = Daemon(work, yaml_watch("train", ckpt, settle="0s", stuck_after="3s"))
        self.addCleanup(d.stop)
        d.start()
        path = os.path.join(ckpt, "epoch_003.h5")
        writer = subprocess.Popen([sys.executable, os.path.join(HERE, "writers.py"), "hold-open", path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: writer.poll() is None and writer.kill())
        self.assertEqual(writer.stdout.readline().strip(), "opened")
        opened = time.monotonic()

        v = d.wait_verdict(path, deadline=8)
        within = time.monotonic() - opened
        self.assertLess(within, 8, "reported %.1f s after the writer fell silent" % within)
        self.assertEqual((v["verdict"], v["cause"], v["level"]), ("in_progress", "stuck", "error"), v)
        self.assertIn(f"still open for writing by pid {writer.pid}", v["msg"])
        print(f"\nstuck reported {within:.1f} s after the last write (stuck_after 3s)", file=sys.stderr)
        self.assertEqual(d.metric("ckptwatch_failing_files", watch="train", cause="stuck"), 1)
        status = subprocess.run([BIN, "status", "--config", d.config_path], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(status.returncode, 1, status.stdout + status.stderr)
        self.assertIn("train: in_progress, cause stuck", status.stdout)

        # Reported once: nothing more while it stays open and unchanged (a marker, another
        # program's .bin the daemon skips, shows it has handled everything written before it).
        marker = os.path.join(ckpt, "marker.bin")
        with open(marker, "wb") as f:
            f.write(b"not a checkpoint")
        d.wait_event(lambda e: e.get("event") == "not_checkpoint" and e.get("path") == marker)
        self.assertEqual(len(d.verdicts(path)), 1, d.verdicts(path))

        writer.stdin.close()
        self.assertEqual(writer.wait(timeout=30), 0)
        ok = d.wait_event(lambda e: e.get("event") == "verify" and e.get("path") == path
                          and e.get("verdict") == "ok", what="the closed file's verdict")
        self.assertNotIn("cause", ok)
        self.assertEqual(d.metric("ckptwatch_failing_files", watch="train", cause="stuck"), 0)
        doc = json.loads(subprocess.run([BIN, "status", "--json", "--config", d.config_path],
                                        capture_output=True, text=True, timeout=30).stdout)
        (watch,) = doc["watches"]
        self.assertEqual(watch["failing"], [])
        self.assertEqual([(r["path"], r["cause"], r["resolved_by"]) for r in watch["resolved"]],
                         [(path, "stuck", path)])


if __name__ == "__main__":
    unittest.main()
