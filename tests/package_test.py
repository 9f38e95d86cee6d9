"""The production setup: the systemd unit, the .deb package, and the daemon run the way the unit
runs it.

UnitFileTest checks systemd/ckptwatch.service with systemd-analyze (verify, security exposure)
and traces the daemon and its verifier children with strace to check that every system call
they make is allowed by the unit's SystemCallFilter=. LintianTest builds the .deb with cpack and
requires lintian to find no error and no warning in it. PackageTest installs that .deb into this
system with dpkg, exercises it, purges it and checks nothing is left; it runs as root only (CI
does) and skips when a ckptwatch package is already installed, which it would otherwise purge.

Needs systemd-analyze (package systemd), strace, setpriv (util-linux), dpkg-dev, go-md2man and
lintian.
Environment: CKPTWATCH_BIN (default ../build/ckptwatch); its directory is the build directory
that cpack packages.
"""

import errno
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import writers  # noqa: E402  (needs HERE on sys.path)
from evidence import requires, skip  # noqa: E402

SOURCE = os.path.dirname(HERE)
BIN = os.path.abspath(
    os.environ.get("CKPTWATCH_BIN") or os.path.join(SOURCE, "build", "ckptwatch"))
BUILD = os.path.dirname(BIN)
UNIT = os.path.join(SOURCE, "systemd", "ckptwatch.service")
MAX_EXPOSURE = 2.0
DEADLINE = 30.0

# What the installed package must hold, and what purge must remove.
INSTALLED_BIN = "/usr/bin/ckptwatch"
CONFFILES = ["/etc/ckptwatch/ckptwatch.yaml", "/etc/logrotate.d/ckptwatch"]
LOG_DIR = "/var/log/ckptwatch"
PACKAGE_DIRS = ["/etc/ckptwatch", LOG_DIR, "/usr/share/doc/ckptwatch", "/usr/share/ckptwatch"]
WANTS_LINK = "/etc/systemd/system/multi-user.target.wants/ckptwatch.service"
NOT_INSTALLED = "not installed"

# The unit user: only CAP_DAC_READ_SEARCH and CAP_LEASE, inherited across the verifier child's
# execve (which drops both).
AS_UNIT_USER = [
    "setpriv", "--reuid=ckptwatch", "--regid=ckptwatch", "--init-groups", "--no-new-privs",
    "--inh-caps=-all,+dac_read_search,+lease", "--ambient-caps=-all,+dac_read_search,+lease",
    "--bounding-set=-all,+dac_read_search,+lease", "--",
]
AS_UNIT_USER_WITHOUT_CAPS = [
    "setpriv", "--reuid=ckptwatch", "--regid=ckptwatch", "--init-groups", "--no-new-privs",
    "--inh-caps=-all", "--bounding-set=-all", "--",
]


def run(argv, check=True, **kwargs):
    """Runs argv, capturing text output; with `check`, a failure shows both streams."""
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def require_tool(test, name, package):
    if shutil.which(name) is None:
        test.fail(f"{name} not found: apt-get install {package} (listed in .ci/install-deps)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {deadline}s waiting for {what}")


def build_deb(test_case):
    """The .deb cpack makes from the build directory, in a directory removed at class teardown."""
    package_dir = tempfile.mkdtemp(prefix="ckptwatch-deb-")
    test_case.addClassCleanup(shutil.rmtree, package_dir, True)
    run(["cpack", "-G", "DEB", "-B", package_dir], cwd=BUILD)
    debs = [f for f in os.listdir(package_dir) if f.endswith(".deb")]
    assert len(debs) == 1, debs
    return os.path.join(package_dir, debs[0])


def log_events(path):
    """The daemon's JSON log lines so far."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


# -- systemd's system call groups ------------------------------------------------------------


def syscall_groups():
    """{"@group": [member, ...]} from `systemd-analyze syscall-filter` (members may be groups)."""
    out = run(["systemd-analyze", "syscall-filter"]).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            groups[current] = []
            continue
        # A trailing notice can be glued to the last name: "setrlimit# Not showing ...".
        name = line.split("#", 1)[0].strip()
        if current and name:
            groups[current].append(name)
    return groups


def expand(names, groups):
    calls = set()
    for name in names:
        calls |= expand(groups[name], groups) if name.startswith("@") else {name}
    return calls


def unit_allowed_syscalls(unit_text, groups):
    """The allow list SystemCallFilter= lines build: the first sets it, `~` lines remove."""
    allowed = None
    for line in unit_text.splitlines():
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.split("=", 1)[1].strip()
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        if allowed is None:
            assert not deny, "the first SystemCallFilter= must be an allow list"
            allowed = set()
        if deny:
            allowed -= expand(names, groups)
        else:
            allowed |= expand(names, groups)
    assert allowed is not None, "the unit has no SystemCallFilter="
    return allowed


def evict_page_cache(directory):
    """Writes back and drops the cached pages of every file under `directory`."""
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def strace_summary_syscalls(path):
    """The system call names in an `strace -c` summary table."""
    calls, in_table = set(), False
    with open(path) as f:
        for line in f:
            if line.startswith("------"):
                in_table = not in_table
                continue
            fields = line.split()
            if in_table and fields and fields[-1] != "total":
                calls.add(fields[-1])
    return calls


class UnitFileTest(unittest.TestCase):
    """systemd/ckptwatch.service, without installing anything."""

    def setUp(self):
        require_tool(self, "systemd-analyze", "systemd")
        with open(UNIT) as f:
            self.unit_text = f.read()

    def test_verify_reports_nothing(self):
        # verify needs ExecStart's binary to exist: check a copy that runs the one just built.
        # The man page check belongs to PackageTest, where ckptwatch(8) is installed.
        with tempfile.TemporaryDirectory(prefix="ckptwatch-unit-") as d:
            copy = os.path.join(d, "ckptwatch.service")
            with open(copy, "w") as f:
                f.write(self.unit_text.replace("/usr/bin/ckptwatch ", BIN + " "))
            proc = run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no", copy],
                       check=False)
        self.assertEqual((proc.returncode, proc.stdout + proc.stderr), (0, ""))

    def test_security_exposure_is_ok(self):
        proc = run(["systemd-analyze", "security", "--offline=true", "--no-pager", UNIT])
        match = re.search(r"Overall exposure level for ckptwatch\.service: ([0-9.]+) (\w+)",
                          proc.stdout)
        self.assertIsNotNone(match, proc.stdout)
        self.assertLessEqual(float(match.group(1)), MAX_EXPOSURE, proc.stdout)
        self.assertEqual(match.group(2), "OK")
        # docs/operations.md states the figure: it must be the one measured, not a past one.
        with open(os.path.join(SOURCE, "docs", "operations.md")) as f:
            stated = re.search(r"rates the unit as shipped ([0-9.]+) \(OK", f.read())
        self.assertIsNotNone(stated, "docs/operations.md no longer states the exposure figure")
        self.assertEqual(stated.group(1), match.group(1),
                         "docs/operations.md states another exposure figure than systemd-analyze's")

    def test_system_call_filter_allows_every_call_the_daemon_makes(self):
        require_tool(self, "strace", "strace")
        allowed = unit_allowed_syscalls(self.unit_text, syscall_groups())
        # /var/tmp, a disk: its pages can be dropped, so `verify --level full` below meets files
        # that are not all cached. cachestat(2) tells the page-cache guard so and it walks the
        # pages with mincore(), the call the unit allows by name. (For a warm file cachestat
        # alone answers; under the unit, systemd 252 cannot name cachestat and refuses it, so
        # the guard always walks: mincore is what must be allowed.)
        with tempfile.TemporaryDirectory(prefix="ckptwatch-strace-", dir="/var/tmp") as d:
            used = self._trace_daemon(d)
            evict_page_cache(os.path.join(d, "ckpt"))
            used |= self._trace(d, "verify", [
                BIN, "verify", "--level", "full", os.path.join(d, "ckpt")], ok_codes=(1,))
            used |= self._trace(d, "check-config", [BIN, "check-config", self.config])
        # The workload must reach what the filter is about, or the check proves nothing.
        exercised = {"inotify_init1", "inotify_add_watch", "prlimit64", "prctl", "execve",
                     "mincore", "fadvise64", "statfs", "accept4", "sendmsg"}
        self.assertEqual(exercised - used, set(), "the traced workload no longer makes these calls")
        self.assertEqual(sorted(used - allowed), [],
                         "system calls the unit's SystemCallFilter= would refuse with EPERM")

    def _trace(self, d, name, argv, ok_codes=()):
        summary = os.path.join(d, f"strace-{name}.txt")
        proc = run(["strace", "-f", "-c", "-o", summary] + argv, check=False)
        self.assertIn(proc.returncode, (0,) + ok_codes, proc.stderr)
        return strace_summary_syscalls(summary)

    def _trace_daemon(self, d):
        """The daemon under strace through its life: start, inotify, polling, a missing watch
        that appears, verifications (full level, so the page-cache calls run), a scrape, the
        watchdog, SIGHUP, SIGUSR1, SIGTERM."""
        ckpt, polled = os.path.join(d, "ckpt"), os.path.join(d, "polled")
        missing = os.path.join(d, "later", "run")
        os.makedirs(os.path.join(ckpt, "sub"))
        os.makedirs(polled)
        log, port = os.path.join(d, "ckptwatch.log"), free_port()
        self.config = os.path.join(d, "ckptwatch.yaml")
        with open(self.config, "w") as f:
            f.write(
                f"log: {{file: {json.dumps(log)}, format: json, level: debug}}\n"
                f"metrics: {{listen: \"127.0.0.1:{port}\"}}\n"
                f"status: {{socket: {json.dumps(os.path.join(d, 'status.sock'))}}}\n"
                "verify: {level: full, max_parallel: 2, timeout: 60s}\n"
                "watches:\n"
                f"  - {{name: local, path: {json.dumps(ckpt)}, recursive: true, settle: 100ms,"
                " expect_every: 1h, min_free: 1%, writer: root, readers: [root]}\n"
                f"  - {{name: polled, path: {json.dumps(polled)}, backend: poll,"
                " poll_interval: 200ms, settle: 0s}\n"
                f"  - {{name: later, path: {json.dumps(missing)}, settle: 100ms}}\n")
        notify_path = os.path.join(d, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        self.addCleanup(notify.close)
        summary = os.path.join(d, "strace-run.txt")
        env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")
        # Its own process group: a dead strace detaches its tracees, so cleanup kills them all.
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", summary, BIN, "run", "--config",
                                   self.config], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(lambda: tracer.poll() is None and os.killpg(tracer.pid, signal.SIGKILL))
        # READY=1 comes once every watch is set: files written from then on are all seen.
        notify.settimeout(DEADLINE)
        while b"READY=1" not in notify.recv(4096):
            pass
        pid = next(e for e in log_events(log) if e["event"] == "start")["pid"]

        def verdicts():
            return {e["path"]: e["verdict"] for e in log_events(log) if e["event"] == "verify"}

        # Each file is complete before it appears (written aside, then renamed in): one verdict each.
        staging = os.path.join(d, "staging")
        os.mkdir(staging)

        def put(path, write):
            aside = os.path.join(staging, os.path.basename(path))
            write(aside)
            os.rename(aside, path)

        def cut(path):
            writers.write_full_model(path, writers.dense_stack())
            writers.truncate(path, 3000)

        full_model = lambda path: writers.write_full_model(path, writers.dense_stack())
        files = {
            os.path.join(ckpt, "good.h5"): ("ok", full_model),
            os.path.join(ckpt, "sub", "filtered.h5"): ("ok", writers.write_filtered),
            os.path.join(ckpt, "model.keras"): ("ok", writers.write_keras3_zip),
            os.path.join(ckpt, "cut.h5"): ("truncated", cut),
            os.path.join(polled, "polled.h5"): ("ok", full_model),
            os.path.join(missing, "late.h5"): ("ok", full_model),
        }
        for path, (_, write) in files.items():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            put(path, write)
        files = {path: verdict for path, (verdict, _) in files.items()}
        wait_for(lambda: all(verdicts().get(p) for p in files), "every verdict")
        self.assertEqual(verdicts(), files)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            self.assertIn(b"ckptwatch_watch_info", r.read())
        for sig, event in ((signal.SIGHUP, "reload"), (signal.SIGUSR1, "log_reopened")):
            os.kill(pid, sig)
            wait_for(lambda: any(e["event"] == event for e in log_events(log)), event)
        os.kill(pid, signal.SIGTERM)
        _, err = tracer.communicate(timeout=DEADLINE)
        self.assertEqual(tracer.returncode, 0, err.decode())
        return strace_summary_syscalls(summary)


class LintianTest(unittest.TestCase):
    """The .deb as Debian's checker sees it."""

    @classmethod
    def setUpClass(cls):
        cls.deb = build_deb(cls)

    def test_lintian_finds_no_error_and_no_warning(self):
        require_tool(self, "lintian", "lintian")
        proc = run(["lintian", "--display-info", "--pedantic", "--fail-on", "error,warning", self.deb],
                   check=False)
        tags = [line for line in proc.stdout.splitlines() if re.match(r"[EWIPXO]: ", line)]
        self.assertEqual([t for t in tags if t[0] in "EW"], [], proc.stdout + proc.stderr)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        # Informational tags are upstream's (HDF5's spelling inside the static library) or
        # choices (no init.d script, no BIND_NOW: each verification is a fresh process).
        print("\nlintian: " + (", ".join(sorted({t.split()[2] for t in tags})) or "clean"),
              file=sys.stderr)

    def test_the_shipped_config_points_to_the_installed_docs(self):
        with open(os.path.join(SOURCE, "config", "ckptwatch.yaml")) as f:
            text = f.read()
        named = re.findall(r"/usr/share/doc/ckptwatch/([\w.-]+)", text)
        self.assertIn("config.md", named)
        installed = set(run(["dpkg-deb", "--contents", self.deb]).stdout.split())
        for name in named:
            self.assertTrue(any(p.endswith(f"/usr/share/doc/ckptwatch/{name}") for p in installed),
                            f"/etc/ckptwatch/ckptwatch.yaml names {name}, which the package lacks")
        self.assertNotIn("source", text.split("\n\n")[0], "the header still sends readers to the source")


@requires(os.geteuid() == 0, "installs a .deb into this system: needs root")
class PackageTest(unittest.TestCase):
    """The .deb: built by cpack from the build directory, installed, used and purged."""

    @classmethod
    def setUpClass(cls):
        status = run(["dpkg-query", "-W", "-f=${Status}", "ckptwatch"], check=False).stdout
        if "installed" in status.split():
            skip("a ckptwatch package is installed here; this test would purge it")
        cls.deb = build_deb(cls)

    def setUp(self):
        self.addCleanup(self.purge)  # runs last, whatever happens in between
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if run(["dpkg", "-i", self.deb], check=False, env=env).returncode != 0:
            run(["apt-get", "-f", "install", "-y", "-qq"], env=env)  # missing dependencies
        self.assertEqual(self.status(), "install ok installed")
        self.work = tempfile.mkdtemp(prefix="ckptwatch-pkg-")
        self.addCleanup(shutil.rmtree, self.work, True)

    def purge(self):
        if self.status() != NOT_INSTALLED:
            run(["dpkg", "--purge", "ckptwatch"], check=False)

    def status(self):
        """dpkg's status of the package; NOT_INSTALLED once purged (or never installed)."""
        out = run(["dpkg-query", "-W", "-f=${Status}", "ckptwatch"], check=False).stdout.strip()
        return out if out and out != "unknown ok not-installed" else NOT_INSTALLED

    def test_installs_works_and_purges_without_a_trace(self):
        version = run([INSTALLED_BIN, "--version"]).stdout
        self.assertRegex(version, r"^ckptwatch \d+\.\d+\.\d+ \(HDF5 ")
        run([INSTALLED_BIN, "check-config", "/etc/ckptwatch/ckptwatch.yaml"])
        sample = os.path.join(self.work, "epoch_001.h5")
        writers.write_full_model(sample, writers.dense_stack())
        out = run([INSTALLED_BIN, "verify", "--level", "full", sample]).stdout
        self.assertIn(": ok: ", out)

        user = pwd.getpwnam("ckptwatch")
        self.assertLess(user.pw_uid, 1000)  # a system user
        self.assertEqual(user.pw_dir, "/nonexistent")
        self.assertFalse(os.path.exists("/nonexistent"))
        self.assertEqual(grp.getgrgid(user.pw_gid).gr_name, "ckptwatch")
        log_dir = os.stat(LOG_DIR)
        self.assertEqual((log_dir.st_uid, grp.getgrgid(log_dir.st_gid).gr_name),
                         (user.pw_uid, "adm"))
        self.assertEqual(stat.S_IMODE(log_dir.st_mode), 0o2750)

        registered = run(["dpkg-query", "--showformat=${Conffiles}", "-W", "ckptwatch"]).stdout
        for path in CONFFILES:
            self.assertRegex(registered, rf"(?m)^ {re.escape(path)} [0-9a-f]{{32}}$")

        # The installed unit, as systemd would load it: binary and man page in place.
        unit_path = next(p for p in ("/usr/lib/systemd/system/ckptwatch.service",
                                     "/lib/systemd/system/ckptwatch.service") if os.path.exists(p))
        proc = run(["systemd-analyze", "verify", "--recursive-errors=no", unit_path], check=False)
        self.assertEqual((proc.returncode, proc.stdout + proc.stderr), (0, ""))
        self.assertTrue(run(["man", "-w", "8", "ckptwatch"]).stdout.startswith("/usr/share/man/"))
        for doc in os.listdir(os.path.join(SOURCE, "docs")):
            if doc.endswith(".md") and doc != "ckptwatch.8.md":
                self.assertTrue(os.path.exists(f"/usr/share/doc/ckptwatch/{doc}"), doc)
        for shipped in ("prometheus/ckptwatch-rules.yml", "grafana/ckptwatch.json"):
            if os.path.exists(os.path.join(SOURCE, "config", shipped)):
                name = os.path.basename(shipped)
                self.assertTrue(os.path.exists(f"/usr/share/ckptwatch/{name}"), name)

        # Not started, not enabled by the package; an operator enables it, purge undoes that.
        self.assertFalse(os.path.lexists(WANTS_LINK))
        run(["systemctl", "enable", "ckptwatch.service"])
        self.assertTrue(os.path.lexists(WANTS_LINK))
        with open(os.path.join(LOG_DIR, "ckptwatch.log"), "w") as f:
            f.write("a line the daemon wrote\n")

        files = [p for p in run(["dpkg", "-L", "ckptwatch"]).stdout.splitlines()
                 if os.path.isfile(p)]
        self.assertIn(INSTALLED_BIN, files)
        # The front finds its engine where the package puts it (the verify --level full above
        # ran there), and loads none of the engine's libraries: that is what makes it start fast.
        self.assertIn("/usr/lib/ckptwatch/ckptwatch-engine", files)
        front_libs = run(["ldd", INSTALLED_BIN]).stdout
        for heavy in ("libuv", "libzip", "libspdlog", "libprometheus", "libsystemd", "libyaml", "libstdc++"):
            self.assertNotIn(heavy, front_libs, "the front now calls a library source that a unity "
                             "batch compiles with others: add it to CKPTWATCH_FRONT_SOURCES "
                             "(CMakeLists.txt)")
        run(["dpkg", "--purge", "ckptwatch"])
        self.assertEqual(self.status(), NOT_INSTALLED)
        self.assertNotEqual(run(["dpkg", "-L", "ckptwatch"], check=False).returncode, 0)
        self.assertEqual([p for p in files if os.path.lexists(p)], [])
        self.assertEqual([p for p in PACKAGE_DIRS + [WANTS_LINK] if os.path.lexists(p)], [])
        self.assertRaises(KeyError, pwd.getpwnam, "ckptwatch")
        self.assertRaises(KeyError, grp.getgrnam, "ckptwatch")

    def daemon_verdicts_as_unit_user(self, directory, paths):
        """Runs the installed daemon as the unit user with CAP_DAC_READ_SEARCH on `directory`,
        moves each of `paths` into place there (a rename: one event each) and returns
        {path: verdict} once each has one."""
        config = os.path.join(self.work, "unit-user.yaml")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with open(config, "w") as f:
            f.write(f'log: {{format: json, level: info}}\n'
                    f'metrics: {{listen: "127.0.0.1:{port}"}}\n'
                    f'watches:\n  - {{name: private, path: {json.dumps(directory)}, '
                    f'settle: 0s, level: full, patterns: ["*.h5", "*.keras"]}}\n')
        staged = [(p, os.path.join(os.path.dirname(p), ".staged-" + os.path.basename(p)))
                  for p in paths]
        for path, temp in staged:
            os.rename(path, temp)
        daemon = subprocess.Popen(AS_UNIT_USER + [INSTALLED_BIN, "run", "--config", config],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        verdicts, started = {}, False
        # A daemon that says nothing must not hang the test: the timer ends the read below.
        watchdog = threading.Timer(60, daemon.kill)
        watchdog.start()
        try:
            for line in daemon.stderr:
                event = json.loads(line)
                if event.get("event") == "watch_started" and not started:
                    started = True
                    for path, temp in staged:
                        os.rename(temp, path)
                if event.get("event") == "verify":
                    verdicts[event["path"]] = event["verdict"]
                if len(verdicts) == len(paths):
                    break
        finally:
            watchdog.cancel()
            daemon.terminate()
            daemon.communicate(timeout=30)
        return verdicts

    def test_unit_user_reads_any_checkpoint_and_writes_only_its_log(self):
        require_tool(self, "setpriv", "util-linux")
        # Checkpoints nobody but their owner may read, in a directory only root may enter.
        private = os.path.join(self.work, "private")
        os.mkdir(private, 0o700)
        os.chmod(self.work, 0o700)
        root_owned = os.path.join(private, "root.h5")
        nobody_owned = os.path.join(private, "nobody.keras")
        writers.write_full_model(root_owned, writers.dense_stack())
        writers.write_keras3_zip(nobody_owned)
        nobody = pwd.getpwnam("nobody")
        os.chown(nobody_owned, nobody.pw_uid, nobody.pw_gid)
        for path in (root_owned, nobody_owned):
            os.chmod(path, 0o600)

        # The daemon, as the unit runs it, reads both: it opens each file itself (the capability
        # stays in the daemon; its verifier child gets the open descriptor and no capability).
        verdicts = self.daemon_verdicts_as_unit_user(private, [root_owned, nobody_owned])
        self.assertEqual(verdicts, {root_owned: "ok", nobody_owned: "ok"})
        # `verify` describes only what its user may read: with the capability or without it,
        # the same user gets permission_denied (the CLI drops capabilities; docs/security.md).
        cmd = [INSTALLED_BIN, "verify", "--level", "full", root_owned, nobody_owned]
        for as_user in (AS_UNIT_USER, AS_UNIT_USER_WITHOUT_CAPS):
            proc = run(as_user + cmd, check=False)
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            self.assertEqual(proc.stdout.count(": permission_denied: "), 2, proc.stdout)

        # Writing: denied beside the checkpoint, in /etc and over the checkpoint itself; allowed
        # in its log directory.
        attempts = [os.path.join(private, "planted.h5"), "/etc/ckptwatch/planted",
                    "/etc/planted", root_owned, os.path.join(LOG_DIR, "probe.log")]
        probe = ("import json, os, sys\n"
                 "out = {}\n"
                 "for p in sys.argv[1:]:\n"
                 "    try:\n"
                 "        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o640)); out[p] = 0\n"
                 "    except OSError as e:\n"
                 "        out[p] = e.errno\n"
                 "print(json.dumps(out))\n")
        results = json.loads(run(AS_UNIT_USER + [sys.executable, "-c", probe] + attempts).stdout)
        self.assertEqual(results, {p: errno.EACCES for p in attempts[:-1]} | {attempts[-1]: 0})
        self.assertFalse(os.path.exists(attempts[0]) or os.path.exists(attempts[2]))

        # The daemon itself, as the unit runs it: watches the private directory, logs into
        # /var/log/ckptwatch (group adm through the directory's setgid bit).
        log = os.path.join(LOG_DIR, "ckptwatch.log")
        config = os.path.join(self.work, "ckptwatch.yaml")
        with open(config, "w") as f:
            f.write(f"log: {{file: {log}, format: json}}\n"
                    f"metrics: {{listen: \"127.0.0.1:{free_port()}\"}}\n"
                    f"watches:\n  - {{name: private, path: {json.dumps(private)}, settle: 100ms}}\n")
        os.chmod(config, 0o600)  # readable through the capability only
        daemon = subprocess.Popen(AS_UNIT_USER + [INSTALLED_BIN, "run", "--config", config],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  umask=0o027)  # the unit's UMask=
        self.addCleanup(lambda: daemon.poll() is None and (daemon.kill(), daemon.wait()))
        wait_for(lambda: any(e["event"] == "watch_started" for e in log_events(log)),
                 "watch_started")
        late = os.path.join(private, "epoch_002.h5")
        aside = os.path.join(self.work, "epoch_002.h5")
        writers.write_full_model(aside, writers.dense_stack())
        os.chmod(aside, 0o600)
        os.rename(aside, late)  # complete when it appears: one verdict
        verdict = wait_for(lambda: next((e for e in log_events(log)
                                         if e["event"] == "verify" and e["path"] == late), None),
                           "the verdict on a checkpoint written after start")
        self.assertEqual(verdict["verdict"], "ok", verdict)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=DEADLINE)
        self.assertEqual(daemon.returncode, 0, err.decode())
        st = os.stat(log)
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
                          stat.S_IMODE(st.st_mode) & 0o007), ("ckptwatch", "adm", 0))


if __name__ == "__main__":
    unittest.main()
