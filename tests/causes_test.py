"""End-to-end tests of save-failure causes, problems and metrics: a real tmpfs that fills up, real
permission bits checked for an unprivileged writer and reader, a real HTTP scrape checked by
promtool, and a real Prometheus server evaluating the shipped alert rules.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import writers  # noqa: E402
from evidence import requires  # noqa: E402
from daemon_harness import Daemon, free_port, tempdir, yaml_watch  # noqa: E402

ROOT = os.geteuid() == 0
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def problem_event(name, cleared=False):
    event = "problem_cleared" if cleared else "problem"
    return lambda e: e.get("event") == event and e.get("problem") == name


class CausesTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempdir(self)
        os.chmod(self.dir, 0o755)  # unprivileged users must reach what is inside
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.makedirs(self.ckpt)

    def start(self, watches_yaml, **kwargs):
        d = Daemon(self.dir, watches_yaml, **kwargs)
        self.addCleanup(d.stop)
        return d.start()

    def check_metrics_text(self, d):
        if not PROMTOOL:
            self.fail("promtool is not installed (Debian package prometheus)")
        text = d.scrape()
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return text


@requires(ROOT, "mounting a tmpfs needs root")
class DiskFullTest(CausesTestCase):
    def test_low_space_warns_before_the_save_that_fills_the_disk_is_reported_as_disk_full(self):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", self.ckpt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.ckpt])
        d = self.start(yaml_watch("small", self.ckpt, settle="100ms"))

        first = os.path.join(self.ckpt, "epoch_001.h5")
        writers.write_sized_model(first, 2 << 20)
        self.assertEqual(d.wait_verdict(first)["verdict"], "ok")
        second = os.path.join(self.ckpt, "epoch_002.h5")
        writers.write_sized_model(second, 2 << 20)
        self.assertEqual(d.wait_verdict(second)["verdict"], "ok")
        # ~4 MiB used of 8: the next 2 MiB save would fit, but not 1.5x of it with headroom
        # once a third is written.
        third = os.path.join(self.ckpt, "epoch_003.h5")
        writers.write_sized_model(third, 2 << 20)
        self.assertEqual(d.wait_verdict(third)["verdict"], "ok")
        low = d.wait_event(problem_event("low_space"))
        self.assertIn("next save will not fit", low["msg"])
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="small", problem="low_space"), 1)

        # A save larger than what is left: h5py gets ENOSPC and leaves a broken file behind.
        fourth = os.path.join(self.ckpt, "epoch_004.h5")
        with self.assertRaises(Exception):
            writers.write_sized_model(fourth, 6 << 20)
        v = d.wait_verdict(fourth)
        self.assertNotEqual(v["verdict"], "ok")
        self.assertEqual(v["cause"], "disk_full", v)
        self.assertIn("free", v["msg"])
        self.assertEqual(d.metric("ckptwatch_save_failures_total", watch="small", cause="disk_full"), 1)
        self.check_metrics_text(d)


class PermissionTest(CausesTestCase):
    @requires(ROOT, "needs root to chown")
    def test_writer_that_cannot_create_files_is_not_writable_until_the_mode_is_fixed(self):
        os.chmod(self.ckpt, 0o755)  # root-owned: nobody cannot create files here
        d = self.start(yaml_watch("run", self.ckpt, writer="nobody", settle="100ms"))
        started = d.wait_event(problem_event("not_writable"))
        self.assertIn("nobody", started["msg"])
        self.assertIn("0755", started["msg"])
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="run", problem="not_writable"), 1)
        os.chown(self.ckpt, 65534, 65534)  # IN_ATTRIB on the watch directory
        d.wait_event(problem_event("not_writable", cleared=True))
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="run", problem="not_writable"), 0)

    @requires(ROOT, "needs root to own the checkpoint")
    def test_checkpoint_its_readers_cannot_read_is_a_permission_denied_failure(self):
        d = self.start(yaml_watch("run", self.ckpt, readers=["nobody"], settle="100ms"))
        path = os.path.join(self.ckpt, "model.h5")
        staging = os.path.join(self.dir, "model.h5")
        writers.write_full_model(staging, writers.dense_stack())
        os.chmod(staging, 0o600)
        os.rename(staging, path)
        v = d.wait_verdict(path)
        self.assertEqual(v["verdict"], "ok")  # the file itself is fine...
        self.assertEqual(v["cause"], "permission_denied")  # ...but its readers cannot load it
        self.assertIn("user nobody", v["msg"])
        self.assertIn("0600", v["msg"])
        d.wait_event(problem_event("unreadable"))
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="run", problem="unreadable"), 1)
        self.assertEqual(d.metric("ckptwatch_save_failures_total", watch="run", cause="permission_denied"), 1)

        readable = os.path.join(self.ckpt, "model2.h5")
        writers.write_full_model(readable, writers.dense_stack())
        os.chmod(readable, 0o644)
        self.assertNotIn("cause", d.wait_verdict(readable))
        d.wait_event(problem_event("unreadable", cleared=True))


class ProblemsTest(CausesTestCase):
    def test_stale_fires_without_a_good_checkpoint_and_clears_on_the_next(self):
        d = self.start(yaml_watch("run", self.ckpt, expect_every="2s", settle="100ms"))
        stale = d.wait_event(problem_event("stale"))
        self.assertIn("expect_every 2s", stale["msg"])
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="run", problem="stale"), 1)
        path = os.path.join(self.ckpt, "epoch_001.h5")
        writers.write_full_model(path, writers.dense_stack())
        d.wait_verdict(path)
        d.wait_event(problem_event("stale", cleared=True))
        self.assertEqual(d.metric("ckptwatch_watch_problem", watch="run", problem="stale"), 0)
        # Logged once when it starts and once when it clears, not every tick.
        self.assertEqual(len([e for e in d.events() if problem_event("stale")(e)]), 1)

    def test_scrape_is_valid_exposition_with_bounded_labels(self):
        d = self.start(yaml_watch("run", self.ckpt, settle="100ms"))
        path = os.path.join(self.ckpt, "epoch_001.h5")
        writers.write_full_model(path, writers.dense_stack())
        d.wait_verdict(path)
        text = self.check_metrics_text(d)
        self.assertIn('ckptwatch_checkpoints_verified_total{verdict="ok",watch="run"} 1', text)
        self.assertIn("ckptwatch_build_info{", text)
        # A file path appears only in the one info series, never as a label elsewhere.
        offenders = [l for l in text.splitlines()
                     if "epoch_001" in l or (self.ckpt in l and not l.startswith("ckptwatch_watch_info"))]
        self.assertEqual(offenders, [])

    def test_basic_auth_refuses_a_scrape_without_the_password(self):
        password_file = os.path.join(self.dir, "metrics.pass")
        with open(password_file, "w") as f:
            f.write("s3cret\n")
        auth = (f"metrics: {{listen: \"127.0.0.1:{{port}}\", basic_auth: "
                f"{{username: prom, password_file: {json.dumps(password_file)}}}}}\n")
        d = Daemon(self.dir, yaml_watch("run", self.ckpt))
        with open(d.config_path) as f:
            text = "\n".join(l for l in f.read().splitlines() if not l.startswith("metrics:"))
        with open(d.config_path, "w") as f:
            f.write(auth.replace("{port}", str(d.port)) + text + "\n")
        self.addCleanup(d.stop)
        d.start()
        url = f"http://127.0.0.1:{d.port}/metrics"
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        self.assertEqual(refused.exception.code, 401)
        manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        manager.add_password(None, url, "prom", "s3cret")
        opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
        with opener.open(url, timeout=5) as r:
            self.assertIn("ckptwatch_build_info", r.read().decode())

    def test_a_metrics_port_that_is_taken_is_a_startup_error(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            d = Daemon(self.dir, yaml_watch("run", self.ckpt))
            d.port = busy.getsockname()[1]
            d.write_config(yaml_watch("run", self.ckpt))
            self.addCleanup(d.stop)
            d.start(wait_ready=False)
            self.assertEqual(d.proc.wait(timeout=20), 2)
            failed = d.wait_event(lambda e: e.get("event") == "start_failed")
            self.assertIn(str(d.port), failed["msg"])


@requires(PROMETHEUS, "prometheus is not installed (Debian package prometheus)")
class PrometheusTest(CausesTestCase):
    def test_a_broken_checkpoint_fires_checkpoint_save_failed_in_a_real_prometheus(self):
        rules = os.path.join(REPO, "config", "prometheus", "ckptwatch-rules.yml")
        self.assertTrue(os.path.exists(rules), rules)
        d = self.start(yaml_watch("run42", self.ckpt, settle="100ms"))
        prom_port = free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                f"rule_files: [{json.dumps(rules)}]\n"
                "scrape_configs:\n"
                "  - job_name: ckptwatch\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{d.port}']}}]\n")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.dir}/tsdb",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (prom.terminate(), prom.wait(timeout=30)))

        def api(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}{path}", timeout=5) as r:
                return json.loads(r.read())

        def wait(predicate, what, deadline=90):
            end = time.monotonic() + deadline
            while time.monotonic() < end:
                try:
                    value = predicate()
                    if value:
                        return value
                except OSError:
                    pass
                self.assertIsNone(prom.poll(), "prometheus exited")
                time.sleep(0.25)
            self.fail(f"no {what} within {deadline}s")

        # The first scrape holds the counters at 0, so increase() sees the failure.
        wait(lambda: any(t["health"] == "up" for t in api("/api/v1/targets")["data"]["activeTargets"]),
             "healthy scrape target")
        wait(lambda: api("/api/v1/query?query=ckptwatch_save_failures_total")["data"]["result"],
             "a scraped failure counter")
        path = os.path.join(self.ckpt, "epoch_042.h5")
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        self.assertNotEqual(d.wait_verdict(path)["verdict"], "ok")
        alert = wait(lambda: next((a for a in api("/api/v1/alerts")["data"]["alerts"]
                                   if a["labels"]["alertname"] == "CheckpointSaveFailed"
                                   and a["state"] == "firing"), None),
                     "firing CheckpointSaveFailed alert")
        self.assertEqual(alert["labels"]["watch"], "run42")


if __name__ == "__main__":
    unittest.main()
