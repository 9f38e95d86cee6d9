"""Runs the real ckptwatch daemon for end-to-end tests.

The daemon is started on a temporary config with a JSON log file and a real
NOTIFY_SOCKET (a unix datagram socket this harness reads), so tests wait on
what the daemon says — READY=1, a log event — never on fixed sleeps.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import logging_doc

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("CKPTWATCH_BIN", os.path.join(HERE, "..", "build", "ckptwatch"))
DEADLINE = 20.0  # seconds any single expected event may take


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yaml_watch(name, path, **keys):
    lines = [f"  - name: {name}", f"    path: {json.dumps(path)}"]
    for key, value in keys.items():
        lines.append(f"    {key}: {json.dumps(value)}")
    return "\n".join(lines)


class Daemon:
    """One ckptwatch run process with its log, notify socket and metrics port."""

    def __init__(self, workdir, watches_yaml, log_format="json", extra_yaml="", env=None,
                 verify_yaml="verify: {max_parallel: 2, timeout: 60s}\n", log_level="debug"):
        self.verify_yaml = verify_yaml
        self.log_level = log_level
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "ckptwatch.log")
        self.config_path = os.path.join(workdir, "ckptwatch.yaml")
        self.status_path = os.path.join(workdir, "status.sock")
        self.port = free_port()
        self.log_format = log_format
        self.write_config(watches_yaml, extra_yaml)
        self.notify_path = os.path.join(workdir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notifications = []
        self.events_read = 0
        self.env = dict(os.environ, NOTIFY_SOCKET=self.notify_path, **(env or {}))
        self.proc = None
        self.log_checked = False

    def write_config(self, watches_yaml, extra_yaml=""):
        text = (
            f"log: {{file: {json.dumps(self.log_path)}, format: {self.log_format}, "
            f"level: {self.log_level}}}\n"
            f"metrics: {{listen: \"127.0.0.1:{self.port}\"}}\n"
            f"{self.verify_yaml}"
            f"status: {{socket: {json.dumps(self.status_path)}}}\n"
            f"{extra_yaml}"
            f"watches:\n{watches_yaml}\n"
        )
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait_ready=True):
        self.proc = subprocess.Popen(
            [BIN, "run", "--config", self.config_path],
            cwd=self.workdir, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if wait_ready:
            self.wait_notification("READY=1")
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the daemon; fails when its log has an event or key docs/logging.md lacks."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        if not self.log_checked:
            self.log_checked = True
            undocumented = logging_doc.check_lines(self.events())
            if undocumented:
                raise AssertionError("the daemon logged what docs/logging.md does not document:\n"
                                     + "\n".join(undocumented))
        return self.proc.returncode if self.proc else None

    # -- notify socket ------------------------------------------------------

    def wait_notification(self, needle, deadline=DEADLINE):
        end = time.monotonic() + deadline
        for n in self.notifications:
            if needle in n:
                return n
        while time.monotonic() < end:
            self.notify.settimeout(max(0.01, min(0.2, end - time.monotonic())))
            try:
                data = self.notify.recv(4096).decode()
            except socket.timeout:
                # Datagrams sent before an exit are still queued: only an
                # empty socket and a dead daemon mean it never came.
                self._check_alive()
                continue
            self.notifications.append(data)
            if needle in data:
                return data
        raise AssertionError(f"no notification {needle!r} within {deadline}s; got {self.notifications}")

    # -- log ----------------------------------------------------------------

    def events(self):
        try:
            with open(self.log_path) as f:
                lines = [line for line in f.read().splitlines() if line.strip()]
        except FileNotFoundError:
            return []
        if self.log_format == "json":
            return [json.loads(line) for line in lines]
        return [parse_logfmt(line) for line in lines]

    def wait_event(self, predicate, deadline=DEADLINE, what="event"):
        """Polls the log (with a deadline) until an event matches `predicate`."""
        end = time.monotonic() + deadline
        while True:
            for e in self.events():
                if predicate(e):
                    return e
            if time.monotonic() > end:
                raise AssertionError(f"no {what} within {deadline}s; log:\n" + self.log_text())
            self._check_alive()
            time.sleep(0.02)

    def wait_verdict(self, path, deadline=DEADLINE):
        return self.wait_event(lambda e: e.get("event") == "verify" and e.get("path") == path,
                               deadline, f"verdict for {path}")

    def verdicts(self, path=None):
        return [e for e in self.events()
                if e.get("event") == "verify" and (path is None or e.get("path") == path)]

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return "(no log)"

    def _check_alive(self):
        if self.proc and self.proc.poll() is not None:
            out, err = self.proc.communicate()
            raise AssertionError(f"daemon exited with {self.proc.returncode}: {err.decode()}\n"
                                 f"log:\n{self.log_text()}")

    # -- metrics ------------------------------------------------------------

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        for line in self.scrape().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None


def parse_logfmt(line):
    """Parses `TS key=value key="quoted value" ...` into a dict (ts under 'ts')."""
    ts, _, rest = line.partition(" ")
    out = {"ts": ts}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] == " ":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq]
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            i += 1
            value = []
            while i < len(rest) and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < len(rest):
                    nxt = rest[i + 1]
                    value.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                    i += 2
                else:
                    value.append(rest[i])
                    i += 1
            i += 1
            out[key] = "".join(value)
        else:
            end = rest.find(" ", i)
            end = len(rest) if end < 0 else end
            out[key] = rest[i:end]
            i = end
    return out


def tempdir(test):
    d = tempfile.TemporaryDirectory(prefix="ckptwatch-e2e-")
    test.addCleanup(d.cleanup)
    return d.name
