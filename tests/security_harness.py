"""What the security tests share (security_test.py, verifier_child_test.py, alarm_denial_test.py):
the three users, a confined daemon, private files, and probes of the verifier processes.

setUpModule() creates the users and sets DAEMON, ADVERSARY and VICTIM here; a test module that
star-imports this one calls it from its own setUpModule() and copies them (use_users()).
"""

import contextlib
import ctypes
import fcntl
import io
import json
import os
import pickle
import pwd
import re
import secrets
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import unittest
import urllib.request
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import h5py  # noqa: E402
import writers  # noqa: E402
from daemon_harness import BIN, Daemon, parse_logfmt, tempdir, yaml_watch  # noqa: E402

BIN = os.path.abspath(BIN)
ROOT = os.geteuid() == 0

# The interface these tests pin down (verdict and event names of the hardening work).
EXTERNAL_DATA = "external_data"
EXTERNAL_REASON = "stores its data in another file"
NOT_REGULAR = "not_regular"
SYMLINK_OUTSIDE = "symlink_outside"
SYMLINK_DANGLING = "symlink_dangling"
VERIFIER_CRASHED = "verifier_crashed"

DAEMON_USER = "ckwsec-daemon"
ADVERSARY_USER = "ckwsec-adv"
VICTIM_USER = "ckwsec-victim"

PROMPT = 5.0  # seconds a verdict on a hostile file may take: no verifier slot, no timeout
DEADLINE = 20.0
MAX_LOG_LINE = 64 << 10
OLD_ATIME = 1_000_000_000  # 2001: any read of a private file on strictatime moves it


def as_daemon_user():
    """setpriv prefix: the daemon's user, its groups, and only CAP_DAC_READ_SEARCH and CAP_LEASE
    (inherited and ambient, so they survive execve as under the unit's AmbientCapabilities)."""
    return ["setpriv", f"--reuid={DAEMON_USER}", f"--regid={DAEMON_USER}", "--init-groups",
            "--inh-caps=-all,+dac_read_search,+lease", "--ambient-caps=-all,+dac_read_search,+lease",
            "--"]


def ensure_user(name):
    for _ in range(50):  # other test modules may hold /etc/passwd's lock
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                            "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
        if r.returncode not in (0, 9):  # 9: created meanwhile
            time.sleep(0.1)
    raise RuntimeError(f"cannot create user {name}")


def setUpModule():
    if not ROOT:
        raise unittest.SkipTest("needs root: real users, tmpfs mounts, setpriv")
    if not os.access(BIN, os.X_OK):
        raise RuntimeError(f"ckptwatch binary not found at {BIN}; build it or set CKPTWATCH_BIN")
    global DAEMON, ADVERSARY, VICTIM
    DAEMON, ADVERSARY, VICTIM = (ensure_user(n) for n in (DAEMON_USER, ADVERSARY_USER, VICTIM_USER))



def use_users(module_globals):
    """setUpModule() of a test module: creates the users and binds them in that module too."""
    setUpModule()
    module_globals.update(DAEMON=DAEMON, ADVERSARY=ADVERSARY, VICTIM=VICTIM)


def as_user(pw, fn, *args):
    """Runs fn(*args) in a forked child that is `pw` (no groups, no capabilities); returns its
    result or raises with the child's traceback."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
            os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
            os.umask(0o022)
            payload = pickle.dumps((True, fn(*args)))
        except BaseException:
            payload = pickle.dumps((False, traceback.format_exc()))
        try:
            with os.fdopen(w, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)
    if not ok:
        raise AssertionError(f"as {pw.pw_name}: {value}")
    return value


def adversary(fn, *args):
    return as_user(ADVERSARY, fn, *args)


def cannot_read(path):
    try:
        with open(path, "rb"):
            return False
    except PermissionError:
        return True


# -- private files ----------------------------------------------------------------------------


class Secret:
    """What must never be disclosed about one private file."""

    def __init__(self, path, marker, strings=(), numbers=(), private_name=False):
        self.path = path
        self.marker = marker
        self.strings = [marker, marker.encode().hex(), *strings]
        if private_name:
            self.strings.append(os.path.basename(path))
        self.size = os.path.getsize(path)
        self.numbers = [self.size, *numbers]

    def leaks(self, text):
        found = [s for s in self.strings if s in text]
        found += [str(n) for n in self.numbers if re.search(rf"(?<![0-9.]){n}(?![0-9])", text)]
        return found


def make_private(path, owner, write):
    """Writes `path` with write(path), then makes it owner's, mode 0600, with an old atime."""
    write(path)
    os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(path, 0o600)
    os.utime(path, (OLD_ATIME, os.stat(path).st_mtime))


def private_raw(path, owner, private_name=False):
    """A private non-HDF5 file: a marker, NaN floats, a known float, random padding; its
    size is 7 digits so it cannot be mistaken for a port or a small count."""
    marker = "PRIVRAW" + secrets.token_hex(8) + "_"  # 24 bytes: the NaNs stay 4-byte aligned
    size = 1_000_003 + secrets.randbelow(900_000)
    n_nan = 100_003 + secrets.randbelow(50_000)

    def write(p):
        head = marker.encode() + struct.pack("<f", float("nan")) * n_nan
        head += struct.pack("<f", 31337.25) * 4096
        with open(p, "wb") as f:
            f.write(head + secrets.token_bytes(size - len(head)))

    make_private(path, owner, write)
    return Secret(path, marker, ["31337.25"], [n_nan], private_name)


def private_checkpoint(path, owner, private_name=False):
    """A private, valid Keras 2 full-model checkpoint: a secret custom class, a secret Keras
    version, NaN weights, a 7-digit parameter count and size."""
    marker = "PRIVCKPT" + secrets.token_hex(8)
    version = f"7.{secrets.randbelow(90000) + 10000}.{secrets.randbelow(900) + 100}"
    blob = 300_007 + secrets.randbelow(100_000)
    counted = {}

    def write(p):
        layers = writers.dense_stack(units=(16, 33 + secrets.randbelow(30), 32, 10),
                                     custom_class="Secret" + marker)
        layers.append(writers.Layer("blob", "Dense",
                                    [("blob/kernel:0", np.full(blob, 31337.25, np.float32))]))
        writers.write_full_model(p, layers, nonfinite={"dense_2/kernel:0": [np.nan] * 3})
        with h5py.File(p, "r+") as f:
            f.attrs["keras_version"] = np.bytes_(version.encode())
            f.attrs["secret_marker"] = np.bytes_(marker.encode())
        counted["params"] = writers.h5py_counts(p)[1]  # before make_private resets the atime

    make_private(path, owner, write)
    return Secret(path, marker, [version, "31337.25"], [counted["params"], blob], private_name)


# -- the daemon and the CLI as the daemon's user ------------------------------------------------


class ConfinedDaemon(Daemon):
    """The harness's daemon, run as DAEMON_USER with only CAP_DAC_READ_SEARCH and verify.timeout
    at its default (5m), so a hostile file that holds a verifier slot shows as a stall."""

    def __init__(self, workdir, watches_yaml, log_format="json", env=None):
        os.makedirs(workdir)
        os.chown(workdir, DAEMON.pw_uid, DAEMON.pw_gid)
        super().__init__(workdir, watches_yaml, log_format=log_format, env=env)
        os.chmod(self.notify_path, 0o777)

    def write_config(self, watches_yaml, extra_yaml=""):
        with open(self.config_path, "w") as f:
            f.write(f"log: {{file: {json.dumps(self.log_path)}, format: {self.log_format}, "
                    f"level: debug}}\n"
                    f"metrics: {{listen: \"127.0.0.1:{self.port}\"}}\n"
                    f"status: {{socket: {json.dumps(self.status_path)}}}\n"
                    f"verify: {{max_parallel: 2}}\n"
                    f"{extra_yaml}watches:\n{watches_yaml}\n")

    def start(self, wait_ready=True):
        self.proc = subprocess.Popen(
            [*as_daemon_user(), BIN, "run", "--config", self.config_path],
            cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if wait_ready:
            self.wait_notification("READY=1")
        return self

    def log_bytes(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def log_text(self):
        return self.log_bytes().decode("utf-8", "backslashreplace")

    def events(self):
        lines = [l for l in self.log_bytes().decode("utf-8", "surrogateescape").splitlines()
                 if l.strip()]
        if self.log_format != "json":
            return [parse_logfmt(l) for l in lines]
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise AssertionError(f"log line is not JSON ({e}): {line!r}")
        return out

    def verdict_matching(self, predicate, deadline=DEADLINE, what="verdict"):
        return self.wait_event(lambda e: e.get("event") == "verify" and predicate(e),
                               deadline, what)

    def scrape(self, timeout=5):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout) as r:
            return r.read().decode()


def cli_verify(path, *args, timeout=30, env=None):
    """`ckptwatch verify --json ARGS PATH` as the daemon's user with CAP_DAC_READ_SEARCH, bounded:
    a hang is a failure, not a stuck test run."""
    cmd = [*as_daemon_user(), BIN, "verify", "--json", *args, "--", path]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`{' '.join(map(str, cmd))}` did not finish within {timeout}s")


def cli_results(proc):
    try:
        text = proc.stdout.decode("utf-8")
        return [json.loads(l) for l in text.splitlines() if l.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AssertionError(f"verify --json output is not JSON ({e}): {proc.stdout!r}\n"
                             f"stderr: {proc.stderr!r}")


def nonfinite_lines(scrape):
    return sorted(l for l in scrape.splitlines() if "nonfinite" in l and not l.startswith("#"))


# -- tests ------------------------------------------------------------------------------------


class SecurityTestCase(unittest.TestCase):
    """A strictatime tmpfs holding the adversary's watched directory, the victim's private
    directory and the daemons' working directories."""

    maxDiff = None

    def setUp(self):
        self.base = tempdir(self)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0755,strictatime",
                        "tmpfs", self.base], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.base])
        self.watch = os.path.join(self.base, "watch")
        os.mkdir(self.watch)
        os.chown(self.watch, ADVERSARY.pw_uid, ADVERSARY.pw_gid)
        self.private = os.path.join(self.base, "victim")
        os.mkdir(self.private, 0o700)
        os.chown(self.private, VICTIM.pw_uid, VICTIM.pw_gid)
        self.secrets = []
        self.daemons = []
        self.cli_outputs = []
        self.barriers = 0

    # Private files.

    def private_raw(self, name="raw.bin", private_name=False):
        s = private_raw(os.path.join(self.private, name), VICTIM, private_name)
        self.secrets.append(s)
        self.assertTrue(adversary(cannot_read, s.path))
        return s

    def private_checkpoint(self, name="victim.h5", private_name=False, directory=None):
        s = private_checkpoint(os.path.join(directory or self.private, name), VICTIM, private_name)
        self.secrets.append(s)
        self.assertTrue(adversary(cannot_read, s.path))
        return s

    # Daemons: one logging json, one logging text, on the same watches.

    def start_daemons(self, watches_yaml, formats=("json", "text"), env=None):
        for fmt in formats:
            d = ConfinedDaemon(os.path.join(self.base, f"daemon-{fmt}"), watches_yaml,
                               log_format=fmt, env=env)
            self.addCleanup(d.stop)
            d.start()
            self.daemons.append(d)
        return self.daemons

    def cli(self, path, *args, **kwargs):
        proc = cli_verify(path, *args, **kwargs)
        self.cli_outputs.append(proc.stdout + proc.stderr)
        return proc

    def barrier(self, directory=None, deadline=PROMPT * 2):
        """A valid checkpoint written after the attack gets `ok` from every daemon in time: the
        attack stalled nothing, and the daemons have handled every event before it."""
        self.barriers += 1
        final = os.path.join(directory or self.watch, f"barrier_{self.barriers}.h5")
        staging = os.path.join(self.watch, f".barrier_{self.barriers}.tmp")
        adversary(lambda: (writers.write_full_model(staging), os.rename(staging, final)))
        for d in self.daemons:
            v = d.wait_verdict(final, deadline=deadline)
            self.assertEqual(v["verdict"], "ok", v)
        return final

    def assert_nothing_leaked(self):
        outputs = {}
        for d in self.daemons:
            outputs[f"{d.log_format} log"] = d.log_bytes().decode("latin-1")
            outputs[f"{d.log_format} daemon scrape"] = d.scrape()
            for line in d.log_bytes().splitlines():
                self.assertLess(len(line), MAX_LOG_LINE, line[:200])
        for i, out in enumerate(self.cli_outputs):
            outputs[f"verify --json #{i}"] = out.decode("latin-1")
        for s in self.secrets:
            for where, text in outputs.items():
                leaked = s.leaks(text)
                self.assertEqual(leaked, [],
                                 f"{where} discloses {s.path}: {leaked}\n{text[-4000:]}")
            self.assertEqual(os.stat(s.path).st_atime, OLD_ATIME, f"{s.path} was read")

    def events(self, d, event, **fields):
        return [e for e in d.events()
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

def fill_pipe():
    """A pipe whose buffer is full: the child blocks in its final write to it."""
    r, w = os.pipe()
    flags = fcntl.fcntl(w, fcntl.F_GETFL)
    fcntl.fcntl(w, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(w, b"\0" * 65536)
    fcntl.fcntl(w, fcntl.F_SETFL, flags)
    return r, w


def blocked_writing_stdout(pid):
    """True while `pid` sleeps in write(1, …) (x86-64 and arm64 syscall numbers)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state == "S" and len(fields) > 1 and fields[0] in ("1", "64") and fields[1] == "0x1"


def fd_target(pid, fd):
    """What /proc/PID/fd/FD points at; "" if it was closed between the listing and now."""
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except FileNotFoundError:
        return ""


def held_fds(pid):
    """Every descriptor of process `pid` and what it points at: {fd: fd_target()}."""
    return {int(n): fd_target(pid, n) for n in os.listdir(f"/proc/{pid}/fd")}


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)

def try_proc(action, path):
    """"read", "denied", "gone" (no such process), or the error: `action` on `path` ("open":
    open and read a byte; "list": list the directory)."""
    try:
        if action == "list":
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
        return "read"
    except PermissionError:
        return "denied"
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
    except OSError as e:
        return f"error {e.errno}"


def probe_verifier_children(daemon_pid, deadline):
    """[(child, try_proc of fd/3, of listing fd/)] for the first verifier children of
    `daemon_pid` caught alive within `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        tried = []
        for child in verifier_children(daemon_pid):
            fd3, listing = try_proc("open", f"/proc/{child}/fd/3"), try_proc("list", f"/proc/{child}/fd")
            if "gone" not in (fd3, listing):
                tried.append((child, fd3, listing))
        if tried:
            return tried
    return []


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def verifier_children(pid):
    """The verifier children below daemon `pid`: those the zygote (`__verify-zygote`, the
    daemon's child) forked, which carry its command line, and spawned `__verify-child`s."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        line = cmdline(entry)
        if b"__verify-child" in line and is_descendant(int(entry), pid):
            found.append(int(entry))
        elif b"__verify-zygote" in line:
            parent = parent_of(entry)
            if b"__verify-zygote" in cmdline(parent) and is_descendant(parent, pid):
                found.append(int(entry))
    return found


def verifier_zygotes(pid):
    """The daemon's zygotes: its children running `__verify-zygote`."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit()
            and b"__verify-zygote" in cmdline(e) and parent_of(e) == pid]


def wait_for_child_environ(pid, deadline=DEADLINE):
    """The environment a verifier child of daemon `pid` was started with."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for child in verifier_children(pid):
            try:
                with open(f"/proc/{child}/environ", "rb") as f:
                    return f.read()
            except OSError:
                continue
        time.sleep(0.001)
    raise AssertionError("no verifier child appeared")


def is_descendant(child, ancestor):
    while child > 1:
        try:
            with open(f"/proc/{child}/stat") as f:
                child = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
        if child == ancestor:
            return True
    return False
