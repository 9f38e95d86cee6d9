"""Fault injection, end to end: writers killed mid-save, disks that fill at different offsets,
bit flips in metadata, every malformed corpus file dropped into a watched directory, and the
verifier racing a trainer that overwrites its checkpoint back to back. The daemon must never say
`ok` for a broken save, never raise a false alarm for a completed one, and never fall over.
"""

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import writers  # noqa: E402
from evidence import requires  # noqa: E402
from figures import record  # noqa: E402
from daemon_harness import BIN, Daemon, tempdir, yaml_watch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
CORPUS = os.environ.get("CKPTWATCH_CORPUS", os.path.join(HERE, "..", "..", "shared", "corpus"))
ROOT = os.geteuid() == 0


class FaultTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempdir(self)
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.makedirs(self.ckpt)

    def start(self, watches_yaml, extra_yaml="verify: {max_parallel: 2, timeout: 5s}\n"):
        d = Daemon(self.dir, watches_yaml)
        d.write_config(watches_yaml)
        # Replace the harness's verify line with this test's (short timeout: in_progress
        # verdicts are re-checked after it).
        with open(d.config_path) as f:
            text = f.read()
        text = "\n".join(l for l in text.splitlines() if not l.startswith("verify:")) + "\n"
        with open(d.config_path, "w") as f:
            f.write(extra_yaml + text)
        self.addCleanup(d.stop)
        return d.start()

    def assert_alive(self, d):
        self.assertIsNone(d.proc.poll(), "the daemon exited")
        d.scrape()  # and still answers


class KilledWriterTest(FaultTestCase):
    def test_writer_killed_at_20_points_of_a_save_never_yields_ok(self):
        d = self.start(yaml_watch("run", self.ckpt, settle="0s"))
        total = 24 << 20
        reference = os.path.join(self.dir, "reference.h5")
        writers.write_sized_model(reference, total)
        final_size = os.path.getsize(reference)
        paths = []
        for i in range(1, 21):
            path = os.path.join(self.ckpt, f"killed_{i:02}.h5")
            paths.append(path)
            writer = subprocess.Popen([PYTHON, os.path.join(HERE, "writers.py"), "sized", path, str(total)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            target = final_size * i // 21  # spread over the save, by bytes written
            end = time.monotonic() + 60
            while time.monotonic() < end and writer.poll() is None:
                try:
                    if os.path.getsize(path) >= target:
                        break
                except FileNotFoundError:
                    pass
                time.sleep(0.0005)
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            if not os.path.exists(path):  # killed before it created the file: nothing to judge
                paths.pop()
        self.assertGreaterEqual(len(paths), 15)
        complete = content(reference)
        self.assertIsNotNone(complete, "h5py cannot read the reference save back")
        seen = {}
        for path in paths:
            v = d.wait_verdict(path, deadline=30)
            # A writer killed mid-save leaves its file open-for-write (superblock v0 status flag)
            # and longer or shorter than the end-of-file address it last recorded: in_progress or
            # truncated, re-checked after the verify timeout. A kill that lands after the last
            # metadata flush of the close (before HDF5 clears the superblock's status flag)
            # leaves a complete file: ok is right for it, and only for it — its whole logical
            # content must be the complete save's.
            if v["verdict"] == "ok":
                self.assertEqual(content(path), complete,
                                 f"{path} ({os.path.getsize(path)} bytes) verified ok but is incomplete: {v}")
            else:
                self.assertIn(v["verdict"], ("in_progress", "truncated"), v)
            seen[v["verdict"]] = seen.get(v["verdict"], 0) + 1
        print(f"\nkilled writers: {len(paths)} files, verdicts {seen}", file=sys.stderr)
        record("killed_writers", files=len(paths), verdicts=seen)
        self.assert_alive(d)


@requires(ROOT, "mounting tmpfs needs root")
class DiskFullAtRandomOffsetsTest(FaultTestCase):
    def test_enospc_at_different_offsets_is_never_ok_and_always_disk_full(self):
        sizes = ["256k", "512k", "1m", "2m", "3m", "4m", "5m", "6m"]
        for size in sizes:
            mount = os.path.join(self.ckpt, f"fs_{size}")
            os.makedirs(mount)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount], check=True)
            self.addCleanup(subprocess.run, ["umount", "-l", mount])
        d = self.start(yaml_watch("run", self.ckpt, recursive=True, settle="100ms"))
        checked = 0
        for size in sizes:
            path = os.path.join(self.ckpt, f"fs_{size}", "epoch.h5")
            r = subprocess.run([PYTHON, os.path.join(HERE, "writers.py"), "sized", path, str(8 << 20)],
                               capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0, f"the save into {size} should have failed")
            # h5py creates the file before the first block that no longer fits: a missing file
            # means the save failed for another reason, and nothing would be checked.
            self.assertTrue(os.path.exists(path), f"no file after the save into {size}: {r.stderr}")
            self.assertIn("No space left on device", r.stderr, f"the save into {size}")
            v = d.wait_verdict(path)
            self.assertNotEqual(v["verdict"], "ok", v)
            self.assertEqual(v.get("cause"), "disk_full", v)
            print(f"\nENOSPC at {size}: {v['verdict']}, cause {v.get('cause')}", file=sys.stderr)
            checked += 1
            record("disk_full", size=size, verdict=v["verdict"], cause=v.get("cause"))
        self.assertEqual(checked, len(sizes))
        self.assert_alive(d)


# Reads every group, dataset, attribute and link of an HDF5 file into one comparable structure,
# for each path read from stdin: one JSON line per path, or the line "error" when h5py raised.
# A file h5py cannot read is an error and the reader exits, so the next file is read by a fresh
# process: nothing libhdf5 kept from a failed open can touch the next file's reading.
CONTENT_SCRIPT = r"""
import h5py, hashlib, json, sys
def value(v):
    try:
        import numpy as np
        a = np.asarray(v)
        return hashlib.sha256(a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()).hexdigest()
    except Exception as e:
        return repr(v)
def content(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            entry = {"type": type(obj).__name__, "attrs": {k: value(obj.attrs[k]) for k in obj.attrs}}
            if isinstance(obj, h5py.Dataset):
                entry["data"] = value(obj[()])
            out[name] = entry
        out["/"] = {"attrs": {k: value(f.attrs[k]) for k in f.attrs}}
        f.visititems(visit)
    return json.dumps(out, sort_keys=True)
for line in sys.stdin:
    try:
        text = content(line.rstrip("\n"))
    except Exception:
        print("error", flush=True)
        sys.exit(1)
    print(text, flush=True)
"""


class ContentReader:
    """content(path): the file's whole logical content as h5py reads it, or None when h5py
    cannot read it. One reader process serves many files: the bit-flip tests compare ~400
    files, and a fresh Python importing h5py and numpy for each cost 0.3-1 s apiece, most of
    this module's run time (CI, issue 23). A flip can make libhdf5 crash inside h5py: the reader
    then dies, that file's content is None (as when a process per file exited non-zero), and the
    next file gets a new reader."""

    TIMEOUT = 60  # seconds one file may take, as subprocess.run(timeout=60) allowed before

    def __init__(self):
        self.proc = None

    def __call__(self, path):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([PYTHON, "-c", CONTENT_SCRIPT], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, bufsize=1)
        try:
            self.proc.stdin.write(path + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.close()
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.TIMEOUT)
        if not ready:
            self.close()
            raise subprocess.TimeoutExpired(CONTENT_SCRIPT, self.TIMEOUT)
        line = self.proc.stdout.readline()
        if not line or line == "error\n":  # crashed (EOF) or h5py raised: the reader is gone
            self.close()
            return None
        return line.rstrip("\n") + "\n"  # as the process-per-file version printed it

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc = None


content = ContentReader()


# Verdicts that say "this file is damaged" (verifier_crashed: libhdf5 died on it, contained).
DAMAGE_VERDICTS = ("corrupt", "truncated", "not_checkpoint", "in_progress", "nonfinite", "verifier_crashed")


class BitFlipTest(FaultTestCase):
    """A flip is "provably harmless" when the file's whole logical content — every group, link
    name, attribute value and dataset value, read by h5py — is identical to the original's. Any
    other flip that verifies `ok` at `full` is a miss."""

    def flip_and_verify(self, original, positions, strict):
        """Flips one bit at each position, a file per flip, and verifies them all at `full` in
        one `verify` run (its warm verifiers, as the daemon's: a verifier that met one flipped
        file must not let that colour the next file's verdict). Returns (detected, harmless,
        missed, hung): detected is a verdict that names damage; a miss verified ok but changed
        the content, and one at a `strict` position fails; a timeout is neither a detection nor
        a pass — it is counted apart (hung).

        One run for all flips, not a process per flip: a `verify` process costs 30 ms, but
        340 ms under ASan, where the ~880 flips of this class took 330 s of CI (issue 23)."""
        with open(original, "rb") as f:
            data = f.read()
        baseline = content(original)
        self.assertIsNotNone(baseline)
        flips = os.path.join(self.dir, "flips")
        os.makedirs(flips, exist_ok=True)
        paths = []
        for offset in positions:
            damaged = bytearray(data)
            damaged[offset] ^= 1 << (offset % 8)
            paths.append(os.path.join(flips, f"flipped_{offset:08}.h5"))
            with open(paths[-1], "wb") as f:
                f.write(damaged)
        r = subprocess.run([BIN, "verify", "--json", "--level", "full", "--timeout", "10", *paths],
                           capture_output=True, text=True, timeout=900)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        results = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([res["path"] for res in results], paths, r.stderr)
        detected, harmless, missed, hung = 0, 0, [], []
        for offset, path, res in zip(positions, paths, results):
            verdict = res["verdict"]
            if verdict == "timeout":
                hung.append(offset)
            elif verdict != "ok":
                self.assertIn(verdict, DAMAGE_VERDICTS, f"flip at offset {offset}: {res}")
                detected += 1
            elif content(path) == baseline:
                harmless += 1
            else:
                self.assertNotIn(offset, strict,
                                 f"flip at offset {offset} verified ok but changed the file's content")
                missed.append(offset)
            os.unlink(path)
        return detected, harmless, missed, hung

    def metadata_positions(self, path, count, seed):
        raw = writers.data_extents(path)
        size = os.path.getsize(path)
        inside_data = bytearray(size)
        for start, length in raw:
            inside_data[start:start + length] = b"\1" * min(length, size - start)
        metadata = [i for i in range(size) if not inside_data[i]]
        superblock = [i for i in metadata if i < writers.superblock_end(path)]
        rest = [i for i in metadata if i >= writers.superblock_end(path)]
        rng = random.Random(seed)
        return superblock, superblock + rng.sample(rest, min(count, len(rest)))

    def test_metadata_flips_in_a_checksummed_v3_file_are_caught_or_harmless(self):
        # libver="latest": superblock v3, v2 object headers, v2 B-trees — every metadata
        # structure carries a checksum, so every flip that changes content must be caught.
        path = os.path.join(self.dir, "latest.h5")
        writers.write_latest(path)
        _, positions = self.metadata_positions(path, 250, seed=3)
        detected, harmless, missed, hung = self.flip_and_verify(path, positions, strict=set(positions))
        print(f"\nv3 metadata flips: {len(positions)} positions, {detected} detected, "
              f"{harmless} harmless, {len(missed)} undetected content changes, {len(hung)} hung",
              file=sys.stderr)
        record("bit_flips", file="v3", positions=len(positions), detected=detected,
               harmless=harmless, missed=len(missed), hung=len(hung))
        self.assertEqual(missed, [])
        self.assertEqual(hung, [], "flips that made the verifier time out")
        self.assertEqual(detected + harmless, len(positions))
        self.assertGreater(detected, harmless)

    def test_metadata_flips_in_a_v0_keras_file_are_caught_where_the_format_allows(self):
        # Superblock v0 and v1 object headers have no checksums: a flip inside an attribute's
        # value (a digit of model_config's JSON) yields another valid file no reader can tell
        # apart. Strict where the structure is checkable — the superblock and the B-tree, heap
        # and symbol-node signatures — and the rest is measured (docs/reliability.md).
        path = os.path.join(self.dir, "v0.h5")
        writers.write_full_model(path, writers.dense_stack())
        with open(path, "rb") as f:
            data = f.read()
        superblock, positions = self.metadata_positions(path, 250, seed=7)
        signatures = set()
        for magic in (b"TREE", b"HEAP", b"SNOD", b"GCOL"):
            at = data.find(magic)
            while at >= 0:
                signatures.update(range(at, at + 4))
                at = data.find(magic, at + 1)
        positions += sorted(signatures - set(positions))
        strict = set(superblock) | signatures
        detected, harmless, missed, hung = self.flip_and_verify(path, positions, strict)
        print(f"\nv0 metadata flips: {len(positions)} positions, {detected} detected, "
              f"{harmless} harmless, {len(missed)} undetectable content changes, {len(hung)} hung",
              file=sys.stderr)
        record("bit_flips", file="v0", positions=len(positions), detected=detected,
               harmless=harmless, missed=len(missed), hung=len(hung))
        self.assertEqual(detected + harmless + len(missed) + len(hung), len(positions))
        self.assertGreater(detected, 3 * (len(missed) + len(hung)))


class CorpusIntoWatchTest(FaultTestCase):
    @requires(os.path.isdir(os.path.join(CORPUS, "malformed")), "no shared corpus")
    def test_every_malformed_corpus_file_gets_exactly_one_verdict_and_the_daemon_survives(self):
        d = self.start(yaml_watch("corpus", self.ckpt, settle="100ms", level="full"))
        malformed = sorted(os.listdir(os.path.join(CORPUS, "malformed")))
        expected = {}
        with open(os.path.join(CORPUS, "MANIFEST.tsv")) as f:
            header = f.readline().rstrip("\n").split("\t")
            for line in f:
                row = dict(zip(header, line.rstrip("\n").split("\t")))
                expected[os.path.basename(row["file"])] = row["expected_verdict"]
        for name in malformed:
            staging = os.path.join(self.dir, name)
            with open(os.path.join(CORPUS, "malformed", name), "rb") as src, open(staging, "wb") as dst:
                dst.write(src.read())
            os.rename(staging, os.path.join(self.ckpt, name))
        verdicts = {}
        for name in malformed:
            v = d.wait_verdict(os.path.join(self.ckpt, name), deadline=60)
            verdicts[name] = v["verdict"]
            if expected.get(name) == "not_ok":
                self.assertNotEqual(v["verdict"], "ok", name)
        self.assert_alive(d)
        # Crashes of the isolated verifier are reported as such, not as something else.
        self.assertIn("verifier_crashed", verdicts.values())
        tally = {}
        for verdict in verdicts.values():
            tally[verdict] = tally.get(verdict, 0) + 1
        print(f"\nmalformed corpus into a watch: {len(verdicts)} files, verdicts {tally}", file=sys.stderr)
        crashed = [e for e in d.verdicts() if e["verdict"] == "verifier_crashed"]
        self.assertTrue(all("killed by SIG" in e["msg"] for e in crashed))
        # Exactly one verdict each: a sentinel written last is verified after all of them.
        sentinel = os.path.join(self.ckpt, "sentinel.h5")
        writers.write_full_model(sentinel, writers.dense_stack())
        d.wait_verdict(sentinel)
        for name in malformed:
            self.assertEqual(len(d.verdicts(os.path.join(self.ckpt, name))), 1, name)
        any_rows = sorted(n for n in malformed if expected.get(n) == "any")
        record("corpus_into_watch", files=len(verdicts), verdicts=tally,
               any_rows={n: verdicts[n] for n in any_rows}, exactly_one=True)


@requires(ROOT, "a tmpfs keeps a minute of back-to-back saves off the disk")
class RacingTrainerTest(FaultTestCase):
    SECONDS = float(os.environ.get("CKPTWATCH_RACE_SECONDS", "60"))

    def test_trainer_overwriting_one_path_back_to_back_never_fails_or_alarms(self):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", self.ckpt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.ckpt])
        d = self.start(yaml_watch("race", self.ckpt, settle="0s", level="full"))
        path = os.path.join(self.ckpt, "best.h5")
        saver = subprocess.Popen([PYTHON, os.path.join(HERE, "writers.py"), "saver", path, str(256 << 20)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.addCleanup(lambda: (saver.poll() is None and saver.kill(), saver.wait()))
        self.assertEqual(saver.stdout.readline().strip(), "ready")
        saves = 0
        end = time.monotonic() + self.SECONDS
        # Back to back: every save starts while the previous one is still being verified.
        while time.monotonic() < end:
            saver.stdin.write("save\n")
            reply = saver.stdout.readline().strip()
            self.assertEqual(reply, "saved", f"save {saves + 1} failed: {reply}")
            saves += 1
        saver.stdin.close()
        saver.wait(timeout=30)
        final_size = os.path.getsize(path)
        last = d.wait_event(lambda e: e.get("event") == "verify" and e.get("path") == path
                            and e.get("verdict") == "ok" and e.get("bytes") == final_size,
                            deadline=60, what="ok verdict for the last save")
        self.assertEqual(last["verdict"], "ok")
        broken = [e for e in d.verdicts(path) if e["verdict"] != "ok"]
        self.assertEqual(broken, [], "a completed save was reported broken")
        superseded = [e for e in d.events() if e.get("event") in ("verify_superseded", "verify_deferred")]
        self.assertGreater(len(superseded), 0, "verification never overlapped a save")
        self.assertGreaterEqual(saves, 5)
        print(f"\nracing trainer: {saves} saves in {self.SECONDS:g}s, {len(superseded)} verdicts "
              f"superseded or deferred, {len(d.verdicts(path))} reported, all ok", file=sys.stderr)
        record("racing_trainer", saves=saves, seconds=self.SECONDS, failed=0,
               superseded=len(superseded), reported=len(d.verdicts(path)), broken=len(broken))
        self.assert_alive(d)


def tearDownModule():
    content.close()


if __name__ == "__main__":
    unittest.main()
