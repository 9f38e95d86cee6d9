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
import time
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


# Names an adversary who can write a watched directory may choose for files that fail: an SGR
# colour, an OSC title change, a C1 CSI (U+009B), a RIGHT-TO-LEFT OVERRIDE, an isolate, a line
# break that forges a log-like line, a carriage return, bytes that are not UTF-8, DEL.
FORGED = b"level=error event=verify path=forged verdict=ok"
HOSTILE_NAMES = [
    b"\x1b[31mred\x1b[0m.h5",
    b"\x1b]0;owned\x07.h5",
    "\u009b2J.h5".encode(),
    "evil\u202eh5.txt.h5".encode(),
    "iso\u2066late\u2069.h5".encode(),
    b"a.h5\n" + FORGED + b".h5",
    b"hidden\rok.h5",
    b"bad\xff\xfe.h5",
    b"del\x7f\x01.h5",
]


def raw_unsafe(data):
    """The first raw byte sequence of `data` a terminal would act on, or that is not UTF-8, other
    than a line end; None when there is none."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at {e.start}"
    for ch in text:
        cp = ord(ch)
        if ch == "\n":
            continue
        if cp < 0x20 or 0x7f <= cp <= 0x9f or cp in (0x061c, 0x200e, 0x200f, 0x2028, 0x2029) \
                or 0x202a <= cp <= 0x202e or 0x2066 <= cp <= 0x2069:
            return f"U+{cp:04X}"
    return None


def unescape_bytes(text):
    """Inverts EscapeBytes(): every \\xNN (lowercase hex) is the byte NN."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  text.encode("utf-8"))


def write_hostile_checkpoint(path):
    """A complete Keras 2 full model with a bidi custom class and a non-UTF-8 keras_version."""
    writers.write_custom_layer_model(path, CLASS)
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = np.bytes_(VERSION)


def make_watched_dir(test):
    """A temporary directory for `test` with an empty `ckpt` in it: (directory, ckpt)."""
    tmp = tempfile.TemporaryDirectory(prefix="ckptwatch-e2e-")
    test.addCleanup(tmp.cleanup)
    ckpt = os.path.join(tmp.name, "ckpt")
    os.mkdir(ckpt)
    return tmp.name, ckpt


class HostileNamesTest(unittest.TestCase):
    def setUp(self):
        self.dir, self.ckpt = make_watched_dir(self)
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


class HostileNamesOnEverySurfaceTest(unittest.TestCase):
    """Failing files with hostile names in a watched directory, as a real daemon runs: `status`
    (text and --json) and `verify` (text) print them escaped, never a raw control, C1, bidi or
    invalid byte, and no line of the output is a forged log line."""

    def setUp(self):
        self.dir, self.ckpt = make_watched_dir(self)
        self.d = Daemon(self.dir, yaml_watch("run", self.ckpt, settle="100ms"), log_format="text")
        self.addCleanup(self.d.stop)
        self.d.start()
        for name in HOSTILE_NAMES:  # not HDF5: each is a failing file
            with open(os.path.join(os.fsencode(self.ckpt), name), "wb") as f:
                f.write(b"not a checkpoint " * 64)

    def status(self, *args):
        return subprocess.run([BIN, "status", "--config", self.d.config_path, *args],
                              capture_output=True, timeout=30)

    def assert_clean(self, proc, what):
        where = f"{what}: exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
        self.assertIsNone(raw_unsafe(proc.stdout), where)
        self.assertIsNone(raw_unsafe(proc.stderr), where)
        for line in proc.stdout.splitlines():
            self.assertFalse(line.lstrip().startswith(b"level="), where)
        return proc.stdout.decode("utf-8")

    def test_status_and_verify_print_hostile_names_escaped(self):
        end = time.monotonic() + 60
        while True:  # polls the daemon's answer until every file has its verdict
            doc = json.loads(self.status("--json").stdout)
            if doc["watches"][0]["failing_total"] == len(HOSTILE_NAMES):
                break
            self.assertLess(time.monotonic(), end, f"not every file failed in time: {doc}")
            time.sleep(0.05)
        r = self.status("--json")
        self.assert_clean(r, "status --json")
        doc = json.loads(r.stdout)
        paths = sorted(unescape_bytes(f["path"]) for f in doc["watches"][0]["failing"])
        self.assertEqual(paths, sorted(os.path.join(os.fsencode(self.ckpt), n) for n in HOSTILE_NAMES))

        r = self.status()
        self.assertEqual(r.returncode, 1, r)
        text = self.assert_clean(r, "status")
        for shown in (r"\u001b[31mred", r"\u001b]0;owned\u0007", r"\u009b2J", r"evil\u202eh5",
                      r"iso\u2066late\u2069", r"a.h5\nlevel=error", r"hidden\rok", r"bad\xff\xfe",
                      r"del\u007f\u0001"):
            self.assertIn(shown, text)

        r = subprocess.run([BIN, "verify", self.ckpt], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 1, r)
        text = self.assert_clean(r, "verify")
        self.assertEqual(len(text.splitlines()), len(HOSTILE_NAMES), text)
        self.assertIn(r"a.h5\nlevel=error", text)
        # A directory with no weight file is named on stderr, escaped too.
        empty = os.path.join(os.fsencode(self.dir), b"empty\x1b[2J\n" + FORGED)
        os.mkdir(empty)
        r = subprocess.run([BIN, "verify", empty], capture_output=True, timeout=60)
        self.assert_clean(r, "verify of an empty directory")
        self.assertIn(rb"empty\u001b[2J\nlevel=error", r.stderr)


if __name__ == "__main__":
    unittest.main()
