"""`ckptwatch verify -j N` (issue 26): files verified N at a time in warm verifiers give the same
lines, in the same order, as one at a time — a verifier that crashes on a malformed file is
replaced and costs no other file its verdict.

    cd tests && CKPTWATCH_BIN=$PWD/../build/ckptwatch /usr/bin/python3 run_e2e.py verify_jobs_test
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import writers
from daemon_harness import BIN

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.abspath(
    os.environ.get("CKPTWATCH_CORPUS") or os.path.join(HERE, "..", "..", "shared", "corpus"))
# libhdf5 segfaults on these (docs/reliability.md): the verifier dies, the file's verdict is
# verifier_crashed, and the files after it must not notice.
CRASHERS = ["cve-2018-13867_H5F__accum_read_Out_Of_Bound_Read.h5",
            "cve-2018-14031_H5T_copy_heap_buffer_overflow.h5"]


class VerifyJobsTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckptwatch-jobs-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def verify(self, *args):
        proc = subprocess.run([BIN, "verify", "--level", "full", *args, self.dir],
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout.splitlines(), proc.stderr

    def test_parallel_lines_equal_sequential_lines_with_crashes_among_them(self):
        layers = writers.sized_stack(64 << 10)
        for i in range(24):
            writers.write_sized_model(os.path.join(self.dir, f"m{i:02d}.h5"), 64 << 10, layers)
        with open(os.path.join(self.dir, "m05_random.h5"), "wb") as f:
            f.write(os.urandom(4096))
        with open(os.path.join(self.dir, "m00.h5"), "rb") as f:
            head = f.read(3000)
        with open(os.path.join(self.dir, "m11_cut.h5"), "wb") as f:
            f.write(head)
        crashers = [name for name in CRASHERS if os.path.exists(os.path.join(CORPUS, "malformed", name))]
        if not crashers:
            self.skipTest(f"no corpus at {CORPUS}")
        for i, name in enumerate(crashers):
            shutil.copy(os.path.join(CORPUS, "malformed", name), os.path.join(self.dir, f"m{7 + 6 * i:02d}_{name}"))
        sequential = self.verify("-j", "1")
        for jobs in ("3", "8"):
            parallel = self.verify("-j", jobs)
            self.assertEqual(parallel, sequential, f"-j {jobs}")
        code, lines, _ = sequential
        self.assertEqual(code, 1)
        verdicts = {line.split(": ")[0].rsplit("/", 1)[1]: line.split(": ")[1] for line in lines}
        self.assertEqual(sorted(verdicts), sorted(os.listdir(self.dir)))
        for name, verdict in verdicts.items():
            expected = ("verifier_crashed" if name.endswith(tuple(crashers)) else
                        "not_checkpoint" if "random" in name else "truncated" if "cut" in name else "ok")
            self.assertEqual(verdict, expected, name)

    def test_bad_jobs_values_are_usage_errors(self):
        for value in ("0", "x", "-3", "2000"):
            code, _, err = self.verify("-j", value)
            self.assertEqual(code, 2, value)
            self.assertIn("--jobs", err)


if __name__ == "__main__":
    unittest.main()
