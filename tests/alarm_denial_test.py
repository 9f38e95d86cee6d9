"""End-to-end: nothing one user does silences the watcher or delays another user's alarm.

A shared training host: watch A belongs to an adversary, watch B to a victim; the daemon runs as
its own user with only CAP_DAC_READ_SEARCH (security_test's ConfinedDaemon), level `full`. Each
test mounts one attack the audit of issue 21 measured, then the victim's save in B is cut short
(its writer closes a file holding half a checkpoint) and the failed save must be reported within
ALARM_WITHIN seconds of that close, while the attack goes on:

| attack | before the fix |
|---|---|
| 1,000 hang-ups on the status socket and on /metrics, mid-answer | daemon killed by SIGPIPE |
| one uid holding ~1M descriptors, then 6 empty `.h5` files in A | alarm after 48 s |
| 3,000 small checkpoint files into A | alarm after 52 s |
| two 64 MB gzip bombs (64 GiB decoded) in A | alarm after 28 s; bombs `timeout` |

Each figure measured here is appended to $CKPTWATCH_FIGURES (tests/figures.py) for
docs/reliability.md. Needs root (users, tmpfs, setpriv).
"""

import os
import resource
import socket
import subprocess
import sys
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import h5py  # noqa: E402
import figures  # noqa: E402
import security_test as sec  # noqa: E402
import writers  # noqa: E402
from daemon_harness import tempdir, yaml_watch  # noqa: E402

ALARM_WITHIN = 3.0  # seconds from the victim's close to its failed-save verdict, during an attack
HANGUPS = 1000
HOG_DESCRIPTORS = 1_000_000
FLOOD_FILES = 3000
BOMB_CHUNK = 1 << 20  # bytes of zeros per chunk; gzip makes each ~1 KiB
BOMB_CHUNKS = 65536   # 64 GiB decoded from ~64 MB


def setUpModule():
    sec.setUpModule()
    global ADVERSARY, VICTIM
    ADVERSARY, VICTIM = sec.ADVERSARY, sec.VICTIM


def write_bomb(path):
    """An h5py file whose one dataset decodes to BOMB_CHUNKS MiB of zeros: every chunk is the same
    gzip stream, written raw (write_direct_chunk), so making it costs no compression."""
    import zlib
    chunk = zlib.compress(bytes(BOMB_CHUNK), 9)
    elements = BOMB_CHUNK // 4
    with h5py.File(path, "w") as f:
        d = f.create_dataset("model_weights/dense/kernel:0", shape=(BOMB_CHUNKS * elements,),
                             dtype="<f4", chunks=(elements,), compression="gzip")
        for i in range(BOMB_CHUNKS):
            d.id.write_direct_chunk((i * elements,), chunk)


class Hog:
    """Processes of `pw` holding `count` descriptors between them (dups of one /dev/null: the
    kernel's per-descriptor cost without a million open files) until stopped. Each process holds
    as many as its hard RLIMIT_NOFILE allows (no CAP_SYS_RESOURCE is needed to raise it)."""

    def __init__(self, pw, count):
        per_process = resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 64
        self.pids, self.gos = [], []
        while count > 0:
            n = min(count, per_process)
            count -= n
            self._start(pw, n)

    def _start(self, pw, n):
        r, w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.close(go_w)
                limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
                os.setgroups([])
                os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
                os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
                fd = os.open("/dev/null", os.O_RDONLY)
                for _ in range(n - 1):
                    os.dup(fd)
                os.write(w, b"r")
                os.read(go_r, 1)
            finally:
                os._exit(0)
        os.close(w)
        os.close(go_r)
        self.pids.append(pid)
        self.gos.append(go_w)
        ok = os.read(r, 1) == b"r"
        os.close(r)
        if not ok:
            self.stop()
            raise AssertionError("a descriptor hog process did not start")

    def stop(self):
        for go in self.gos:
            os.close(go)
        for pid in self.pids:
            os.waitpid(pid, 0)
        self.gos, self.pids = [], []


class AlarmDenialTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.base = tempdir(self)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs", self.base],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.base])
        self.a = os.path.join(self.base, "a")
        self.b = os.path.join(self.base, "b")
        for path, owner in ((self.a, ADVERSARY), (self.b, VICTIM)):
            os.mkdir(path)
            os.chown(path, owner.pw_uid, owner.pw_gid)
        self.saves = 0
        stage = os.path.join(self.base, "sample.h5")
        writers.write_full_model(stage)
        with open(stage, "rb") as f:
            self.sample = f.read()
        os.unlink(stage)
        watches = "\n".join([yaml_watch("a", self.a, level="full"),
                             yaml_watch("b", self.b, level="full")])
        self.daemon = sec.ConfinedDaemon(os.path.join(self.base, "daemon"), watches)
        self.addCleanup(self.daemon.stop)
        self.daemon.start()

    def victim_cut_save(self):
        """The victim's save in B, cut at half its bytes; seconds from its close to the daemon's
        failed-save verdict."""
        self.saves += 1
        path = os.path.join(self.b, f"victim_{self.saves}.h5")
        half = self.sample[: len(self.sample) // 2]

        def save():
            with open(path, "wb") as f:
                f.write(half)
        sec.as_user(VICTIM, save)
        closed = time.monotonic()
        v = self.daemon.wait_verdict(path, deadline=60)
        took = time.monotonic() - closed
        self.assertEqual(v["verdict"], "truncated", v)
        return took

    def assert_alarm_in_time(self, attack):
        took = self.victim_cut_save()
        figures.record("alarm_denial", attack=attack, alarm_s=round(took, 2),
                       within_s=ALARM_WITHIN)
        self.assertLess(took, ALARM_WITHIN, f"during {attack}: the victim's failed save took "
                        f"{took:.1f}s to be reported")
        self.assertIsNone(self.daemon.proc.poll(), "the daemon died")

    def test_baseline(self):
        self.assert_alarm_in_time("no attack")

    def test_hangups_on_status_and_metrics_do_not_kill_the_daemon(self):
        linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # close = RST
        for i in range(HANGUPS):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(self.daemon.status_path)
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            with socket.create_connection(("127.0.0.1", self.daemon.port)) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.assertIsNone(self.daemon.proc.poll(), "the daemon died of the hang-ups")
        status = subprocess.run([sec.BIN, "status", "--json", "--socket", self.daemon.status_path],
                                capture_output=True, text=True, timeout=30)
        self.assertIn(status.returncode, (0, 1), status.stderr)
        self.assertIn("watches", status.stdout)
        self.assertIn("ckptwatch_", self.daemon.scrape())
        self.assert_alarm_in_time("1,000 hang-ups on each socket")

    def test_descriptor_hog_does_not_delay_another_users_alarm(self):
        hog = Hog(ADVERSARY, HOG_DESCRIPTORS)
        try:
            def empties():
                for i in range(6):
                    open(os.path.join(self.a, f"empty_{i}.h5"), "wb").close()
            sec.as_user(ADVERSARY, empties)
            self.assert_alarm_in_time(f"{HOG_DESCRIPTORS:,} descriptors held, 6 empty files")
            for i in range(6):
                v = self.daemon.wait_verdict(os.path.join(self.a, f"empty_{i}.h5"), deadline=30)
                self.assertEqual(v["verdict"], "empty", v)
        finally:
            hog.stop()

    def test_flood_of_files_does_not_delay_another_users_alarm(self):
        sample = self.sample

        def flood():
            for i in range(FLOOD_FILES):
                with open(os.path.join(self.a, f"flood_{i:05d}.h5"), "wb") as f:
                    f.write(sample)
        sec.as_user(ADVERSARY, flood)
        self.assert_alarm_in_time(f"{FLOOD_FILES:,}-file flood")
        overflowed_b = [e for e in self.daemon.events()
                        if e.get("event") == "rescan" and e.get("watch") == "b"]
        self.assertEqual(overflowed_b, [], "A's flood cost B a rescan")

    def test_compression_bombs_get_a_fast_verdict_and_hold_no_slot(self):
        bombs = [os.path.join(self.a, f"bomb_{i}.h5") for i in range(2)]
        stage = os.path.join(self.base, "bomb.h5")
        write_bomb(stage)
        with open(stage, "rb") as f:
            data = f.read()
        os.unlink(stage)
        self.assertLess(len(data), 80 << 20)

        def drop():
            for path in bombs:
                with open(path, "wb") as f:
                    f.write(data)
        sec.as_user(ADVERSARY, drop)
        self.assert_alarm_in_time("two 64 MB gzip bombs (64 GiB decoded)")
        for path in bombs:
            v = self.daemon.wait_verdict(path, deadline=30)
            self.assertNotEqual(v["verdict"], "timeout", v)
            self.assertEqual(v["verdict"], "ok", v)
            self.assertEqual(v["verify_level"], "structure", v)
            self.assertIn("past the bound", v["msg"], v)
            figures.record("bomb_verdict", verdict=v["verdict"], level=v["verify_level"],
                           elapsed_ms=v["elapsed_ms"])


if __name__ == "__main__":
    unittest.main()
