"""A valid checkpoint whose file name and Keras attributes are hostile bytes is still `ok`.

File names and HDF5 attribute strings are bytes an adversary chooses. Not valid UTF-8, they
once made the verifier child throw while printing its JSON (`verifier_crashed` for a good
file) and `ckptwatch verify --json` abort with no output. Control and bidi characters must
not reach a terminal or forge a log line. Real binary, real h5py files.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import writers  # noqa: E402
from daemon_harness import BIN, Daemon, yaml_watch  # noqa: E402

NAME = b"ckpt_\xff\xfe.h5"
NAME_ESCAPED = r"ckpt_\xff\xfe.h5"  # docs/verify.md: invalid bytes as \xNN
VERSION = b"2.1.5\xff"
CLASS = "Evil\u202eLayer\x1b[31m"  # RIGHT-TO-LEFT OVERRIDE and an ANSI colour


def unescape_bytes(text):
    """Inverts EscapeBytes(): every \\xNN (lowercase hex) is the byte NN."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  text.encode("utf-8"))


def write_hostile_checkpoint(path):
    """A complete Keras 2 full model with a bidi custom class and a non-UTF-8 keras_version."""
    writers.write_custom_layer_model(path, CLASS)
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = np.bytes_(VERSION)


class HostileNamesTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="ckptwatch-e2e-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.mkdir(self.ckpt)
        self.staging = os.path.join(self.dir, "staging.h5")
        write_hostile_checkpoint(self.staging)

    def check_result(self, r, where):
        self.assertEqual(r["verdict"], "ok", where)
        self.assertTrue(r["path"].endswith("/" + NAME_ESCAPED), where)
        self.assertEqual(unescape_bytes(r["path"]),
                         os.fsencode(os.path.join(self.ckpt, os.fsdecode(NAME))), where)

    def test_verify_json_reports_ok_with_escaped_bytes(self):
        os.rename(self.staging, os.path.join(os.fsencode(self.ckpt), NAME))
        proc = subprocess.run([BIN, "verify", "--json", self.ckpt], capture_output=True,
                              timeout=120)
        where = f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
        self.assertEqual(proc.returncode, 0, where)
        proc.stdout.decode("utf-8")  # valid UTF-8 throughout
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 1, where)
        r = json.loads(lines[0])
        self.check_result(r, where)
        self.assertEqual(unescape_bytes(r["keras"]["version"]), VERSION, where)
        self.assertEqual(r["keras"]["custom_classes"], [CLASS], where)
        # JSON escapes C0 controls itself (\u001b).
        self.assertNotIn(b"\x1b", proc.stdout, where)

    def test_verify_text_line_has_no_control_or_bidi_bytes(self):
        os.rename(self.staging, os.path.join(os.fsencode(self.ckpt), NAME))
        proc = subprocess.run([BIN, "verify", self.ckpt], capture_output=True, timeout=120)
        where = f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
        self.assertEqual(proc.returncode, 0, where)
        text = proc.stdout.decode("utf-8")
        self.assertIn(NAME_ESCAPED + ": ok: ", text, where)
        self.assertIn(r"Evil\u202eLayer\u001b[31m", text, where)
        for bad in ("\x1b", "\u202e", "\xff"):
            self.assertNotIn(bad, text, where)

    def test_daemon_verifies_it_ok_and_logs_it_escaped(self):
        for log_format in ("json", "text"):
            with self.subTest(log_format=log_format):
                work = os.path.join(self.dir, log_format)
                ckpt = os.path.join(work, "ckpt")
                os.makedirs(ckpt)
                d = Daemon(work, yaml_watch("run", ckpt, settle="100ms"), log_format=log_format)
                self.addCleanup(d.stop)
                d.start()
                staging = os.path.join(work, "staging.h5")
                write_hostile_checkpoint(staging)
                os.rename(staging, os.path.join(os.fsencode(ckpt), NAME))
                want = os.path.join(ckpt, NAME_ESCAPED)
                e = d.wait_event(lambda e: e.get("event") == "verify", deadline=60,
                                 what="verdict")
                self.assertEqual(e["verdict"], "ok", d.log_text())
                if log_format == "json":
                    self.assertEqual(e["path"], want, d.log_text())
                else:  # logfmt: each invalid byte as \xNN inside quotes (docs/logging.md)
                    self.assertIn(f'path="{want}"', d.log_text())
                with open(d.log_path, "rb") as f:
                    raw = f.read()
                raw.decode("utf-8")
                self.assertNotIn(b"\x1b", raw)
                self.assertNotIn("\u202e".encode(), raw)
                d.stop()

if __name__ == "__main__":
    unittest.main()
