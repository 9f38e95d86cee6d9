"""Runs under one parent (run_depth): a real daemon on one recursive watch of a `runs` directory
with `run_depth: 1`, scraped over HTTP. A truncated save under runs/runB/ counts in the
failure series labelled run="runB" (which existed at 0 before it), while runA keeps its own last
good checkpoint series; a watch without run_depth in the same daemon has no run label at all.
promtool lints the exposition.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import daemon_harness  # noqa: E402
import writers  # noqa: E402

BIN = os.environ.get("CKPTWATCH_BIN", os.path.join(os.path.dirname(HERE), "build", "ckptwatch"))


def series(text):
    """{(name, frozenset of (label, value)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"(ckptwatch_\w+)(?:\{(.*)\})? (\S+)$", line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(text, name, **labels):
    return series(text).get((name, frozenset(labels.items())))


class RunsTest(unittest.TestCase):
    def setUp(self):
        if not os.access(BIN, os.X_OK):
            self.fail(f"no daemon at {BIN}: build it or set CKPTWATCH_BIN")
        self.dir = daemon_harness.tempdir(self)
        self.runs = os.path.join(self.dir, "srv", "runs")
        self.flat = os.path.join(self.dir, "flat")
        os.makedirs(os.path.join(self.runs, "runA"))
        os.makedirs(self.flat)
        watches = "\n".join([
            daemon_harness.yaml_watch("runs", self.runs, recursive=True, run_depth=1,
                                      settle="100ms"),
            daemon_harness.yaml_watch("flat", self.flat, settle="100ms"),
        ])
        self.d = daemon_harness.Daemon(self.dir, watches)
        self.addCleanup(self.d.stop)
        self.d.start()

    def truncated_save(self, path):
        # Cut short before it lands, as a killed copy leaves it.
        staging = os.path.join(self.dir, os.path.basename(path) + ".part")
        writers.write_full_model(staging, writers.dense_stack(seed=1))
        os.truncate(staging, os.path.getsize(staging) // 2)
        os.rename(staging, path)
        return self.d.wait_verdict(path)

    def wait_metric(self, name, expected, **labels):
        deadline = time.monotonic() + 30
        while True:
            text = self.d.scrape()
            if value(text, name, **labels) == expected:
                return text
            if time.monotonic() > deadline:
                self.fail(f"{name}{labels} is not {expected}:\n{text}")
            time.sleep(0.05)

    def test_a_failed_save_in_runB_carries_run_B_and_runA_keeps_its_last_good(self):
        good = os.path.join(self.runs, "runA", "epoch_001.h5")
        writers.write_full_model(good, writers.dense_stack())
        line = self.d.wait_verdict(good)
        self.assertEqual((line["verdict"], line.get("run")), ("ok", "runA"))

        os.makedirs(os.path.join(self.runs, "runB", "ckpt"))
        # The new run's failure series exist at 0 before its first failure: increase() sees it.
        self.wait_metric("ckptwatch_save_failures_total", 0, watch="runs", run="runB",
                         cause="truncated")

        broken = os.path.join(self.runs, "runB", "ckpt", "epoch_001.h5")
        line = self.truncated_save(broken)
        self.assertEqual((line["cause"], line.get("run")), ("truncated", "runB"))

        text = self.wait_metric("ckptwatch_save_failures_total", 1, watch="runs", run="runB",
                                cause="truncated")
        self.assertEqual(value(text, "ckptwatch_save_failures_total", watch="runs", run="runA",
                               cause="truncated"), 0)
        self.assertEqual(value(text, "ckptwatch_save_failures_total", watch="runs",
                               cause="truncated"), 0, "files outside runs: no run label")
        self.assertIsNotNone(value(text, "ckptwatch_last_good_checkpoint_timestamp_seconds",
                                   watch="runs", run="runA"))
        self.assertGreater(value(text, "ckptwatch_last_good_checkpoint_bytes", watch="runs",
                                 run="runA"), 0)
        self.assertIsNone(value(text, "ckptwatch_last_good_checkpoint_bytes", watch="runs",
                                run="runB"))
        self.assertEqual(value(text, "ckptwatch_last_checkpoint_ok", watch="runs", run="runA"), 1)
        self.assertEqual(value(text, "ckptwatch_last_checkpoint_ok", watch="runs", run="runB"), 0)

        # A watch without run_depth: its series have no run label, empty or otherwise.
        flat_broken = os.path.join(self.flat, "epoch_001.h5")
        self.truncated_save(flat_broken)
        text = self.wait_metric("ckptwatch_save_failures_total", 1, watch="flat",
                                cause="truncated")
        self.assertNotRegex(text, r'run=""')
        for (name, labels), _ in series(text).items():
            if ("watch", "flat") in labels:
                self.assertNotIn("run", dict(labels), name)

        promtool = shutil.which("promtool") or "/usr/bin/promtool"
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=60)
        self.assertEqual((lint.returncode, lint.stdout + lint.stderr), (0, ""))

    def test_deleting_a_run_removes_its_series(self):
        os.makedirs(os.path.join(self.runs, "runC"))
        self.wait_metric("ckptwatch_save_failures_total", 0, watch="runs", run="runC",
                         cause="truncated")
        shutil.rmtree(os.path.join(self.runs, "runC"))
        self.wait_metric("ckptwatch_save_failures_total", None, watch="runs", run="runC",
                         cause="truncated")


if __name__ == "__main__":
    unittest.main()
