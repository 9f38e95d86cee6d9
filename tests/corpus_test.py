"""End-to-end test of `ckptwatch verify` on the shared corpus: every file of its MANIFEST.tsv gets
the verdict the manifest expects, at `full`, through the real binary (verify_test.py's helpers).

Environment as verify_test.py: CKPTWATCH_BIN, CKPTWATCH_CORPUS (default ../../shared/corpus).
`cd tests && /usr/bin/python3 run_e2e.py corpus_test`.
"""

import concurrent.futures
import csv
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import h5py_loadability  # noqa: E402  (needs HERE on sys.path)
from evidence import requires  # noqa: E402
from verify_test import CORPUS, JSON_KEYS, describe, parse_json_lines, run, setUpModule  # noqa: E402,F401


# Corpus rows the manifest marks `any`: damage libhdf5 1.10.8 reads without an error. Pinned, so
# that a change either way shows: no check of ours catches the bad message count
# (docs/reliability.md); the CVE file's dataset has a reference type h5py cannot read.
ANY_ROW_VERDICTS = {
    "malformed/hdf5test_tbad_msg_count.h5": "ok",
    "malformed/cve-2024-29158_Segmentation_fault_stack_buffer_overflow_in_H5FL.h5": "corrupt",
}

# The reason the inspector gives for a datatype no loader reads (LoadableDatatypes).
DATATYPE_REASON = re.compile(r"^(dataset|attribute) '[^']*'( of '[^']*')? has an? .*datatype")


@requires(os.path.isfile(os.path.join(CORPUS, "MANIFEST.tsv")), f"no corpus at {CORPUS}")
class CorpusTest(unittest.TestCase):
    def test_every_corpus_file_gets_its_expected_verdict(self):
        with open(os.path.join(CORPUS, "MANIFEST.tsv"), newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        self.assertTrue(rows, "empty MANIFEST.tsv")

        def check(row):
            path = os.path.join(CORPUS, row["file"])
            args = ["verify", "--json", "--level", "full", "--timeout", "20", path]
            try:
                return run(args, timeout=90)
            except subprocess.TimeoutExpired as e:
                return e

        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            procs = list(pool.map(check, rows))

        for row, proc in zip(rows, procs):
            with self.subTest(file=row["file"], expected=row["expected_verdict"]):
                self.assertNotIsInstance(proc, subprocess.TimeoutExpired, f"hung: {proc}")
                self.assertIn(proc.returncode, (0, 1), describe(proc))
                results = parse_json_lines(proc)
                self.assertEqual(len(results), 1, describe(proc))
                r = results[0]
                self.assertEqual(set(r), JSON_KEYS, describe(proc))
                self.assertEqual(proc.returncode, 0 if r["ok"] else 1, describe(proc))
                if row["expected_verdict"] == "ok":
                    self.assertEqual(r["verdict"], "ok", describe(proc))
                elif row["expected_verdict"] == "not_ok":
                    self.assertNotEqual(r["verdict"], "ok", describe(proc))
                else:
                    self.assertEqual(row["expected_verdict"], "any", row)
                    self.assertIn(row["file"], ANY_ROW_VERDICTS,
                                  "a new 'any' corpus row: pin its verdict in ANY_ROW_VERDICTS")
                    self.assertEqual(r["verdict"], ANY_ROW_VERDICTS[row["file"]], describe(proc))
                expected_classes = {c for c in row["expected_custom_classes"].split(",") if c}
                if expected_classes:
                    self.assertIsNotNone(r["keras"], describe(proc))
                    self.assertLessEqual(
                        expected_classes, set(r["keras"]["custom_classes"]), describe(proc)
                    )

    def test_structure_is_corrupt_exactly_where_h5py_has_no_numpy_type_for_a_datatype(self):
        """h5py, in a child per file, types and reads every dataset and attribute; where it has no
        NumPy type for one, `structure` says corrupt for a datatype; where it read everything, no
        datatype is blamed."""
        with open(os.path.join(CORPUS, "MANIFEST.tsv"), newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))

        def check(row):
            path = os.path.join(CORPUS, row["file"])
            probe = h5py_loadability.probe(path, timeout=30)
            args = ["verify", "--json", "--level", "structure", "--timeout", "20", path]
            return probe, run(args, timeout=90)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(check, rows))

        failing = 0
        for row, (probe, proc) in zip(rows, results):
            with self.subTest(file=row["file"], h5py=h5py_loadability.summary(probe)):
                r = parse_json_lines(proc)[0]
                datatype_errors = h5py_loadability.datatype_errors(probe)
                if datatype_errors:
                    failing += 1
                    self.assertEqual(r["verdict"], "corrupt", describe(proc))
                    self.assertRegex(r["reason"], DATATYPE_REASON, describe(proc))
                    self.assertIn(datatype_errors[0]["object"].split(" attribute ")[0],
                                  r["reason"], describe(proc))
                elif probe["outcome"] == "opened" and not probe["errors"] and not probe["detail"]:
                    self.assertNotRegex(r["reason"], DATATYPE_REASON, describe(proc))
        self.assertGreater(failing, 0, "no corpus file h5py cannot type: the test shows nothing")


if __name__ == "__main__":
    unittest.main()
