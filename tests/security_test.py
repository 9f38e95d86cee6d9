"""End-to-end security tests: an unprivileged adversary attacks a ckptwatch that can read every
file on the host.

Three real users: the daemon's (only CAP_DAC_READ_SEARCH, as the systemd unit runs it), an
adversary who can write a watched directory, and a victim who owns "private" files (mode 0600, in
a 0700 directory) holding a random marker and known bytes. Every attack is written by the
adversary with the real h5py or real syscalls; every test then checks that nothing about the
private file — marker, size, byte values, parameter count, Keras version, class names, and its
name where the name is private — reaches the daemon's log (json and text), a `/metrics` scrape or
`ckptwatch verify --json`, that the private file was never read (its atime, on a strictatime
tmpfs, does not move), and that nothing stalls (a checkpoint written afterwards still gets `ok`).

Needs root (users, mounts, setpriv). Run with Debian's /usr/bin/python3, which has h5py:
`cd tests && /usr/bin/python3 -m unittest -v security_test`.
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


@unittest.skipUnless(ROOT, "needs root")
class ExternalDataTest(SecurityTestCase):
    """HDF5 lets a file point at bytes in another file; the verifier, which could read any file,
    must refuse to follow, at every level, before reading a byte."""

    def watch_full(self):
        self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"))
        self.nonfinite_before = [nonfinite_lines(d.scrape()) for d in self.daemons]

    def expect_external(self, path, names):
        for d in self.daemons:
            v = d.wait_verdict(path)
            self.assertEqual(v["verdict"], EXTERNAL_DATA, v)
            self.assertIn(EXTERNAL_REASON, v["msg"])
            self.assertIn(names, v["msg"])
        proc = self.cli(path, "--level", "full")
        [r] = cli_results(proc)
        self.assertEqual(r["verdict"], EXTERNAL_DATA, r)
        self.assertIn(EXTERNAL_REASON, r["reason"])
        self.assertIn(names, r["reason"])
        self.assertIn(r.get("nonfinite"), (None, 0), r)
        for level in ("header", "structure"):  # whatever they conclude, they read no other file
            self.cli(path, "--level", level)
        self.barrier()
        self.assertEqual([nonfinite_lines(d.scrape()) for d in self.daemons],
                         self.nonfinite_before)
        self.assert_nothing_leaked()

    def test_external_raw_storage_pointing_at_a_private_file_is_not_read(self):
        """Attacks the full-level data read: a dataset whose raw data is declared to live in the
        victim's private file (H5Pset_external), so a NaN scan would read it with the daemon's
        CAP_DAC_READ_SEARCH and report its NaN count."""
        raw = self.private_raw()
        self.watch_full()

        def attack(target, staging, final):
            writers.write_full_model(staging)
            with h5py.File(staging, "r+") as f:
                f["model_weights/dense_2"].create_dataset(
                    "dense_2/stolen:0", shape=(1 << 18,), dtype="<f4",
                    external=[(target, 0, h5py.h5f.UNLIMITED)])
            os.rename(staging, final)

        final = os.path.join(self.watch, "external.h5")
        adversary(attack, raw.path, os.path.join(self.watch, ".external.tmp"), final)
        self.expect_external(final, "dense_2/stolen:0")

    def test_virtual_dataset_over_a_private_checkpoint_is_not_read(self):
        """Attacks the full-level data read through a virtual dataset (VDS) mapped onto a
        private checkpoint's weights."""
        victim = self.private_checkpoint()
        self.watch_full()

        def attack(target, staging, final):
            writers.write_full_model(staging)
            layout = h5py.VirtualLayout(shape=(1000,), dtype="<f4")
            layout[:] = h5py.VirtualSource(target, "model_weights/blob/blob/kernel:0",
                                           shape=(1000,))
            with h5py.File(staging, "r+") as f:
                f["model_weights/dense_2"].create_virtual_dataset("dense_2/view:0", layout,
                                                                  fillvalue=0)
            os.rename(staging, final)

        final = os.path.join(self.watch, "virtual.h5")
        adversary(attack, victim.path, os.path.join(self.watch, ".virtual.tmp"), final)
        self.expect_external(final, "dense_2/view:0")

    def test_external_link_to_a_private_checkpoint_is_not_followed(self):
        """Attacks the structure walk: an external link whose target is a private checkpoint,
        whose datasets, Keras version and classes a walker that follows links would report."""
        victim = self.private_checkpoint()
        self.watch_full()

        def attack(target, staging, final):
            writers.write_full_model(staging)
            with h5py.File(staging, "r+") as f:
                f["model_weights/dense_2/linked"] = h5py.ExternalLink(target, "/model_weights")
            os.rename(staging, final)

        final = os.path.join(self.watch, "link.h5")
        adversary(attack, victim.path, os.path.join(self.watch, ".link.tmp"), final)
        self.expect_external(final, "dense_2/linked")

    def test_external_raw_storage_inside_a_keras3_zip_is_not_read(self):
        """Attacks the .keras path: model.weights.h5 inside a Keras 3 zip with a dataset stored
        in the victim's private file."""
        raw = self.private_raw()
        self.watch_full()

        def attack(target, staging, final):
            layers = writers.dense_stack()
            buffer = io.BytesIO()
            with h5py.File(buffer, "w") as f:
                for layer in layers:
                    group = f.create_group(f"layers/{layer.name}/vars")
                    for i, (_, value) in enumerate(layer.weights):
                        group.create_dataset(str(i), data=value)
                f["layers/dense_2/vars"].create_dataset(
                    "stolen", shape=(1 << 18,), dtype="<f4",
                    external=[(target, 0, h5py.h5f.UNLIMITED)])
                f.create_group("optimizer/vars").create_dataset("0", data=np.int64(100))
                f.create_group("vars")
            with zipfile.ZipFile(staging, "w") as zf:
                zf.writestr("metadata.json", json.dumps({"keras_version": writers.KERAS3_VERSION,
                                                         "date_saved": "2024-05-01@12:00:00"}))
                zf.writestr("config.json", json.dumps(writers.keras3_config(layers)))
                zf.writestr("model.weights.h5", buffer.getvalue())
            os.rename(staging, final)

        final = os.path.join(self.watch, "external.keras")
        adversary(attack, raw.path, os.path.join(self.watch, ".external.tmp"), final)
        self.expect_external(final, "dense_2/vars/stolen")


@unittest.skipUnless(ROOT, "needs root")
class SymlinkTest(SecurityTestCase):
    """A watched directory is the adversary's: any name in it may be a symlink to anywhere."""

    def attack_with_link(self, make_link):
        victim = self.private_checkpoint()
        self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"))
        link = os.path.join(self.watch, "ckpt.h5")
        adversary(make_link, victim.path, link)
        for d in self.daemons:
            d.wait_event(lambda e: e.get("event") == SYMLINK_OUTSIDE and e.get("path") == link,
                         deadline=PROMPT, what=f"{SYMLINK_OUTSIDE} for {link}")
        self.barrier()
        for d in self.daemons:
            warnings = self.events(d, SYMLINK_OUTSIDE)
            self.assertEqual(len(warnings), 1, warnings)
            self.assertEqual(warnings[0]["watch"], "adv")
            self.assertEqual(warnings[0].get("level"), "warn", warnings[0])
            self.assertEqual(d.verdicts(link), [])
        self.assert_nothing_leaked()

    def test_checkpoint_name_symlinked_to_a_private_file_is_not_opened(self):
        """Attacks the open: ckpt.h5 -> the victim's private checkpoint, created in place."""
        self.attack_with_link(os.symlink)

    def test_symlink_renamed_into_place_is_not_opened(self):
        """Attacks the open via IN_MOVED_TO: a symlink made under a temp name, then renamed
        over the checkpoint name, as an atomic save does."""
        def make(target, link):
            os.symlink(target, link + ".tmp")
            os.rename(link + ".tmp", link)
        self.attack_with_link(make)

    def test_symlink_to_a_checkpoint_inside_the_watch_is_quiet(self):
        """Attacks nothing; guards the legitimate layout: Lightning's last.ckpt -> epoch=3.h5 gets
        no verdict or error of its own, the target gets its normal ok."""
        self.start_daemons(yaml_watch("adv", self.watch, settle="100ms",
                                      patterns=["*.h5", "*.ckpt"]))
        target = os.path.join(self.watch, "epoch=3.h5")
        link = os.path.join(self.watch, "last.ckpt")

        def save():
            writers.write_full_model(target)
            os.symlink("epoch=3.h5", link + ".tmp")
            os.rename(link + ".tmp", link)

        adversary(save)
        for d in self.daemons:
            self.assertEqual(d.wait_verdict(target)["verdict"], "ok")
        self.barrier()
        for d in self.daemons:
            self.assertEqual(d.verdicts(link), [])
            self.assertEqual([e for e in d.events() if e.get("level") in ("warn", "error")
                              and e.get("event") != "problem"], [])

    def test_hugging_face_snapshot_symlinks_into_blobs_are_quiet(self):
        """Guards the legitimate Hugging Face cache layout under a recursive watch:
        snapshots/<rev>/model.h5 -> ../../blobs/<sha>; the blob is verified, the link is not.
        One repo is in place at start (the initial scan), one is downloaded while watched."""
        def download(repo):
            sha = secrets.token_hex(32)
            blob = os.path.join(repo, "blobs", sha)
            link = os.path.join(repo, "snapshots", secrets.token_hex(20), "model.h5")
            os.makedirs(os.path.dirname(blob))
            os.makedirs(os.path.dirname(link))
            writers.write_full_model(blob + ".incomplete")
            os.rename(blob + ".incomplete", blob)
            os.symlink(f"../../blobs/{sha}", link)
            return blob, link

        # Only the newest file present at start is verified; the links there must not be.
        before = adversary(download, os.path.join(self.watch, "models--org--before"))
        # Blobs are named by their sha256 alone; the .incomplete download is not a checkpoint.
        self.start_daemons(yaml_watch("hf", self.watch, recursive=True, settle="100ms",
                                      patterns=["*.h5", "?" * 64]))
        blob, link = adversary(download, os.path.join(self.watch, "models--org--after"))
        for d in self.daemons:
            self.assertEqual(d.wait_verdict(blob)["verdict"], "ok")
        self.barrier()
        for d in self.daemons:
            self.assertEqual(d.verdicts(link) + d.verdicts(before[1]), [])
            self.assertEqual([e for e in d.events() if e.get("level") in ("warn", "error")
                              and e.get("event") != "problem"], [])

    def test_dangling_symlink_inside_the_watch_warns_once(self):
        """Attacks error handling: ckpt.h5 -> a missing file inside the root is one warning,
        not an error verdict, a retry loop or a crash."""
        self.start_daemons(yaml_watch("adv", self.watch, settle="100ms"))
        link = os.path.join(self.watch, "ckpt.h5")
        adversary(os.symlink, "gone.h5", link)
        for d in self.daemons:
            d.wait_event(lambda e: e.get("event") == SYMLINK_DANGLING and e.get("path") == link,
                         deadline=PROMPT, what=SYMLINK_DANGLING)
        self.barrier()
        for d in self.daemons:
            self.assertEqual(len(self.events(d, SYMLINK_DANGLING)), 1)
            self.assertEqual(d.verdicts(link), [])

    def private_dir_with_checkpoint(self):
        """A second private directory with a checkpoint under a guessable name (a.h5) and one
        under a private name."""
        d = os.path.join(self.private, "run")
        os.mkdir(d, 0o700)
        os.chown(d, VICTIM.pw_uid, VICTIM.pw_gid)
        self.private_checkpoint("a.h5", directory=d)
        self.private_checkpoint(f"secret_{secrets.token_hex(6)}.h5", private_name=True,
                                directory=d)
        return d

    def test_directory_swapped_for_symlink_to_private_directory_is_not_entered(self):
        """Attacks the recursive walk with a TOCTOU swap: run1/ gets a.h5, then
        renameat2(RENAME_EXCHANGE) atomically swaps run1/ with a symlink to a private directory
        holding its own a.h5 before the settle period ends."""
        target = self.private_dir_with_checkpoint()
        self.start_daemons(yaml_watch("adv", self.watch, recursive=True, settle="300ms"))

        def attack(target, watch):
            run1 = os.path.join(watch, "run1")
            os.mkdir(run1)
            writers.write_full_model(os.path.join(run1, "a.h5"))
            os.symlink(target, os.path.join(watch, "swap"))
            libc = ctypes.CDLL(None, use_errno=True)
            AT_FDCWD, RENAME_EXCHANGE = -100, 2
            if libc.renameat2(AT_FDCWD, os.path.join(watch, "swap").encode(), AT_FDCWD,
                              run1.encode(), RENAME_EXCHANGE) != 0:
                raise OSError(ctypes.get_errno(), "renameat2")

        adversary(attack, target, self.watch)
        self.barrier()
        self.assert_nothing_leaked()

    def test_new_subdirectory_symlinked_to_private_directory_is_not_entered(self):
        """Attacks the recursive walk: a new subdirectory that is a symlink to a private
        directory."""
        target = self.private_dir_with_checkpoint()
        self.start_daemons(yaml_watch("adv", self.watch, recursive=True, settle="100ms"))
        adversary(os.symlink, target, os.path.join(self.watch, "sub"))
        self.barrier()
        self.assert_nothing_leaked()

    def test_missing_watch_root_created_as_symlink_to_private_directory_is_not_watched(self):
        """Attacks the missing-directory path: a configured root that does not exist yet is
        created by the adversary as a symlink to a private directory."""
        target = self.private_dir_with_checkpoint()
        root = os.path.join(self.watch, "run42")
        barrier_dir = os.path.join(self.base, "other")
        os.mkdir(barrier_dir)
        os.chown(barrier_dir, ADVERSARY.pw_uid, ADVERSARY.pw_gid)
        watches = "\n".join([yaml_watch("run42", root, recursive=True, settle="100ms"),
                             yaml_watch("other", barrier_dir, settle="100ms")])
        self.start_daemons(watches)
        for d in self.daemons:
            d.wait_event(lambda e: e.get("event") == "watch_missing" and e.get("watch") == "run42")
        adversary(os.symlink, target, root)
        with contextlib.suppress(AssertionError):  # what it says, if anything, is not pinned
            for d in self.daemons:
                d.wait_event(lambda e: e.get("watch") == "run42" and e.get("event") not in
                             ("watch_missing", "problem", "watch_started"), deadline=PROMPT)
        self.barrier(barrier_dir)
        for d in self.daemons:
            self.assertEqual([v for v in d.verdicts() if v["path"].startswith(root)], [])
        self.assert_nothing_leaked()


@unittest.skipUnless(ROOT, "needs root")
class NonRegularFileTest(SecurityTestCase):
    """Names that match *.h5 but are FIFOs, sockets or directories: opening a FIFO blocks, so a
    verifier that opens first and looks second holds a slot until verify.timeout (5m)."""

    def expect_not_regular(self, names):
        for name in names:
            for d in self.daemons:
                v = d.wait_verdict(os.path.join(self.watch, name), deadline=PROMPT)
                self.assertEqual(v["verdict"], NOT_REGULAR, v)
        self.barrier(deadline=PROMPT)

    def test_fifos_and_sockets_are_not_regular_and_stall_nothing(self):
        """Attacks the verifier slots (max_parallel 2, verify.timeout 5m): two FIFOs, each
        opened for writing and closed so IN_CLOSE_WRITE fires, and a socket renamed into place
        (IN_MOVED_TO); a checkpoint written next still gets ok promptly."""
        self.start_daemons(yaml_watch("adv", self.watch, settle="100ms"))

        def attack(watch):
            for name in ("x.h5", "y.h5"):
                os.mkfifo(os.path.join(watch, name))
                os.close(os.open(os.path.join(watch, name), os.O_RDWR))
            s = socket.socket(socket.AF_UNIX)
            s.bind(os.path.join(watch, ".s.tmp"))  # the socket file outlives the socket
            s.close()
            os.rename(os.path.join(watch, ".s.tmp"), os.path.join(watch, "s.h5"))

        adversary(attack, self.watch)
        self.expect_not_regular(["x.h5", "y.h5", "s.h5"])

    def test_directory_named_like_a_checkpoint_is_not_regular(self):
        """Attacks a non-recursive watch with a directory d.h5 renamed into place."""
        self.start_daemons(yaml_watch("adv", self.watch, settle="100ms"))

        def attack(watch):
            os.mkdir(os.path.join(watch, ".d.tmp"))
            os.rename(os.path.join(watch, ".d.tmp"), os.path.join(watch, "d.h5"))

        adversary(attack, self.watch)
        self.expect_not_regular(["d.h5"])

    def test_cli_on_a_fifo_returns_not_regular_at_once(self):
        """Attacks `ckptwatch verify`: a FIFO without a writer blocks open(2) forever."""
        fifo = os.path.join(self.watch, "fifo.h5")
        adversary(os.mkfifo, fifo)
        for level in ("header", "structure", "full"):
            started = time.monotonic()
            [r] = cli_results(self.cli(fifo, "--level", level, timeout=PROMPT))
            self.assertEqual(r["verdict"], NOT_REGULAR, (level, r))
            self.assertLess(time.monotonic() - started, PROMPT)

    def test_cli_timeout_is_honoured_at_every_level(self):
        """Attacks `ckptwatch verify --timeout`: a FIFO whose writer holds it open and never
        writes makes any read(2) block; every level must end by the timeout."""
        fifo = os.path.join(self.watch, "held.h5")
        adversary(os.mkfifo, fifo)
        holder = os.open(fifo, os.O_RDWR)  # a writer that never writes
        self.addCleanup(os.close, holder)
        for level in ("header", "structure", "full"):
            started = time.monotonic()
            [r] = cli_results(self.cli(fifo, "--level", level, "--timeout", "2", timeout=12))
            self.assertIn(r["verdict"], (NOT_REGULAR, "timeout"), (level, r))
            self.assertLess(time.monotonic() - started, 2 + PROMPT, level)


@unittest.skipUnless(ROOT, "needs root")
class NonUtf8Test(SecurityTestCase):
    """File names and HDF5 strings are bytes; logs, JSON and metrics are UTF-8."""

    def test_checkpoint_with_a_non_utf8_name_is_ok_and_reported_as_valid_json(self):
        """Attacks the log and JSON encoders with a file name that is not UTF-8."""
        self.start_daemons(yaml_watch("adv", self.watch, settle="100ms"))
        name = os.path.join(os.fsencode(self.watch), b"ok_\xff.h5")
        adversary(lambda: writers.write_full_model(name))
        for d in self.daemons:
            v = d.verdict_matching(lambda e: "ok_" in e.get("path", ""), what="verdict for ok_")
            self.assertEqual(v["verdict"], "ok", v)
        for line in self.daemons[0].log_bytes().splitlines():
            json.loads(line.decode("utf-8"))  # strict UTF-8 JSON, every line
        proc = cli_verify(os.fsdecode(name))
        [r] = cli_results(proc)
        self.assertEqual(r["verdict"], "ok", r)
        self.barrier()

    def test_invalid_utf8_in_keras_attributes_does_not_crash_the_verifier(self):
        """Attacks the Keras metadata parser: b'\\xff\\xfe' in layer_names and inside a class_name
        of model_config (fixed-length bytes, as Keras 2 wrote them)."""
        self.start_daemons(yaml_watch("adv", self.watch, settle="100ms"))
        final = os.path.join(self.watch, "bad_utf8.h5")

        def attack(staging, final):
            writers.write_custom_layer_model(staging, class_name="BadXXLayer")
            with h5py.File(staging, "r+") as f:
                config = bytes(f.attrs["model_config"]).replace(b"XX", b"\xff\xfe")
                f.attrs["model_config"] = np.bytes_(config)
                names = list(f["model_weights"].attrs["layer_names"]) + [b"\xff\xfe"]
                f["model_weights"].attrs["layer_names"] = np.array(names)
                f["model_weights"].create_group(b"\xff\xfe").attrs["weight_names"] = \
                    np.array([], dtype="S1")
            os.rename(staging, final)

        adversary(attack, os.path.join(self.watch, ".bad.tmp"), final)
        for d in self.daemons:
            self.assertNotEqual(d.wait_verdict(final)["verdict"], VERIFIER_CRASHED)
        for level in ("structure", "full"):
            [r] = cli_results(cli_verify(final, "--level", level))
            self.assertNotEqual(r["verdict"], VERIFIER_CRASHED, r)
        self.barrier()


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


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


@unittest.skipUnless(ROOT, "needs root")
class VerifierChildTest(SecurityTestCase):
    """The verifier child parses hostile files with libhdf5: it must hold nothing worth
    stealing — no capability, no way to gain one, a syscall filter, no stray descriptors, none
    of the parent's environment."""

    def run_child_blocked(self, checkpoint, inspect):
        """Starts `ckptwatch __verify-child` as the daemon's user with CAP_DAC_READ_SEARCH, the
        checkpoint on fd 3 and a full stdout pipe; calls inspect(pid) while it is blocked in
        its final write, then drains it and returns its JSON line."""
        fd = os.open(checkpoint, os.O_RDONLY | os.O_CLOEXEC)
        if fd <= 3:  # dup2(3, 3) would leave it close-on-exec
            fd, low = os.dup(fd), fd
            os.close(low)
        r, w = fill_pipe()
        stderr = os.path.join(self.base, "child.stderr")
        size = os.path.getsize(checkpoint)
        with open(stderr, "wb") as err:
            child = subprocess.Popen(
                [*as_daemon_user(), BIN, "__verify-child", "--level", "full",
                 "--full-max-bytes", str(8 << 30), "--memory-budget", str(1 << 30),
                 "--timeout", "60", "--memory-bytes", str(2 << 30), "--", checkpoint],
                stdin=subprocess.DEVNULL, stdout=w, stderr=err, close_fds=False,
                preexec_fn=lambda: os.dup2(fd, 3), env=dict(os.environ,
                                                           CKPTWATCH_SENTINEL="secret"))
        os.close(w)
        os.close(fd)
        self.addCleanup(lambda: child.poll() is None and (child.kill(), child.wait()))
        end = time.monotonic() + DEADLINE
        while True:
            if blocked_writing_stdout(child.pid):
                break
            if child.poll() is not None:
                os.close(r)
                with open(stderr) as f:
                    self.fail(f"child exited {child.returncode} before its final write "
                              f"({size} bytes): {f.read()}")
            self.assertLess(time.monotonic(), end, "child never blocked in its final write")
            time.sleep(0.005)
        try:
            inspect(child.pid)
        finally:
            out = b""
            while True:
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    break
                out += chunk
            os.close(r)
            child.wait(timeout=DEADLINE)
        return json.loads(out.replace(b"\0", b"").decode().splitlines()[-1])

    def test_verifier_child_runs_without_capabilities_under_seccomp(self):
        """Attacks the child's privileges: a libhdf5 exploit in it must not inherit the parent's
        CAP_DAC_READ_SEARCH, gain privileges (NoNewPrivs), make arbitrary syscalls (Seccomp 2)
        or reach descriptors other than 0-3."""
        ckpt = os.path.join(self.watch, "model.h5")
        adversary(writers.write_full_model, ckpt)
        seen = {}

        def inspect(pid):
            seen["status"] = proc_status(pid)
            seen["fds"] = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))

        result = self.run_child_blocked(ckpt, inspect)
        status = seen["status"]
        actual = {key: status.get(key, "absent").strip()
                  for key in ("CapEff", "CapPrm", "CapAmb", "NoNewPrivs", "Seccomp")}
        actual["fds"] = seen["fds"]
        actual["verdict"] = result["verdict"]
        # A sanitizer build (bench/asan-tests.sh, which sets ASAN_OPTIONS) installs no syscall
        # filter in the child: the sanitizer runtime opens its log and starts a symbolizer when it
        # reports (docs/security.md). Every release-build run checks the filter.
        seccomp = "0" if "ASAN_OPTIONS" in os.environ else "2"
        self.assertEqual(actual, {"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapAmb": "0" * 16,
                                  "NoNewPrivs": "1", "Seccomp": seccomp, "fds": [0, 1, 2, 3],
                                  "verdict": "ok"})

    def spawned_child_environments(self, argv, env):
        """Every execve of a verifier (`__verify-warm`, `__verify-child`) under argv (traced with
        strace -f), as env lists."""
        trace = os.path.join(self.base, "strace.out")
        subprocess.run(["strace", "-f", "-qq", "-v", "-s", "4096", "-e", "trace=execve,execveat",
                        "-o", trace, *argv], env=env, capture_output=True, timeout=60)
        with open(trace) as f:
            return [line for line in f if ("__verify-child" in line or "__verify-warm" in line)
                    and "execve" in line]

    def test_cli_verifier_child_gets_none_of_the_parents_environment(self):
        """Attacks the child's environment: a secret in the environment of `ckptwatch verify`
        (a cloud key, a token) must not be handed to the process that parses hostile files."""
        ckpt = os.path.join(self.watch, "model.h5")
        adversary(writers.write_full_model, ckpt)
        env = dict(os.environ, CKPTWATCH_SENTINEL="secret")
        execs = self.spawned_child_environments(
            [*as_daemon_user(), BIN, "verify", "--level", "full", ckpt], env)
        self.assertTrue(execs, "no __verify-warm (or __verify-child) execve traced")
        for line in execs:
            self.assertNotIn("CKPTWATCH_SENTINEL", line)

    def test_daemon_verifier_child_gets_none_of_the_parents_environment(self):
        """Attacks the child's environment as the daemon builds it: the daemon's children are
        caught alive while they read a large file."""
        big = os.path.join(self.watch, "big.h5")
        adversary(writers.write_sized_model, big + ".tmp", 96 << 20)
        self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"),
                           formats=("json",), env={"CKPTWATCH_SENTINEL": "secret"})
        d = self.daemons[0]
        self.barrier()
        os.rename(big + ".tmp", big)
        environ = wait_for_child_environ(d.proc.pid)
        self.assertNotIn(b"CKPTWATCH_SENTINEL", environ)
        d.wait_verdict(big)

    def test_daemon_verifier_child_is_confined_before_it_reads_a_byte(self):
        """Attacks the pre-forked verifier: a warm verifier the daemon's zygote forks for an
        owner must hold what a spawned `__verify-child` holds — no capability, NoNewPrivs, the
        syscall filter, descriptors 0-3 — and its channel (4), from before its first read
        (sampled with /proc/PID/io: every sample that has read bytes must show all of it); after
        the verdict it holds no descriptor of the file (only /dev/null and its channel). The
        zygote itself holds no capability and no descriptor but its socket and its signalfd."""
        big = os.path.join(self.watch, "big.h5")
        adversary(writers.write_sized_model, big + ".tmp", 96 << 20)
        [d] = self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"),
                                 formats=("json",))
        self.barrier()
        zygotes = [p for p in verifier_zygotes(d.proc.pid)]
        self.assertEqual(len(zygotes), 1, "one zygote per daemon")
        zygote = proc_status(zygotes[0])
        self.assertEqual({k: zygote[k].strip() for k in ("CapEff", "CapPrm", "CapAmb", "NoNewPrivs")},
                         {"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapAmb": "0" * 16,
                          "NoNewPrivs": "1"})
        fd_dir = f"/proc/{zygotes[0]}/fd"
        held = {int(n): os.readlink(os.path.join(fd_dir, n)) for n in os.listdir(fd_dir)}
        self.assertEqual(sorted(held), [0, 1, 2, 3, 4], held)  # stdio, its socket, its SIGCHLDs
        self.assertTrue(held[3].startswith("socket:"), held)
        self.assertEqual(held[4], "anon_inode:[signalfd]", held)
        os.rename(big + ".tmp", big)
        samples = []
        end = time.monotonic() + DEADLINE
        # Until a verifier is caught with a file (descriptor 3): the warm verifier that gave the
        # barrier its verdict is sampled too, idle, and must show the same confinement.
        while not any(3 in fds for _, fds in samples) and time.monotonic() < end:
            for child in verifier_children(d.proc.pid):
                while True:
                    try:
                        with open(f"/proc/{child}/io") as f:
                            read = int(dict(l.split(": ") for l in f.read().splitlines())["rchar"])
                        status = proc_status(child)
                        fds = {int(n): fd_target(child, n)
                               for n in os.listdir(f"/proc/{child}/fd")}
                        fds = {n: t for n, t in fds.items() if t}
                    except (OSError, KeyError, ValueError):
                        break  # gone
                    if status.get("State", "").startswith(("Z", "X")):
                        break
                    if read > 0:
                        samples.append(({k: status.get(k, "absent").strip() for k in
                                         ("CapEff", "CapPrm", "CapAmb", "NoNewPrivs", "Seccomp")}, fds))
                    if 3 not in fds:
                        break  # between files (a warm verifier lives on): look again
            time.sleep(0.0005)
        self.assertTrue(samples, "no verifier child was caught reading")
        seccomp = "0" if "ASAN_OPTIONS" in os.environ else "2"
        # 0 /dev/null, 1-2 the job's pipes, 3 the file, 4 the channel to the daemon (a warm
        # verifier takes the next file of the same owner from it: docs/security.md).
        expected = ({"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapAmb": "0" * 16, "NoNewPrivs": "1",
                     "Seccomp": seccomp}, [0, 1, 2, 3, 4])
        for status, fds in samples:
            self.assertEqual(status, expected[0])
            if "ASAN_OPTIONS" in os.environ:
                # LeakSanitizer's check at exit opens /proc/<pid>/task and /proc/<pid>/maps in
                # the child (CI caught one there: fds 4 and 5); that is the sanitizer runtime,
                # not a descriptor the verifier was handed.
                fds = {n: t for n, t in fds.items() if not t.startswith("/proc/")}
            # A child caught while exiting has closed some already; never holds another.
            self.assertLessEqual(set(fds), set(expected[1]), fds)
        self.assertIn(expected[1], [sorted(fds) for _, fds in samples])
        self.assertTrue(all(fds.get(4, "socket:").startswith("socket:") for _, fds in samples))
        self.assertEqual(d.wait_verdict(big)["verdict"], "ok")
        # The verdict is out: the warm verifier still lives, and holds nothing of the file.
        [warm] = verifier_children(d.proc.pid)
        held = {int(n): fd_target(warm, n) for n in os.listdir(f"/proc/{warm}/fd")}
        self.assertEqual(sorted(held), [0, 4], held)
        self.assertEqual(held[0], "/dev/null", held)
        self.assertTrue(held[4].startswith("socket:"), held)

    def test_zygote_and_children_are_closed_to_their_own_uid(self):
        """Attacks the verifier processes through /proc as the daemon's own uid (what an
        exploited child, or anything else running as that user, is): a child holds a checkpoint
        at descriptor 3 the uid itself perhaps may not read, the zygote the memory every child
        starts from. Both are undumpable, so /proc/<child>/fd/3 and /proc/<zygote>/mem are
        refused; the zygote runs under its own syscall filter (Seccomp: 2)."""
        big = os.path.join(self.watch, "big.h5")
        adversary(writers.write_sized_model, big + ".tmp", 96 << 20)
        [d] = self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"),
                                 formats=("json",))
        self.barrier()
        [zygote] = verifier_zygotes(d.proc.pid)
        seccomp = "0" if "ASAN_OPTIONS" in os.environ else "2"
        self.assertEqual(proc_status(zygote)["Seccomp"].strip(), seccomp)
        self.assertEqual(as_user(DAEMON, try_proc, "open", f"/proc/{zygote}/mem"), "denied")
        self.assertEqual(as_user(DAEMON, try_proc, "open", f"/proc/{zygote}/environ"), "denied")
        # One process of the daemon's uid watches for a child and tries it at once (a fork per
        # try would miss children that live a fraction of a second).
        tried = {}
        probe = threading.Thread(target=lambda: tried.update(
            result=as_user(DAEMON, probe_verifier_children, d.proc.pid, DEADLINE)))
        probe.start()
        os.rename(big + ".tmp", big)
        probe.join()
        self.assertTrue(tried["result"], "no verifier child was caught alive")
        for child, fd3, listing in tried["result"]:
            self.assertEqual((fd3, listing), ("denied", "denied"), f"child {child}")
        self.assertEqual(d.wait_verdict(big)["verdict"], "ok")


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


@unittest.skipUnless(ROOT, "needs root")
class HardLinkTest(SecurityTestCase):
    """With fs.protected_hardlinks=0 the adversary can hard-link the victim's 0600 checkpoint
    (in a directory they may search) into the watched directory they own. The daemon, which
    reads every file, must not verify that name: its verdict names no contents."""

    def setUp(self):
        super().setUp()
        with open("/proc/sys/fs/protected_hardlinks") as f:
            saved = f.read().strip()
        subprocess.run(["sysctl", "-q", "fs.protected_hardlinks=0"], check=True)
        self.addCleanup(subprocess.run, ["sysctl", "-q", f"fs.protected_hardlinks={saved}"], check=True)
        self.shared = os.path.join(self.base, "victim-shared")
        os.mkdir(self.shared, 0o755)
        os.chown(self.shared, VICTIM.pw_uid, VICTIM.pw_gid)

    def test_a_hard_link_to_a_private_checkpoint_discloses_nothing(self):
        secret = self.private_checkpoint(directory=self.shared)
        public = os.path.join(self.shared, "public.h5")
        as_user(VICTIM, lambda: (writers.write_full_model(public), os.chmod(public, 0o644)))
        self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"))
        for d in self.daemons:
            [warning] = self.events(d, "hardlinks_unprotected")
            self.assertEqual(warning.get("level"), "warn", warning)
        stolen = os.path.join(self.watch, "stolen.h5")
        # Linked under a temporary name and renamed into place, as a save is.
        adversary(lambda: (os.link(secret.path, stolen + ".tmp"), os.rename(stolen + ".tmp", stolen)))
        self.assertEqual(os.stat(stolen).st_nlink, 2)
        for d in self.daemons:
            v = d.wait_verdict(stolen)
            self.assertEqual(v["verdict"], "permission_denied", v)
            self.assertIn("hard link", v["msg"])
            self.assertIn("withheld", v["msg"])
        # A link to a file everyone may read discloses nothing: verified as any file.
        linked = os.path.join(self.watch, "linked_public.h5")
        adversary(lambda: (os.link(public, linked + ".tmp"), os.rename(linked + ".tmp", linked)))
        for d in self.daemons:
            self.assertEqual(d.wait_verdict(linked)["verdict"], "ok")
        self.barrier()
        self.assert_nothing_leaked()


@unittest.skipUnless(ROOT, "needs root")
class MetricsPortTest(SecurityTestCase):
    """Anyone on the host can connect to 127.0.0.1:<port>; Prometheus must still get through."""

    def scrape_within(self, d, seconds=3.0):
        started = time.monotonic()
        try:
            text = d.scrape(timeout=seconds)
        except OSError as e:
            self.fail(f"scrape failed after {time.monotonic() - started:.1f}s: {e!r}")
        self.assertLess(time.monotonic() - started, seconds)
        self.assertIn("ckptwatch_build_info", text)

    def test_idle_connections_do_not_stall_a_scrape(self):
        """Attacks the HTTP server's accept/read loop with 2, then 50, connections that never
        send a byte."""
        [d] = self.start_daemons(yaml_watch("adv", self.watch), formats=("json",))
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        for count in (2, 50):
            while len(held) < count:
                held.append(socket.create_connection(("127.0.0.1", d.port), timeout=5))
            self.scrape_within(d)
        self.barrier()

    def test_slowloris_does_not_stall_a_scrape(self):
        """Attacks the HTTP server with a request dribbled a byte at a time."""
        [d] = self.start_daemons(yaml_watch("adv", self.watch), formats=("json",))
        stop = threading.Event()

        def dribble():
            with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
                request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-a: b\r\n" * 1000
                for byte in request:
                    if stop.wait(0.05):
                        return
                    try:
                        s.send(bytes([byte]))
                    except OSError:
                        return  # the server hung up on us: fine

        threads = [threading.Thread(target=dribble, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        self.addCleanup(lambda: (stop.set(), [t.join() for t in threads]))
        end = time.monotonic() + 3
        while time.monotonic() < end:  # the dribblers are mid-request all along
            self.scrape_within(d)
        self.barrier()


@unittest.skipUnless(ROOT, "needs root")
class FloodTest(SecurityTestCase):
    """Bounds on what an adversary's metadata can make the daemon emit."""

    def test_megabytes_of_custom_class_names_give_a_verdict_and_bounded_log_lines(self):
        """Attacks the log and metric output with a model_config holding ~3 MiB of custom
        class names (variable-length string attribute, so HDF5's 64 KiB header limit does not
        apply)."""
        self.start_daemons(yaml_watch("adv", self.watch, settle="100ms"))
        final = os.path.join(self.watch, "flood.h5")

        def attack(staging, final):
            writers.write_full_model(staging)
            layers = [{"class_name": f"Flood{i:06d}_" + "x" * 80, "config": {"name": f"l{i}"}}
                      for i in range(30000)]
            config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
            with h5py.File(staging, "r+") as f:
                f.attrs["model_config"] = json.dumps(config)
            os.rename(staging, final)
            return os.path.getsize(final)

        size = adversary(attack, os.path.join(self.watch, ".flood.tmp"), final)
        self.assertGreater(size, 3 << 20)
        for d in self.daemons:
            self.assertNotEqual(d.wait_verdict(final)["verdict"], VERIFIER_CRASHED)
        [r] = cli_results(cli_verify(final))
        self.assertNotEqual(r["verdict"], VERIFIER_CRASHED, r)
        self.barrier()
        for d in self.daemons:
            for line in d.log_bytes().splitlines():
                self.assertLess(len(line), MAX_LOG_LINE, line[:200])
            self.assertLess(len(d.scrape()), 1 << 20)


if __name__ == "__main__":
    unittest.main()
