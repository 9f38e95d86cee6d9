"""End-to-end tests of checkpoint sets (docs/checkpoint-sets.md): `ckptwatch verify` gives each
set one verdict, and `ckptwatch latest DIR` names the newest complete checkpoint.

The shared corpus of real sets (CKPTWATCH_SETS_CORPUS, default ../../shared/corpus-sets) must get
the verdicts its MANIFEST.tsv expects; HF sharded sets are written here by the safetensors spec
(format_writers.py), DeepSpeed, Megatron and Trainer files with the real torch.save (Debian's
torch 1.13 at /usr/bin/python3). Run: cd tests && /usr/bin/python3 run_e2e.py sets_test
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import format_writers  # noqa: E402
from evidence import requires  # noqa: E402

import numpy as np  # noqa: E402

BIN = os.path.abspath(os.environ.get("CKPTWATCH_BIN") or os.path.join(HERE, "..", "build", "ckptwatch"))
SETS = os.path.abspath(
    os.environ.get("CKPTWATCH_SETS_CORPUS") or os.path.join(HERE, "..", "..", "shared", "corpus-sets"))

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


def setUpModule():
    if not os.access(BIN, os.X_OK):
        raise RuntimeError(f"ckptwatch binary not found at {BIN}; build it or set CKPTWATCH_BIN")


def run(*args):
    proc = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def verify_records(*paths, level="structure"):
    """(exit code, checkpoint records, resume_pointer records, stderr) of `verify --json`."""
    code, out, err = run("verify", "--json", "--level", level, *paths)
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    sets = [r for r in records if r.get("kind") == "checkpoint"]
    pointers = [r for r in records if r.get("kind") == "resume_pointer"]
    return code, sets, pointers, err


def write_sharded(directory, tensors_per_shard=2, shards=2, seed=3):
    """An HF sharded safetensors set as save_pretrained writes it: shards, then the index."""
    rng = np.random.default_rng(seed)
    weight_map, total = {}, 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {}
        for t in range(tensors_per_shard):
            key = f"layers.{s}.{t}.weight"
            tensors[key] = format_writers.array_tensor(rng.standard_normal((8, 4)).astype(np.float32))
            weight_map[key] = name
            total += 8 * 4 * 4
        format_writers.write_safetensors(os.path.join(directory, name), tensors, {"format": "pt"})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return weight_map


def truncate_half(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


class CorpusSetsTest(unittest.TestCase):
    """Every set of the shared corpus of real sets gets its expected verdict; none crashes us."""

    @requires(os.path.exists(os.path.join(SETS, "MANIFEST.tsv")), f"no corpus-sets at {SETS}")
    def test_every_set_gets_its_manifest_verdict(self):
        expected = {}
        with open(os.path.join(SETS, "MANIFEST.tsv"), newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                expected[os.path.join(row["file"].split("/")[0], row["set"])] = row["set_expected"]
        self.assertGreaterEqual(len(expected), 13)
        for level in ("structure", "full"):
            for rel, want in sorted(expected.items()):
                with self.subTest(set=rel, level=level, expected=want):
                    code, sets, _, err = verify_records(os.path.join(SETS, rel), level=level)
                    self.assertIn(code, (0, 1), err)  # never a crash or a usage error
                    if want == "undetectable":
                        continue
                    self.assertTrue(sets, f"no set recognised: {err}")
                    verdicts = {s["verdict"] for s in sets}
                    if want == "complete":
                        self.assertEqual(verdicts, {"ok"}, sets)
                    else:
                        self.assertIn(want, verdicts, sets)
                        self.assertEqual(code, 1)
                        broken = [s for s in sets if s["verdict"] != "ok"]
                        self.assertTrue(all(s["reason"] and (s["missing"] or s["at_fault"]) for s in broken), broken)


class HfShardedTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckptwatch-sets-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.map = write_sharded(self.dir)
        self.index = os.path.join(self.dir, "model.safetensors.index.json")

    def only_set(self, **kw):
        code, sets, _, err = verify_records(self.dir, **kw)
        self.assertEqual(len(sets), 1, (sets, err))
        self.assertEqual(sets[0]["layout"], "hf_sharded")
        self.assertEqual(sets[0]["path"], self.index)
        return code, sets[0]

    def test_complete_set_is_ok(self):
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (0, "ok"))
        self.assertEqual(len(s["members"]), 3)

    def test_missing_shard_is_incomplete_and_named(self):
        os.unlink(os.path.join(self.dir, "model-00002-of-00002.safetensors"))
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (1, "incomplete"))
        self.assertEqual(s["missing"], ["model-00002-of-00002.safetensors"])

    def test_truncated_shard_is_incomplete_and_named(self):
        truncate_half(os.path.join(self.dir, "model-00001-of-00002.safetensors"))
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (1, "incomplete"))
        self.assertEqual(s["at_fault"], ["model-00001-of-00002.safetensors"])
        self.assertIn("truncated", s["reason"])

    def test_index_naming_a_tensor_no_shard_holds_is_inconsistent(self):
        self.map["lm_head.weight"] = "model-00002-of-00002.safetensors"
        with open(self.index, "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": self.map}, f)
        for level in ("header", "structure", "full"):
            code, s = self.only_set(level=level)
            self.assertEqual((code, s["verdict"]), (1, "inconsistent"), level)
            self.assertIn("lm_head.weight", s["reason"])

    def test_shard_name_leaving_the_directory_is_inconsistent_not_followed(self):
        self.map["layers.0.0.weight"] = "../outside.safetensors"
        with open(self.index, "w") as f:
            json.dump({"weight_map": self.map}, f)
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (1, "inconsistent"))

    def test_text_output_is_one_line_per_set(self):
        code, out, _ = run("verify", self.dir)
        self.assertEqual(code, 0)
        self.assertIn(f"{self.index}: checkpoint hf_sharded ok (3 members)", out.splitlines())

    def test_files_named_one_by_one_bring_in_each_set_once(self):
        # `verify a/* b/*` and the same files interleaved: a directory's sets are found once while
        # its files come one after another, and found again when the command comes back to it.
        other = os.path.join(self.dir, "other")
        os.mkdir(other)
        write_sharded(other, shards=3, seed=4)
        os.unlink(os.path.join(other, "model-00003-of-00003.safetensors"))
        mine = sorted(os.path.join(self.dir, n) for n in self.map.values())
        theirs = sorted(os.path.join(other, n) for n in os.listdir(other) if n.endswith(".safetensors"))
        for order in (mine + theirs, [mine[0], theirs[0], mine[1], theirs[1]]):
            code, sets, _, err = verify_records(*order)
            self.assertEqual(code, 1, err)
            verdicts = {s["path"]: s["verdict"] for s in sets}
            self.assertEqual(len(sets), 2, (order, sets))
            self.assertEqual(verdicts, {self.index: "ok",
                                        os.path.join(other, "model.safetensors.index.json"):
                                        "incomplete"}, order)
        # A file of a directory with no set brings in none, even right after one that has.
        loose = tempfile.mkdtemp(prefix="ckptwatch-loose-")
        self.addCleanup(shutil.rmtree, loose)
        shutil.copy(mine[0], os.path.join(loose, "lone.safetensors"))
        code, sets, _, err = verify_records(mine[0], os.path.join(loose, "lone.safetensors"))
        self.assertEqual((code, [s["path"] for s in sets]), (0, [self.index]), err)


@requires(HAVE_TORCH, "torch is not importable (use /usr/bin/python3)")
def write_keras_sharded(directory, shards=2, layers_per_shard=2, seed=5):
    """Keras 3's save_weights("model.weights.json", max_shard_size=...) as ShardedH5IOStore
    writes it (keras/src/saving/saving_lib.py): model_NNNNN.weights.h5 shards one after another,
    each layer's variables as datasets "0", "1" under its group, then the index last."""
    import h5py
    rng = np.random.default_rng(seed)
    weight_map = {}
    for s in range(shards):
        name = f"model_{s:05d}.weights.h5"
        with h5py.File(os.path.join(directory, name), "w") as f:
            for layer in range(layers_per_shard):
                group = f.create_group(f"layers/dense_{s}_{layer}/vars")
                group["0"] = rng.standard_normal((16, 8)).astype(np.float32)
                group["1"] = np.zeros(8, np.float32)
                weight_map[group.name] = name
    with open(os.path.join(directory, "model.weights.json"), "w") as f:
        json.dump({"metadata": {"total_size": float(shards * layers_per_shard * (16 * 8 + 8) * 4)},
                   "weight_map": weight_map}, f, indent=4)


class KerasShardedTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckptwatch-sets-")
        self.addCleanup(shutil.rmtree, self.dir)
        write_keras_sharded(self.dir)

    def only_set(self):
        code, sets, _, err = verify_records(self.dir)
        self.assertEqual(len(sets), 1, (sets, err))
        self.assertEqual(sets[0]["layout"], "keras_sharded")
        self.assertEqual(sets[0]["path"], os.path.join(self.dir, "model.weights.json"))
        return code, sets[0]

    def test_complete_save_is_ok(self):
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (0, "ok"), s)
        self.assertEqual(len(s["members"]), 3)

    def test_missing_shard_is_incomplete_and_named(self):
        os.unlink(os.path.join(self.dir, "model_00001.weights.h5"))
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (1, "incomplete"))
        self.assertEqual(s["missing"], ["model_00001.weights.h5"])

    def test_truncated_shard_is_incomplete_and_named(self):
        truncate_half(os.path.join(self.dir, "model_00000.weights.h5"))
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (1, "incomplete"), s)
        self.assertEqual(s["at_fault"], ["model_00000.weights.h5"])


class OrbaxTest(unittest.TestCase):
    """Orbax step directories laid out as Orbax's own compatibility checkpoints are (a composite
    step: _CHECKPOINT_METADATA, the v1 marker, a JSON item and a PyTree item over two processes).
    No Orbax here (no PyPI): the files' contents are placeholders; only the layout is judged."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckptwatch-sets-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.step = os.path.join(self.dir, "100")
        files = {"_CHECKPOINT_METADATA": json.dumps({"item_handlers": {"state": "PyTreeHandler"},
                                                     "commit_timestamp_nsecs": 1}),
                 "orbax.checkpoint": "", "metadata/data.json": "{}", "state/_METADATA": "{}",
                 "state/_sharding": "{}", "state/manifest.ocdbt": "m", "state/d/6b31": "d"}
        for p in (0, 1):
            files[f"state/ocdbt.process_{p}/manifest.ocdbt"] = "m"
            files[f"state/ocdbt.process_{p}/d/1ac9"] = "d"
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(self.step, rel)), exist_ok=True)
            with open(os.path.join(self.step, rel), "w") as f:
                f.write(text)

    def only_set(self):
        code, sets, _, err = verify_records(self.dir)
        self.assertEqual(len(sets), 1, (sets, err))
        self.assertEqual((sets[0]["layout"], sets[0]["path"]), ("orbax", self.step))
        return code, sets[0]

    def test_complete_step_is_ok(self):
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"], s.get("step")), (0, "ok", 100), s)

    def test_a_process_store_missing_is_incomplete_and_named(self):
        shutil.rmtree(os.path.join(self.step, "state", "ocdbt.process_1"))
        os.makedirs(os.path.join(self.step, "state", "ocdbt.process_2", "d"))
        with open(os.path.join(self.step, "state", "ocdbt.process_2", "manifest.ocdbt"), "w") as f:
            f.write("m")
        code, s = self.only_set()
        self.assertEqual((code, s["verdict"]), (1, "incomplete"))
        self.assertEqual(s["missing"], ["state/ocdbt.process_1/"])


class DeepSpeedTest(unittest.TestCase):
    """A DeepSpeed-style save: mp_rank_00_model_states.pt, ZeRO optimizer states of 2 data-parallel
    ranks, then SAVE_DIR/latest, each written with the real torch.save."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckptwatch-ds-")
        self.addCleanup(shutil.rmtree, self.dir)

    def save(self, step, dp=2):
        tag = os.path.join(self.dir, f"global_step{step}")
        os.mkdir(tag)
        torch.manual_seed(step)
        torch.save({"module": {"w": torch.randn(16, 4)}, "dp_world_size": dp, "mp_world_size": 1,
                    "global_steps": step}, os.path.join(tag, "mp_rank_00_model_states.pt"))
        for rank in range(dp):
            torch.save({"optimizer_state_dict": {"fp32": torch.randn(32)}},
                       os.path.join(tag, f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"))
        with open(os.path.join(self.dir, "latest"), "w") as f:
            f.write(f"global_step{step}")
        return tag

    def test_complete_save_is_ok(self):
        tag = self.save(10)
        code, sets, pointers, err = verify_records(tag)
        self.assertEqual(code, 0, err)
        self.assertEqual([(s["layout"], s["verdict"], s["step"]) for s in sets], [("deepspeed", "ok", 10)])
        self.assertEqual(len(sets[0]["members"]), 3)

    def test_missing_zero_rank_is_incomplete(self):
        tag = self.save(10, dp=3)
        os.unlink(os.path.join(tag, "zero_pp_rank_1_mp_rank_00_optim_states.pt"))
        code, sets, _, _ = verify_records(tag)
        self.assertEqual((code, sets[0]["verdict"]), (1, "incomplete"))
        self.assertEqual(sets[0]["missing"], ["zero_pp_rank_1_mp_rank_00_optim_states.pt"])

    def test_truncated_model_states_is_incomplete(self):
        tag = self.save(10)
        truncate_half(os.path.join(tag, "mp_rank_00_model_states.pt"))
        code, sets, _, _ = verify_records(tag)
        self.assertEqual((code, sets[0]["verdict"]), (1, "incomplete"))
        self.assertEqual(sets[0]["at_fault"], ["mp_rank_00_model_states.pt"])

    def test_latest_naming_a_broken_save_names_the_last_complete_one(self):
        good = self.save(10)
        broken = self.save(20)  # `latest` now names global_step20
        os.unlink(os.path.join(broken, "zero_pp_rank_0_mp_rank_00_optim_states.pt"))
        os.utime(good, ns=(1_000_000_000, 1_000_000_000))
        code, sets, pointers, _ = verify_records(self.dir)
        self.assertEqual(code, 1)
        self.assertEqual(sorted((s["path"], s["verdict"]) for s in sets), [(good, "ok"), (broken, "incomplete")])
        self.assertEqual(len(pointers), 1)
        p = pointers[0]
        self.assertEqual((p["pointer"], p["verdict"], p["names"], p["last_complete"]),
                         ("deepspeed_latest", "incomplete", broken, good))
        self.assertIn("resume will", p["reason"])
        code, out, err = run("latest", self.dir)
        self.assertEqual((code, out.strip()), (0, good), err)
        self.assertIn("resume will", err)

    def test_save_not_yet_named_by_latest_is_not_committed(self):
        self.save(10)
        tag = self.save(20)
        with open(os.path.join(self.dir, "latest"), "w") as f:
            f.write("global_step10")
        code, sets, _, _ = verify_records(tag)
        self.assertEqual((code, sets[0]["verdict"]), (1, "incomplete"))
        self.assertIn("not committed", sets[0]["reason"])


@requires(HAVE_TORCH, "torch is not importable (use /usr/bin/python3)")
class MegatronTest(unittest.TestCase):
    def test_rank_directory_without_its_file_is_incomplete(self):
        root = tempfile.mkdtemp(prefix="ckptwatch-mg-")
        self.addCleanup(shutil.rmtree, root)
        it = os.path.join(root, "iter_0000100")
        for tp in range(2):
            os.makedirs(os.path.join(it, f"mp_rank_{tp:02d}"))
            torch.save({"model": {"w": torch.randn(4)}, "iteration": 100},
                       os.path.join(it, f"mp_rank_{tp:02d}", "model_optim_rng.pt"))
        with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w") as f:
            f.write("100")
        code, sets, pointers, _ = verify_records(root)
        self.assertEqual((code, [(s["layout"], s["verdict"]) for s in sets]), (0, [("megatron", "ok")]))
        self.assertEqual([p["verdict"] for p in pointers], ["ok"])
        os.unlink(os.path.join(it, "mp_rank_01", "model_optim_rng.pt"))
        code, sets, pointers, _ = verify_records(root)
        self.assertEqual((code, sets[0]["verdict"], sets[0]["missing"]), (1, "incomplete", ["mp_rank_01/model_optim_rng.pt"]))
        self.assertEqual(pointers[0]["verdict"], "incomplete")


@requires(HAVE_TORCH, "torch is not importable (use /usr/bin/python3)")
class LatestTest(unittest.TestCase):
    """`ckptwatch latest` on an HF Trainer output directory, with no daemon running."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckptwatch-latest-")
        self.addCleanup(shutil.rmtree, self.dir)

    def checkpoint(self, step, commit=True, when=None):
        """checkpoint-N in the Trainer's write order: weights, optimizer, scheduler, RNG, state."""
        d = os.path.join(self.dir, f"checkpoint-{step}")
        os.mkdir(d)
        rng = np.random.default_rng(step)
        format_writers.write_safetensors(
            os.path.join(d, "model.safetensors"),
            {"w": format_writers.array_tensor(rng.standard_normal((4, 4)).astype(np.float32))}, {"format": "pt"})
        torch.save({"state": {0: {"exp_avg": torch.zeros(4, 4)}}, "param_groups": [{"lr": 1e-3}]},
                   os.path.join(d, "optimizer.pt"))
        torch.save({"last_epoch": step}, os.path.join(d, "scheduler.pt"))
        torch.save({"python": 1, "cpu": torch.get_rng_state()}, os.path.join(d, "rng_state.pth"))
        if commit:
            with open(os.path.join(d, "trainer_state.json"), "w") as f:
                json.dump({"global_step": step, "log_history": []}, f)
        if when is not None:
            for name in os.listdir(d) + [""]:
                os.utime(os.path.join(d, name), ns=(when, when))
        return d

    def test_picks_the_newest_complete_checkpoint_over_an_incomplete_newer_one(self):
        five = self.checkpoint(5, when=5_000_000_000)
        six = self.checkpoint(6, commit=False, when=6_000_000_000)
        code, out, err = run("latest", self.dir)
        self.assertEqual((code, out), (0, five + "\n"), err)
        self.assertIn(f"skipping {six}: incomplete: trainer_state.json is missing", err)
        code, out, _ = run("latest", "--json", self.dir)
        record = json.loads(out)
        self.assertEqual((code, record["path"], record["layout"], record["step"]), (0, five, "hf_trainer", 5))
        self.assertEqual([s["path"] for s in record["skipped"]], [six])
        # verify says the same about each, one record per set.
        code, sets, _, _ = verify_records(self.dir)
        self.assertEqual(sorted((s["path"], s["verdict"]) for s in sets), [(five, "ok"), (six, "incomplete")])

    def test_truncated_optimizer_makes_the_newest_incomplete(self):
        five = self.checkpoint(5, when=5_000_000_000)
        six = self.checkpoint(6, when=6_000_000_000)
        truncate_half(os.path.join(six, "optimizer.pt"))
        code, out, err = run("latest", self.dir)
        self.assertEqual((code, out.strip()), (0, five), err)
        self.assertIn("optimizer.pt", err)

    def test_exit_1_when_none_is_complete_and_2_on_error(self):
        self.checkpoint(5, commit=False)
        self.checkpoint(6, commit=False)
        code, out, err = run("latest", self.dir)
        self.assertEqual((code, out), (1, ""), err)
        self.assertIn("no complete checkpoint", err)
        code, _, err = run("latest", os.path.join(self.dir, "nonexistent"))
        self.assertEqual(code, 2, err)
        code, _, _ = run("latest")
        self.assertEqual(code, 2)

    def test_single_file_checkpoints_count(self):
        torch.save({"w": torch.randn(3)}, os.path.join(self.dir, "epoch=1.ckpt"))
        older = self.checkpoint(5, when=1_000_000_000)
        code, out, _ = run("latest", self.dir)
        self.assertEqual((code, out.strip()), (0, os.path.join(self.dir, "epoch=1.ckpt")))
        truncate_half(os.path.join(self.dir, "epoch=1.ckpt"))
        code, out, err = run("latest", self.dir)
        self.assertEqual((code, out.strip()), (0, older), err)


if __name__ == "__main__":
    unittest.main()
