"""End-to-end tests of PyTorch and safetensors checkpoints: files written by the real torch 1.13
(Debian's python3-torch) and by a safetensors writer that follows the published format, cut short
at every structural boundary, damaged, killed mid-save and saved into full filesystems; the shared
corpus of real files (../shared/corpus-formats); and the daemon's default patterns.
"""

import csv
import json
import os
import signal
import struct
import subprocess
import sys
import time
import unittest
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import format_writers as fw  # noqa: E402
from daemon_harness import BIN, Daemon, tempdir, yaml_watch  # noqa: E402
from evidence import requires  # noqa: E402
from figures import record  # noqa: E402
from fork_server import ForkServer  # noqa: E402

PYTHON = "/usr/bin/python3"
ROOT = os.geteuid() == 0
CORPUS = os.path.abspath(os.environ.get("CKPTWATCH_FORMATS_CORPUS")
                         or os.path.join(HERE, "..", "..", "shared", "corpus-formats"))
LEVELS = ("header", "structure", "full")
WEIGHT_FORMATS = {"hdf5", "keras_zip", "torch_zip", "torchscript", "torch_legacy", "safetensors"}

try:
    import torch  # noqa: E402
except ImportError:  # Debian's python3-torch (.ci/install-deps)
    torch = None


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def verify(paths, level="structure", timeout=120):
    """One JSON result per path, in order, from the real binary."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    proc = subprocess.run([BIN, "verify", "--json", "--level", level, "--timeout", "60", *paths],
                          capture_output=True, text=True, timeout=timeout)
    # A file of a checkpoint set also brings its set's record ("kind": "checkpoint"): files only here.
    results = [r for r in map(json.loads, proc.stdout.splitlines()) if "kind" not in r]
    assert len(results) == len(paths), proc.stdout + proc.stderr
    return results


@requires(torch is not None, "needs Debian's python3-torch (apt-get install python3-torch)")
class FormatCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempdir(self)

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertVerdict(self, path, verdict, level="structure", fmt=None):
        r = verify(path, level)[0]
        self.assertEqual(r["verdict"], verdict, r)
        if fmt:
            self.assertEqual(r["format"], fmt, r)
        return r


class TorchTest(FormatCase):
    def test_state_dict_zip_and_legacy_are_ok_at_every_level(self):
        for legacy, fmt in ((False, "torch_zip"), (True, "torch_legacy")):
            p = self.path(f"model_{fmt}.pt")
            fw.save_torch(p, fw.torch_state_dict(2 << 20), legacy=legacy)
            for level in LEVELS:
                r = self.assertVerdict(p, "ok", level, fmt)
                if level != "header":
                    self.assertEqual(r["datasets"], 2, r)
                    self.assertEqual(r["parameters"], 2 * 256 * 1024, r)
            self.assertEqual(verify(p, "full")[0]["nonfinite"], 0)

    def test_lightning_checkpoint_with_inf_kth_value_is_ok_at_full(self):
        # As Lightning's ModelCheckpoint saves: best scores and kth_value = inf are callback state.
        model = torch.nn.Linear(8, 4)
        opt = torch.optim.Adam(model.parameters())
        model(torch.randn(2, 8)).sum().backward()
        opt.step()
        ckpt = {
            "epoch": 3, "global_step": 150, "pytorch-lightning_version": "2.4.0",
            "state_dict": model.state_dict(),
            "loops": {"fit_loop": {"epoch_loop.state_dict": {"_batches_that_stepped": 150}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "monitor": "val_loss", "best_model_score": torch.tensor(float("inf")),
                "kth_value": torch.tensor(float("inf")), "best_k_models": {},
                "current_score": torch.tensor(float("nan"))}},
            "optimizer_states": [opt.state_dict()],
            "lr_schedulers": [{"last_epoch": 3, "_last_lr": [float("inf")]}],
        }
        p = self.path("epoch=3-step=150.ckpt")
        torch.save(ckpt, p)
        r = self.assertVerdict(p, "ok", "full", "torch_zip")
        self.assertEqual(r["nonfinite"], 0, r)
        # The same NaN in a weight is found.
        ckpt["state_dict"]["weight"][1, 2] = float("nan")
        torch.save(ckpt, p)
        r = self.assertVerdict(p, "nonfinite", "full")
        self.assertEqual(r["nonfinite"], 1, r)

    def test_nan_and_inf_weights_are_nonfinite_at_full_and_ok_at_structure(self):
        saved = {}
        for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            for legacy in (False, True):
                w = torch.randn(64, 64).to(dtype)
                w[5, 7] = float("nan")
                w[-1, -1] = float("-inf")
                p = self.path(f"nan_{str(dtype)[6:]}_{legacy}.pth")
                fw.save_torch(p, {"fc.weight": w, "fc.bias": torch.zeros(64, dtype=dtype),
                                  "steps": torch.tensor(10)}, legacy=legacy)
                saved[p] = (dtype, legacy)
        # One `verify` per level over every file (one process start each, not one per file).
        for r in verify(list(saved), "structure"):
            self.assertEqual(r["verdict"], "ok", r)
        for p, r in zip(saved, verify(list(saved), "full")):
            self.assertEqual(r["verdict"], "nonfinite", r)
            self.assertEqual(r["nonfinite"], 2, (*saved[p], r))

    def test_full_model_pickle_names_the_classes_a_load_needs(self):
        script = ("import torch\nclass Net(torch.nn.Module):\n"
                  "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(4, 2)\n"
                  f"torch.save(Net(), {self.path('net.pt')!r})\n")
        subprocess.run([PYTHON, "-c", script], check=True)
        r = self.assertVerdict(self.path("net.pt"), "ok", "full", "torch_zip")
        self.assertIn("__main__.Net", r["reason"])
        self.assertIn("weights_only=True", r["reason"])

    def test_torchscript_archive_is_ok(self):
        p = self.path("scripted.pt")
        torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())).save(p)
        self.assertVerdict(p, "ok", "full", "torchscript")

    def test_damaged_archives_are_corrupt(self):
        p = self.path("model.pt")
        fw.save_torch(p, fw.torch_state_dict(1 << 20))
        with zipfile.ZipFile(p) as z:
            entries = [(i, z.read(i)) for i in z.infolist()]
            info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
        # A flipped byte in a storage: only the CRC (full) sees it.
        data = bytearray(read_bytes(p))
        start = info.header_offset + 30 + struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])[0] \
            + struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])[1]
        data[start + 100] ^= 0x40
        flipped = self.path("flipped.pt")
        write_bytes(flipped, data)
        self.assertVerdict(flipped, "ok", "structure")
        self.assertIn("CRC-32", self.assertVerdict(flipped, "corrupt", "full")["reason"])

        def rezip(name, keep, change=lambda n, d: d):
            out = self.path(name)
            with zipfile.ZipFile(out, "w") as z:
                for i, d in entries:
                    if keep(i.filename):
                        z.writestr(i.filename, change(i.filename, d))
            return out

        missing = rezip("missing.pt", lambda n: not n.endswith("/data/0"))
        self.assertIn("data/0", self.assertVerdict(missing, "corrupt", "structure")["reason"])
        extra = rezip("extra.pt", lambda n: True)
        with zipfile.ZipFile(extra, "a") as z:
            z.writestr(info.filename.replace("/data/0", "/data/99"), b"\0" * 16)
        self.assertIn("not referenced", self.assertVerdict(extra, "corrupt", "structure")["reason"])
        short = rezip("short.pt", lambda n: True, lambda n, d: d[:-4] if n.endswith("/data/0") else d)
        self.assertIn("declares", self.assertVerdict(short, "corrupt", "structure")["reason"])
        no_pickle = rezip("nopickle.pt", lambda n: not n.endswith("data.pkl"))
        self.assertIn("no data.pkl", self.assertVerdict(no_pickle, "corrupt", "structure")["reason"])


class SafetensorsTest(FormatCase):
    def test_every_dtype_is_ok_and_nan_or_inf_is_nonfinite_at_full(self):
        rng = np.random.default_rng(1)
        tensors = {
            "f64": fw.array_tensor(rng.standard_normal((3, 5))),
            "f32": fw.array_tensor(rng.standard_normal((7,), dtype=np.float32)),
            "f16": fw.array_tensor(rng.standard_normal((2, 3)).astype(np.float16)),
            "bf16": fw.bf16_tensor(rng.standard_normal((4, 4))),
            "e5m2": ("F8_E5M2", (4,), bytes([0x3c, 0x40, 0x00, 0xbc])),
            "e4m3": ("F8_E4M3", (4,), bytes([0x38, 0x7e, 0x00, 0xfe])),
            "i64": fw.array_tensor(np.arange(5, dtype=np.int64)),
            "u8": fw.array_tensor(np.full(3, 0xff, dtype=np.uint8)),  # 0xff: not a float
            "mask": fw.array_tensor(np.array([True, False])),
            "empty": ("F32", (0, 4), b""),
            "scalar": fw.array_tensor(np.array(1.5, dtype=np.float32)),
        }
        p = self.path("model.safetensors")
        fw.write_safetensors(p, tensors, {"format": "pt"})
        for level in LEVELS:
            r = self.assertVerdict(p, "ok", level, "safetensors")
        self.assertEqual(r["datasets"], len(tensors))
        self.assertEqual(r["nonfinite"], 0)
        bad = {
            "f32": ("F32", (2,), np.array([1, np.nan], dtype=np.float32).tobytes()),
            "f16": ("F16", (2,), np.array([np.inf, 1], dtype=np.float16).tobytes()),
            "bf16": fw.bf16_tensor(np.array([np.nan, 2.0])),
            "f64": ("F64", (1,), np.array([-np.inf]).tobytes()),
            "e5m2": ("F8_E5M2", (2,), bytes([0x7c, 0x00])),  # +inf
            "e4m3": ("F8_E4M3", (2,), bytes([0x00, 0xff])),  # NaN
        }
        paths = {}
        for name, tensor in bad.items():
            q = self.path(f"bad_{name}.safetensors")
            fw.write_safetensors(q, {**tensors, name: tensor})
            paths[q] = name
        for r in verify(list(paths), "structure"):
            self.assertEqual(r["verdict"], "ok", r)
        for (q, name), r in zip(paths.items(), verify(list(paths), "full")):
            self.assertEqual(r["verdict"], "nonfinite", (name, r))
            self.assertEqual(r["nonfinite"], 1, (name, r))
            self.assertIn(name, r["reason"])

    def test_what_the_reference_reader_refuses_is_corrupt(self):
        good = {"a": ("F32", (2,), b"\0" * 8), "b": ("F32", (1,), b"\0" * 4)}
        header = lambda h: struct.pack("<Q", len(h)) + h  # noqa: E731
        cases = {
            "gap": header(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                          b'"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}') + b"\0" * 16,
            "overlap": header(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                              b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}') + b"\0" * 8,
            "wrong_size": header(b'{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}') + b"\0" * 8,
            "dtype": header(b'{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}') + b"\0" * 8,
            "metadata": header(b'{"__metadata__":{"epoch":3},"a":{"dtype":"F32","shape":[2],'
                               b'"data_offsets":[0,8]}}') + b"\0" * 8,
            "json": header(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}') + b"\0" * 8,
            "negative": header(b'{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}') + b"\0" * 8,
            "too_large": struct.pack("<Q", 100_000_001) + b"{" + b" " * 100,
            "trailing": fw.safetensors_bytes(good) + b"\0\0\0\0",
        }
        paths = [self.path(f"{name}.safetensors") for name in cases]
        for p, data in zip(paths, cases.values()):
            write_bytes(p, data)
        for name, r in zip(cases, verify(paths, "structure")):
            self.assertEqual(r["verdict"], "corrupt", (name, r))
        # What writers in the wild do and the format allows.
        allowed = {
            "unpadded": fw.safetensors_bytes(good, pad=False),
            "null_metadata": header(b'{"__metadata__":null,"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},'
                                    b'"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}') + b"\0" * 12,
            "no_tensors": header(b"{}      "),
        }
        paths = [self.path(f"{name}.safetensors") for name in allowed]
        for p, data in zip(paths, allowed.values()):
            write_bytes(p, data)
        for name, r in zip(allowed, verify(paths, "full")):
            self.assertEqual(r["verdict"], "ok", (name, r))

    def test_a_header_of_a_million_tensors_is_verified_within_limits(self):
        # ~70 MB of JSON: under the reference's 100 MB limit, so a reader must cope.
        entries = ",".join(f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(1_000_000))
        text = ("{" + entries + "}").encode()
        p = self.path("million.safetensors")
        write_bytes(p, struct.pack("<Q", len(text)) + text)
        started = time.monotonic()
        r = verify(p, "structure")[0]
        self.assertEqual(r["verdict"], "ok", r)
        self.assertEqual(r["datasets"], 1_000_000)
        print(f"\nmillion-tensor header: {time.monotonic() - started:.1f}s", file=sys.stderr)


class TruncationTest(FormatCase):
    """Every structural boundary of every format, at every level: never ok."""

    def sweep(self, name, data, cuts):
        paths = []
        for cut in cuts:
            p = self.path(f"{cut:09}_{name}")
            with open(p, "wb") as f:
                f.write(data[:cut])
            paths.append(p)
        seen = {}
        for level in LEVELS:
            for p, r in zip(paths, verify(paths, level, timeout=600)):
                seen[r["verdict"]] = seen.get(r["verdict"], 0) + 1
                self.assertNotEqual(r["verdict"], "ok", f"{level}: {p} ({os.path.getsize(p)} of {len(data)} bytes): {r}")
        for p in paths:
            os.unlink(p)
        print(f"\n{name}: {len(cuts)} cuts x {len(LEVELS)} levels: {seen}", file=sys.stderr)
        record("format_truncations", file=name, cuts=len(cuts), verdicts=seen)
        return seen

    def test_torch_zip_cut_at_every_boundary_is_never_ok(self):
        p = self.path("model.pt")
        fw.save_torch(p, fw.torch_state_dict(3 << 20))
        seen = self.sweep("model.pt", read_bytes(p), fw.zip_boundaries(p))
        self.assertGreater(seen.get("truncated", 0), 0)

    def test_torchscript_cut_at_every_boundary_is_never_ok(self):
        p = self.path("scripted.pt")
        torch.jit.script(torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh())).save(p)
        self.sweep("scripted.pt", read_bytes(p), fw.zip_boundaries(p))

    def test_torch_legacy_cut_at_every_boundary_is_never_ok(self):
        p = self.path("legacy.pt")
        fw.save_torch(p, fw.torch_state_dict(3 << 20), legacy=True)
        seen = self.sweep("legacy.pt", read_bytes(p), fw.legacy_boundaries(p))
        self.assertGreater(seen.get("truncated", 0), 0)

    def test_safetensors_cut_at_every_boundary_is_never_ok(self):
        p = self.path("model.safetensors")
        fw.sized_safetensors(p, 3 << 20)
        data = read_bytes(p)
        seen = self.sweep("model.safetensors", data, fw.safetensors_boundaries(data))
        self.assertGreater(seen.get("truncated", 0), 0)


# The loaders run in children of one fork server (fork_server.py), which has imported torch and
# h5py: without it each load was a `python3 -c` importing torch again (1-3 s on CI's machine, ~20
# loads; issue 23). Each child gets 4 GiB of address space, so a memory bomb fails with
# MemoryError on any host instead of exhausting it.
LOADERS = ForkServer()
LOAD_TIMEOUT = 300  # seconds one load may take
TORCH_LOAD = "import sys, torch; torch.load(sys.argv[1])"
H5PY_OPEN = "import sys, h5py; f = h5py.File(sys.argv[1], 'r'); [f[k] for k in f]; f.close()"


def tearDownModule():
    LOADERS.close()


def loads_in_child(code, path):
    """(True, "") when `code` (a Python loader of sys.argv[1]) succeeds on `path`, else (False, its
    last error line)."""
    stderr_path = os.path.abspath(path + ".loader-stderr")
    pid = LOADERS.start(code, [os.path.abspath(path)], stderr_path, memory_bytes=4 << 30)
    returncode = LOADERS.wait(pid, timeout=LOAD_TIMEOUT)
    try:  # absent when the child died before it opened it
        with open(stderr_path, errors="replace") as f:
            stderr = f.read()
        os.unlink(stderr_path)
    except FileNotFoundError:
        stderr = ""
    lines = [line for line in stderr.splitlines() if line.strip() and "Warning" not in line]
    return returncode == 0, (lines[-1] if lines and returncode else "")


class CraftedFilesTest(FormatCase):
    """Files a hostile user crafts to get a false verdict, each compared with what the real loader
    (torch 1.13's torch.load, h5py) does with it: ok exactly when the loader loads it."""

    def rewrite_zip(self, src, dst, change):
        with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
            for info in z.infolist():
                out.writestr(info.filename, change(info.filename, z.read(info.filename)))
        return dst

    def assertAgrees(self, path, loader, reason_part=None, fmt=None):
        loads, error = loads_in_child(loader, path)
        for level in ("header", "structure") if loads or reason_part is None else ("structure",):
            r = verify(path, level)[0]
            self.assertEqual(r["verdict"] == "ok", loads, (level, error, r))
            if fmt:
                self.assertEqual(r["format"], fmt, r)
        if not loads and reason_part:
            self.assertIn(reason_part, r["reason"], (error, r))
        record("crafted", file=os.path.basename(path), loader="loads" if loads else error[:80],
               verdict=r["verdict"])
        return r

    def test_torch_version_records_are_judged_as_torch_load_reads_them(self):
        src = self.path("base.pt")
        torch.save({"w": torch.ones(3)}, src)
        cases = {b"999\n": "says 999, but torch.load reads versions 1 to 10", b"11": "says 11",
                 b"0\n": "says 0", b"abc": "holds no number", b"-1": "negative",
                 b"10\n": None, b" 3": None, b"3abc": None}
        for i, (record_bytes, reason) in enumerate(cases.items()):
            with self.subTest(version=record_bytes):
                p = self.rewrite_zip(src, self.path(f"version{i}.pt"),
                                     lambda n, d: record_bytes if n.endswith("/version") else d)
                r = self.assertAgrees(p, TORCH_LOAD, reason, "torch_zip")
                if reason:
                    self.assertEqual(r["verdict"], "corrupt", r)
                    # Rejected by the header check too, which runs in the daemon's first look.
                    self.assertEqual(verify(p, "header")[0]["verdict"], "corrupt")

    def test_a_memo_cpython_cannot_allocate_is_not_ok(self):
        # The first BINPUT of torch.save's protocol-2 pickle widened to LONG_BINPUT 0x7fffffff:
        # CPython's unpickler grows its memo to 2^32 pointers (32 GiB) and fails with MemoryError.
        def bomb(data):
            at = data.index(b"}q\x00")
            return data[:at + 1] + b"r\xff\xff\xff\x7f" + data[at + 3:]

        src = self.path("base.pt")
        torch.save({"w": torch.ones(3)}, src)
        p = self.rewrite_zip(src, self.path("memo.pt"), lambda n, d: bomb(d) if n.endswith("data.pkl") else d)
        self.assertAgrees(p, TORCH_LOAD, "puts memo entry 2147483647")
        legacy = self.path("memo_legacy.pt")
        torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
        write_bytes(legacy, bomb(read_bytes(legacy)))
        self.assertAgrees(legacy, TORCH_LOAD, "puts memo entry 2147483647")
        # An index CPython can hold (256 x 2 pointers) loads, and is ok.
        fine = self.rewrite_zip(src, self.path("memo_fine.pt"),
                                lambda n, d: d.replace(b"}q\x00", b"}r\x00\x01\x00\x00", 1)
                                if n.endswith("data.pkl") else d)
        self.assertAgrees(fine, TORCH_LOAD)

    def test_legacy_saves_at_every_protocol_agree_with_torch_load(self):
        for protocol in range(0, 6):
            with self.subTest(protocol=protocol):
                p = self.path(f"legacy{protocol}.bin")
                torch.save({"w": torch.ones(3)}, p, pickle_protocol=protocol,
                           _use_new_zipfile_serialization=False)
                self.assertAgrees(p, TORCH_LOAD, None, "torch_legacy")

    def test_hdf5_with_a_zip_in_its_user_block_agrees_with_h5py(self):
        import h5py
        b = self.path("zip.pt")
        torch.save({"w": torch.ones(3)}, b)
        torch_zip = read_bytes(b)
        keras = self.path("keras.zip")
        with zipfile.ZipFile(keras, "w") as z:
            z.writestr("metadata.json", '{"keras_version": "3.6.0"}')
            z.writestr("config.json", "{}")
        keras_zip = read_bytes(keras)

        def polyglot(name, content, user_block):
            p = self.path(name)
            with h5py.File(p, "w", userblock_size=user_block) as f:
                f.create_dataset("w", data=np.ones(10, dtype="f4"))
            with open(p, "r+b") as f:
                f.write(content)
            return p

        for name, content, user_block in (("model.h5", torch_zip, 1024), ("model.hdf5", torch_zip, 4096),
                                          ("model.weights.h5", keras_zip, 512), ("keras.h5", keras_zip, 512)):
            with self.subTest(name=name):
                p = polyglot(name, content, user_block)
                for level in LEVELS:
                    self.assertVerdict(p, "ok", level, "hdf5")
                self.assertAgrees(p, H5PY_OPEN, None, "hdf5")
                # Cut inside its HDF5 part, h5py fails and so do we.
                cut = self.path("cut_" + name)
                write_bytes(cut, read_bytes(p)[:user_block + 400])
                self.assertAgrees(cut, H5PY_OPEN, None, "hdf5")


# A writer's command line in a fork server's child (DaemonCase.writers()).
WRITE = "import sys, format_writers; sys.exit(format_writers.main(sys.argv))"


class DaemonCase(FormatCase):
    def start(self, watches_yaml):
        d = Daemon(self.dir, watches_yaml)
        self.addCleanup(d.stop)
        return d.start()

    def writers(self):
        """A fork server (fork_server.py) whose children run format_writers.py's command line:
        each writer is a process of its own, killed or filling a disk as a fresh one would,
        without a torch import per writer. start(WRITE, [KIND, PATH, BYTES, ...], stderr)."""
        server = ForkServer()
        self.addCleanup(server.close)
        return server


def same_content(path, reference):
    """True when `path` holds what `reference` does: the same bytes for safetensors; for torch the
    same tensors (torch.save names the zip's directory after the file, and legacy storage keys are
    memory addresses)."""
    if path.endswith(".safetensors"):
        return read_bytes(path) == read_bytes(reference)
    try:
        a, b = torch.load(path), torch.load(reference)
    except Exception:  # noqa: BLE001  (any load failure means: not the complete save)
        return False
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class KilledWriterTest(DaemonCase):
    def test_writers_killed_mid_save_never_yield_ok(self):
        ckpt = self.path("ckpt")
        os.makedirs(ckpt)
        d = self.start(yaml_watch("run", ckpt, settle="0s"))
        writers = self.writers()
        stderr_path = self.path("writer.stderr")
        total = 24 << 20
        seen = {}
        for kind, args, ext in (("torch", [], "pt"), ("torch", ["legacy"], "pth"), ("safetensors", [], "safetensors")):
            reference = self.path(f"reference.{ext}")
            status = writers.wait(writers.start(WRITE, [kind, reference, total, *args], stderr_path))
            self.assertEqual(status, 0, read_bytes(stderr_path))
            complete = read_bytes(reference)
            for i in range(1, 11):
                p = os.path.join(ckpt, f"killed_{kind}{''.join(args)}_{i:02}.{ext}")
                pid = writers.start(WRITE, [kind, p, total, *args], stderr_path)
                target = len(complete) * i // 11
                end = time.monotonic() + 60
                status = None
                while time.monotonic() < end:
                    if os.path.exists(p) and os.path.getsize(p) >= target:
                        break
                    status = writers.poll(pid)
                    if status is not None:  # done before the target size: the kill misses
                        break
                    time.sleep(0.0005)
                if status is None:
                    os.kill(pid, signal.SIGKILL)
                    writers.wait(pid)
                if not os.path.exists(p):
                    continue
                v = d.wait_verdict(p, deadline=60)
                if v["verdict"] == "ok":  # the kill landed after the last byte: only a whole save is ok
                    self.assertTrue(same_content(p, reference), f"{p} verified ok but is incomplete: {v}")
                seen[v["verdict"]] = seen.get(v["verdict"], 0) + 1
        print(f"\nkilled torch/safetensors writers: {seen}", file=sys.stderr)
        record("format_killed_writers", verdicts=seen)
        self.assertGreaterEqual(sum(n for v, n in seen.items() if v != "ok"), 20)


@requires(ROOT, "mounting a tmpfs needs root")
class DiskFullTest(DaemonCase):
    def test_saves_into_full_filesystems_are_never_ok_and_always_disk_full(self):
        ckpt = self.path("ckpt")
        sizes = ["256k", "1m", "3m", "6m"]
        for size in sizes:
            mount = os.path.join(ckpt, f"fs_{size}")
            os.makedirs(mount)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount], check=True)
            self.addCleanup(subprocess.run, ["umount", "-l", mount])
        d = self.start(yaml_watch("run", ckpt, recursive=True, settle="100ms"))
        writers = self.writers()
        stderr_path = self.path("writer.stderr")
        checked = 0
        for size in sizes:
            for kind, args, name in (("torch", [], "model.pt"), ("torch", ["legacy"], "legacy.pth"),
                                     ("safetensors", [], "model-00001-of-00002.safetensors")):
                p = os.path.join(ckpt, f"fs_{size}", name)
                status = writers.wait(writers.start(WRITE, [kind, p, 8 << 20, *args], stderr_path))
                self.assertNotEqual(status, 0, f"the save of {name} into {size} should have failed")
                self.assertTrue(os.path.exists(p), f"no {name} after the save into {size}: "
                                f"{read_bytes(stderr_path).decode(errors='replace')}")
                v = d.wait_verdict(p, deadline=60)
                self.assertNotEqual(v["verdict"], "ok", v)
                self.assertEqual(v.get("cause"), "disk_full", v)
                record("format_disk_full", size=size, file=name, verdict=v["verdict"], cause=v.get("cause"))
                checked += 1
                os.unlink(p)  # room for the next writer
        self.assertEqual(checked, 3 * len(sizes))

    def test_truncated_safetensors_shard_is_reported_with_its_cause(self):
        ckpt = self.path("ckpt")
        os.makedirs(ckpt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", ckpt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", ckpt])
        d = self.start(yaml_watch("hf", ckpt, settle="100ms"))
        writers = self.writers()
        stderr_path = self.path("writer.stderr")
        shard = os.path.join(ckpt, "model-00001-of-00002.safetensors")
        self.assertNotEqual(writers.wait(writers.start(WRITE, ["safetensors", shard, 12 << 20], stderr_path)), 0)
        self.assertIn("No space left on device", read_bytes(stderr_path).decode(errors="replace"))
        v = d.wait_verdict(shard, deadline=60)
        self.assertEqual(v["verdict"], "truncated", v)
        self.assertEqual(v["cause"], "disk_full", v)
        self.assertIn("MetadataIncompleteBuffer", v["msg"])
        self.assertEqual(d.metric("ckptwatch_save_failures_total", watch="hf", cause="disk_full"), 1)


class DefaultPatternsTest(DaemonCase):
    def test_torch_and_safetensors_are_verified_by_default_and_a_foreign_bin_is_skipped_quietly(self):
        ckpt = self.path("ckpt")
        os.makedirs(ckpt)
        d = self.start(yaml_watch("run", ckpt, settle="100ms"))  # no patterns: the defaults
        files = {
            "model.safetensors": lambda p: fw.write_safetensors(p, {"w": fw.array_tensor(np.ones(4, np.float32))}),
            "epoch_1.pt": lambda p: fw.save_torch(p, {"w": torch.ones(3)}),
            "last.ckpt": lambda p: fw.save_torch(p, {"state_dict": {"w": torch.ones(3)}}),
            "pytorch_model.bin": lambda p: fw.save_torch(p, {"w": torch.ones(3)}, legacy=True),
            "best.pth": lambda p: fw.save_torch(p, {"w": torch.ones(3)}),
        }
        for name, write in files.items():
            write(os.path.join(ckpt, name))
            v = d.wait_verdict(os.path.join(ckpt, name))
            self.assertEqual(v["verdict"], "ok", v)
        # Another program's .bin: a debug line, no verdict, no failure.
        foreign = os.path.join(ckpt, "vocab.bin")
        with open(foreign, "wb") as f:
            f.write(os.urandom(4096))
        d.wait_event(lambda e: e.get("event") == "not_checkpoint" and e.get("path") == foreign)
        # A shard that is a Git LFS pointer stands in for a checkpoint: reported.
        pointer = os.path.join(ckpt, "pytorch_model-00001-of-00002.bin")
        with open(pointer, "w") as f:
            f.write("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 9943044428\n")
        v = d.wait_verdict(pointer)
        self.assertEqual(v["verdict"], "not_checkpoint", v)
        self.assertIn("Git LFS pointer", v["msg"])
        self.assertEqual(d.verdicts(foreign), [])
        self.assertEqual(d.metric("ckptwatch_checkpoints_verified_total", watch="run", verdict="ok"), 5)


class CraftedFilesInTheDaemonTest(DaemonCase):
    def test_the_daemon_judges_crafted_files_as_the_loaders_do(self):
        # The daemon's first look and its zygote child both see the name: an .h5 whose user block
        # holds a torch archive is HDF5 (h5py loads it), a version-999 archive is not ok.
        import h5py
        ckpt, staging = self.path("ckpt"), self.path("staging")
        os.makedirs(ckpt)
        os.makedirs(staging)
        d = self.start(yaml_watch("run", ckpt, settle="100ms", patterns=["*.h5", "*.pt"]))
        zipped = os.path.join(staging, "zip.pt")
        torch.save({"w": torch.ones(3)}, zipped)
        polyglot = os.path.join(staging, "best.h5")
        with h5py.File(polyglot, "w", userblock_size=1024) as f:
            f.create_dataset("w", data=np.ones(10, dtype="f4"))
        with open(polyglot, "r+b") as f:
            f.write(read_bytes(zipped))
        future = os.path.join(staging, "future.pt")
        with zipfile.ZipFile(zipped) as z, zipfile.ZipFile(future, "w") as out:
            for info in z.infolist():
                out.writestr(info.filename, b"999\n" if info.filename.endswith("/version") else z.read(info))
        for name, verdict, part in (("best.h5", "ok", "HDF5 superblock"), ("future.pt", "corrupt", "says 999")):
            with self.subTest(name=name):
                os.rename(os.path.join(staging, name), os.path.join(ckpt, name))
                v = d.wait_verdict(os.path.join(ckpt, name))
                self.assertEqual(v["verdict"], verdict, v)
                self.assertIn(part, v["msg"], v)


@requires(os.path.isfile(os.path.join(CORPUS, "MANIFEST.tsv")), f"no corpus at {CORPUS}")
class CorpusFormatsTest(unittest.TestCase):
    def test_every_corpus_file_gets_its_expected_verdict_and_format(self):
        with open(os.path.join(CORPUS, "MANIFEST.tsv"), newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        self.assertTrue(rows)
        # One `verify` over the whole manifest, as a user would run it on a directory: its warm
        # verifiers meet the files one after another, so no file may colour the next's verdict.
        results = verify([os.path.join(CORPUS, row["file"]) for row in rows], "full", timeout=600)
        table = []
        for row, r in zip(rows, results):
            with self.subTest(file=row["file"]):
                expected = row["expected_verdict"]
                if expected == "not_ok":
                    self.assertNotEqual(r["verdict"], "ok", r)
                else:
                    self.assertEqual(r["verdict"], expected, r)
                if row["format"] == "other":
                    self.assertNotIn(r["format"], WEIGHT_FORMATS, r)
                else:
                    self.assertEqual(r["format"], row["format"], r)
            table.append((row["file"], expected, r["verdict"], r["format"]))
        print("\n" + "\n".join(f"{f}\t{e}\t{v}\t{fmt}" for f, e, v, fmt in table), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
