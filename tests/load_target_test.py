"""End-to-end tests of the load prediction (issue 15): `ckptwatch verify --load-target` on files
written by the real h5py and torch.save with real Keras 1/2/3 configs, and on the shared corpus.

Run with Debian's /usr/bin/python3 (h5py, torch 1.13): `cd tests && /usr/bin/python3 -m unittest -v
load_target_test`. Environment as verify_test.py.
"""

import base64
import csv
import json
import marshal
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import writers  # noqa: E402

BIN = os.path.abspath(
    os.environ.get("CKPTWATCH_BIN") or os.path.join(HERE, "..", "build", "ckptwatch")
)
CORPUS = os.path.abspath(
    os.environ.get("CKPTWATCH_CORPUS") or os.path.join(HERE, "..", "..", "shared", "corpus")
)


def verify(path, target=None):
    """The JSON result of `ckptwatch verify --json [--load-target target] path`."""
    args = [BIN, "verify", "--json"] + (["--load-target", target] if target else []) + [path]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(lines[0])


def layer(class_name, name, config=None):
    return {"class_name": class_name, "config": {"name": name, **(config or {})}}


def keras1_sequential(*layers):
    """A Keras 1.2 model_config: arguments as Keras 1 named them."""
    return {"class_name": "Sequential", "config": list(layers)}


def marshalled(fn):
    """What Keras 2's func_dump writes for a lambda: base64 of marshal.dumps(code)."""
    return base64.encodebytes(marshal.dumps(fn.__code__)).decode("ascii")


class LoadTargetTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertLoad(self, result, outcome, *words):
        self.assertEqual(result["verdict"], "ok", result)
        self.assertIsNotNone(result["load"], result)
        self.assertEqual(result["load"]["outcome"], outcome, result["load"])
        for word in words:
            self.assertIn(word, result["load"]["reason"])

    def test_keras1_time_distributed_dense_does_not_load_in_keras_2_15(self):
        path = self.path("keras1_tdd.h5")
        config = keras1_sequential(
            layer("TimeDistributedDense", "tdd_1", {"output_dim": 32, "init": "glorot_uniform",
                                                    "W_regularizer": None}),
            layer("Activation", "activation_1", {"activation": "relu"}),
        )
        writers.write_full_model(path, keras_version="1.2.2", model_config=config)
        plain = verify(path)
        self.assertEqual(plain["load"], {"outcome": "loads", "target": None, "reason": ""})
        judged = verify(path, "keras=2.15")
        self.assertLoad(judged, "incompatible", "TimeDistributedDense (last in 1.2.2)",
                        "Keras 1 model config")
        self.assertEqual(judged["load"]["target"], "keras=2.15")
        # The verdict is about the bytes, whatever the target.
        self.assertEqual({k: v for k, v in plain.items() if k not in ("load", "elapsed_ms")},
                         {k: v for k, v in judged.items() if k not in ("load", "elapsed_ms")})
        self.assertIn("TimeDistributedDense", judged["keras"]["builtin_classes"])

    def test_keras1_merge_is_gone_from_tf_keras_and_keras3(self):
        path = self.path("keras1_merge.h5")
        config = {"class_name": "Model", "config": {"layers": [
            layer("Dense", "a", {"output_dim": 8}), layer("Dense", "b", {"output_dim": 8}),
            layer("Merge", "merge_1", {"mode": "concat", "concat_axis": -1}),
        ]}}
        writers.write_full_model(path, keras_version="1.2.2", model_config=config)
        self.assertLoad(verify(path, "keras=2.15"), "incompatible", "Merge")
        self.assertLoad(verify(path, "keras=3.6"), "incompatible", "Merge")
        self.assertLoad(verify(path, "keras=2.1"), "loads")

    def test_lambda_bytecode_is_bound_to_python_and_refused_by_keras3(self):
        path = self.path("keras2_lambda.h5")
        layers = writers.dense_stack()
        config = writers.keras2_model_config(layers)
        config["config"]["layers"].append({"class_name": "Lambda", "config": {
            "name": "lambda_1", "trainable": True, "dtype": "float32",
            "function": [marshalled(lambda x: x * 2.0), None, None], "function_type": "lambda",
            "module": "__main__", "output_shape": None, "output_shape_type": "raw",
            "output_shape_module": None, "arguments": {}}})
        writers.write_full_model(path, layers, keras_version="2.3.1", model_config=config)
        result = verify(path, "keras=2.15,python=3.11")
        self.assertLoad(result, "loads", "marshalled Python bytecode", "Python minor version",
                        "3.11", "safe_mode=False")
        self.assertEqual((result["keras"]["lambdas"], result["keras"]["lambda_bytecode"]), (1, 1))
        self.assertLoad(verify(path, "keras=3.6"), "incompatible",
                        "Requested the deserialization of a Lambda layer")
        self.assertLoad(verify(path), "loads", "marshalled Python bytecode")

    def test_keras_archives_across_generations(self):
        tf215 = self.path("tf215.keras")
        layers = writers.dense_stack()
        config = writers.keras3_config(layers)
        config.update(module="keras.src.engine.functional", class_name="Functional")
        writers.write_keras3_zip(tf215, layers, keras_version="2.15.0", config=config)
        self.assertLoad(verify(tf215, "keras=3.6"), "incompatible",
                        "keras.src.engine.functional cannot be imported")
        self.assertLoad(verify(tf215, "keras=2.15"), "loads")
        k3 = self.path("k3.keras")
        writers.write_keras3_zip(k3)
        self.assertLoad(verify(k3, "keras=2.15"), "incompatible", "other generation")
        self.assertLoad(verify(k3, "keras=2.9"), "incompatible", "cannot read a .keras archive")
        self.assertLoad(verify(k3, "keras=3.6"), "loads")

    def test_plain_keras2_dense_loads_in_keras3(self):
        path = self.path("dense.h5")
        writers.write_full_model(path, keras_version="2.3.1")
        result = verify(path, "keras=3.6")
        self.assertLoad(result, "loads")
        self.assertEqual(result["load"]["reason"], "")

    def test_torch_pickle_with_main_class_needs_its_code(self):
        path = self.path("net.pt")
        script = textwrap.dedent(f"""
            import torch
            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(4, 2)
            torch.save(Net(), {path!r})
        """)
        subprocess.run(["/usr/bin/python3", "-c", script], check=True, timeout=300)
        result = verify(path, "keras=3.6")
        self.assertIn("__main__.Net", result["pickle_globals"])
        self.assertLoad(result, "needs_custom_objects", "__main__.Net", "weights_only=True")
        state = self.path("state.pt")
        subprocess.run(["/usr/bin/python3", "-c",
                        f"import torch; torch.save(torch.nn.Linear(4, 2).state_dict(), {state!r})"],
                       check=True, timeout=300)
        self.assertLoad(verify(state), "loads")

    def test_bad_target_is_a_usage_error(self):
        proc = subprocess.run([BIN, "verify", "--load-target", "keras=two", self.dir],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("not a version", proc.stderr)

    def test_text_line_names_the_outcome(self):
        path = self.path("keras1_tdd.h5")
        writers.write_full_model(path, keras_version="1.2.2", model_config=keras1_sequential(
            layer("TimeDistributedDense", "tdd_1", {"output_dim": 4})))
        proc = subprocess.run([BIN, "verify", "--load-target", "keras=2.15", path],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout)  # the bytes are fine
        self.assertIn(": ok: ", proc.stdout)
        self.assertIn("[load with keras=2.15: incompatible: ", proc.stdout)
        # Named from the file: this config's only Keras 1 argument is output_dim.
        self.assertIn("a Keras 1 model config whose layers use output_dim: ", proc.stdout)
        self.assertNotIn("W_regularizer", proc.stdout)


# Real files of the corpus: (file, target) -> load outcome and a word of its reason.
CORPUS_LOADS = [
    ("valid/keras1.1.2_tf_cnn_sequential_full.h5", "keras=2.15", "incompatible", "Keras 1 model config"),
    ("valid/keras1.1.2_tf_cnn_sequential_full.h5", "keras=2.2", "loads", ""),
    ("valid/keras2.1.3_theano_backend_conv2d_full.h5", "keras=2.15", "incompatible", "theano"),
    ("valid/keras2.1.3_theano_backend_conv2d_full.h5", "keras=2.3", "loads", ""),
    ("valid/keras2.3.1_lstm_full_with_optimizer.h5", "keras=3.6", "loads", ""),
    ("valid/keras3.5.0_legacy_h5_ann_full.h5", "keras=2.15", "incompatible", "newer major"),
    ("valid/keras3.5.0_legacy_h5_ann_full.h5", "keras=3.6", "loads", ""),
    ("valid/tfkeras2.2.4-tf_custom_GarNet_full.h5", "keras=2.15", "needs_custom_objects", "GarNet"),
    ("valid/tfkeras2.4.0_teachable_machine_mobilenet_full.h5", "keras=3.6", "loads", ""),
    ("valid/tfkeras2.4.0_teachable_machine_mobilenet_full.h5", "keras=2.15", "loads", ""),
    ("valid/keras3.14.1_custom_QKeras_QDense.keras", "keras=3.6", "needs_custom_objects", "QDense"),
    ("valid/keras3.14.1_custom_QKeras_QDense.keras", "keras=2.15", "incompatible", "other generation"),
]


class CorpusLoadTest(unittest.TestCase):
    def test_manifest_verdicts_hold_with_any_target(self):
        with open(os.path.join(CORPUS, "MANIFEST.tsv"), newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        for row in rows:
            if not row["file"].startswith("valid/"):
                continue
            for target in ("keras=2.15", "keras=3.6,python=3.11"):
                with self.subTest(file=row["file"], target=target):
                    result = verify(os.path.join(CORPUS, row["file"]), target)
                    self.assertEqual(result["verdict"], row["expected_verdict"], result["reason"])
                    self.assertIsNotNone(result["load"])

    def test_corpus_load_outcomes(self):
        for name, target, outcome, word in CORPUS_LOADS:
            with self.subTest(file=name, target=target):
                result = verify(os.path.join(CORPUS, name), target)
                self.assertEqual(result["verdict"], "ok")
                self.assertEqual(result["load"]["outcome"], outcome, result["load"])
                self.assertIn(word, result["load"]["reason"])


if __name__ == "__main__":
    unittest.main()
