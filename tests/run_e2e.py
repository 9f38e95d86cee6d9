"""Runs one end-to-end module the way CTest does and says what did not run.

`python3 -m unittest` exits 0 when every test skipped; this exits 77 then (CTest shows the
module as Skipped), and under CI (CI=true) any skipped test fails the module: a skip is missing
evidence (see evidence.py).

usage: run_e2e.py MODULE [TEST_NAME...]     (run from tests/, as CTest does)
"""

import os
import sys
import unittest

SKIPPED_EXIT = 77  # CTest's SKIP_RETURN_CODE for these tests (tests/CMakeLists.txt)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    names = argv[2:] or [argv[1]]
    names = [n if n.startswith(argv[1]) else f"{argv[1]}.{n}" for n in names]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
    skipped = result.skipped
    under_ci = os.environ.get("CI") == "true"
    if skipped:
        print(f"\n{argv[1]}: {len(skipped)} of {result.testsRun} tests skipped:", file=sys.stderr)
        for test, reason in skipped:
            print(f"    {test.id()}: {reason}", file=sys.stderr)
    if not result.wasSuccessful():
        return 1
    if skipped and under_ci:
        print(f"{argv[1]}: FAILED under CI=true: a skipped test is missing evidence", file=sys.stderr)
        return 1
    if result.testsRun == len(skipped):
        print(f"{argv[1]}: nothing ran", file=sys.stderr)
        return 1 if under_ci or result.testsRun == 0 else SKIPPED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
