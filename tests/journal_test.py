"""The daemon under systemd's journal: each event a structured entry with its priority and its
keys as CKPTWATCH_* fields, so `journalctl -p err` and `journalctl CKPTWATCH_WATCH=run42` work.

The journal is the real systemd-journald, started in a private mount namespace (a tmpfs over
/run and /var/log/journal, so the host's journal, if any, is not touched), and the daemon runs
in that namespace the way systemd runs a service whose stderr is the journal: stderr connected
to journald's stdout stream socket and JOURNAL_STREAM naming it. journalctl reads the entries
back through /proc/PID/root. Needs root (mount namespaces), unshare and nsenter (util-linux),
systemd-journald and journalctl (package systemd), h5py.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import writers  # noqa: E402
from daemon_harness import BIN, DEADLINE, Daemon, tempdir  # noqa: E402
from evidence import requires  # noqa: E402

JOURNALD = "/lib/systemd/systemd-journald"
# The daemon's lines go to the stream as text when a native entry is refused; the stream's
# header: identifier, unit, priority, level prefix, forward to syslog, kmsg, console.
STREAM_HEADER = b"ckptwatch\n\n6\n0\n0\n0\n0\n"


def wait_for(predicate, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.05)


@requires(os.geteuid() == 0, "a private journald needs a mount namespace: root")
class JournalTest(unittest.TestCase):
    def setUp(self):
        for tool in ("unshare", "nsenter", "journalctl"):
            self.assertIsNotNone(shutil.which(tool), f"{tool} not found (.ci/install-deps)")
        self.assertTrue(os.access(JOURNALD, os.X_OK), f"{JOURNALD} not found: apt-get install systemd")
        self.dir = tempdir(self)
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.makedirs(self.ckpt)
        self.journald = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
             "mount -t tmpfs tmpfs /run; mkdir -p /run/systemd/journal /var/log/journal;"
             " mount -t tmpfs tmpfs /var/log/journal; exec " + JOURNALD],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.stop_journald)
        self.root = f"/proc/{self.journald.pid}/root"
        wait_for(lambda: os.path.exists(self.root + "/run/systemd/journal/stdout")
                 and os.path.exists(self.root + "/run/systemd/journal/socket"), "journald's sockets")

    def stop_journald(self):
        self.journald.send_signal(signal.SIGTERM)
        try:
            self.journald.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.journald.kill()
            self.journald.wait()
        self.journald.stderr.close()

    def journal_stream(self):
        """A connection to journald's stdout stream, as systemd makes for StandardError=journal."""
        stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stream.connect(self.root + "/run/systemd/journal/stdout")
        stream.sendall(STREAM_HEADER)
        self.addCleanup(stream.close)
        st = os.fstat(stream.fileno())
        return stream, f"{st.st_dev}:{st.st_ino}"

    def journal(self, *args):
        """Entries of the private journal as dicts (journalctl -o json), oldest first."""
        out = subprocess.run(["journalctl", "-D", self.root + "/run/log/journal", "-o", "json",
                              "--no-pager", "SYSLOG_IDENTIFIER=ckptwatch", *args],
                             capture_output=True, text=True, timeout=DEADLINE)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def start_daemon(self, stderr, journal_stream):
        """The daemon in journald's mount namespace, logging to stderr (no log.file)."""
        d = Daemon(self.dir, "")
        with open(d.config_path, "w") as f:
            f.write(f'log: {{format: text, level: info}}\n'
                    f'metrics: {{listen: "127.0.0.1:{d.port}"}}\n'
                    f'status: {{socket: {json.dumps(d.status_path)}}}\n'
                    f'watches:\n  - {{name: run42, path: {json.dumps(self.ckpt)}, settle: 100ms}}\n')
        env = dict(d.env, JOURNAL_STREAM=journal_stream)
        d.proc = subprocess.Popen(
            ["nsenter", "-t", str(self.journald.pid), "-m", "--", os.path.abspath(BIN), "run",
             "--config", d.config_path],
            cwd=self.dir, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        self.addCleanup(d.stop)
        d.wait_notification("READY=1")
        return d

    def save(self, name, broken=False):
        """A checkpoint renamed into the watch (one event), cut to half when `broken`."""
        staging = os.path.join(self.dir, name)
        writers.write_full_model(staging, writers.dense_stack())
        if broken:
            os.truncate(staging, os.path.getsize(staging) // 2)
        path = os.path.join(self.ckpt, name)
        os.rename(staging, path)
        return path

    def test_events_are_journal_entries_with_priorities_and_fields(self):
        stream, journal_stream = self.journal_stream()
        d = self.start_daemon(stream.fileno(), journal_stream)
        good = self.save("epoch 1 é.h5")
        bad = self.save("epoch_2.h5", broken=True)

        def verdict(path):
            return [e for e in self.journal("CKPTWATCH_EVENT=verify") if e.get("CKPTWATCH_PATH") == path]

        ok_entry = wait_for(lambda: verdict(good), f"the verdict of {good}")[0]
        bad_entry = wait_for(lambda: verdict(bad), f"the verdict of {bad}")[0]
        self.assertEqual(d.stop(), 0)
        wait_for(lambda: self.journal("CKPTWATCH_EVENT=stopped"), "the stopped entry")

        self.assertEqual(ok_entry["PRIORITY"], "6")
        self.assertEqual((ok_entry["CKPTWATCH_WATCH"], ok_entry["CKPTWATCH_VERDICT"]), ("run42", "ok"))
        self.assertEqual(ok_entry["_TRANSPORT"], "journal")  # native, not a line of text
        self.assertTrue(ok_entry["MESSAGE"].startswith("level=info event=verify watch=run42 "),
                        ok_entry["MESSAGE"])
        self.assertEqual(bad_entry["PRIORITY"], "3")
        self.assertEqual(bad_entry["CKPTWATCH_VERDICT"], "truncated")
        self.assertEqual(bad_entry["CKPTWATCH_CAUSE"], "truncated")
        self.assertEqual(bad_entry["CKPTWATCH_VERIFY_LEVEL"], "full")  # the default for small files
        self.assertIn("CKPTWATCH_EXPECTED_BYTES", bad_entry)

        # What an operator types: errors only, and one watch.
        errors = self.journal("-p", "err")
        self.assertIn(bad, [e.get("CKPTWATCH_PATH") for e in errors])
        self.assertNotIn(good, [e.get("CKPTWATCH_PATH") for e in errors])
        self.assertTrue(all(int(e["PRIORITY"]) <= 3 for e in errors), errors)
        events = [e["CKPTWATCH_EVENT"] for e in self.journal("CKPTWATCH_WATCH=run42")]
        self.assertIn("watch_started", events)
        self.assertIn("verify", events)
        everything = self.journal()
        self.assertEqual([e["CKPTWATCH_EVENT"] for e in everything][:2], ["start", "config_loaded"])
        self.assertEqual(everything[-1]["CKPTWATCH_EVENT"], "stopped")
        # Every event went as an entry; none fell back to a text line on the stream.
        self.assertEqual({e["_TRANSPORT"] for e in everything}, {"journal"})

    def test_stderr_that_is_not_the_journal_stays_plain_text(self):
        # JOURNAL_STREAM is inherited by children whose stderr is somewhere else: it counts only
        # when it names the daemon's own stderr.
        _, journal_stream = self.journal_stream()
        read_end, write_end = os.pipe()
        d = self.start_daemon(write_end, journal_stream)
        os.close(write_end)
        self.assertEqual(d.stop(), 0)
        with os.fdopen(read_end) as f:
            lines = f.read().splitlines()
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\dT[0-9:.]+Z level=info event=start ")
        self.assertIn("event=stopped", lines[-1])
        self.assertEqual(self.journal(), [])


if __name__ == "__main__":
    unittest.main()
