"""Warm verifiers (issue 26): a verifier process is reused across files of one owner (st_uid)
and never across owners (docs/security.md, "Warm verifiers"). Run as root; the files are
written by two unprivileged users, the daemon runs as a third (security_test's users).

    cd tests && CKPTWATCH_BIN=$PWD/../build/ckptwatch /usr/bin/python3 run_e2e.py warm_verifier_test
"""

import os
import socket
import struct
import subprocess
import time
import unittest

import writers
from daemon_harness import BIN, yaml_watch
import security_test
from security_test import (DEADLINE, ROOT, SecurityTestCase, as_daemon_user, as_user, held_fds,
                           proc_status, verifier_children)

JOB_MAGIC = 0x6a6f6231  # warm_channel.cc: "job1"
REPORT = struct.Struct("<QiII4II")  # job, pid, retiring, uid_count, uids[4], reserved


def setUpModule():
    security_test.setUpModule()


def save(user, path):
    """`user` writes a Keras model under a temporary name and renames it into place."""
    staging = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    as_user(user, lambda: (writers.write_full_model(staging), os.rename(staging, path)))


@unittest.skipUnless(ROOT, "needs root")
class WarmVerifierTest(SecurityTestCase):

    def setUp(self):
        super().setUp()
        self.victim_watch = os.path.join(self.base, "victim-watch")
        os.mkdir(self.victim_watch, 0o755)
        os.chown(self.victim_watch, security_test.VICTIM.pw_uid, security_test.VICTIM.pw_gid)

    def test_two_owners_files_never_share_a_verifier(self):
        """Two users save checkpoints in turn into the directories one daemon watches: every
        verdict comes from a warm verifier that has seen files of that file's owner only (its own
        report, logged as verifier_used), no verifier serves both owners, and each owner's
        verifier is reused (the point of keeping it warm)."""
        adv, victim = security_test.ADVERSARY, security_test.VICTIM
        watches = (yaml_watch("adv", self.watch, settle="100ms") + "\n" +
                   yaml_watch("victim", self.victim_watch, settle="100ms"))
        [d] = self.start_daemons(watches, formats=("json",))
        paths = {}
        for i in range(5):
            for user, directory in ((adv, self.watch), (victim, self.victim_watch)):
                path = os.path.join(directory, f"epoch_{i}.h5")
                save(user, path)
                paths[path] = user.pw_uid
        for path in paths:
            self.assertEqual(d.wait_verdict(path)["verdict"], "ok", path)
        used = {}
        end = time.monotonic() + DEADLINE
        while len(used) < len(paths) and time.monotonic() < end:
            used = {e["path"]: e for e in d.events() if e.get("event") == "verifier_used"
                    and e.get("path") in paths}
            time.sleep(0.05)
        self.assertEqual(sorted(used), sorted(paths), "a verdict without a warm verifier")
        owners_by_pid = {}
        for path, event in used.items():
            self.assertEqual(event["verifier_uids"], str(paths[path]), event)
            self.assertEqual(event["owner"], str(paths[path]), event)
            owners_by_pid.setdefault(event["verifier_pid"], set()).add(paths[path])
        for pid, owners in owners_by_pid.items():
            self.assertEqual(len(owners), 1, f"verifier {pid} served owners {owners}")
        self.assertLess(len(owners_by_pid), len(paths), f"no verifier was reused: {owners_by_pid}")
        self.assertFalse([e for e in d.events() if e.get("event") == "verifier_owners_mixed"])

    def verifier_of(self, d, path):
        return int(d.wait_event(lambda e: e.get("event") == "verifier_used" and
                                e.get("path") == path, what=f"verifier_used for {path}")["verifier_pid"])

    def test_a_verifier_that_served_its_files_is_replaced_before_the_next_file_comes(self):
        """A warm verifier leaves after 64 files (kWarmDefaultMaxFiles); the verifier that takes
        the owner's next file was forked before that file came (its successor, forked
        kSuccessorLead files ahead, or a spare), so the file does not wait for a fork (the
        paced-latency p99 of bench/latency_bench.py)."""
        adv = security_test.ADVERSARY
        [d] = self.start_daemons(yaml_watch("adv", self.watch, settle="0s"), formats=("json",))
        served = {}
        for i in range(64 * 2):
            path = os.path.join(self.watch, f"step_{i:03}.h5")
            save(adv, path)
            self.assertEqual(d.wait_verdict(path)["verdict"], "ok", path)
            pid = self.verifier_of(d, path)
            served[pid] = served.get(pid, 0) + 1
            if served[pid] == 64:
                break
        else:
            self.fail(f"no verifier served 64 files: {served}")
        end = time.monotonic() + DEADLINE
        while pid in verifier_children(d.proc.pid) and time.monotonic() < end:
            time.sleep(0.01)
        waiting = set(verifier_children(d.proc.pid))
        self.assertNotIn(pid, waiting, f"verifier {pid} is still running after 64 files")
        path = os.path.join(self.watch, "next.h5")
        save(adv, path)
        self.assertEqual(d.wait_verdict(path)["verdict"], "ok", path)
        self.assertIn(self.verifier_of(d, path), waiting)

    def test_the_first_file_finds_a_warm_verifier_waiting(self):
        """Spares (issue 26): READY is sent once a verifier forked ahead of any file has warmed
        up; the first file of a save is verified by one of the verifiers already waiting (as
        many as verify.max_parallel, 2 here), which is then its owner's, and another spare takes
        its place."""
        adv = security_test.ADVERSARY
        [d] = self.start_daemons(yaml_watch("adv", self.watch, settle="0s"), formats=("json",))
        waiting, end = set(), time.monotonic() + DEADLINE
        while len(waiting) < 2 and time.monotonic() < end:
            waiting = set(verifier_children(d.proc.pid))
            time.sleep(0.01)
        self.assertEqual(len(waiting), 2, f"spares before any file: {waiting}")
        path = os.path.join(self.watch, "first.h5")
        save(adv, path)
        self.assertEqual(d.wait_verdict(path)["verdict"], "ok", path)
        first = self.verifier_of(d, path)
        self.assertIn(first, waiting)
        # Two spares again beside the owner's verifier.
        now, end = set(), time.monotonic() + DEADLINE
        while len(now - {first}) < 2 and time.monotonic() < end:
            now = set(verifier_children(d.proc.pid))
            time.sleep(0.01)
        self.assertIn(first, now)
        self.assertEqual(len(now - {first}), 2, f"spares after the first file: {now - {first}}")
        # The owner's next file goes to the verifier that is now the owner's.
        path = os.path.join(self.watch, "second.h5")
        save(adv, path)
        self.assertEqual(d.wait_verdict(path)["verdict"], "ok", path)
        self.assertEqual(self.verifier_of(d, path), first)

    def spawn_warm(self):
        """`ckptwatch __verify-warm` as the daemon's user, its channel at descriptor 4."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(ours.close)
        fd = theirs.fileno()
        duplicated = fd <= 4
        if duplicated:
            fd = os.dup(fd)
        stderr = open(os.path.join(self.base, "warm.stderr"), "w+b")
        self.addCleanup(stderr.close)
        proc = subprocess.Popen(
            [*as_daemon_user(), BIN, "__verify-warm", "--timeout", "60", "--memory-bytes",
             str(2 << 30), "--max-files", "8"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, close_fds=False,
            preexec_fn=lambda: os.dup2(fd, 4))
        theirs.close()  # (its fileno() is -1 from here on)
        if duplicated:
            os.close(fd)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return proc, ours, stderr

    def job(self, channel, job, path):
        """Sends one job for `path` (opened here, as root); returns (report, stdout, stderr)."""
        args = ["--level", "structure", "--full-max-bytes", str(8 << 30), "--memory-budget",
                str(1 << 30), "--timeout", "60", "--memory-bytes", str(2 << 30), "--", path]
        payload = struct.pack("<IIQ", JOB_MAGIC, 0, job) + b"".join(a.encode() + b"\0" for a in args)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        fd = os.open(path, os.O_RDONLY)
        socket.send_fds(channel, [payload], [fd, out_w, err_w])
        for x in (fd, out_w, err_w):
            os.close(x)
        channel.settimeout(DEADLINE)
        data = channel.recv(256)
        outputs = []
        for r in (out_r, err_r):
            with os.fdopen(r, "rb") as f:
                outputs.append(f.read())  # the verifier closed its copies before reporting
        self.assertEqual(len(data), REPORT.size, data)
        job_id, pid, retiring, count, *rest = REPORT.unpack(data)
        return {"job": job_id, "pid": pid, "retiring": retiring, "uid_count": count,
                "uids": rest[:min(count, 4)]}, outputs[0], outputs[1]

    def test_a_warm_verifier_reports_every_owner_and_refuses_a_second(self):
        """The verifier's own half of the rule, fed by hand: it reports the owners it has seen
        with each verdict, holds nothing of a file after its verdict (descriptors 0 and its
        channel only), and, handed a file of a second owner, reads none of it, reports both
        owners and leaves."""
        adv, victim = security_test.ADVERSARY, security_test.VICTIM
        first = os.path.join(self.watch, "adv.h5")
        second = os.path.join(self.watch, "adv2.h5")
        other = os.path.join(self.victim_watch, "victim.h5")
        save(adv, first)
        save(adv, second)
        save(victim, other)
        proc, channel, stderr = self.spawn_warm()
        for n, path in enumerate((first, second), 1):
            report, out, _ = self.job(channel, n, path)
            self.assertEqual(report, {"job": n, "pid": proc.pid, "retiring": 0, "uid_count": 1,
                                      "uids": [adv.pw_uid]})
            self.assertIn(b'"verdict":"ok"', out)
            held = held_fds(proc.pid)
            self.assertEqual(sorted(held), [0, 4], held)
            status = proc_status(proc.pid)
            self.assertEqual({k: status[k].strip() for k in ("CapEff", "NoNewPrivs")},
                             {"CapEff": "0" * 16, "NoNewPrivs": "1"})
        report, out, err = self.job(channel, 3, other)
        self.assertEqual((report["uid_count"], sorted(report["uids"]), report["retiring"]),
                         (2, sorted([adv.pw_uid, victim.pw_uid]), 1))
        self.assertEqual(out, b"")
        self.assertIn(b"files of 2 owners", err)
        self.assertEqual(proc.wait(timeout=DEADLINE), 2)

    def test_only_a_file_libhdf5_failed_on_retires_it(self):
        """A verdict but ok retires a verifier only when libhdf5 parsed the file (its state may
        be suspect then). A file our own readers refuse (a cut safetensors file, an HDF5 file
        whose header check fails before libhdf5 sees it) leaves the same process verifying the
        owner's next file; a Keras file libhdf5 walked whose model_config is not JSON retires it."""
        adv = security_test.ADVERSARY
        good = os.path.join(self.watch, "good.h5")
        cut_safetensors = os.path.join(self.watch, "cut.safetensors")
        cut_hdf5 = os.path.join(self.watch, "cut.h5")
        bad_config = os.path.join(self.watch, "bad_config.h5")
        save(adv, good)

        def write_files():
            header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
            with open(cut_safetensors, "wb") as f:
                f.write(struct.pack("<Q", len(header)) + header + b"\0" * 8)  # 8 of 16 bytes
            with open(good, "rb") as f:
                data = f.read()
            with open(cut_hdf5, "wb") as f:
                f.write(data[:len(data) // 2])
            import h5py
            with h5py.File(bad_config, "w") as f:
                f.attrs["model_config"] = "{not json"
                f.attrs["keras_version"] = "2.11.0"
                f.attrs["backend"] = "tensorflow"
                f.create_group("model_weights").attrs["layer_names"] = []

        as_user(adv, write_files)
        proc, channel, _ = self.spawn_warm()
        steps = ((cut_safetensors, b'"verdict":"truncated"', 0), (good, b'"verdict":"ok"', 0),
                 (cut_hdf5, b'"verdict":"truncated"', 0), (good, b'"verdict":"ok"', 0),
                 (bad_config, b'"verdict":"corrupt"', 1))
        for n, (path, verdict, retiring) in enumerate(steps, 1):
            report, out, err = self.job(channel, n, path)
            self.assertIn(verdict, out, (path, out, err))
            self.assertEqual((report["pid"], report["retiring"]), (proc.pid, retiring), (path, out))
        self.assertEqual(proc.wait(timeout=DEADLINE), 0)


if __name__ == "__main__":
    unittest.main()
