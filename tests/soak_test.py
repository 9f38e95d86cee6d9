"""The soak (bench/soak.py) in its short CI form: 2 minutes, 4 writers, 10 % broken files, a reload
every 20 s and a log rotation every 40 s. The full 15-minute run is `bench/soak.py`."""

import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("CKPTWATCH_BIN", os.path.join(HERE, "..", "build", "ckptwatch"))


class SoakTest(unittest.TestCase):
    def test_two_minutes_of_writers_reloads_and_rotations(self):
        minutes = os.environ.get("CKPTWATCH_SOAK_MINUTES", "2")
        r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "bench", "soak.py"),
                            "--minutes", minutes, "--reload-every", "20", "--rotate-every", "40",
                            "--bin", BIN], capture_output=True, text=True, timeout=600)
        print(r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
