"""`ckptwatch check-config` fails exactly where `ckptwatch run` would, with the same words, and a
start failure reaches stderr as well as the log file (so `systemctl status` shows it).

Each broken config below is given to both commands: check-config must exit 2 naming the
problem, and run must exit 2 (without starting) naming it on stderr and in a `start_failed` log
line. Needs the built binary (CKPTWATCH_BIN). The unwritable log files are paths no user can
write (below a regular file, a directory), so the cases hold for root too.
"""

import json
import os
import socket
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from daemon_harness import BIN, Daemon, free_port, tempdir, yaml_watch  # noqa: E402

TIMEOUT = 20


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=TIMEOUT)


class CheckConfigMatchesRunTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempdir(self)
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.makedirs(self.ckpt)
        self.log = os.path.join(self.dir, "ckptwatch.log")
        self.a_file = os.path.join(self.dir, "a-file")
        with open(self.a_file, "w") as f:
            f.write("not a directory\n")
        self.empty = os.path.join(self.dir, "empty.pass")
        open(self.empty, "w").close()

    def config(self, log_file=None, listen=None, metrics="", watch_extra="",
               path=None):
        path = path or os.path.join(self.dir, "ckptwatch.yaml")
        log_file = self.log if log_file is None else log_file
        listen = listen or f"127.0.0.1:{free_port()}"
        with open(path, "w") as f:
            f.write(f"log: {{file: {json.dumps(log_file)}, format: json}}\n"
                    f"metrics: {{listen: {json.dumps(listen)}{metrics}}}\n"
                    f"watches:\n  - {{name: run42, path: {json.dumps(self.ckpt)}{watch_extra}}}\n")
        return path

    def log_events(self, path):
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def assert_both_refuse(self, config, needle, key=None, logged_to=None):
        """check-config and run both exit 2 naming `needle`; run also logs start_failed."""
        check = run("check-config", config)
        self.assertEqual(check.returncode, 2, check.stdout + check.stderr)
        self.assertIn(needle, check.stderr)
        started = run("run", "--config", config)
        self.assertEqual(started.returncode, 2, started.stderr)
        self.assertIn(needle, started.stderr, "run's failure is not on stderr")
        if logged_to:
            failed = [e for e in self.log_events(logged_to) if e["event"] == "start_failed"]
            self.assertEqual(len(failed), 1, self.log_events(logged_to))
            self.assertEqual(failed[0].get("key"), key)
            self.assertIn(needle, failed[0]["msg"])
            self.assertEqual(failed[0]["level"], "error")

    def test_missing_password_file(self):
        missing = os.path.join(self.dir, "missing.pass")
        config = self.config(metrics=f", basic_auth: {{username: prom, password_file: {json.dumps(missing)}}}")
        self.assert_both_refuse(
            config, f"metrics.basic_auth.password_file: cannot read {missing}: No such file or directory",
            key="metrics.basic_auth.password_file", logged_to=self.log)

    def test_empty_password_file(self):
        config = self.config(metrics=f", basic_auth: {{username: prom, password_file: {json.dumps(self.empty)}}}")
        self.assert_both_refuse(config, f"cannot read {self.empty}: the file is empty",
                                key="metrics.basic_auth.password_file", logged_to=self.log)

    def test_password_file_that_is_a_directory(self):
        config = self.config(metrics=f", basic_auth: {{username: prom, password_file: {json.dumps(self.dir)}}}")
        self.assert_both_refuse(config, f"cannot read {self.dir}: Is a directory",
                                key="metrics.basic_auth.password_file", logged_to=self.log)

    def test_listen_host_that_does_not_resolve(self):
        self.assert_both_refuse(self.config(listen="no-such-host.invalid:19842"),
                                "metrics.listen: cannot resolve no-such-host.invalid",
                                key="metrics.listen", logged_to=self.log)

    def test_listen_address_syntax(self):
        self.assert_both_refuse(self.config(listen="127.0.0.1:99999"), "metrics.listen")

    def test_log_file_below_a_regular_file(self):
        log = os.path.join(self.a_file, "ckptwatch.log")
        self.assert_both_refuse(self.config(log_file=log), "Not a directory")

    def test_log_file_that_is_a_directory(self):
        self.assert_both_refuse(self.config(log_file=self.ckpt), "Is a directory")

    def test_log_file_on_proc_that_root_may_access_but_nobody_can_create(self):
        # access(W_OK) says yes to root on /proc; open() then fails: both must refuse it.
        self.assert_both_refuse(self.config(log_file="/proc/nope/x.log"),
                                "log.file: cannot create /proc/nope/x.log: /proc is on a kernel pseudo-filesystem")

    def test_every_problem_at_once_each_at_its_line_and_column(self):
        missing = os.path.join(self.dir, "missing.pass")
        config = os.path.join(self.dir, "ckptwatch.yaml")
        with open(config, "w") as f:
            f.write('log: {file: "/proc/nope/x.log", format: json}\n'
                    f"metrics:\n  listen: 127.0.0.1:{free_port()}\n"
                    f"  basic_auth: {{username: prom, password_file: {json.dumps(missing)}}}\n"
                    f"watches:\n  - {{name: run42, path: {json.dumps(self.ckpt)}, setle: 1s}}\n")
        with open(config) as f:
            setle_column = f.read().splitlines()[5].index("setle") + 1
        check = run("check-config", config)
        self.assertEqual(check.returncode, 2, check.stdout + check.stderr)
        self.assertEqual(check.stderr.splitlines(), [
            f"{config}:1:13: log.file: cannot create /proc/nope/x.log: /proc is on a kernel "
            "pseudo-filesystem (proc, sysfs, cgroup, …) where files cannot be created",
            f"{config}:4:47: metrics.basic_auth.password_file: cannot read {missing}: No such file or directory",
            f"{config}:6:{setle_column}: watches[0].setle: unknown key; did you mean 'settle'?",
        ])

    def test_writer_and_readers_that_do_not_exist(self):
        self.assert_both_refuse(self.config(watch_extra=", writer: no-such-user-ckw"),
                                "no user 'no-such-user-ckw' on this host")
        self.assert_both_refuse(self.config(watch_extra=", readers: [\"group:no-such-group-ckw\"]"),
                                "no group 'no-such-group-ckw' on this host")

    def test_a_valid_config_passes_both(self):
        password = os.path.join(self.dir, "metrics.pass")
        with open(password, "w") as f:
            f.write("s3cret\n")
        d = Daemon(self.dir, yaml_watch("run42", self.ckpt))
        self.config(log_file=d.log_path, listen=f"127.0.0.1:{d.port}", path=d.config_path,
                    metrics=f", basic_auth: {{username: prom, password_file: {json.dumps(password)}}}")
        check = run("check-config", d.config_path)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.addCleanup(d.stop)
        d.start()  # READY=1

    def test_a_taken_port_fails_run_on_stderr_and_in_the_log(self):
        # Not a config problem: check-config passes (a running daemon holds its own port).
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            path = self.config(listen=f"127.0.0.1:{port}")
            self.assertEqual(run("check-config", path).returncode, 0)
            started = run("run", "--config", path)
        self.assertEqual(started.returncode, 2, started.stderr)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}", started.stderr)
        failed = [e for e in self.log_events(self.log) if e["event"] == "start_failed"]
        self.assertEqual([e.get("key") for e in failed], ["metrics.listen"])
        self.assertIn(f"cannot listen on 127.0.0.1:{port}", failed[0]["msg"])

if __name__ == "__main__":
    unittest.main()
