"""A failed save fires CheckpointSaveFailed within 30 s, in a real Prometheus configured as
docs/alerts.md says.

The Prometheus configuration is the one docs/alerts.md shows under "Loading the rules" (its
targets and rule file pointed at this test's daemon and at config/prometheus/ckptwatch-rules.yml,
its Alertmanager left out; global settings at Prometheus's defaults). The daemon watches a small
tmpfs; a real h5py save into it runs out of space. The clock starts when the save has failed
(the writer has exited with ENOSPC) and stops at the alert's activeAt, the rule evaluation that
found it firing.

Needs root (tmpfs), the `prometheus` binary (Debian package `prometheus`), PyYAML and h5py.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import yaml  # noqa: E402

from daemon_harness import Daemon, free_port, tempdir, yaml_watch  # noqa: E402
from evidence import requires  # noqa: E402
from figures import record  # noqa: E402

ALERTS_DOC = os.path.join(ROOT, "docs", "alerts.md")
RULES = os.path.join(ROOT, "config", "prometheus", "ckptwatch-rules.yml")
PYTHON = "/usr/bin/python3"
LIMIT = 30.0  # seconds from the failed save to the alert, as the docs promise


def documented_prometheus_config():
    """The prometheus.yml block of docs/alerts.md's "Loading the rules"."""
    with open(ALERTS_DOC, encoding="utf-8") as f:
        doc = f.read()
    section = doc.split("\n## Loading the rules\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "scrape_configs:" in b]
    assert len(blocks) == 1, "docs/alerts.md: expected one prometheus.yml block in Loading the rules"
    return yaml.safe_load(blocks[0])


def api(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def firing(port, alertname, **labels):
    """The firing alert with these labels, or None."""
    for alert in api(port, "/api/v1/alerts")["data"]["alerts"]:
        if (alert["labels"].get("alertname") == alertname and alert["state"] == "firing"
                and all(alert["labels"].get(k) == v for k, v in labels.items())):
            return alert
    return None


def parse_rfc3339(text):
    # Prometheus writes nanoseconds; Python takes microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()


@requires(os.geteuid() == 0, "mounting a small tmpfs to fill needs root")
class AlertLatencyTest(unittest.TestCase):
    def setUp(self):
        self.prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.assertTrue(os.access(self.prometheus, os.X_OK),
                        "prometheus not found: apt-get install prometheus (.ci/install-deps)")
        self.dir = tempdir(self)
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.makedirs(self.ckpt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", self.ckpt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.ckpt])

    def start_prometheus(self, target):
        config = documented_prometheus_config()
        config.pop("alerting", None)  # no Alertmanager here; the alert's state is what counts
        config["rule_files"] = [RULES]
        jobs = [j for j in config["scrape_configs"] if j["job_name"] == "ckptwatch"]
        self.assertEqual(len(jobs), 1, config)
        jobs[0]["static_configs"] = [{"targets": [target]}]
        self.assertNotIn("global", config, "the test means to show the defaults are enough")
        data = tempfile.mkdtemp(prefix="ckptwatch-prom-", dir=self.dir)
        path = os.path.join(self.dir, "prometheus.yml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        port = free_port()
        log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [self.prometheus, f"--config.file={path}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)

        def stop():
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)
        return proc, port

    def wait(self, predicate, what, deadline, proc=None):
        end = time.monotonic() + deadline
        while True:
            try:
                value = predicate()
            except OSError:  # not listening yet
                value = None
            if value:
                return value
            if proc is not None and proc.poll() is not None:
                with open(os.path.join(self.dir, "prometheus.log")) as f:
                    self.fail(f"prometheus exited {proc.returncode}:\n{f.read()}")
            if time.monotonic() > end:
                self.fail(f"no {what} within {deadline:.0f}s")
            time.sleep(0.1)

    def test_a_disk_full_save_fires_checkpoint_save_failed_within_30_seconds(self):
        d = Daemon(self.dir, yaml_watch("run42", self.ckpt))  # the default settle, 1s
        self.addCleanup(d.stop)
        d.start()
        proc, port = self.start_prometheus(f"127.0.0.1:{d.port}")
        # Prometheus has scraped the daemon once: the failure counter is there, at 0.
        query = "/api/v1/query?query=ckptwatch_save_failures_total%7Bcause%3D%22disk_full%22%7D"
        samples = self.wait(lambda: api(port, query)["data"]["result"], "first scrape", 90, proc)
        self.assertEqual(samples[0]["value"][1], "0")

        path = os.path.join(self.ckpt, "epoch_001.h5")
        save = subprocess.run([PYTHON, os.path.join(HERE, "writers.py"), "sized", path, str(8 << 20)],
                              capture_output=True, text=True)
        failed_at = time.time()
        self.assertNotEqual(save.returncode, 0, "the save into 2 MiB should have failed")
        self.assertIn("No space left on device", save.stderr)

        alert = self.wait(lambda: firing(port, "CheckpointSaveFailed", watch="run42", cause="disk_full"),
                          "CheckpointSaveFailed", LIMIT + 30, proc)
        seen_at = time.time()
        latency = parse_rfc3339(alert["activeAt"]) - failed_at
        verdict = d.wait_verdict(path)
        verified_in = parse_rfc3339(verdict["ts"]) - failed_at
        print(f"\nalert latency: {latency:.1f}s after the failed save (verdict after "
              f"{verified_in:.1f}s, seen firing after {seen_at - failed_at:.1f}s)", file=sys.stderr)
        record("alert_latency", seconds=round(latency, 1), verdict_seconds=round(verified_in, 1))
        self.assertEqual(verdict.get("cause"), "disk_full", verdict)
        self.assertGreater(latency, 0, "the alert is older than the save: it is about something else")
        self.assertLessEqual(latency, LIMIT)


if __name__ == "__main__":
    unittest.main()
