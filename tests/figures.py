"""Figures the end-to-end tests measure, kept for the docs.

With CKPTWATCH_FIGURES=PATH in the environment, record() appends one JSON line per call to PATH;
bench/docs_tables.py renders them into docs/reliability.md's tables (bench/regen-docs.sh). Without
it, nothing is written: the tests still print their figures on stderr.
"""

import json
import os


def record(table, **values):
    """Appends {"table": table, **values} to $CKPTWATCH_FIGURES, if set."""
    path = os.environ.get("CKPTWATCH_FIGURES")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"table": table, **values}, sort_keys=True) + "\n")
