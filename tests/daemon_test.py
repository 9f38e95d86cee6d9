"""End-to-end tests of `ckptwatch run`: the real daemon on temp directories, real writers.

Each test waits on what the daemon says (its log, its notify socket) with a deadline; none sleeps
in place of synchronisation. "Exactly one verdict" is checked with a sentinel: a file written
after the one under test, whose verdict proves the daemon has processed everything before it.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import writers  # noqa: E402
from evidence import requires  # noqa: E402
from daemon_harness import BIN, Daemon, parse_logfmt, tempdir, yaml_watch  # noqa: E402
from security_harness import fd_target  # noqa: E402


def small_model(path):
    writers.write_full_model(path, writers.dense_stack(seed=len(path)))


def children(pid):
    """PIDs of `pid`'s children (any of its threads may have forked them)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return found


def cmdline(pid):
    """/proc/PID/cmdline with spaces for NULs; "" once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ")
    except OSError:
        return ""


def armed(pid):
    """Whether verifier child `pid` is past its prctl(PR_SET_PDEATHSIG, SIGKILL): it has set its
    CPU-time limit (verifier_child.cc ApplyLimits, just after the prctl; the zygote sets none).
    A child stopped before the prctl would never get the signal when its zygote dies, and stay
    stopped for ever (state T, reparented to init): the test's doing, not the daemon's."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max cpu time"))
    except (OSError, StopIteration):
        return False
    return line.split()[3] != "unlimited"


def wait_armed(pid, deadline=30):
    end = time.monotonic() + deadline
    while not armed(pid):
        if process_state(pid) in (None, "Z") or time.monotonic() > end:
            raise AssertionError(f"verifier child {pid} never set its limits")
        time.sleep(0.002)


def process_state(pid):
    """The state letter of /proc/PID/stat ("R", "S", "T", "Z", ...), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class DaemonTestCase(unittest.TestCase):
    def start(self, watches_yaml, **kwargs):
        d = Daemon(self.dir, watches_yaml, **kwargs)
        self.addCleanup(d.stop)
        return d.start()

    def setUp(self):
        self.dir = tempdir(self)
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.makedirs(self.ckpt)

    def sentinel(self, d, directory=None):
        """Writes a file and waits for its verdict: everything before it has been handled."""
        path = os.path.join(directory or self.ckpt, f"sentinel_{time.monotonic_ns()}.h5")
        small_model(path)
        d.wait_verdict(path)


class WatchingTest(DaemonTestCase):
    def test_direct_write_gets_exactly_one_ok_verdict(self):
        d = self.start(yaml_watch("run42", self.ckpt, settle="100ms"))
        path = os.path.join(self.ckpt, "epoch_001.h5")
        small_model(path)
        v = d.wait_verdict(path)
        self.assertEqual(v["verdict"], "ok")
        self.assertEqual(v["level"], "info")
        self.assertEqual(v["watch"], "run42")
        self.sentinel(d)
        self.assertEqual(len(d.verdicts(path)), 1)

    def test_atomic_temp_then_rename_is_verified_once_under_its_final_name(self):
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms"))
        final = os.path.join(self.ckpt, "model.h5")
        for n, tmp in enumerate((os.path.join(self.ckpt, "model.h5.tmp"),
                                 os.path.join(self.ckpt, ".model.h5.Xy12")), start=1):
            small_model(tmp)
            os.rename(tmp, final)
            # One save at a time: a rename landing while the previous one is verified would
            # (rightly) supersede that verdict.
            d.wait_event(lambda e: len(d.verdicts(final)) >= n, what=f"verdict {n} for {final}")
        self.sentinel(d)
        names = {os.path.basename(v["path"]) for v in d.verdicts()}
        self.assertNotIn("model.h5.tmp", names)
        self.assertNotIn(".model.h5.Xy12", names)
        self.assertEqual(len(d.verdicts(final)), 2)  # two renames into place: two completed saves

    def test_file_rewritten_within_settle_is_verified_once_for_its_final_content(self):
        # Three saves' bytes, made first: rewriting the watched file is then three quick writes
        # (milliseconds), not three h5py saves that a loaded machine could spread past settle.
        versions = []
        for n, units in enumerate(((8, 8, 4), (8, 16, 4), (8, 64, 64, 4))):
            staging = os.path.join(self.dir, f"version_{n}.h5")
            writers.write_full_model(staging, writers.dense_stack(units=units))
            with open(staging, "rb") as f:
                versions.append(f.read())
        d = self.start(yaml_watch("run", self.ckpt, settle="1500ms"))
        path = os.path.join(self.ckpt, "best.h5")
        started = time.monotonic()
        for data in versions:
            with open(path, "wb") as f:
                f.write(data)
        self.assertLess(time.monotonic() - started, 1.0, "the rewrites did not land within settle")
        v = d.wait_verdict(path)
        self.assertEqual(v["verdict"], "ok")
        self.assertEqual(v["bytes"], len(versions[-1]))
        self.sentinel(d)
        self.assertEqual(len(d.verdicts(path)), 1)

    def test_new_subdirectory_files_written_before_its_watch_existed_are_verified(self):
        d = self.start(yaml_watch("runs", self.ckpt, recursive=True, settle="100ms"))
        # Files already inside a directory that is renamed in: no per-file events at all.
        staging = os.path.join(self.dir, "staging")
        os.makedirs(os.path.join(staging, "deeper"))
        small_model(os.path.join(staging, "a.h5"))
        small_model(os.path.join(staging, "deeper", "b.h5"))
        os.rename(staging, os.path.join(self.ckpt, "run7"))
        for name in ("run7/a.h5", "run7/deeper/b.h5"):
            self.assertEqual(d.wait_verdict(os.path.join(self.ckpt, name))["verdict"], "ok")
        # A directory created in place, written into at once.
        sub = os.path.join(self.ckpt, "run8")
        os.mkdir(sub)
        small_model(os.path.join(sub, "c.h5"))
        self.assertEqual(d.wait_verdict(os.path.join(sub, "c.h5"))["verdict"], "ok")
        self.sentinel(d, sub)
        self.assertEqual(len(d.verdicts(os.path.join(sub, "c.h5"))), 1)

    def test_truncated_write_is_an_error_line_with_its_cause(self):
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms"))
        source = os.path.join(self.dir, "whole.h5")
        small_model(source)
        with open(source, "rb") as f:
            data = f.read()
        path = os.path.join(self.ckpt, "epoch_009.h5")
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        v = d.wait_verdict(path)
        self.assertEqual(v["verdict"], "truncated")
        self.assertEqual(v["level"], "error")
        self.assertEqual(v["expected_bytes"], len(data))
        self.assertIn("truncated", v["msg"])

    def test_missing_watch_directory_is_watched_for_and_starts_when_it_appears(self):
        target = os.path.join(self.dir, "later", "run", "ckpt")
        d = self.start(yaml_watch("later", target, settle="100ms"))
        missing = d.wait_event(lambda e: e.get("event") == "watch_missing")
        self.assertIn("Errno 2", missing["msg"])
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="later", problem="missing_directory"), 1)
        os.makedirs(target)
        d.wait_event(lambda e: e.get("event") == "watch_recovered")
        path = os.path.join(target, "epoch_001.h5")
        small_model(path)
        self.assertEqual(d.wait_verdict(path)["verdict"], "ok")
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="later", problem="missing_directory"), 0)

    def test_deleted_watch_directory_goes_missing_and_recovers_when_recreated(self):
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms"))
        shutil.rmtree(self.ckpt)
        d.wait_event(lambda e: e.get("event") == "watch_missing")
        os.makedirs(self.ckpt)
        small_model(os.path.join(self.ckpt, "first.h5"))  # may land before the watch restarts
        d.wait_event(lambda e: e.get("event") == "watch_recovered")
        self.assertEqual(d.wait_verdict(os.path.join(self.ckpt, "first.h5"))["verdict"], "ok")
        path = os.path.join(self.ckpt, "second.h5")
        small_model(path)
        self.assertEqual(d.wait_verdict(path)["verdict"], "ok")

    def test_polling_backend_sees_writes_once_size_and_mtime_settle(self):
        # settle spans several polls: a writer paused longer than settle on a loaded machine would
        # look finished to any poller (that is what settle is for).
        #
        # watch_started is logged before the start scan, which runs on the thread pool and is the
        # poller's baseline. A file written while that scan runs is verified by it (the newest
        # checkpoint) and, if the scan caught it mid-save, seen changing by the next poll and
        # verified again: two verdicts, both right. So the baseline is awaited first: the start
        # scan verifies the newest checkpoint already there, and that verdict comes after it.
        existing = os.path.join(self.ckpt, "epoch_002.h5")
        small_model(existing)
        d = self.start(yaml_watch("nfs", self.ckpt, backend="poll", poll_interval="200ms", settle="1s"))
        started = d.wait_event(lambda e: e.get("event") == "watch_started")
        self.assertEqual(started["backend"], "poll")
        self.assertEqual(d.wait_verdict(existing)["verdict"], "ok")
        path = os.path.join(self.ckpt, "epoch_003.h5")
        small_model(path)
        self.assertEqual(d.wait_verdict(path)["verdict"], "ok")
        self.sentinel(d)
        self.assertEqual(len(d.verdicts(path)), 1)
        self.assertEqual(len(d.verdicts(existing)), 1)

    def test_on_start_only_the_newest_checkpoint_is_verified(self):
        for i in range(3):
            p = os.path.join(self.ckpt, f"epoch_{i:03}.h5")
            small_model(p)
            os.utime(p, (1_700_000_000 + i, 1_700_000_000 + i))
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms"))
        newest = os.path.join(self.ckpt, "epoch_002.h5")
        self.assertEqual(d.wait_verdict(newest)["verdict"], "ok")
        self.sentinel(d)
        self.assertEqual(d.verdicts(os.path.join(self.ckpt, "epoch_000.h5")), [])


class ControlTest(DaemonTestCase):
    def test_reload_adds_a_watch_and_a_bad_config_keeps_the_old_one_running(self):
        second = os.path.join(self.dir, "second")
        os.makedirs(second)
        d = self.start(yaml_watch("first", self.ckpt, settle="100ms"))
        d.write_config(yaml_watch("first", self.ckpt, settle="100ms") + "\n" +
                       yaml_watch("second", second, settle="100ms"))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_event(lambda e: e.get("event") == "reload")
        d.wait_notification("RELOADING=1")
        path = os.path.join(second, "x.h5")
        small_model(path)
        self.assertEqual(d.wait_verdict(path)["watch"], "second")

        with open(d.config_path, "a") as f:
            f.write("    expect_evry: 30m\n")  # a typo
        d.proc.send_signal(signal.SIGHUP)
        failed = d.wait_event(lambda e: e.get("event") == "reload_failed")
        self.assertIn("expect_evry", failed["msg"])
        self.assertEqual(d.metric("ckptwatch_config_last_reload_successful"), 0)
        path = os.path.join(self.ckpt, "still_watched.h5")
        small_model(path)
        self.assertEqual(d.wait_verdict(path)["verdict"], "ok")

    def test_sigusr1_reopens_a_log_file_that_was_moved_away(self):
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms"))
        rotated = d.log_path + ".1"
        os.rename(d.log_path, rotated)
        d.proc.send_signal(signal.SIGUSR1)
        d.wait_event(lambda e: e.get("event") == "log_reopened")  # reads the new file at log_path
        path = os.path.join(self.ckpt, "after_rotation.h5")
        small_model(path)
        d.wait_verdict(path)
        with open(rotated) as f:
            self.assertNotIn("after_rotation", f.read())

    def test_sigterm_during_a_verification_exits_0_within_the_grace_period(self):
        # A checkpoint large enough that its `full` verification lasts long enough to be caught
        # running (the child is looked for among the daemon's children every few ms).
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms", level="full"))
        path = os.path.join(self.ckpt, "big.h5")
        writers.write_sized_model(path, 128 << 20)
        child = self.wait_for_verifier_child(d.proc.pid, path)
        wait_armed(child)  # its SIGKILL-with-its-parent armed (see armed())
        os.kill(child, signal.SIGSTOP)  # a verification that will not finish by itself
        started = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(timeout=30), 0)
        self.assertLess(time.monotonic() - started, 15)
        d.wait_notification("STOPPING=1")
        stop = [e for e in d.events() if e.get("event") == "stop"]
        self.assertEqual(stop[0]["running"], 1)
        # The daemon killed it before exiting; once reparented, it is reaped (or a zombie).
        # (The ASan stage of CI once saw it still stopped after 10 s: it had been stopped
        # before its prctl, see armed(); the wait above closes that window.)
        end = time.monotonic() + 10
        while process_state(child) not in (None, "Z") and time.monotonic() < end:
            time.sleep(0.05)
        self.assertIn(process_state(child), (None, "Z"), f"verifier child {child} outlived the daemon")

    def wait_for_verifier_child(self, pid, path, deadline=60):
        """The daemon's verifier child verifying `path`: a child of its zygote
        (`__verify-zygote`) or a spawned `__verify-child` holding it as descriptor 3 (the zygote
        also keeps idle spares), read from /proc/PID/task/*/children (a few files, not all of
        /proc) every 5 ms."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            for child in children(pid):
                line = cmdline(child)
                candidates = (children(child) if "__verify-zygote" in line
                              else [child] if "__verify-child" in line else [])
                for candidate in candidates:
                    if fd_target(candidate, 3) == path:
                        return candidate
            time.sleep(0.005)
        raise AssertionError(f"no verifier child took {path}")

    def zygote(self, pid, deadline=10):
        """The daemon's zygote: its one child running `__verify-zygote`."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            found = [c for c in children(pid) if "__verify-zygote" in cmdline(c)]
            if found:
                self.assertEqual(len(found), 1, "one zygote")
                return found[0]
            time.sleep(0.005)
        raise AssertionError("no zygote appeared")

    def test_a_killed_zygote_is_restarted_and_costs_no_verdict(self):
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms", level="full"))
        first = self.zygote(d.proc.pid)
        # Killed while idle: a new one, said once.
        os.kill(first, signal.SIGKILL)
        d.wait_event(lambda e: e.get("event") == "verifier_restarted")
        second = self.zygote(d.proc.pid)
        self.assertNotEqual(first, second)
        # Killed under a verification: the file is verified again, one verdict, ok.
        path = os.path.join(self.ckpt, "big.h5")
        writers.write_sized_model(path, 64 << 20)
        child = self.wait_for_verifier_child(d.proc.pid, path)
        wait_armed(child)  # stopped earlier, it would outlive its zygote (see armed())
        os.kill(child, signal.SIGSTOP)  # still verifying when its zygote dies
        os.kill(second, signal.SIGKILL)
        v = d.wait_verdict(path)
        self.assertEqual(v["verdict"], "ok", v)
        self.assertIn(process_state(child), (None, "Z"), "the child died with its zygote")
        time.sleep(0.5)
        self.assertEqual(len([e for e in d.events() if e.get("event") == "verify"
                              and e.get("path") == path]), 1)
        self.assertEqual(len([e for e in d.events() if e.get("event") == "verifier_restarted"]), 2)

    def test_sd_notify_ready_status_and_stopping_reach_the_notify_socket(self):
        d = self.start(yaml_watch("run", self.ckpt))
        ready = d.wait_notification("READY=1")
        self.assertIn("STATUS=watching 1 directory", ready)
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=20)
        d.wait_notification("STOPPING=1")

    def test_text_log_is_logfmt_with_stable_keys(self):
        d = self.start(yaml_watch("run42", self.ckpt, settle="100ms"), log_format="text")
        path = os.path.join(self.ckpt, "epoch 1.h5")  # a space: the value must be quoted
        small_model(path)
        v = d.wait_verdict(path)
        for key in ("ts", "level", "event", "watch", "path", "verdict", "bytes", "elapsed_ms", "msg"):
            self.assertIn(key, v)
        line = next(l for l in d.log_text().splitlines() if " event=verify " in l)
        self.assertRegex(line, r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z level=info event=verify watch=run42 path="[^"]+epoch 1\.h5"')

    def test_bad_config_at_startup_exits_2_naming_file_line_and_key(self):
        config = os.path.join(self.dir, "bad.yaml")
        with open(config, "w") as f:
            f.write(f"watches:\n  - path: {self.ckpt}\n    expect_evry: 30m\n")
        r = subprocess.run([BIN, "run", "--config", config], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.yaml:3", r.stderr)
        self.assertIn("expect_evry", r.stderr)
        r = subprocess.run([BIN, "check-config", config], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2)

    def test_check_config_prints_the_effective_config(self):
        config = os.path.join(self.dir, "good.yaml")
        with open(config, "w") as f:
            f.write(f"watches:\n  - path: {self.ckpt}\n")
        r = subprocess.run([BIN, "check-config", config], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("settle", r.stdout)
        self.assertIn(self.ckpt, r.stdout)

    @requires(not os.path.exists("/etc/ckptwatch/ckptwatch.yaml"), "a system config would be used")
    def test_without_config_watches_a_created_checkpoints_folder(self):
        lines = []
        proc = subprocess.Popen([BIN, "run"], cwd=self.dir, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait()))
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()

        def wait_for(needle):
            end = time.monotonic() + 20
            while time.monotonic() < end:
                if any(needle in l for l in list(lines)):
                    return next(l for l in list(lines) if needle in l)
                if proc.poll() is not None:
                    self.fail("daemon exited: " + "".join(lines))
                time.sleep(0.02)
            self.fail(f"no {needle!r} in: " + "".join(lines))

        started = parse_logfmt(wait_for("event=watch_started").strip())
        self.assertEqual(started["path"], os.path.join(self.dir, "checkpoints"))
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "checkpoints")))
        small_model(os.path.join(self.dir, "checkpoints", "epoch_001.h5"))
        wait_for("epoch_001.h5 verdict=ok")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=20), 0)


if __name__ == "__main__":
    unittest.main()
