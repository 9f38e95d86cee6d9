"""End-to-end: a writer killed mid-save is named as such (issue 25, item 5).

Real h5py writers (writers.py flush-layers: a Keras full model, f.flush() after each layer) are
SIGKILLed after some layers, and the real daemon judges what they left:
- superblock v0 (h5py's default): a readable file holding the first layers, the rest missing.
  That is a save cut short whose writer died (`truncated`, cause `writer_died`), not damaged
  storage (`corrupt`, which docs/operations.md sends to "check the storage").
- superblock v3 (libver='latest'): the superblock still says "open for writing", but the kernel
  closed the file when it killed its writer and nobody holds it: not `in_progress` (nothing will
  progress), `truncated` with cause `writer_died`.
"""

import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from daemon_harness import BIN, Daemon, tempdir, yaml_watch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def kill_after_flushes(test, path, layers, *libver):
    """Runs a flush-layers writer into `path` and SIGKILLs it after `layers` flushed layers."""
    writer = subprocess.Popen([sys.executable, os.path.join(HERE, "writers.py"), "flush-layers", path,
                               str(layers), *libver], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    test.addCleanup(lambda: writer.poll() is None and writer.kill())
    test.assertEqual(writer.stdout.readline().strip(), "flushed")
    writer.send_signal(signal.SIGKILL)
    test.assertEqual(writer.wait(timeout=30), -signal.SIGKILL)
    writer.stdout.close()
    writer.stdin.close()


class KilledWriterTest(unittest.TestCase):
    def setUp(self):
        work = tempdir(self)
        self.ckpt = os.path.join(work, "ckpt")
        os.makedirs(self.ckpt)
        self.d = Daemon(work, yaml_watch("train", self.ckpt, settle="200ms"))
        self.addCleanup(self.d.stop)
        self.d.start()

    def test_a_writer_killed_after_per_layer_flushes_died_it_did_not_corrupt_the_file(self):
        path = os.path.join(self.ckpt, "epoch_007.h5")
        kill_after_flushes(self, path, 3)
        v = self.d.wait_verdict(path)
        self.assertEqual((v["verdict"], v["cause"], v["level"]), ("truncated", "writer_died", "error"), v)
        self.assertIn("holds only the first 3", v["msg"])
        self.assertIn("the writer died mid-save", v["msg"])
        self.assertEqual(self.d.metric("ckptwatch_failing_files", watch="train", cause="writer_died"), 1)
        # `verify` has no writer to ask about: the file alone says truncated, with its guess.
        r = subprocess.run([BIN, "verify", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(": truncated: Keras layer_names lists", r.stdout)

    def test_a_closed_file_whose_writer_was_killed_is_not_in_progress(self):
        path = os.path.join(self.ckpt, "epoch_008.h5")
        kill_after_flushes(self, path, 2, "latest")
        v = self.d.wait_verdict(path)
        self.assertEqual((v["verdict"], v["cause"]), ("truncated", "writer_died"), v)
        self.assertTrue(v["msg"].startswith("the save never finished: superblock v3 says"), v["msg"])
        self.assertEqual(self.d.metric("ckptwatch_failing_files", watch="train", cause="writer_died"), 1)
        status = subprocess.run([BIN, "status", "--config", self.d.config_path], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(status.returncode, 1, status.stdout + status.stderr)
        self.assertIn("truncated, cause writer_died", status.stdout)
        self.assertNotIn("in_progress", status.stdout)


if __name__ == "__main__":
    unittest.main()
