"""End-to-end tests of `ckptwatch verify`: the real binary on files written by the real h5py.

Environment: CKPTWATCH_BIN (default ../build/ckptwatch), CKPTWATCH_CORPUS (default
../../shared/corpus), both relative to this directory. Run with Debian's /usr/bin/python3, which
has h5py: `cd tests && /usr/bin/python3 -m unittest -v verify_test`.
"""

import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import writers  # noqa: E402
from evidence import requires  # noqa: E402

BIN = os.path.abspath(
    os.environ.get("CKPTWATCH_BIN") or os.path.join(HERE, "..", "build", "ckptwatch")
)
CORPUS = os.path.abspath(
    os.environ.get("CKPTWATCH_CORPUS") or os.path.join(HERE, "..", "..", "shared", "corpus")
)

JSON_KEYS = {
    "path", "verdict", "ok", "reason", "level", "format", "bytes", "expected_bytes",
    "superblock_version", "datasets", "parameters", "nonfinite", "keras", "pickle_globals", "load",
    "elapsed_ms",
}
KERAS_KEYS = {
    "version", "backend", "kind", "custom_classes", "builtin_classes", "modules", "lambdas",
    "lambda_bytecode", "keras1_arguments",
}
VERDICTS = {
    "ok", "not_found", "permission_denied", "empty", "not_checkpoint", "truncated", "in_progress",
    "corrupt", "nonfinite", "timeout", "verifier_crashed", "not_regular", "external_data",
}
LEVELS = ("header", "structure", "full")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def setUpModule():
    if not os.access(BIN, os.X_OK):
        raise RuntimeError(f"ckptwatch binary not found at {BIN}; build it or set CKPTWATCH_BIN")


def child_env():
    """The environment of every child: HDF5's own locking left at its default, so that the
    binary must turn it off itself and the writers lock as Keras's h5py does."""
    env = dict(os.environ)
    env.pop("HDF5_USE_FILE_LOCKING", None)
    return env


def run(args, timeout=60, prefix=()):
    return subprocess.run(
        [*prefix, BIN, *args], capture_output=True, text=True, timeout=timeout, env=child_env()
    )


def describe(proc):
    return (
        f"command: {' '.join(proc.args)}\nexit: {proc.returncode}\n"
        f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
    )


def parse_json_lines(proc):
    """Every stdout line of `proc` as a JSON object (fails the caller with context otherwise)."""
    results = []
    for line in proc.stdout.splitlines():
        try:
            results.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"stdout line is not JSON ({e}): {line!r}\n{describe(proc)}")
    return results


def project_version():
    with open(os.path.join(HERE, "..", "CMakeLists.txt")) as f:
        return re.search(r"project\(ckptwatch VERSION ([0-9.]+)", f.read()).group(1)


class LineReader:
    """Lines of a child's stdout, read on a thread, so a test can wait for one with a deadline."""

    def __init__(self, stream):
        self._lines = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout):
        """The next line; None at end of stream; raises queue.Empty after `timeout` seconds."""
        return self._lines.get(timeout=timeout)


def start_writer(*args):
    """A writers.py CLI process (stdin/stdout pipes) and a reader of its stdout lines."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "writers.py"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    return proc, LineReader(proc.stdout)


def stop_writer(proc):
    """Closes the writer's stdin (its cue to finish), waits for it and closes its stdout."""
    proc.stdin.close()
    proc.wait(timeout=60)
    proc.stdout.close()
    return proc.returncode


def process_tree(root_pid):
    """`root_pid` and all its descendants, from /proc/*/stat."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
    tree, grew = {root_pid}, True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= children
        grew = bool(children)
    return tree


def tree_has_open(root_pid, path):
    """True when `root_pid` or a descendant has `path` open."""
    for pid in process_tree(root_pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    return True
            except OSError:
                continue
    return False


def signal_tree(root_pid, sig):
    """Sends `sig` to `root_pid` and its descendants; returns the pids it reached."""
    reached = set()
    for pid in sorted(process_tree(root_pid)):
        try:
            os.kill(pid, sig)
            reached.add(pid)
        except ProcessLookupError:
            pass
    return reached


class VerifyCase(unittest.TestCase):
    """A temp directory per test and helpers that run the binary on files in it."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="ckptwatch-e2e-")
        self.dir = os.path.realpath(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def verify(self, path, level=None, extra=(), prefix=()):
        """`ckptwatch verify --json [--level L] PATH`: its one result, checked for the spec's shape
        and for an exit code that agrees with `ok`."""
        args = ["verify", "--json", *(["--level", level] if level else []), *extra, path]
        proc = run(args, prefix=prefix)
        results = parse_json_lines(proc)
        self.assertEqual(len(results), 1, f"want one JSON line\n{describe(proc)}")
        result = results[0]
        self.assertEqual(set(result), JSON_KEYS, describe(proc))
        self.assertIn(result["verdict"], VERDICTS, describe(proc))
        self.assertEqual(result["ok"], result["verdict"] == "ok", describe(proc))
        self.assertEqual(proc.returncode, 0 if result["ok"] else 1, describe(proc))
        self.assertEqual(result["level"], level or "structure", describe(proc))
        result["_proc"] = describe(proc)
        return result

    def assertVerdict(self, result, verdict):
        self.assertEqual(result["verdict"], verdict, result["_proc"])

    def assertNotOk(self, result):
        self.assertNotEqual(result["verdict"], "ok", result["_proc"])


class KerasLayoutTest(VerifyCase):
    def check_keras_h5(self, path, kind):
        size = os.path.getsize(path)
        datasets, parameters = writers.h5py_counts(path)
        for level in (None, "full"):
            with self.subTest(level=level or "default"):
                r = self.verify(path, level)
                self.assertVerdict(r, "ok")
                self.assertEqual(r["format"], "hdf5", r["_proc"])
                self.assertEqual(r["superblock_version"], 0, r["_proc"])
                self.assertEqual(r["bytes"], size, r["_proc"])
                self.assertEqual(r["expected_bytes"], size, r["_proc"])
                self.assertEqual(r["datasets"], datasets, r["_proc"])
                self.assertEqual(r["parameters"], parameters, r["_proc"])
                self.assertEqual(r["nonfinite"], 0 if level == "full" else None, r["_proc"])
                self.assertIsNotNone(r["keras"], r["_proc"])
                self.assertEqual(set(r["keras"]), KERAS_KEYS, r["_proc"])
                self.assertEqual(r["keras"]["kind"], kind, r["_proc"])
                self.assertEqual(r["keras"]["version"], writers.KERAS2_VERSION, r["_proc"])
                self.assertEqual(r["keras"]["backend"], writers.BACKEND, r["_proc"])
                self.assertEqual(r["keras"]["custom_classes"], [], r["_proc"])

    def test_full_model_is_ok_and_reported_as_keras_full_model(self):
        for str_attrs in (False, True):
            with self.subTest(string_attributes="vlen str" if str_attrs else "fixed bytes"):
                path = self.path(f"model_{str_attrs}.h5")
                writers.write_full_model(path, str_attrs=str_attrs)
                self.check_keras_h5(path, "full_model")

    def test_weights_only_is_ok_and_reported_as_keras_weights_only(self):
        for str_attrs in (False, True):
            with self.subTest(string_attributes="vlen str" if str_attrs else "fixed bytes"):
                path = self.path(f"weights_{str_attrs}.h5")
                writers.write_weights_only(path, str_attrs=str_attrs)
                self.check_keras_h5(path, "weights_only")

    def test_libver_latest_superblock_v3_is_ok(self):
        path = self.path("latest.h5")
        writers.write_latest(path)
        for level in LEVELS:
            with self.subTest(level=level):
                r = self.verify(path, level)
                self.assertVerdict(r, "ok")
                self.assertEqual(r["superblock_version"], 3, r["_proc"])

    def test_chunked_gzip_shuffle_fletcher32_is_ok_at_full(self):
        path = self.path("filtered.h5")
        writers.write_filtered(path)
        datasets, parameters = writers.h5py_counts(path)
        r = self.verify(path, "full")
        self.assertVerdict(r, "ok")
        self.assertEqual((r["datasets"], r["parameters"]), (datasets, parameters), r["_proc"])
        self.assertEqual(r["nonfinite"], 0, r["_proc"])

    def test_custom_layer_class_is_ok_and_named_with_custom_objects_hint(self):
        path = self.path("custom.h5")
        writers.write_custom_layer_model(path, "MyCustomLayer")
        r = self.verify(path)
        self.assertVerdict(r, "ok")
        self.assertIsNotNone(r["keras"], r["_proc"])
        self.assertEqual(r["keras"]["custom_classes"], ["MyCustomLayer"], r["_proc"])
        self.assertIn("custom_objects", r["reason"], r["_proc"])

    def test_nan_weights_are_nonfinite_at_full_and_ok_at_structure(self):
        path = self.path("nan.h5")
        count, first = writers.write_nonfinite(path)
        r = self.verify(path, "full")
        self.assertVerdict(r, "nonfinite")
        self.assertEqual(r["nonfinite"], count, r["_proc"])
        self.assertIn(first, r["reason"], r["_proc"])
        r = self.verify(path, "structure")
        self.assertVerdict(r, "ok")
        self.assertIsNone(r["nonfinite"], r["_proc"])

    def test_json_line_has_every_spec_field(self):
        path = self.path("model.h5")
        writers.write_full_model(path)
        proc = run(["verify", "--json", "--level", "header", path])
        (r,) = parse_json_lines(proc)
        self.assertEqual(set(r), JSON_KEYS, describe(proc))
        self.assertEqual(r["path"], path, describe(proc))
        self.assertIs(r["ok"], True, describe(proc))
        self.assertIsInstance(r["reason"], str, describe(proc))
        self.assertIsInstance(r["elapsed_ms"], (int, float), describe(proc))
        self.assertIsNone(r["nonfinite"], describe(proc))


class NonfiniteTensorTest(VerifyCase):
    """NaN/Inf anywhere in a tensor of every float dtype h5py writes, in both storage layouts: at
    the first, the last and a random element of 100,000 (which crosses the scan's blocks)."""

    COUNT = 100_000
    STORAGE = {"contiguous": None, "chunked+gzip": writers.FILTERED}

    def check(self, dtype, storage, nonfinite):
        name = f"{dtype}_{storage.replace('+', '_')}_{len(nonfinite)}.h5"
        path = self.path(name)
        writers.write_weights_tensor(path, dtype, self.COUNT, nonfinite, self.STORAGE[storage])
        r = self.verify(path, "full")
        if nonfinite:
            self.assertVerdict(r, "nonfinite")
            self.assertIn("dense_1/kernel:0", r["reason"], r["_proc"])
        else:
            self.assertVerdict(r, "ok")
        self.assertEqual(r["nonfinite"], len(nonfinite), r["_proc"])
        self.assertEqual(r["parameters"], self.COUNT, r["_proc"])

    def test_nonfinite_at_the_first_last_or_a_random_element_is_found_at_full(self):
        rng = random.Random(5)
        for dtype in ("float16", "float32", "float64"):
            for storage in self.STORAGE:
                for where, nonfinite in (
                    ("none", {}),
                    ("first", {0: float("-inf")}),
                    ("last", {self.COUNT - 1: float("nan")}),
                    ("last, +Inf", {self.COUNT - 1: float("inf")}),
                    ("random", {rng.randrange(1, self.COUNT - 1): float("nan")}),
                ):
                    with self.subTest(dtype=dtype, storage=storage, where=where):
                        self.check(dtype, storage, nonfinite)


class InProgressTest(VerifyCase):
    def test_file_held_open_for_write_is_in_progress_then_ok_after_close(self):
        path = self.path("open.h5")
        writer, lines = start_writer("hold-open", path)
        try:
            self.assertEqual(lines.next(timeout=30), "opened")
            for level in LEVELS:
                with self.subTest(level=level):
                    self.assertVerdict(self.verify(path, level), "in_progress")
        finally:
            stop_writer(writer)
        self.assertEqual(writer.returncode, 0)
        self.assertVerdict(self.verify(path, "full"), "ok")

    def test_file_left_open_by_a_writer_that_exited_is_in_progress(self):
        path = self.path("abandoned.h5")
        writer, _ = start_writer("abandon", path)
        self.assertEqual(stop_writer(writer), 0)
        for level in LEVELS:
            with self.subTest(level=level):
                self.assertVerdict(self.verify(path, level), "in_progress")

    def test_save_over_a_file_being_verified_succeeds_and_verdict_is_ok_or_in_progress(self):
        # Keras saves with h5py.File(path, "w"): HDF5 truncates, then takes an exclusive flock.
        # A verifier holding HDF5's default shared lock makes that save fail with "unable to
        # lock file, errno = 11" (and leaves the checkpoint truncated). ckptwatch opens with
        # locking off, so every save must succeed. Even rounds race freely; odd rounds stop the
        # verifier (SIGSTOP) once it has the file open and save while it is stopped, so the
        # save surely overlaps the verifier's open file.
        size, rounds = 64 << 20, 16
        path = self.path("racing.h5")
        saver, replies = start_writer("saver", path, str(size))
        try:
            self.assertEqual(replies.next(timeout=60), "ready")
            self.assertEqual(self.save(saver, replies), "saved")
            overlapped, failures = 0, []
            for i in range(rounds):
                verifier = subprocess.Popen(
                    [BIN, "verify", "--json", "--level", "full", path],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                )
                stopped = set()
                deadline = time.monotonic() + 10
                while verifier.poll() is None and time.monotonic() < deadline:
                    if tree_has_open(verifier.pid, path):
                        if i % 2:
                            stopped = signal_tree(verifier.pid, signal.SIGSTOP)
                        if verifier.poll() is None and tree_has_open(verifier.pid, path):
                            overlapped += 1
                        break
                try:
                    reply = self.save(saver, replies)
                finally:
                    if stopped:
                        signal_tree(verifier.pid, signal.SIGCONT)
                out, err = verifier.communicate(timeout=60)
                if reply != "saved":
                    failures.append(f"round {i}: save failed: {reply}")
                try:
                    verdict = json.loads(out)["verdict"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    verdict = None
                if verdict not in ("ok", "in_progress"):
                    failures.append(
                        f"round {i} ({'stopped' if stopped else 'free'}): verify exit "
                        f"{verifier.returncode} stdout {out!r} stderr {err!r}"
                    )
        finally:
            stop_writer(saver)
        self.assertEqual(failures, [])
        self.assertGreater(overlapped, 0, "the verifier never had the file open when a save began")
        self.assertVerdict(self.verify(path, "full"), "ok")

    @staticmethod
    def save(saver, replies):
        saver.stdin.write("save\n")
        saver.stdin.flush()
        return replies.next(timeout=60)


class DamageTest(VerifyCase):
    def cut_points(self, path):
        """Named cuts: inside the superblock, just after it, mid-metadata, mid-data, -1 byte."""
        size = os.path.getsize(path)
        sb_end = writers.superblock_end(path)
        extents = writers.data_extents(path)
        first_data = extents[0][0]
        big_offset, big_size = max(extents, key=lambda e: e[1])
        return size, {
            "inside_superblock": sb_end // 2,
            "after_superblock": sb_end,
            "mid_metadata": (sb_end + first_data) // 2,
            "mid_data": big_offset + big_size // 2,
            "last_byte_missing": size - 1,
        }

    def test_truncated_file_is_truncated_at_every_level(self):
        originals = {
            "sb0": writers.write_full_model,
            "sb3": writers.write_latest,
            "filtered": writers.write_filtered,
        }
        for name, write in originals.items():
            original = self.path(f"{name}.h5")
            write(original)
            size, cuts = self.cut_points(original)
            for cut_name, cut in cuts.items():
                path = self.path(f"{name}_{cut_name}.h5")
                shutil.copyfile(original, path)
                writers.truncate(path, cut)
                for level in LEVELS:
                    with self.subTest(file=name, cut=cut_name, bytes=cut, level=level):
                        r = self.verify(path, level)
                        self.assertNotOk(r)
                        if cut_name == "inside_superblock":
                            continue
                        self.assertVerdict(r, "truncated")
                        self.assertEqual(r["expected_bytes"], size, r["_proc"])
                        self.assertEqual(r["bytes"], cut, r["_proc"])

    def test_zero_byte_file_is_empty(self):
        path = self.path("empty.h5")
        open(path, "wb").close()
        self.assertVerdict(self.verify(path), "empty")

    def test_random_bytes_are_not_a_checkpoint(self):
        path = self.path("random.h5")
        with open(path, "wb") as f:
            f.write(random.Random(7).randbytes(8192))
        self.assertVerdict(self.verify(path), "not_checkpoint")

    def test_missing_path_is_not_found_with_exit_1(self):
        self.assertVerdict(self.verify(self.path("missing.h5")), "not_found")

    def test_flipped_byte_in_fletcher32_chunk_is_ok_at_structure_and_corrupt_at_full(self):
        path = self.path("flipped.h5")
        writers.write_fletcher32_only(path)
        offset, size = writers.chunk_extent(path, "model_weights/dense_2/dense_2/kernel:0")
        writers.flip_byte(path, offset + size // 2)
        self.assertVerdict(self.verify(path, "structure"), "ok")
        self.assertVerdict(self.verify(path, "full"), "corrupt")

    def test_user_block_file_is_ok(self):
        path = self.path("userblock.h5")
        writers.write_userblock(path, 1024)
        size = os.path.getsize(path)
        for level in LEVELS:
            with self.subTest(level=level):
                r = self.verify(path, level)
                self.assertVerdict(r, "ok")
                self.assertEqual(r["expected_bytes"], size, r["_proc"])

    def test_user_block_file_missing_last_byte_is_truncated(self):
        path = self.path("userblock.h5")
        writers.write_userblock(path, 1024)
        size = os.path.getsize(path)
        writers.truncate(path, size - 1)
        for level in LEVELS:
            with self.subTest(level=level):
                r = self.verify(path, level)
                self.assertNotOk(r)
                self.assertVerdict(r, "truncated")
                self.assertEqual(r["expected_bytes"], size, r["_proc"])


class KerasZipTest(VerifyCase):
    def test_complete_keras_zip_is_ok_as_keras3(self):
        path = self.path("model.keras")
        writers.write_keras3_zip(path)
        for level in (None, "full"):
            with self.subTest(level=level or "default"):
                r = self.verify(path, level)
                self.assertVerdict(r, "ok")
                self.assertEqual(r["format"], "keras_zip", r["_proc"])
                self.assertIsNotNone(r["keras"], r["_proc"])
                self.assertEqual(r["keras"]["kind"], "keras3", r["_proc"])
                self.assertEqual(r["keras"]["version"], writers.KERAS3_VERSION, r["_proc"])

    def test_keras_zip_cut_short_is_truncated(self):
        original = self.path("model.keras")
        writers.write_keras3_zip(original)
        size = os.path.getsize(original)
        for cut_name, cut in {"half": size // 2, "last_byte_missing": size - 1}.items():
            path = self.path(f"cut_{cut_name}.keras")
            shutil.copyfile(original, path)
            writers.truncate(path, cut)
            for level in (None, "full"):
                with self.subTest(cut=cut_name, level=level or "default"):
                    r = self.verify(path, level)
                    self.assertNotOk(r)
                    self.assertVerdict(r, "truncated")


@requires(os.geteuid() == 0, "needs root to verify as another user")
class PermissionTest(VerifyCase):
    def test_root_only_file_is_permission_denied_for_unprivileged_user(self):
        os.chmod(self.dir, 0o755)
        readable, private = self.path("readable.h5"), self.path("private.h5")
        writers.write_full_model(readable)
        writers.write_full_model(private)
        os.chmod(readable, 0o644)
        os.chmod(private, 0o600)
        self.assertEqual(os.stat(private).st_uid, 0)
        probe = run(["--version"], prefix=NOBODY)
        self.assertEqual(
            probe.returncode, 0, f"binary not runnable as uid 65534\n{describe(probe)}"
        )
        self.assertVerdict(self.verify(readable, prefix=NOBODY), "ok")
        self.assertVerdict(self.verify(private, prefix=NOBODY), "permission_denied")


class DirectoryTest(VerifyCase):
    def setUp(self):
        super().setUp()
        writers.write_full_model(self.path("a.h5"))
        writers.write_weights_only(self.path("b.hdf5"))
        writers.write_keras3_zip(self.path("c.keras"))
        with open(self.path("notes.txt"), "w") as f:
            f.write("not a checkpoint\n")
        with open(self.path("model.json"), "w") as f:
            f.write("{}\n")
        os.mkdir(self.path("sub"))
        writers.write_full_model(self.path("sub/d.h5"))

    def reported_paths(self, *options):
        proc = run(["verify", "--json", *options, self.dir])
        results = parse_json_lines(proc)
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertTrue(all(r["verdict"] == "ok" for r in results), describe(proc))
        return sorted(os.path.relpath(os.path.normpath(r["path"]), self.dir) for r in results)

    def test_directory_verifies_checkpoint_extensions_only(self):
        self.assertEqual(self.reported_paths(), ["a.h5", "b.hdf5", "c.keras"])

    def test_recursive_descends_into_subdirectories(self):
        self.assertEqual(
            self.reported_paths("--recursive"), ["a.h5", "b.hdf5", "c.keras", "sub/d.h5"]
        )


class CliTest(VerifyCase):
    def test_exit_0_when_all_ok_and_1_when_any_not_ok(self):
        good, empty = self.path("good.h5"), self.path("empty.h5")
        writers.write_full_model(good)
        writers.write_weights_only(self.path("good2.h5"))
        open(empty, "wb").close()
        proc = run(["verify", good, self.path("good2.h5")])
        self.assertEqual(proc.returncode, 0, describe(proc))
        proc = run(["verify", good, empty])
        self.assertEqual(proc.returncode, 1, describe(proc))
        proc = run(["verify", self.path("missing.h5")])
        self.assertEqual(proc.returncode, 1, describe(proc))

    def test_several_files_end_with_a_summary_on_stderr(self):
        good, empty = self.path("good.h5"), self.path("empty.h5")
        writers.write_full_model(good)
        writers.write_weights_only(self.path("good2.h5"))
        open(empty, "wb").close()
        proc = run(["verify", good, self.path("good2.h5"), empty])
        self.assertEqual(proc.returncode, 1, describe(proc))
        stderr = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
        self.assertEqual(stderr.splitlines()[-1], "ckptwatch verify: 3 files: 2 ok, 1 empty",
                         describe(proc))
        # One file is its own summary; --json keeps stdout one record per file.
        proc = run(["verify", "--json", good])
        stderr = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
        self.assertNotIn("files:", stderr, describe(proc))
        self.assertEqual(len(parse_json_lines(proc)), 1)

    def test_a_long_read_shows_progress_on_a_terminal_and_never_in_a_pipe(self):
        # 3 GiB of sparse zeros read at full: about 5 s, past the 2 s a read may take unseen.
        big = self.path("big.safetensors")
        size = 3 << 30
        header = json.dumps({"w": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}).encode()
        header += b" " * (-len(header) % 8)
        with open(big, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header)
            f.truncate(8 + len(header) + size)
        # On a terminal (a pty): "reading big.safetensors (1 of 1, N s)", erased before the verdict.
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(BIN, [BIN, "verify", "--level", "full", big], child_env())
            finally:
                os._exit(127)
        seen = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, seen)
        self.assertRegex(seen, rb"\r\x1b\[Kckptwatch verify: reading .*big\.safetensors \(1 of 1, [2-9] s\)")
        self.assertRegex(seen, rb"\r\x1b\[K[^\r]*big\.safetensors: ok: ", "the line is erased before the verdict")
        # In a pipe (scripts, CI), however long the read: nothing on stderr for one file.
        with open(big, "rb") as f:  # read from the start again, not from the page cache
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        piped = run(["verify", "--level", "full", big])
        self.assertEqual(piped.returncode, 0, describe(piped))
        self.assertEqual(piped.stderr, "", describe(piped))

    def test_usage_errors_exit_2(self):
        good = self.path("good.h5")
        writers.write_full_model(good)
        for args in (
            ["verify", "--no-such-option", good],
            ["verify", "--level", "deep", good],
            ["verify"],
        ):
            with self.subTest(args=args):
                proc = run(args)
                self.assertEqual(proc.returncode, 2, describe(proc))

    def test_help_prints_usage_to_stdout(self):
        for args in (["--help"], ["verify", "--help"]):
            with self.subTest(args=args):
                proc = run(args)
                self.assertEqual(proc.returncode, 0, describe(proc))
                self.assertIn("usage", proc.stdout.lower(), describe(proc))
                self.assertIn("verify", proc.stdout, describe(proc))

    def test_version_prints_version_and_hdf5_library_version(self):
        proc = run(["--version"])
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertIn(project_version(), proc.stdout, describe(proc))
        self.assertIn("1.10", proc.stdout, describe(proc))

    def test_text_output_is_one_path_verdict_reason_line_per_file(self):
        # The expected lines are written out here, not derived from the same binary's --json.
        good, empty, missing = self.path("good.h5"), self.path("empty.h5"), self.path("missing.h5")
        writers.write_full_model(good)
        open(empty, "wb").close()
        datasets, parameters = writers.h5py_counts(good)
        text = run(["verify", good, empty, missing])
        self.assertEqual(text.returncode, 1, describe(text))
        lines = text.stdout.splitlines()
        self.assertEqual(len(lines), 3, describe(text))
        self.assertEqual(
            lines[0],
            f"{good}: ok: HDF5 superblock v0, {datasets} datasets, {parameters:,} parameters, "
            f"Keras {writers.KERAS2_VERSION} full_model",
            describe(text),
        )
        self.assertTrue(lines[1].startswith(f"{empty}: empty: file is empty (0 bytes): "), lines[1])
        self.assertTrue(
            lines[2].startswith(f"{missing}: not_found: no such file or directory"), lines[2]
        )


if __name__ == "__main__":
    unittest.main()
