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


import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from security_harness import *  # noqa: E402,F401,F403  (the users, helpers and SecurityTestCase)


def setUpModule():
    use_users(globals())  # noqa: F405



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
